package isolation_test

import (
	"net/netip"
	"testing"

	"github.com/cordonsec/cordon/isolation"
	"github.com/cordonsec/cordon/isolation/isolationtest"
)

func BenchmarkParseRule(b *testing.B) {
	const s = "out tcp remote=192.0.2.0/24,2001:db8::/32,198.18.0.0/15 lport=1024-65535 rport=443,8443 app=/usr/bin/curl name=proxy"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := isolation.ParseRule(s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPlanString(b *testing.B) {
	p := isolationtest.PlanA()
	b.ReportAllocs()
	for b.Loop() {
		_ = p.String()
	}
}

func BenchmarkPlanAllows(b *testing.B) {
	p := isolationtest.PlanA().Normalize()
	f := isolation.Flow{Initiator: isolation.DirectionOut, Protocol: isolation.ProtocolTCP,
		Remote: netip.MustParseAddr("198.18.9.9"), RemotePort: 443, LocalPort: 40000}
	b.ReportAllocs()
	for b.Loop() {
		if p.Allows(f) {
			b.Fatal("allowed")
		}
	}
}

func BenchmarkVerifyPasswordDefault(b *testing.B) {
	h, err := isolation.HashPassword("pw", isolation.Argon2Params{})
	if err != nil {
		b.Fatal(err)
	}
	ph, _ := isolation.ParsePasswordHash(h)
	for b.Loop() {
		if !ph.Verify("pw") {
			b.Fatal("mismatch")
		}
	}
}
