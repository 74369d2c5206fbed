package nftables

import (
	"context"
	"net/netip"
	"os"
	"testing"

	"github.com/cordonsec/cordon/isolation"
)

// TestForwardedTrafficUntouched isolates a router namespace: traffic it
// forwards between two other namespaces keeps flowing, both families,
// while the router itself is cut off.
func TestForwardedTrafficUntouched(t *testing.T) {
	needRoot(t)
	a, r, b := newNS(t, "a"), newNS(t, "r"), newNS(t, "b")
	link(t, a, []string{"192.0.2.2/24", "2001:db8:1::2/64"}, r, []string{"192.0.2.1/24", "2001:db8:1::1/64"})
	link(t, r, []string{"198.18.0.1/24", "2001:db8:2::1/64"}, b, []string{"198.18.0.2/24", "2001:db8:2::2/64"})
	err := r.run(func() error {
		for _, f := range []string{"/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding"} {
			if err := os.WriteFile(f, []byte("1\n"), 0); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ipCmd(t, "-n", a.name, "route", "add", "default", "via", "192.0.2.1")
	ipCmd(t, "-n", a.name, "-6", "route", "add", "default", "via", "2001:db8:1::1")
	ipCmd(t, "-n", b.name, "route", "add", "default", "via", "198.18.0.1")
	ipCmd(t, "-n", b.name, "-6", "route", "add", "default", "via", "2001:db8:2::1")
	listenTCP(t, b, "198.18.0.2:7000")
	listenTCP(t, b, "[2001:db8:2::2]:7000")
	udpEcho(t, b, "198.18.0.2:7001")

	e := enforcerIn(t, r)
	if err := e.Apply(context.Background(), isolation.Plan{Rules: []isolation.Rule{isolation.NeighborDiscoveryRule()}}); err != nil {
		t.Fatal(err)
	}
	if !tcpWorks(a, "", "198.18.0.2:7000", passWait) || !tcpWorks(a, "", "[2001:db8:2::2]:7000", passWait) {
		t.Error("forwarded TCP blocked by the router's isolation")
	}
	if !udpWorks(a, "", "198.18.0.2:7001", passWait, []byte("\x01\x02fwd")) {
		t.Error("forwarded UDP blocked by the router's isolation")
	}
	if !pingWorks(a, netip.MustParseAddr("198.18.0.2"), passWait) || !pingWorks(a, netip.MustParseAddr("2001:db8:2::2"), passWait) {
		t.Error("forwarded ping blocked by the router's isolation")
	}
	if tcpWorks(r, "", "198.18.0.2:7000", blockWait) {
		t.Error("the isolated router itself reached b")
	}
}
