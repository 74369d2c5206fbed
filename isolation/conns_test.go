package isolation_test

import (
	"net/netip"
	"testing"

	"github.com/cordonsec/cordon/isolation"
)

func TestListenersTCPFlow(t *testing.T) {
	ap := netip.MustParseAddrPort
	var l isolation.Listeners
	l.Add(ap("192.0.2.1:22"))          // one address
	l.Add(ap("0.0.0.0:80"))            // IPv4 wildcard
	l.Add(ap("[::]:443"))              // dual-stack wildcard
	l.Add(ap("[::ffff:192.0.2.1]:25")) // mapped, as a dual-stack socket reports it
	l.Add(ap("[2001:db8::1]:8080"))
	if l.Len() != 5 {
		t.Fatalf("Len = %d", l.Len())
	}
	cases := []struct {
		name          string
		local, remote string
		in            bool
	}{
		{"listener on the address", "192.0.2.1:22", "198.18.0.5:50000", true},
		{"same port, other address", "192.0.2.2:22", "198.18.0.5:50000", false},
		{"IPv4 wildcard", "192.0.2.2:80", "198.18.0.5:50000", true},
		{"dual-stack wildcard, IPv4 connection", "192.0.2.1:443", "198.18.0.5:50000", true},
		{"dual-stack wildcard, mapped connection", "[::ffff:192.0.2.1]:443", "[::ffff:198.18.0.5]:50000", true},
		{"dual-stack wildcard, IPv6 connection", "[2001:db8::1]:443", "[2001:db8::2]:50000", true},
		{"mapped listener, IPv4 connection", "192.0.2.1:25", "198.18.0.5:50000", true},
		{"IPv6 listener", "[2001:db8::1]:8080", "[2001:db8::2]:50000", true},
		{"outbound from an ephemeral port", "192.0.2.1:50000", "198.18.0.5:443", false},
		{"outbound IPv6", "[2001:db8::1]:50001", "[2001:db8::2]:22", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			local, remote := ap(c.local), ap(c.remote)
			f := l.TCPFlow(local, remote, "/usr/bin/x")
			want := isolation.Flow{Initiator: isolation.DirectionOut, Protocol: isolation.ProtocolTCP,
				Remote: remote.Addr().Unmap(), LocalPort: local.Port(), RemotePort: remote.Port(), Application: "/usr/bin/x"}
			if c.in {
				want.Initiator = isolation.DirectionIn
			}
			if f != want {
				t.Fatalf("TCPFlow = %+v, want %+v", f, want)
			}
		})
	}
	var empty isolation.Listeners
	if f := empty.TCPFlow(ap("192.0.2.1:22"), ap("198.18.0.5:1"), ""); f.Initiator != isolation.DirectionOut {
		t.Fatalf("zero Listeners: %+v", f)
	}
}
