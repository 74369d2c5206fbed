package nftables

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/cordonsec/cordon/isolation"
	"github.com/cordonsec/cordon/isolation/isolationtest"
)

func mustRule(t testing.TB, s string) isolation.Rule {
	t.Helper()
	r, err := isolation.ParseRule(s)
	if err != nil {
		t.Fatalf("ParseRule(%q): %v", s, err)
	}
	return r
}

func TestLayoutRoundTrip(t *testing.T) {
	mgmt := isolation.Endpoint{Name: "nats.example:4222", Protocol: isolation.ProtocolTCP,
		Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("2001:db8::10")}, Port: 4222}
	cases := []struct {
		name string
		plan isolation.Plan
	}{
		{"empty", isolation.Plan{}},
		{"suite A", isolationtest.PlanA()},
		{"suite B", isolationtest.PlanB()},
		{"management only", isolation.Plan{Management: []isolation.Endpoint{mgmt}}},
		{"udp management", isolation.Plan{Management: []isolation.Endpoint{{Protocol: isolation.ProtocolUDP,
			Addrs: []netip.Addr{netip.MustParseAddr("198.18.0.1")}, Port: 53}}}},
		{"any protocol", isolation.Plan{Rules: []isolation.Rule{mustRule(t, "both any remote=198.18.7.0/24,2001:db8:7::/48 name=lab")}}},
		{"any protocol, any remote", isolation.Plan{Rules: []isolation.Rule{mustRule(t, "in any")}}},
		{"icmp without types", isolation.Plan{Rules: []isolation.Rule{mustRule(t, "out icmp"), mustRule(t, "in icmpv6 remote=2001:db8::/32")}}},
		{"ports lists", isolation.Plan{Rules: []isolation.Rule{mustRule(t, "out tcp remote=198.18.0.0/15 lport=1024-2048,3000 rport=1,443,65535")}}},
		{"full ranges", isolation.Plan{Rules: []isolation.Rule{mustRule(t, "out udp remote=0.0.0.0/0,::/0 rport=1-65535")}}},
		{"many prefixes", isolation.Plan{Rules: []isolation.Rule{mustRule(t, "out tcp remote=198.18.0.1,198.18.0.3,198.18.5.0/24,2001:db8::1,2001:db8:ffff::/48")}}},
		{"both directions", isolation.Plan{Rules: []isolation.Rule{mustRule(t, "both udp remote=198.18.0.9 lport=500 rport=500 name=ike")}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := planLayout(c.plan)
			got, err := layoutPlan(l)
			if err != nil {
				t.Fatalf("layoutPlan: %v", err)
			}
			if !got.Equivalent(c.plan) {
				t.Fatalf("read back\n%s\nwant\n%s", got, c.plan)
			}
			// Rule names survive in the comments.
			if !got.Equal(c.plan) {
				t.Fatalf("names lost: read back\n%s\nwant\n%s", got, c.plan)
			}
			if again := planLayout(got); !again.equal(l) {
				t.Fatalf("re-encoding differs: %s", l.diff(again))
			}
		})
	}
}

// effective returns what l accepts, as atoms of their own: the plain
// atoms, and the parts every set element stands for.
func effective(l layout) []atom {
	var out []atom
	for _, a := range slices.Concat(l.input, l.output) {
		if a.set == "" {
			out = append(out, a)
		}
	}
	for _, s := range l.sets {
		for _, e := range s.elems {
			out = append(out, e.atoms()...)
		}
	}
	return out
}

func TestLayoutShape(t *testing.T) {
	// One outbound TCP rule for both families: per family one element
	// (tcp . 443) of a flow set looked up by an initiating rule in output
	// and a reply rule in input.
	l := planLayout(isolation.Plan{Rules: []isolation.Rule{mustRule(t, "out tcp rport=443 name=web")}})
	if len(l.input) != 2 || len(l.output) != 2 || len(l.sets) != 2 {
		t.Fatalf("got %d input and %d output rules, %d sets; want 2, 2 and 2", len(l.input), len(l.output), len(l.sets))
	}
	for _, s := range l.sets {
		if s.shape.chain != chainOutput || s.shape.role != roleFlow || s.shape.fields != fieldRPort || len(s.elems) != 1 {
			t.Fatalf("set %s: want one element of an output flow set on rport", s.name)
		}
		if e := s.elems[0]; e.proto != isolation.ProtocolTCP || spansText(e.key) != "443" || e.tag != "r0 web" {
			t.Errorf("set %s: element %s, want tcp . 443 of r0 web", s.name, e)
		}
	}
	for _, a := range l.output {
		if a.reply || a.set == "" || a.fields != fieldRPort {
			t.Errorf("output rule %s: want an initiating lookup on rport", a)
		}
	}
	for _, a := range l.input {
		if !a.reply || a.set == "" || a.fields != fieldRPort {
			t.Errorf("input rule %s: want a reply lookup (ct state established) on rport", a)
		}
	}
	// ICMP rules exist for IPv4 only, ICMPv6 for IPv6 only; no reply
	// part carries ICMP types.
	l = planLayout(isolation.Plan{Rules: []isolation.Rule{mustRule(t, "in icmp icmp=8"), mustRule(t, "in icmpv6 icmp=128"), mustRule(t, "out icmp remote=198.18.0.1 icmp=8")}})
	for _, a := range effective(l) {
		if (a.proto == isolation.ProtocolICMP) != (a.family == 4) {
			t.Errorf("rule %s in the wrong family", a)
		}
		if a.reply && a.types != nil {
			t.Errorf("reply rule %s carries icmp types", a)
		}
	}
	for _, s := range l.sets {
		if s.shape.role != roleInit && s.shape.fields&fieldType != 0 {
			t.Errorf("set %s: a set of replies keyed on icmp types", s.name)
		}
	}
	// A rule naming only IPv6 remotes has no IPv4 rules.
	l = planLayout(isolation.Plan{Rules: []isolation.Rule{mustRule(t, "out udp remote=2001:db8::/32")}})
	for _, a := range slices.Concat(l.input, l.output, effective(l)) {
		if a.family != 6 {
			t.Errorf("rule %s: want IPv6 only", a)
		}
	}
}

// TestGrouping: rules of the same shape share a set and its two lookup
// rules, whatever the family mix, ranges and lists; each element keeps the
// plan item in its comment; the plan reads back.
func TestGrouping(t *testing.T) {
	p := isolation.Plan{
		Management: []isolation.Endpoint{{Name: "bus", Protocol: isolation.ProtocolTCP,
			Addrs: []netip.Addr{netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("2001:db8::2")}, Port: 4222}},
		Rules: []isolation.Rule{
			mustRule(t, "out tcp remote=198.18.1.0/24,198.18.3.7,2001:db8:1::/48 rport=443,8000-8100 name=web"),
			mustRule(t, "out udp remote=198.18.4.4,2001:db8:4::4 rport=53 name=dns"),
			mustRule(t, "in tcp remote=192.0.2.0/24 lport=22 name=ssh"),
			mustRule(t, "out udp lport=68 rport=67 name=dhcp"),
			mustRule(t, "both icmpv6 icmp=133,134,135,136"),
			mustRule(t, "out icmp remote=198.18.5.0/24 icmp=8"),
			mustRule(t, "out tcp rport=853"),
			mustRule(t, "in any remote=192.0.2.9"),
			mustRule(t, "out udp"),
		},
	}
	l := planLayout(p)
	sets := map[string]keySet{}
	for _, s := range l.sets {
		sets[s.name] = s
	}
	want := map[string]int{ // elements per set
		// management (1 per family) + web (2 v4 remotes x 2 port ranges)
		// + dns (1 per family)
		"output4_flow_proto_addr_rport_0":  1 + 4 + 1,
		"output6_flow_proto_addr_rport_0":  1 + 2 + 1,
		"input4_flow_proto_addr_lport_0":   1,
		"output4_flow_proto_rport_lport_0": 1,
		"output6_flow_proto_rport_lport_0": 1,
		"output4_flow_proto_rport_0":       1,
		"output6_flow_proto_rport_0":       1,
		"output6_init_proto_type_0":        1, // 133-136 is one range
		"input6_init_proto_type_0":         1,
		"output4_init_proto_addr_type_0":   1,
		"input4_reply_proto_addr_0":        1,
	}
	for name, n := range want {
		if s, ok := sets[name]; !ok || len(s.elems) != n {
			t.Errorf("set %s: %d elements (present %v), want %d", name, len(s.elems), ok, n)
		}
	}
	if len(sets) != len(want) {
		var names []string
		for n := range sets {
			names = append(names, n)
		}
		t.Errorf("sets %v, want %d", names, len(want))
	}
	// Flow sets have two lookup rules, init and reply sets one.
	lookups := 0
	plain := 0
	for _, a := range slices.Concat(l.input, l.output) {
		if a.set != "" {
			lookups++
			if a.tag != setTag(a.set) {
				t.Errorf("lookup rule %s: comment %q", a, a.tag)
			}
		} else {
			plain++
		}
	}
	if lookups != 7*2+4 {
		t.Errorf("%d lookup rules, want %d", lookups, 7*2+4)
	}
	// Rules of their own: "in any" (in and its reply), "out udp" per
	// family (2 each), and the replies of the ICMPv6 rule (no remote).
	if plain != 2+4+2 {
		t.Errorf("%d rules of their own, want %d", plain, 2+4+2)
	}
	for _, e := range sets["output4_flow_proto_addr_rport_0"].elems {
		_, _, name, err := parseTag(e.tag)
		if err != nil || name != "bus" && name != "web" && name != "dns" {
			t.Errorf("element %s: comment is not the plan item", e)
		}
	}
	got, err := layoutPlan(l)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(p) {
		t.Fatalf("read back\n%s\nwant\n%s", got, p)
	}
}

// TestPackSetsOverlap: overlapping elements of one shape (the kernel
// refuses them in one set) go to separate sets; none is lost.
func TestPackSetsOverlap(t *testing.T) {
	p := isolation.Plan{Rules: []isolation.Rule{
		mustRule(t, "out tcp remote=198.18.0.0/16 rport=443 name=wide"),
		mustRule(t, "out tcp remote=198.18.1.0/24 rport=400-500 name=inner"),
		mustRule(t, "out tcp remote=198.18.1.7 rport=443 name=point"),
		mustRule(t, "out tcp remote=198.19.0.0/16 rport=443 name=apart"),
		mustRule(t, "out udp remote=198.18.0.0/16 rport=443 name=udp"),
	}}
	l := planLayout(p)
	var shapeSets []keySet
	total := 0
	for _, s := range l.sets {
		if s.shape.family == 4 && s.shape.fields == fieldRemote|fieldRPort {
			shapeSets = append(shapeSets, s)
			total += len(s.elems)
		}
		for i, a := range s.elems {
			for _, b := range s.elems[i+1:] {
				if a.overlaps(b) {
					t.Errorf("set %s: %s overlaps %s", s.name, a, b)
				}
			}
		}
	}
	if len(shapeSets) != 3 || total != 5 {
		t.Fatalf("%d sets holding %d elements, want 3 sets (wide+apart+udp, inner, point) holding 5", len(shapeSets), total)
	}
	got, err := layoutPlan(l)
	if err != nil || !got.Equal(p) {
		t.Fatalf("read back %v\n%s\nwant\n%s", err, got, p)
	}
}

func TestCanonicalMerge(t *testing.T) {
	p := isolation.Plan{Rules: []isolation.Rule{mustRule(t,
		"out tcp remote=198.18.0.0/16,198.18.1.0/24,198.19.0.0/24,198.19.1.0/24,2001:db8::/33,2001:db8:8000::/33 rport=80,80-90,91,93 name=x")}}
	got, err := layoutPlan(planLayout(p))
	if err != nil {
		t.Fatal(err)
	}
	want := isolation.Plan{Rules: []isolation.Rule{mustRule(t, "out tcp remote=198.18.0.0/16,198.19.0.0/23,2001:db8::/32 rport=80-91,93 name=x")}}
	if !got.Equal(want) {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func TestSpanPrefixes(t *testing.T) {
	cases := []struct {
		lo, hi string
		want   string
	}{
		{"192.0.2.0", "192.0.2.255", "192.0.2.0/24"},
		{"192.0.2.1", "192.0.2.1", "192.0.2.1/32"},
		{"192.0.2.1", "192.0.2.6", "192.0.2.1/32 192.0.2.2/31 192.0.2.4/31 192.0.2.6/32"},
		{"0.0.0.0", "255.255.255.255", "0.0.0.0/0"},
		{"::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::/0"},
		{"2001:db8::", "2001:db8:1::ffff", "2001:db8::/48 2001:db8:1::/112"},
		{"255.255.255.254", "255.255.255.255", "255.255.255.254/31"},
	}
	for _, c := range cases {
		lo, hi := netip.MustParseAddr(c.lo).AsSlice(), netip.MustParseAddr(c.hi).AsSlice()
		ps, err := spanPrefixes(span{lo, hi})
		if err != nil {
			t.Fatalf("%s-%s: %v", c.lo, c.hi, err)
		}
		var got []string
		for _, p := range ps {
			got = append(got, p.String())
		}
		if strings.Join(got, " ") != c.want {
			t.Errorf("%s-%s: got %v, want %s", c.lo, c.hi, got, c.want)
		}
	}
	for _, bad := range []span{{[]byte{1, 2, 3, 4}, []byte{1, 2, 3, 3}}, {[]byte{1, 2}, []byte{1, 2}}, {[]byte{1, 2, 3, 4}, make([]byte, 16)}} {
		if _, err := spanPrefixes(bad); err == nil {
			t.Errorf("spanPrefixes(%x-%x) = nil error", bad.lo, bad.hi)
		}
	}
}

func TestLayoutPlanRejects(t *testing.T) {
	// A rule of its own (any protocol) in each chain.
	plain := planLayout(isolation.Plan{Rules: []isolation.Rule{mustRule(t, "out any remote=198.18.0.0/24 name=web")}})
	// Set elements: two remotes by two ports, four elements in one flow
	// set. (Fewer or other elements of one rule can be the canonical
	// encoding of another rule: Observe reads that rule, and Apply's
	// exact comparison with its plan rewrites the table.)
	grouped := planLayout(isolation.Plan{Rules: []isolation.Rule{mustRule(t, "out tcp remote=198.18.0.0/24,198.18.9.9 rport=443,8443 name=web")}})
	if len(plain.sets) != 0 || len(grouped.sets) != 1 || len(grouped.sets[0].elems) != 4 {
		t.Fatalf("unexpected layouts: %d sets, %d sets", len(plain.sets), len(grouped.sets))
	}
	clone := func(base layout) layout {
		l := layout{input: slices.Clone(base.input), output: slices.Clone(base.output)}
		for _, s := range base.sets {
			s.elems = slices.Clone(s.elems)
			l.sets = append(l.sets, s)
		}
		return l
	}
	elem := func(l *layout) *entry { return &l.sets[0].elems[0] }
	cases := []struct {
		name   string
		base   layout
		change func(l *layout)
	}{
		{"reply rule missing", plain, func(l *layout) { l.input = nil }},
		{"initiating rule missing", plain, func(l *layout) { l.output = nil }},
		{"foreign comment", plain, func(l *layout) { l.input[0].tag = "accept all" }},
		{"index not canonical", plain, func(l *layout) { l.input[0].tag = "r01 web"; l.output[0].tag = "r01 web" }},
		{"protocols disagree", plain, func(l *layout) { l.input[0].proto = isolation.ProtocolUDP }},
		{"remote widened on one side", plain, func(l *layout) { l.input[0].remote = nil }},
		{"invalid name", plain, func(l *layout) { l.input[0].tag = "r0 bad name!"; l.output[0].tag = "r0 bad name!" }},
		{"set reply lookup missing", grouped, func(l *layout) { l.input = nil }},
		{"set initiating lookup missing", grouped, func(l *layout) { l.output = nil }},
		{"lookup of a missing set", grouped, func(l *layout) { l.sets = nil }},
		{"lookup with another comment", grouped, func(l *layout) { l.input[0].tag = "r0 web" }},
		{"lookup loading other fields", grouped, func(l *layout) { l.input[0].fields = fieldRemote }},
		{"element missing", grouped, func(l *layout) { l.sets[0].elems = l.sets[0].elems[:3] }},
		{"element of another rule index", grouped, func(l *layout) { elem(l).tag = "r1 web" }},
		{"element with a foreign comment", grouped, func(l *layout) { elem(l).tag = "accept all" }},
		{"element of another protocol", grouped, func(l *layout) { elem(l).proto = isolation.ProtocolUDP }},
		{"element remote widened", grouped, func(l *layout) {
			elem(l).key = slices.Clone(elem(l).key)
			elem(l).key[0] = prefixSpans([]netip.Prefix{netip.MustParsePrefix("198.18.0.0/16")})[0]
		}},
		{"element port changed", grouped, func(l *layout) {
			elem(l).key = slices.Clone(elem(l).key)
			elem(l).key[1] = portSpans([]isolation.PortRange{isolation.Port(80)})[0]
		}},
		{"element of another shape", grouped, func(l *layout) { elem(l).shape.role = roleInit }},
		{"extra element", grouped, func(l *layout) {
			e := *elem(l)
			e.key = slices.Clone(e.key)
			e.key[1] = portSpans([]isolation.PortRange{isolation.Port(22)})[0]
			l.sets[0].elems = append(l.sets[0].elems, e)
		}},
		{"set without lookups", grouped, func(l *layout) {
			s := l.sets[0]
			s.name = "output4_flow_proto_addr_rport_1"
			l.sets = append(l.sets, s)
		}},
		{"endpoint with a prefix", grouped, func(l *layout) {
			for i := range l.sets[0].elems {
				l.sets[0].elems[i].tag = "m0"
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := clone(c.base)
			c.change(&l)
			if p, err := layoutPlan(l); err == nil {
				t.Fatalf("layoutPlan accepted a changed layout:\n%s", p)
			}
		})
	}
}

// TestLayoutSemantics checks, on random plans and flows, that what reads
// back allows exactly the flows the plan allows.
func TestLayoutSemantics(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	for i := range 300 {
		p := randomPlan(rng)
		got, err := layoutPlan(planLayout(p))
		if err != nil {
			t.Fatalf("plan %d: %v\n%s", i, err, p)
		}
		for range 200 {
			f := randomFlow(rng)
			if p.Allows(f) != got.Allows(f) {
				t.Fatalf("plan %d, flow %+v: plan allows=%v, read back allows=%v\nplan\n%s\nread back\n%s", i, f, p.Allows(f), got.Allows(f), p, got)
			}
		}
	}
}

func randomAddr(rng *rand.Rand, v6 bool) netip.Addr {
	if v6 {
		a := [16]byte{0x20, 0x01, 0x0d, 0xb8}
		a[5] = byte(rng.IntN(4))
		a[15] = byte(rng.IntN(8))
		return netip.AddrFrom16(a)
	}
	return netip.AddrFrom4([4]byte{198, 18, byte(rng.IntN(4)), byte(rng.IntN(8))})
}

func randomPorts(rng *rand.Rand) []isolation.PortRange {
	var ps []isolation.PortRange
	for range rng.IntN(3) {
		a := uint16(1 + rng.IntN(20))
		ps = append(ps, isolation.PortRange{First: a, Last: a + uint16(rng.IntN(4))})
	}
	return ps
}

func randomPlan(rng *rand.Rand) isolation.Plan {
	var p isolation.Plan
	for range rng.IntN(6) {
		r := isolation.Rule{Direction: isolation.Direction(1 + rng.IntN(3)), Protocol: isolation.Protocol(rng.IntN(5))}
		for range rng.IntN(4) {
			v6 := rng.IntN(2) == 0
			switch r.Protocol {
			case isolation.ProtocolICMP:
				v6 = false
			case isolation.ProtocolICMPv6:
				v6 = true
			}
			a := randomAddr(rng, v6)
			bits := a.BitLen() - rng.IntN(4)
			r.Remote = append(r.Remote, netip.PrefixFrom(a, bits).Masked())
		}
		if r.Protocol.HasPorts() {
			r.LocalPorts, r.RemotePorts = randomPorts(rng), randomPorts(rng)
		}
		if r.Protocol.IsICMP() {
			for range rng.IntN(3) {
				r.ICMPTypes = append(r.ICMPTypes, uint8(rng.IntN(6)))
			}
		}
		p.Rules = append(p.Rules, r)
	}
	if rng.IntN(2) == 0 {
		p.Management = append(p.Management, isolation.Endpoint{Protocol: isolation.ProtocolTCP,
			Addrs: []netip.Addr{randomAddr(rng, false), randomAddr(rng, true)}, Port: uint16(1 + rng.IntN(20))})
	}
	return p
}

func randomFlow(rng *rand.Rand) isolation.Flow {
	f := isolation.Flow{Initiator: isolation.Direction(1 + rng.IntN(2)), Protocol: isolation.Protocol(1 + rng.IntN(4))}
	v6 := rng.IntN(2) == 0
	switch f.Protocol {
	case isolation.ProtocolICMP:
		v6 = false
	case isolation.ProtocolICMPv6:
		v6 = true
	}
	f.Remote = randomAddr(rng, v6)
	if f.Protocol.HasPorts() {
		f.LocalPort, f.RemotePort = uint16(1+rng.IntN(24)), uint16(1+rng.IntN(24))
	} else {
		f.ICMPType = uint8(rng.IntN(7))
	}
	return f
}

func FuzzLayoutRoundTrip(f *testing.F) {
	for _, s := range []string{
		"out tcp remote=192.0.2.0/24,2001:db8::/32 rport=443 name=proxy",
		"both icmpv6 icmp=130,131,132,133,134,135,136,143",
		"in udp lport=53",
		"both any remote=198.18.0.0/15",
		"out udp remote=0.0.0.0/0 lport=68 rport=67",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		r, err := isolation.ParseRule(text)
		if err != nil || r.Application != "" {
			return
		}
		p := isolation.Plan{Rules: []isolation.Rule{r}}
		if p.Validate() != nil {
			return
		}
		got, err := layoutPlan(planLayout(p))
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		// The read-back rule is the canonical form of the rule: encoding it
		// again gives the same nftables rules.
		if !planLayout(got).equal(planLayout(p)) {
			t.Fatalf("%q: read back %s encodes differently", text, got)
		}
	})
}

// inSpans reports whether v is in one of ss; nil is any value.
func inSpans(ss []span, v []byte) bool {
	if ss == nil {
		return true
	}
	for _, s := range ss {
		if bytes.Compare(s.lo, v) <= 0 && bytes.Compare(v, s.hi) <= 0 {
			return true
		}
	}
	return false
}

// simulate decides flow f as the table of layout l would: the initiating
// packet must match an initiating part in its chain, and the replies a
// reply part in the other (the set elements as the parts they stand for).
func simulate(l layout, f isolation.Flow) bool {
	fam := uint8(4)
	if f.Remote.Is6() {
		fam = 6
	}
	ini := chainOutput
	if f.Initiator == isolation.DirectionIn {
		ini = chainInput
	}
	port := func(p uint16) []byte { return []byte{byte(p >> 8), byte(p)} }
	match := func(a atom, chain chainID, reply bool) bool {
		if a.chain != chain || a.reply != reply || a.family != fam || a.proto != isolation.ProtocolAny && a.proto != f.Protocol {
			return false
		}
		if !inSpans(a.remote, f.Remote.AsSlice()) {
			return false
		}
		if f.Protocol.HasPorts() && (!inSpans(a.rports, port(f.RemotePort)) || !inSpans(a.lports, port(f.LocalPort))) {
			return false
		}
		return reply || !f.Protocol.IsICMP() || inSpans(a.types, []byte{f.ICMPType})
	}
	var in, back bool
	for _, a := range effective(l) {
		in = in || match(a, ini, false)
		back = back || match(a, otherChain(ini), true)
	}
	return in && back
}

// TestLayoutSetSemantics checks, on random plans and flows, that the
// table content (rules of their own and set elements) allows exactly the
// flows the plan allows.
func TestLayoutSetSemantics(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	for i := range 300 {
		p := randomPlan(rng)
		l := planLayout(p)
		for _, s := range l.sets {
			for j, a := range s.elems {
				for _, b := range s.elems[j+1:] {
					if a.overlaps(b) {
						t.Fatalf("plan %d: set %s: %s overlaps %s", i, s.name, a, b)
					}
				}
			}
		}
		for range 200 {
			f := randomFlow(rng)
			if got, want := simulate(l, f), p.Allows(f); got != want {
				t.Fatalf("plan %d, flow %+v: table allows=%v, plan allows=%v\nplan\n%s", i, f, got, want, p)
			}
		}
	}
}
