package pf

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestParseRuleLineCanonical(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"pass out quick inet proto tcp from any to 198.18.0.10 port = 4222 flags S/SA keep state",
			[]string{"pass out quick inet proto tcp from any to 198.18.0.10/32 port = 4222 keep state"}},
		{"pass out quick inet proto tcp from any to 198.18.0.10 port 4222 keep state",
			[]string{"pass out quick inet proto tcp from any to 198.18.0.10/32 port = 4222 keep state"}},
		{"pass out quick inet proto tcp from any to 198.18.0.10/32 port 4222:4222",
			[]string{"pass out quick inet proto tcp from any to 198.18.0.10/32 port = 4222 keep state"}},
		{"block drop quick inet all", []string{"block drop quick inet from any to any"}},
		{"pass quick on lo0 all no state", []string{"pass quick on lo0 from any to any no state"}},
		{"pass in quick inet6 proto ipv6-icmp all icmp6-type neighbrsol keep state",
			[]string{"pass in quick inet6 proto ipv6-icmp from any to any icmp6-type 135 keep state"}},
		{"pass out quick inet proto icmp from any to 198.18.3.0/24 icmp-type echoreq keep state",
			[]string{"pass out quick inet proto icmp from any to 198.18.3.0/24 icmp-type 8 keep state"}},
		{"pass out quick proto udp from any port 1024:65535 to { 192.0.2.1, 2001:db8::1 } port { 53 123 }",
			[]string{
				"pass out quick inet proto udp from any port 1024 : 65535 to 192.0.2.1/32 port = 53 keep state",
				"pass out quick inet proto udp from any port 1024 : 65535 to 192.0.2.1/32 port = 123 keep state",
				"pass out quick inet6 proto udp from any port 1024 : 65535 to 2001:db8::1/128 port = 53 keep state",
				"pass out quick inet6 proto udp from any port 1024 : 65535 to 2001:db8::1/128 port = 123 keep state",
			}},
		{"pass in quick inet proto tcp from 198.18.0.0/15 port > 1023 to any port 20 >< 23 flags FS/SA keep state",
			[]string{"pass in quick inet proto tcp from 198.18.0.0/15 port > 1023 to any port 20 >< 23 flags FS/SA keep state"}},
		{"pass in quick inet from 198.18.0.0/15 to any flags S/SA keep state",
			[]string{"pass in quick inet from 198.18.0.0/15 to any keep state"}},
		{"pass in quick inet proto tcp from 198.18.0.0/15 to any flags any",
			[]string{"pass in quick inet proto tcp from 198.18.0.0/15 to any keep state"}},
		{"pass in quick proto { tcp, udp } from any to any port 53",
			[]string{"pass in quick proto tcp from any to any port = 53 keep state", "pass in quick proto udp from any to any port = 53 keep state"}},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			rs, err := parseRuleLine(c.in, 1)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range rs {
				got = append(got, r.canonical())
			}
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
			// The canonical form reads back as itself.
			for _, g := range got {
				again, err := parseRuleLine(g, 1)
				if err != nil || len(again) != 1 || again[0].canonical() != g {
					t.Fatalf("canonical %q does not read back: %v", g, err)
				}
			}
		})
	}
}

func TestParseRuleLineErrors(t *testing.T) {
	cases := []struct {
		in     string
		column int
		token  string
	}{
		{"allow out all", 1, "allow"},
		{"pass out quick proto gre all", 22, "gre"},
		{"pass out quick inet proto tcp from any to 2001:db8::1", 0, "2001:db8::1/128"},
		{"pass in from any to any port 99999", 30, "99999"},
		{"pass in proto tcp from any to any port 10:5", 40, "10:5"},
		{`pass out all label "x"`, 14, "label"},
		{"pass out proto tcp from { 192.0.2.1", 0, ""},
		{"pass out proto tcp from {} to any", 26, "}"},
		{"pass out from any to any port 53", 0, "port"},
		{"pass out proto udp all icmp-type 8", 0, "icmp-type"},
		{"block return all", 7, "return"},
		{"pass out from 192.0.2.1%eth0 to any", 15, "192.0.2.1%eth0"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			_, err := parseRuleLine(c.in, 7)
			var se *SyntaxError
			if !errors.As(err, &se) || !errors.Is(err, ErrSyntax) {
				t.Fatalf("err = %v, want a *SyntaxError", err)
			}
			if se.Line != 7 || se.Column != c.column || se.Token != c.token {
				t.Fatalf("error at line %d column %d token %q, want line 7 column %d token %q (%v)", se.Line, se.Column, se.Token, c.column, c.token, err)
			}
		})
	}
}

func TestParseRulesSkipsCommentsAndNamesLine(t *testing.T) {
	_, err := parseRules("# comment\n\npass quick on lo0 all no state\npass out bogus\n")
	var se *SyntaxError
	if !errors.As(err, &se) || se.Line != 4 {
		t.Fatalf("err = %v, want a syntax error at line 4", err)
	}
}

func TestParseRulesBoundsExpansion(t *testing.T) {
	var b strings.Builder
	b.WriteString("pass out proto tcp from any port { ")
	for i := 1; i <= 300; i++ {
		b.WriteString("1 ")
	}
	b.WriteString("} to any port { ")
	for i := 1; i <= 300; i++ {
		b.WriteString("2 ")
	}
	b.WriteString("}")
	if _, err := parseRules(b.String()); !errors.Is(err, ErrSyntax) {
		t.Fatalf("90000-rule expansion: err = %v, want ErrSyntax", err)
	}
}

func TestParseStates(t *testing.T) {
	text := `ALL tcp 192.0.2.10:40001 -> 198.18.9.9:443       ESTABLISHED:ESTABLISHED
   age 00:00:03, expires in 23:59:57, 4:3 pkts, 300:200 bytes
ALL tcp 192.0.2.10:22 <- 198.18.2.6:40002       ESTABLISHED:ESTABLISHED
ALL tcp 2001:db8::a[40004] -> 2001:db8:9::9[443]       ESTABLISHED:ESTABLISHED
ALL tcp 10.0.0.2:5555 (192.0.2.10:1234) -> 198.18.1.1:80       SYN_SENT:CLOSED
ALL esp 192.0.2.10 -> 198.18.1.2       NO_TRAFFIC:SINGLE
No ALTQ support in kernel
`
	st, err := parseStates(text)
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.MustParseAddrPort
	want := []pfState{
		{proto: "tcp", local: ap("192.0.2.10:40001"), remote: ap("198.18.9.9:443"), out: true},
		{proto: "tcp", local: ap("192.0.2.10:22"), remote: ap("198.18.2.6:40002"), out: false},
		{proto: "tcp", local: ap("[2001:db8::a]:40004"), remote: ap("[2001:db8:9::9]:443"), out: true},
		{proto: "tcp", local: ap("10.0.0.2:5555"), remote: ap("198.18.1.1:80"), out: true},
		{proto: "esp", local: ap("192.0.2.10:0"), remote: ap("198.18.1.2:0"), out: true},
	}
	if len(st) != len(want) {
		t.Fatalf("got %d states %+v", len(st), st)
	}
	for i := range want {
		if st[i] != want[i] {
			t.Errorf("state %d = %+v, want %+v", i, st[i], want[i])
		}
	}
	if _, err := parseStates("ALL tcp 192.0.2.x:1 -> 198.18.9.9:443 X\n"); !errors.Is(err, ErrSyntax) {
		t.Fatalf("bad address: %v", err)
	}
	if _, ok := (pfState{proto: "esp"}).flow(); ok {
		t.Fatal("esp state has a plan flow")
	}
}

func FuzzParseRules(f *testing.F) {
	for _, s := range []string{
		"pass out quick inet proto tcp from any to 198.18.0.10 port = 4222 flags S/SA keep state",
		"block drop quick inet6 all",
		"pass quick on lo0 all no state",
		"pass in quick inet6 proto ipv6-icmp all icmp6-type { neighbrsol, 136 } keep state",
		"pass out proto { tcp udp } from any port 1:2 to { 192.0.2.0/24, 2001:db8::/32 } port { 1 <> 9, >= 7 }",
		`pass out all label "x`,
		"pass out from { , } to any",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rs, err := parseRules(s)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error is not a *SyntaxError: %v", err)
			}
			return
		}
		for _, r := range rs {
			c := r.canonical()
			again, err := parseRuleLine(c, 1)
			if err != nil || len(again) != 1 || again[0].canonical() != c {
				t.Fatalf("canonical %q of %q does not read back: %v", c, s, err)
			}
		}
	})
}

func FuzzParseStates(f *testing.F) {
	f.Add("ALL tcp 192.0.2.10:40001 -> 198.18.9.9:443       ESTABLISHED:ESTABLISHED\n")
	f.Add("ALL tcp 2001:db8::a[40004] <- 2001:db8:9::9[443] X\n   age 1\n")
	f.Add("ALL udp 1.2.3.4:5 (6.7.8.9:10) -> [::1]:5 x")
	f.Fuzz(func(t *testing.T, s string) {
		st, err := parseStates(s)
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("error does not wrap ErrSyntax: %v", err)
			}
			return
		}
		for _, x := range st {
			if !x.local.Addr().IsValid() || !x.remote.Addr().IsValid() {
				t.Fatalf("state with invalid address from %q: %+v", s, x)
			}
		}
	})
}
