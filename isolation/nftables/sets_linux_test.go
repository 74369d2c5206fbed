package nftables

import (
	"context"
	"testing"

	"github.com/google/nftables/expr"

	"github.com/cordonsec/cordon/isolation"
)

// TestSetsInKernel: a rule with more combinations than expandLimit is
// written with anonymous interval sets; the kernel takes them, they read
// back to the same plan, and traffic follows them.
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
