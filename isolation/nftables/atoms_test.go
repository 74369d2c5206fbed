package nftables

import (
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

func TestLayoutShape(t *testing.T) {
	// One outbound TCP rule for both families: per family an initiating
	// rule in output and a reply rule in input.
	l := planLayout(isolation.Plan{Rules: []isolation.Rule{mustRule(t, "out tcp rport=443 name=web")}})
	if len(l.input) != 2 || len(l.output) != 2 {
		t.Fatalf("got %d input and %d output rules, want 2 and 2", len(l.input), len(l.output))
	}
	for _, a := range l.output {
		if a.reply || a.rports == nil || a.remote != nil {
			t.Errorf("output rule %s: want an initiating rule on rport 443, any remote", a)
		}
	}
	for _, a := range l.input {
		if !a.reply || a.rports == nil {
			t.Errorf("input rule %s: want a reply rule (ct state established) on rport 443", a)
		}
	}
	// ICMP rules exist for IPv4 only, ICMPv6 for IPv6 only.
	l = planLayout(isolation.Plan{Rules: []isolation.Rule{mustRule(t, "in icmp icmp=8"), mustRule(t, "in icmpv6 icmp=128")}})
	for _, a := range slices.Concat(l.input, l.output) {
		if (a.proto == isolation.ProtocolICMP) != (a.family == 4) {
			t.Errorf("rule %s in the wrong family", a)
		}
		if a.reply && a.types != nil {
			t.Errorf("reply rule %s carries icmp types", a)
		}
	}
	// A rule naming only IPv6 remotes has no IPv4 rules.
	l = planLayout(isolation.Plan{Rules: []isolation.Rule{mustRule(t, "out udp remote=2001:db8::/32")}})
	for _, a := range slices.Concat(l.input, l.output) {
		if a.family != 6 {
			t.Errorf("rule %s: want IPv6 only", a)
		}
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
	base := planLayout(isolation.Plan{Rules: []isolation.Rule{mustRule(t, "out tcp remote=198.18.0.0/24 rport=443 name=web")}})
	clone := func() layout {
		return layout{input: slices.Clone(base.input), output: slices.Clone(base.output)}
	}
	cases := []struct {
		name   string
		change func(l *layout)
	}{
		{"reply rule missing", func(l *layout) { l.input = nil }},
		{"initiating rule missing", func(l *layout) { l.output = nil }},
		{"foreign comment", func(l *layout) { l.input[0].tag = "accept all" }},
		{"index not canonical", func(l *layout) { l.input[0].tag = "r01 web"; l.output[0].tag = "r01 web" }},
		{"protocols disagree", func(l *layout) { l.input[0].proto = isolation.ProtocolUDP }},
		{"remote widened on one side", func(l *layout) { l.input[0].remote = nil }},
		{"ports changed on one side", func(l *layout) { l.input[0].rports = portSpans([]isolation.PortRange{isolation.Port(80)}) }},
		{"types on a tcp rule", func(l *layout) { l.output[0].types = typeSpans([]uint8{8}) }},
		{"invalid name", func(l *layout) { l.input[0].tag = "r0 bad name!"; l.output[0].tag = "r0 bad name!" }},
		{"endpoint with a prefix", func(l *layout) { l.input[0].tag = "m0"; l.output[0].tag = "m0" }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := clone()
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
