package nftables

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	gnft "github.com/google/nftables"
	"github.com/google/nftables/expr"

	"github.com/cordonsec/cordon/isolation"
)

// TestSetsInKernel: a rule with many combinations is written as elements
// of named sets with concatenated interval keys; the kernel takes them,
// they read back to the same plan, and traffic follows them.
func TestSetsInKernel(t *testing.T) {
	needRoot(t)
	h, p := newNS(t, "h"), newNS(t, "p")
	link(t, h, []string{"192.0.2.1/24", "2001:db8:1::1/64"}, p, []string{"192.0.2.2/24", "2001:db8:1::2/64"})
	listenTCP(t, p, "192.0.2.2:8443")
	listenTCP(t, p, "192.0.2.2:8444")
	listenTCP(t, p, "[2001:db8:1::2]:8443")
	rule := mustRule(t, "out tcp remote=192.0.2.2,192.0.2.4,192.0.2.8,192.0.2.16,198.18.0.0/16,2001:db8:1::2,2001:db8:9::/48 rport=443,8443,9000-9100,10000 name=many")
	plan := isolation.Plan{Rules: []isolation.Rule{rule, isolation.NeighborDiscoveryRule()}}
	e := enforcerIn(t, h)
	ctx := context.Background()
	if err := e.Apply(ctx, plan); err != nil {
		t.Fatal(err)
	}
	lookups := 0
	for _, id := range []chainID{chainInput, chainOutput} {
		rs, err := e.conn.GetRules(table, baseChain(id))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			for _, x := range r.Exprs {
				if _, ok := x.(*expr.Lookup); ok {
					lookups++
				}
			}
		}
	}
	if lookups == 0 {
		t.Fatal("no set lookups in the table; the test does not exercise sets")
	}
	o, err := e.Observe(ctx)
	if err != nil || !o.Active || !o.Plan.Equal(plan) {
		t.Fatalf("observed %+v, %v; want\n%s", o, err, plan)
	}
	if !tcpWorks(h, "", "192.0.2.2:8443", passWait) {
		t.Error("192.0.2.2:8443 is in the sets but blocked")
	}
	if !tcpWorks(h, "", "[2001:db8:1::2]:8443", passWait) {
		t.Error("[2001:db8:1::2]:8443 is in the sets but blocked")
	}
	if tcpWorks(h, "", "192.0.2.2:8444", blockWait) {
		t.Error("192.0.2.2:8444 is not in the port set but passed")
	}
}

// TestGroupingInKernel: rules of one shape share named sets (overlapping
// ones split over two), traffic follows the elements in both families,
// and a set element changed behind the enforcer's back is reported by the
// read-back and repaired by Apply.
func TestGroupingInKernel(t *testing.T) {
	needRoot(t)
	h, p := newNS(t, "h"), newNS(t, "p")
	link(t, h, []string{"192.0.2.1/24", "2001:db8:1::1/64"}, p, []string{"192.0.2.2/24", "192.0.2.3/24", "2001:db8:1::2/64"})
	for _, a := range []string{"192.0.2.2:8443", "192.0.2.2:8444", "192.0.2.2:9050", "192.0.2.3:8443", "192.0.2.3:8444", "192.0.2.3:9050",
		"[2001:db8:1::2]:8443", "[2001:db8:1::2]:8444", "[2001:db8:1::2]:9050"} {
		listenTCP(t, p, a)
	}
	listenTCP(t, h, "192.0.2.1:7100")
	plan := isolation.Plan{Rules: []isolation.Rule{
		isolation.NeighborDiscoveryRule(),
		mustRule(t, "out tcp remote=192.0.2.2,198.18.0.0/16,2001:db8:1::2 rport=8443,9000-9100 name=a"),
		mustRule(t, "out tcp remote=192.0.2.3 rport=8444 name=b"),
		// Overlaps a's 192.0.2.2 . 9000-9100: a second set of the shape.
		mustRule(t, "out tcp remote=192.0.2.0/24 rport=9050 name=c"),
	}}
	e := enforcerIn(t, h)
	ctx := context.Background()
	if err := e.Apply(ctx, plan); err != nil {
		t.Fatal(err)
	}
	sets, err := e.gen.dumpSets()
	if err != nil {
		t.Fatal(err)
	}
	shapeSets := 0
	for _, s := range sets {
		if strings.HasPrefix(s.name, "output4_flow_proto_addr_rport_") {
			shapeSets++
		}
	}
	if shapeSets != 2 {
		t.Fatalf("%d sets of shape output4_flow_proto_addr_rport, want 2 (the overlapping elements apart)", shapeSets)
	}
	if o, err := e.Observe(ctx); err != nil || !o.Active || !o.Plan.Equal(plan) {
		t.Fatalf("observed %+v, %v; want\n%s", o, err, plan)
	}
	traffic := func(when string) {
		t.Helper()
		for _, c := range []struct {
			addr string
			pass bool
		}{
			{"192.0.2.2:8443", true}, {"192.0.2.2:9050", true}, {"192.0.2.3:8444", true}, {"192.0.2.3:9050", true},
			{"[2001:db8:1::2]:8443", true}, {"[2001:db8:1::2]:9050", true},
			{"192.0.2.2:8444", false}, {"192.0.2.3:8443", false}, {"[2001:db8:1::2]:8444", false},
		} {
			wait := blockWait
			if c.pass {
				wait = passWait
			}
			if got := tcpWorks(h, "", c.addr, wait); got != c.pass {
				t.Errorf("%s: host -> %s passed=%v, want %v", when, c.addr, got, c.pass)
			}
		}
		// The reply rules match established flows only: a remote using an
		// allowed remote port as its source port does not get in.
		if tcpWorks(p, "192.0.2.2:8443", "192.0.2.1:7100", blockWait) {
			t.Errorf("%s: peer:8443 -> host passed", when)
		}
	}
	traffic("applied")

	tagA := ""
	for _, s := range planLayout(plan).sets {
		for _, el := range s.elems {
			if strings.HasSuffix(el.tag, " a") {
				tagA = el.tag
			}
		}
	}
	admin, err := gnft.New(gnft.WithNetNSFd(int(h.f.Fd())))
	if err != nil {
		t.Fatal(err)
	}
	set := &gnft.Set{Table: table, Name: "output4_flow_proto_addr_rport_0"}
	key := func(addr string, port uint16) gnft.SetElement {
		k := append([]byte{6, 0, 0, 0}, netip.MustParseAddr(addr).AsSlice()...)
		k = append(k, byte(port>>8), byte(port), 0, 0)
		return gnft.SetElement{Key: k, KeyEnd: k}
	}
	for _, c := range []struct {
		name   string
		tamper func() error
	}{
		{"element added to a rule", func() error {
			el := key("192.0.2.3", 8443)
			el.Comment = tagA // not the product of a's remotes and ports
			return admin.SetAddElements(set, []gnft.SetElement{el})
		}},
		{"element without a comment", func() error {
			return admin.SetAddElements(set, []gnft.SetElement{key("192.0.2.3", 8443)})
		}},
		{"element deleted", func() error {
			return admin.SetDeleteElements(set, []gnft.SetElement{key("192.0.2.2", 8443)})
		}},
		{"foreign set", func() error {
			return admin.AddSet(&gnft.Set{Table: table, Name: "extra", KeyType: gnft.TypeIPAddr}, nil)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := c.tamper(); err != nil {
				t.Fatal(err)
			}
			if err := admin.Flush(); err != nil {
				t.Fatalf("tamper: %v", err)
			}
			if _, err := e.Observe(ctx); !errors.Is(err, isolation.ErrReadBack) {
				t.Fatalf("Observe after tampering: %v, want ErrReadBack", err)
			}
			if err := e.Apply(ctx, plan); err != nil {
				t.Fatalf("Apply did not repair: %v", err)
			}
			if o, err := e.Observe(ctx); err != nil || !o.Plan.Equal(plan) {
				t.Fatalf("after repair: %+v, %v", o, err)
			}
			traffic("repaired")
		})
	}
}
