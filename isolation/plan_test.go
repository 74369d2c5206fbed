package isolation

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestParseRuleRoundTrip(t *testing.T) {
	cases := []struct{ in, want string }{
		{"out tcp rport=443", "out tcp rport=443"},
		{"  in   udp lport=53 ", "in udp lport=53"},
		{"both any", "both any"},
		{"out tcp remote=2001:db8::/32,192.0.2.0/24,192.0.2.7 rport=8080-8090,443 name=proxy",
			"out tcp remote=192.0.2.0/24,192.0.2.7,2001:db8::/32 rport=443,8080-8090 name=proxy"},
		{"out tcp remote=192.0.2.9/24", "out tcp remote=192.0.2.0/24"},
		{"both icmpv6 icmp=136,135,135", "both icmpv6 icmp=135,136"},
		{`out tcp app="C:\\Program Files\\x.exe"`, `out tcp app="C:\\Program Files\\x.exe"`},
		{"out tcp app=/usr/bin/curl rport=443", "out tcp rport=443 app=/usr/bin/curl"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			r, err := ParseRule(c.in)
			if err != nil {
				t.Fatalf("ParseRule: %v", err)
			}
			if got := r.String(); got != c.want {
				t.Fatalf("String() = %q, want %q", got, c.want)
			}
			r2, err := ParseRule(r.String())
			if err != nil || !r2.Equal(r) {
				t.Fatalf("round trip: %v, %v", r2, err)
			}
		})
	}
}

func TestParseRuleErrors(t *testing.T) {
	cases := []struct {
		in, field string
		col       int
	}{
		{"", "", 1},
		{"out", "", 1},
		{"sideways tcp", "direction", 1},
		{"out sctp", "protocol", 5},
		{"out tcp rport=0", "rport", 9},
		{"out tcp rport=90-80", "rport", 9},
		{"out tcp rport=65536", "rport", 9},
		{"out icmp rport=53", "rport", 10},
		{"out tcp icmp=8", "icmp", 9},
		{"out icmp remote=2001:db8::1", "remote", 10},
		{"out icmpv6 remote=192.0.2.1", "remote", 12},
		{"out tcp remote=192.0.2.300", "remote", 9},
		{"out tcp remote=", "remote", 9},
		{"out tcp app=relative/path", "app", 9},
		{"out tcp name=bad!name", "name", 9},
		{"out tcp rport=1 rport=2", "rport", 17},
		{"out tcp colour=red", "colour", 9},
		{"out tcp stray", "", 9},
		{`out tcp app="unterminated`, "app", 13},
		{"out tcp\nin udp", "", 8},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			_, err := ParseRule(c.in)
			var re *RuleError
			if !errors.As(err, &re) || !errors.Is(err, ErrInvalidRule) {
				t.Fatalf("ParseRule(%q) = %v, want *RuleError wrapping ErrInvalidRule", c.in, err)
			}
			if re.Field != c.field || re.Column != c.col {
				t.Fatalf("ParseRule(%q): field %q column %d, want %q %d (%v)", c.in, re.Field, re.Column, c.field, c.col, err)
			}
		})
	}
}

func TestPlanTextRoundTrip(t *testing.T) {
	p := Plan{
		Management: []Endpoint{{Name: "bus one:4222", Protocol: ProtocolTCP, Port: 4222,
			Addrs: []netip.Addr{netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("192.0.2.1")}}},
		Rules: []Rule{NeighborDiscoveryRule(), {Name: "x", Direction: DirectionOut, Protocol: ProtocolUDP}},
	}
	want := "cordon-plan v1\nloopback allow\n" +
		"mgmt tcp addr=192.0.2.1,2001:db8::1 port=4222 name=\"bus one:4222\"\n" +
		"rule both icmpv6 icmp=130,131,132,133,134,135,136,143 name=icmpv6-nd\n" +
		"rule out udp name=x\n"
	if got := p.String(); got != want {
		t.Fatalf("String:\n%s\nwant\n%s", got, want)
	}
	q, err := ParsePlan(p.String())
	if err != nil {
		t.Fatal(err)
	}
	if !q.Equal(p) {
		t.Fatalf("round trip:\n%s", q)
	}
	_, err = ParsePlan("cordon-plan v1\nrule out tcp\nrule out tcp rport=0\n")
	var re *RuleError
	if !errors.As(err, &re) || re.Line != 3 || re.Column != 14 {
		t.Fatalf("ParsePlan error = %#v", err)
	}
	if _, err := ParsePlan("rule out tcp\n"); !errors.Is(err, ErrInvalidPlan) {
		t.Fatalf("missing header: %v", err)
	}
	if !strings.Contains(err.Error(), "line 3, column 14, field rport") {
		t.Fatalf("message %q does not say where", err)
	}
}

func TestPlanEquivalent(t *testing.T) {
	ep := Endpoint{Name: "bus", Protocol: ProtocolTCP, Port: 4222, Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.1")}}
	dns := Rule{Name: "dns", Direction: DirectionOut, Protocol: ProtocolUDP, RemotePorts: []PortRange{Port(53)}}
	p := Plan{Management: []Endpoint{ep}, Rules: []Rule{dns}}
	// Read back without names, the endpoint as a plain rule.
	flat := Plan{Rules: []Rule{{Direction: DirectionOut, Protocol: ProtocolUDP, RemotePorts: []PortRange{Port(53)}}, ep.Rule()}}
	if !p.Equivalent(flat) || !flat.Equivalent(p) {
		t.Fatalf("not equivalent:\n%s\n%s", p, flat)
	}
	if p.Equal(flat) {
		t.Fatal("Equal ignores the difference")
	}
	other := flat
	other.Rules = []Rule{ep.Rule()}
	if p.Equivalent(other) {
		t.Fatal("a missing rule is equivalent")
	}
	wider := Plan{Management: []Endpoint{ep}, Rules: []Rule{{Direction: DirectionBoth, Protocol: ProtocolUDP, RemotePorts: []PortRange{Port(53)}}}}
	if p.Equivalent(wider) {
		t.Fatal("a wider rule is equivalent")
	}
}
