package isolation_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/cordonsec/cordon/isolation"
	"github.com/cordonsec/cordon/isolation/isolationtest"
)

func FuzzParseRule(f *testing.F) {
	for _, s := range []string{
		"out tcp rport=443",
		"in udp lport=53",
		"both any",
		"out tcp remote=192.0.2.0/24,2001:db8::/32 lport=1024-65535 rport=443,8080 name=x",
		"both icmpv6 icmp=133,134 remote=fe80::/10",
		`out tcp app="C:\\Program Files\\x.exe" rport=443`,
		"out udp remote=::ffff:192.0.2.1",
		"out tcp name=\"a b\"",
		"in tcp lport=0",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := isolation.ParseRule(s)
		if err != nil {
			var re *isolation.RuleError
			if !errors.As(err, &re) || !errors.Is(err, isolation.ErrInvalidRule) {
				t.Fatalf("error %v is not a *RuleError wrapping ErrInvalidRule", err)
			}
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("parsed rule invalid: %v", err)
		}
		text := r.String()
		r2, err := isolation.ParseRule(text)
		if err != nil {
			t.Fatalf("canonical text %q does not parse: %v", text, err)
		}
		if r2.String() != text || !r2.Equal(r) {
			t.Fatalf("round trip %q -> %q", text, r2.String())
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var r3 isolation.Rule
		if err := json.Unmarshal(b, &r3); err != nil || !r3.Equal(r) {
			t.Fatalf("JSON round trip of %q: %v", text, err)
		}
	})
}

func FuzzParsePlan(f *testing.F) {
	f.Add(isolationtest.PlanA().String())
	f.Add(isolationtest.PlanB().String())
	f.Add("cordon-plan v1\n# comment\nloopback allow\nmgmt udp addr=::1 port=1 name=\"x y\"\n")
	f.Add("cordon-plan v1\nrule out tcp rport=0\n")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := isolation.ParsePlan(s)
		if err != nil {
			var re *isolation.RuleError
			if !errors.As(err, &re) {
				t.Fatalf("error %v is not a *RuleError", err)
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("parsed plan invalid: %v", err)
		}
		text := p.String()
		p2, err := isolation.ParsePlan(text)
		if err != nil || !p2.Equal(p) || p2.String() != text {
			t.Fatalf("round trip of\n%s\nfailed: %v", text, err)
		}
	})
}

func FuzzDecodeControlRequest(f *testing.F) {
	for _, s := range []string{
		`{"op":"status"}`,
		`{"op":"exclusions"}`,
		`{"op":"release","password":"pw","reason":"fixed"}`,
		`{"op":"release"}`,
		`{"op":"status","x":1}`,
		`{"op":"status"} {"op":"status"}`,
		`[]`, `null`, `"op"`, "\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := isolation.DecodeControlRequest(b)
		if err != nil {
			if !errors.Is(err, isolation.ErrProtocol) {
				t.Fatalf("error %v does not wrap ErrProtocol", err)
			}
			return
		}
		again, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := isolation.DecodeControlRequest(again)
		if err != nil || r2 != r {
			t.Fatalf("re-decoding %s: %+v %v", again, r2, err)
		}
	})
}

func FuzzParsePasswordHash(f *testing.F) {
	f.Add("$argon2id$v=19$m=1024,t=2,p=2$c29tZXNhbHQ$kEfNQbPvk6Q7hokW6Jrvn1Mjb9kdT/I7OXVDKsviazk")
	f.Add("$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzYWx0$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc")
	f.Add("$argon2i$v=19$m=64,t=1,p=1$$")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := isolation.ParsePasswordHash(s)
		if err != nil {
			if !errors.Is(err, isolation.ErrBadHash) {
				t.Fatalf("error %v does not wrap ErrBadHash", err)
			}
			return
		}
		if h.String() != s {
			t.Fatalf("accepted %q but prints %q", s, h.String())
		}
	})
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add([]byte(`{"version":1,"state":"on","target":"on","mode":"manual","deadline":"2026-11-25T18:00:00Z","exclusions":{"profiles":[],"rules":["in tcp lport=22"]},"management":[{"name":"bus","protocol":"tcp","addrs":["192.0.2.1"],"port":4222}]}`))
	f.Add([]byte(`{"version":1,"state":"off","exclusions":{}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := isolation.DecodeRecord(b)
		if err != nil {
			if !errors.Is(err, isolation.ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		again, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("accepted record does not marshal: %v", err)
		}
		if _, err := isolation.DecodeRecord(again); err != nil {
			t.Fatalf("re-decoding %s: %v", again, err)
		}
	})
}
