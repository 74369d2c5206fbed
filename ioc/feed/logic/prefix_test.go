package logic

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/cordonsec/cordon/ioc"
	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// evalAll evaluates every tree of s on ev, without the index: what Eval
// must return.
func evalAll(s *Set, ev *ioc.Event) []Result {
	var o observed
	observe(ev, &o)
	var res []Result
	for _, t := range s.trees {
		var h hit
		if t.activeAt(t0) && t.Root.eval(&o, &h) {
			res = append(res, Result{Tree: t, Field: h.field, Observable: h.value})
		}
	}
	return res
}

// resultIDs renders results for comparison: tree id, field and observable,
// in order.
func resultIDs(rs []Result) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = fmt.Sprintf("%s %s %q", r.Tree.ID, r.Field, r.Observable)
	}
	return out
}

func netEvent(remote, local string) *ioc.Event {
	ev := base(ioc.EventNetwork, "linux")
	ev.Network = &ioc.NetworkEvent{Protocol: "tcp", LocalAddress: local, LocalPort: 50000, RemoteAddress: remote, RemotePort: 443}
	return &ev
}

// TestPrefixIndex: trees that need an address within a CIDR prefix are
// indexed by the prefix, and an event gets exactly the trees whose
// prefixes contain its addresses, each once, in order.
func TestPrefixIndex(t *testing.T) {
	eq := func(f Field, vs ...string) *Node {
		op := OpEq
		if len(vs) > 1 {
			op = OpIn
		}
		return leaf(t, Cond{Fields: []Field{f}, Op: op, Values: vs})
	}
	remote := func(vs ...string) *Node { return eq(NetRemoteAddr, vs...) }
	trees := []*Tree{
		{ID: "/8", Root: remote("10.0.0.0/8")},
		{ID: "/16", Root: remote("10.1.0.0/16")},
		{ID: "/24 unmasked", Root: remote("10.1.2.77/24")},
		{ID: "/32", Root: remote("10.1.2.3/32")},
		{ID: "v4 /0", Root: remote("0.0.0.0/0")},
		{ID: "v6 /0", Root: remote("::/0")},
		{ID: "/128", Root: remote("2001:db8::1/128")},
		{ID: "v6 /33", Root: remote("2001:db8:8000::/33")},
		{ID: "two prefixes, one tree", Root: Or(remote("172.16.0.0/12"), remote("172.16.5.0/24"))},
		{ID: "in, nested", Root: remote("192.168.0.0/16", "192.168.1.0/24", "192.168.1.1/32")},
		{ID: "local or remote", Root: leaf(t, Cond{Fields: []Field{NetLocalAddr, NetRemoteAddr}, Op: OpEq, Values: []string{"192.168.0.0/16"}})},
		{ID: "mapped prefix", Root: remote("::ffff:198.51.100.0/120")},
		{ID: "v4 of mapped", Root: remote("198.51.100.0/24")},
		{ID: "address or prefix", Root: Or(remote("203.0.113.9"), remote("203.0.113.128/25"))},
		{ID: "subset", Root: leaf(t, Cond{Fields: []Field{NetRemoteAddr}, Op: OpSubset, Values: []string{"100.64.0.0/10"}})},
		{ID: "superset of an address", Root: leaf(t, Cond{Fields: []Field{NetRemoteAddr}, Op: OpSuperset, Values: []string{"100.64.1.1"}})},
		{ID: "superset of a prefix", Root: leaf(t, Cond{Fields: []Field{NetRemoteAddr}, Op: OpSuperset, Values: []string{"100.64.0.0/10"}})},
		{ID: "prefix and port", Root: And(remote("100.64.0.0/10"), leaf(t, Cond{Fields: []Field{NetRemotePort}, Op: OpEq, Values: []string{"443"}}))},
		{ID: "dns answer", Root: eq(DNSAnswer, "192.0.2.0/24")},
	}
	for _, tr := range trees {
		tr.Engine = ioc.EngineOpenIOC
	}
	set, err := Compile(trees)
	require.NoError(t, err)
	for f := range fieldEnd {
		assert.Empty(t, set.byField[f], "%s: every tree is indexed by prefix or key", f)
	}
	assert.Equal(t, 1, set.never, "a superset of a prefix wider than an address holds for no address")

	dns := func(answers ...string) *ioc.Event {
		ev := base(ioc.EventDNS, "linux")
		ev.DNS = &ioc.DNSEvent{Query: "c2.example", Answers: answers}
		return &ev
	}
	for _, tc := range []struct {
		name string
		ev   *ioc.Event
		want []string
	}{
		{"nested v4", netEvent("10.1.2.3", ""), []string{"/8", "/16", "/24 unmasked", "/32", "v4 /0"}},
		{"nested v4, not the /32", netEvent("10.1.2.4", ""), []string{"/8", "/16", "/24 unmasked", "v4 /0"}},
		{"only /0", netEvent("11.0.0.1", ""), []string{"v4 /0"}},
		{"v6 /128", netEvent("2001:DB8::1", ""), []string{"v6 /0", "/128"}},
		{"v6 next to the /128", netEvent("2001:db8::2", ""), []string{"v6 /0"}},
		{"v6 /33", netEvent("2001:db8:ffff::1", ""), []string{"v6 /0", "v6 /33"}},
		{"v6 bracketed with zone", netEvent("[2001:db8:8000::1%eth0]", ""), []string{"v6 /0", "v6 /33"}},
		{"two prefixes of one tree", netEvent("172.16.5.1", ""), []string{"v4 /0", "two prefixes, one tree"}},
		{"in, three nested", netEvent("192.168.1.1", ""), []string{"v4 /0", "in, nested", "local or remote"}},
		{"two fields in one prefix", netEvent("192.168.7.7", "192.168.1.20"), []string{"v4 /0", "in, nested", "local or remote"}},
		{"local field only", netEvent("8.8.8.8", "192.168.1.20"), []string{"v4 /0", "local or remote"}},
		{"ipv4-mapped event", netEvent("::ffff:198.51.100.7", ""), []string{"v4 /0", "mapped prefix", "v4 of mapped"}},
		{"ipv4 event in a mapped prefix", netEvent("198.51.100.8", ""), []string{"v4 /0", "mapped prefix", "v4 of mapped"}},
		{"address or prefix: the address", netEvent("203.0.113.9", ""), []string{"v4 /0", "address or prefix"}},
		{"address or prefix: the prefix", netEvent("203.0.113.200", ""), []string{"v4 /0", "address or prefix"}},
		{"subset, superset, port", netEvent("100.64.1.1", ""), []string{"v4 /0", "subset", "superset of an address", "prefix and port"}},
		{"no address", netEvent("not-an-address", ""), nil},
		{"dns answers in one prefix twice", dns("cdn.example", "192.0.2.1", "192.0.2.2"), []string{"dns answer"}},
		{"dns answer with trailing dot", dns("192.0.2.1."), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := set.Eval(tc.ev, t0, nil)
			ids := make([]string, len(got))
			for i, r := range got {
				ids[i] = r.Tree.ID
			}
			if len(ids) == 0 {
				ids = nil
			}
			assert.Equal(t, tc.want, ids)
			assert.Equal(t, resultIDs(evalAll(set, tc.ev)), resultIDs(got))
		})
	}
}

// TestPrefixIndexNegated: a negated prefix condition needs only the field,
// so it stays in the field index and is evaluated for every event with the
// field.
func TestPrefixIndexNegated(t *testing.T) {
	tr := &Tree{ID: "not", Engine: ioc.EngineSTIX, Root: leaf(t, Cond{Fields: []Field{NetRemoteAddr}, Op: OpEq, Values: []string{"10.0.0.0/8"}, Negate: true})}
	set, err := Compile([]*Tree{tr})
	require.NoError(t, err)
	assert.Equal(t, []uint32{0}, set.byField[NetRemoteAddr])
	assert.Nil(t, set.byPrefix[NetRemoteAddr])
	assert.Len(t, set.Eval(netEvent("11.0.0.1", ""), t0, nil), 1)
	assert.Empty(t, set.Eval(netEvent("10.0.0.1", ""), t0, nil))
}

// TestPrefixIndexMixedIn: an IN of addresses and prefixes together is
// refused, as before the prefix index; an OR of the two kinds is indexed
// by both.
func TestPrefixIndexMixedIn(t *testing.T) {
	_, err := NewCond(Cond{Fields: []Field{NetRemoteAddr}, Op: OpIn, Values: []string{"192.0.2.9", "10.0.0.0/8"}})
	require.ErrorIs(t, err, ErrInvalidCond)
	root := Or(leaf(t, Cond{Fields: []Field{NetRemoteAddr}, Op: OpIn, Values: []string{"192.0.2.9", "192.0.2.10"}}),
		leaf(t, Cond{Fields: []Field{NetRemoteAddr}, Op: OpIn, Values: []string{"10.0.0.0/8", "fd00::/8"}}))
	r := need(root)
	assert.Len(t, r.keys, 2)
	assert.Len(t, r.prefixes, 2)
	assert.Empty(t, r.fields)
	set, err := Compile([]*Tree{{ID: "mixed", Engine: ioc.EngineOpenIOC, Root: root}})
	require.NoError(t, err)
	for addr, n := range map[string]int{"192.0.2.9": 1, "192.0.2.10": 1, "10.9.9.9": 1, "fd00::7": 1, "192.0.2.11": 0, "fe00::7": 0} {
		assert.Len(t, set.Eval(netEvent(addr, ""), t0, nil), n, addr)
	}
}

// TestPrefixIndexCost: a prefix is as selective as a key, so an AND is
// indexed by its prefix rather than by a field it also needs.
func TestPrefixIndexCost(t *testing.T) {
	root := And(leaf(t, Cond{Fields: []Field{NetRemotePort}, Op: OpGT, Values: []string{"1024"}}),
		leaf(t, Cond{Fields: []Field{NetRemoteAddr}, Op: OpEq, Values: []string{"10.0.0.0/8"}}))
	r := need(root)
	assert.Empty(t, r.fields)
	assert.Equal(t, []fieldPrefix{{NetRemoteAddr, netip.MustParsePrefix("10.0.0.0/8")}}, r.prefixes)
	// Two prefixes cost more than one key.
	root = And(leaf(t, Cond{Fields: []Field{NetRemoteAddr}, Op: OpIn, Values: []string{"10.0.0.0/8", "fd00::/8"}}),
		leaf(t, Cond{Fields: []Field{NetProtocol}, Op: OpEq, Values: []string{"udp"}}))
	r = need(root)
	assert.Equal(t, []string{indexKey(NetProtocol, "udp")}, r.keys)
	assert.Empty(t, r.prefixes)
}

// addrPool returns random addresses near a few bases, so that random
// prefixes often contain them and nest.
type addrPool struct {
	r     *rand.Rand
	bases []netip.Addr
}

func newAddrPool(r *rand.Rand) *addrPool {
	p := &addrPool{r: r}
	for _, s := range []string{"10.1.2.3", "10.1.200.9", "192.0.2.1", "0.0.0.0", "255.255.255.255", "2001:db8::1", "2001:db8:ffff::9", "fe80::1", "::", "::ffff:10.1.2.3"} {
		p.bases = append(p.bases, netip.MustParseAddr(s))
	}
	return p
}

// addr returns a base with some of its low bits changed.
func (p *addrPool) addr() netip.Addr {
	a := p.bases[p.r.IntN(len(p.bases))]
	b := a.AsSlice()
	flip := p.r.IntN(len(b)*8 + 1) // bits from the end that may change
	for i := 0; i < flip; i++ {
		if p.r.IntN(2) == 0 {
			bit := len(b)*8 - 1 - i
			b[bit/8] ^= 1 << (7 - bit%8)
		}
	}
	out, _ := netip.AddrFromSlice(b)
	return out
}

// prefix returns a prefix of any length around a pool address, written
// with host bits or not.
func (p *addrPool) prefix() string {
	a := p.addr()
	bits := p.r.IntN(a.BitLen() + 1)
	switch p.r.IntN(4) {
	case 0:
		bits = a.BitLen()
	case 1:
		bits = a.BitLen() - p.r.IntN(9)
	}
	pfx := netip.PrefixFrom(a, bits)
	if p.r.IntN(2) == 0 {
		pfx = pfx.Masked()
	}
	return pfx.String()
}

// value returns what an event may carry in an address field: an address
// in one of its spellings, or something else.
func (p *addrPool) value() string {
	a := p.addr()
	switch p.r.IntN(12) {
	case 0:
		if a.Is4() {
			return netip.AddrFrom16(a.As16()).String() // IPv4-mapped
		}
	case 1:
		return "[" + a.String() + "]"
	case 2:
		if a.Is6() && !a.Is4In6() {
			return a.WithZone("eth0").String()
		}
	case 3:
		return a.String() + "."
	case 4:
		return " " + a.String()
	case 5:
		return "c2.example"
	case 6:
		return a.StringExpanded()
	}
	return a.String()
}

var addrFields = []Field{NetRemoteAddr, NetLocalAddr, DNSAnswer, DNSQuery, HTTPHost}

// randLeaf returns a random condition, most often on addresses.
func randLeaf(t testing.TB, r *rand.Rand, p *addrPool) *Node {
	fields := []Field{addrFields[r.IntN(len(addrFields))]}
	if r.IntN(4) == 0 {
		fields = append(fields, addrFields[r.IntN(len(addrFields))])
	}
	c := Cond{Fields: fields, Negate: r.IntN(5) == 0}
	switch r.IntN(10) {
	case 0, 1, 2:
		c.Op, c.Values = OpEq, []string{p.prefix()}
	case 3, 4:
		c.Op = OpIn
		for range 1 + r.IntN(4) {
			c.Values = append(c.Values, p.prefix())
		}
	case 5:
		c.Op, c.Values = OpEq, []string{p.addr().String()}
	case 6:
		c.Op, c.Values = OpSubset, []string{p.prefix()}
	case 7:
		c.Op, c.Values = OpSuperset, []string{p.prefix()}
		if r.IntN(2) == 0 {
			c.Values = []string{p.addr().String()}
		}
	case 8:
		c = Cond{Fields: []Field{NetRemotePort}, Op: OpEq, Values: []string{fmt.Sprint(442 + r.IntN(3))}, Negate: c.Negate}
	default:
		c = Cond{Fields: []Field{DNSQuery, HTTPHost}, Op: OpSuffix, Values: []string{".example"}, Negate: c.Negate}
	}
	return leaf(t, c)
}

func randNode(t testing.TB, r *rand.Rand, p *addrPool, depth int) *Node {
	if depth == 0 || r.IntN(3) == 0 {
		if r.IntN(30) == 0 {
			return Never()
		}
		return randLeaf(t, r, p)
	}
	kids := make([]*Node, 1+r.IntN(3))
	for i := range kids {
		kids[i] = randNode(t, r, p, depth-1)
	}
	if r.IntN(2) == 0 {
		return And(kids...)
	}
	return Or(kids...)
}

func randEvent(r *rand.Rand, p *addrPool) *ioc.Event {
	switch r.IntN(3) {
	case 0:
		ev := base(ioc.EventDNS, "linux")
		ev.DNS = &ioc.DNSEvent{Query: p.value()}
		for range r.IntN(4) {
			ev.DNS.Answers = append(ev.DNS.Answers, p.value())
		}
		return &ev
	case 1:
		ev := base(ioc.EventHTTP, "linux")
		host := p.addr().String()
		if p.r.IntN(2) == 0 {
			host = "[" + p.addr().WithZone("").String() + "]:8080"
		}
		ev.HTTP = &ioc.HTTPEvent{URL: "http://" + host + "/x", Method: "GET"}
		return &ev
	}
	ev := netEvent(p.value(), p.value())
	ev.Network.RemotePort = 442 + r.IntN(3)
	return ev
}

// TestPrefixIndexDifferential: on random trees of address conditions
// (CIDR prefixes of every length, IPv4 and IPv6, addresses, negations,
// AND and OR) and random events, Eval returns exactly what evaluating
// every tree returns.
func TestPrefixIndexDifferential(t *testing.T) {
	for seed := range uint64(8) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 0x5eed))
			p := newAddrPool(r)
			trees := make([]*Tree, 400)
			for i := range trees {
				trees[i] = &Tree{ID: fmt.Sprint(i), Engine: ioc.EngineSTIX, Root: randNode(t, r, p, 3)}
			}
			set, err := Compile(trees)
			require.NoError(t, err)
			matched := 0
			for i := range 1500 {
				ev := randEvent(r, p)
				want := resultIDs(evalAll(set, ev))
				got := resultIDs(set.Eval(ev, t0, nil))
				if diff := cmp.Diff(want, got); diff != "" {
					t.Fatalf("event %d %+v %+v %+v: Eval differs from evaluating every tree (-want +got):\n%s", i, ev.Network, ev.DNS, ev.HTTP, diff)
				}
				matched += len(want)
			}
			require.Greater(t, matched, 1500, "too few matches to test anything")
		})
	}
}
