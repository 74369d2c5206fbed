package nftables

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/cordonsec/cordon/isolation"
)

// family holds the addresses of one IP family in the test topology:
//
//	peer (P) ──veth── host (H) ──veth── mgmt (M)
//
// The enforcer runs in H only.
type family struct {
	name                      string
	hostPeer, peer, peerOther string // H's address towards P; P's two addresses
	hostMgmt, mgmt            string // H's address towards M; M's address
	hostPeerCIDR, peerCIDR    []string
	hostMgmtCIDR, mgmtCIDR    []string
	exclusion                 netip.Prefix // the custom rule's remote: P's first address only
}

var families = []family{
	{
		name:     "IPv4",
		hostPeer: "192.0.2.1", peer: "192.0.2.2", peerOther: "192.0.2.3",
		hostMgmt: "198.18.0.1", mgmt: "198.18.0.2",
		hostPeerCIDR: []string{"192.0.2.1/24"}, peerCIDR: []string{"192.0.2.2/24", "192.0.2.3/24"},
		hostMgmtCIDR: []string{"198.18.0.1/24"}, mgmtCIDR: []string{"198.18.0.2/24"},
		exclusion: netip.MustParsePrefix("192.0.2.2/32"),
	},
	{
		name:     "IPv6",
		hostPeer: "2001:db8:1::1", peer: "2001:db8:1::2", peerOther: "2001:db8:1::3",
		hostMgmt: "2001:db8:2::1", mgmt: "2001:db8:2::2",
		hostPeerCIDR: []string{"2001:db8:1::1/64"}, peerCIDR: []string{"2001:db8:1::2/64", "2001:db8:1::3/64"},
		hostMgmtCIDR: []string{"2001:db8:2::1/64"}, mgmtCIDR: []string{"2001:db8:2::2/64"},
		exclusion: netip.MustParsePrefix("2001:db8:1::2/128"),
	},
}

func hp(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }

// isolationPlan is what the Manager would hand the enforcer: the
// management endpoint, ND, the DNS-client profile and one custom
// exclusion (outbound TCP to P's first address, port 8443).
func isolationPlan(f family) isolation.Plan {
	dns, _ := isolation.ProfileDNSClient.Rules()
	rules := append([]isolation.Rule{
		isolation.NeighborDiscoveryRule(),
		{Name: "custom", Direction: isolation.DirectionOut, Protocol: isolation.ProtocolTCP,
			Remote: []netip.Prefix{f.exclusion}, RemotePorts: []isolation.PortRange{isolation.Port(8443)}},
	}, dns...)
	return isolation.Plan{
		Management: []isolation.Endpoint{{Name: "bus", Protocol: isolation.ProtocolTCP,
			Addrs: []netip.Addr{netip.MustParseAddr(f.mgmt)}, Port: 4222}},
		Rules: rules,
	}
}

func TestIsolation(t *testing.T) {
	needRoot(t)
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			testIsolation(t, f)
		})
	}
}

func testIsolation(t *testing.T, f family) {
	h, p, m := newNS(t, "h"), newNS(t, "p"), newNS(t, "m")
	link(t, h, f.hostPeerCIDR, p, f.peerCIDR)
	link(t, h, f.hostMgmtCIDR, m, f.mgmtCIDR)

	// Servers.
	listenTCP(t, p, hp(f.peer, 7000))
	listenTCP(t, p, hp(f.peer, 8443))
	listenTCP(t, p, hp(f.peerOther, 8443))
	listenTCP(t, p, hp(f.peer, 8444))
	udpEcho(t, p, hp(f.peer, 7001))
	udpEcho(t, p, hp(f.peer, 8443))
	dnsResponder(t, p, hp(f.peer, 53))
	hostSrv := listenTCP(t, h, hp(f.hostPeer, 7100))
	listenTCP(t, h, hp(f.hostPeer, 8443))
	udpEcho(t, h, hp(f.hostPeer, 7101))
	listenTCP(t, m, hp(f.mgmt, 4222))
	udp := []byte("\x12\x34cordon-udp-probe")
	dnsQuery := []byte("\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01")

	// Before isolation: everything flows both ways.
	must := func(ok bool, what string) {
		t.Helper()
		if !ok {
			t.Fatalf("%s: want it to pass", what)
		}
	}
	mustNot := func(ok bool, what string) {
		t.Helper()
		if ok {
			t.Errorf("%s: passed, want it blocked", what)
		}
	}
	must(tcpWorks(h, "", hp(f.peer, 7000), passWait), "before: host -> peer tcp")
	must(udpWorks(h, "", hp(f.peer, 7001), passWait, udp), "before: host -> peer udp")
	must(udpRefused(h, hp(f.peer, 7009), passWait), "before: icmp port unreachable")
	must(tcpWorks(p, "", hp(f.hostPeer, 7100), passWait), "before: peer -> host tcp")
	must(udpWorks(p, "", hp(f.hostPeer, 7101), passWait, udp), "before: peer -> host udp")
	must(pingWorks(h, netip.MustParseAddr(f.peer), passWait), "before: host -> peer ping")

	// Connections open when isolation comes.
	out, err := dialTCP(h, "", hp(f.peer, 7000), passWait)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	must(roundTrip(out, passWait) == nil, "before: open connection host -> peer")
	drain(hostSrv)
	inPeer, err := dialTCP(p, "", hp(f.hostPeer, 7100), passWait)
	if err != nil {
		t.Fatal(err)
	}
	defer inPeer.Close()
	must(roundTrip(inPeer, passWait) == nil, "before: open connection peer -> host")
	var in net.Conn
	select {
	case in = <-hostSrv.conns:
	case <-time.After(passWait):
		t.Fatal("host did not accept the peer's connection")
	}
	mgmt, err := dialTCP(h, "", hp(f.mgmt, 4222), passWait)
	if err != nil {
		t.Fatal(err)
	}
	defer mgmt.Close()
	must(roundTrip(mgmt, passWait) == nil, "before: management connection")

	// Isolate.
	e := enforcerIn(t, h)
	plan := isolationPlan(f)
	// Both open connections end within one second of the call to Apply.
	deadline := time.Now().Add(time.Second)
	if err := e.Apply(ctxTimeout(t, 10*time.Second), plan); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if err := endedBy(out, deadline); err != nil {
		t.Errorf("connection host -> peer: %v", err)
	}
	if err := endedBy(in, deadline); err != nil {
		t.Errorf("connection peer -> host (host side): %v", err)
	}

	// While isolated: nothing new to or from the peer...
	mustNot(tcpWorks(h, "", hp(f.peer, 7000), blockWait), "isolated: host -> peer tcp")
	mustNot(udpWorks(h, "", hp(f.peer, 7001), blockWait, udp), "isolated: host -> peer udp")
	mustNot(pingWorks(h, netip.MustParseAddr(f.peer), blockWait), "isolated: host -> peer ping")
	mustNot(tcpWorks(p, "", hp(f.hostPeer, 7100), blockWait), "isolated: peer -> host tcp")
	mustNot(udpWorks(p, "", hp(f.hostPeer, 7101), blockWait, udp), "isolated: peer -> host udp")
	mustNot(pingWorks(p, netip.MustParseAddr(f.hostPeer), blockWait), "isolated: peer -> host ping")
	// ...not even from the DNS port to a host port (the DNS-client rule
	// allows replies only)...
	mustNot(udpWorks(p, hp(f.peer, 53), hp(f.hostPeer, 7101), blockWait, udp), "isolated: peer:53 -> host udp")
	mustNot(tcpWorks(p, hp(f.peer, 53), hp(f.hostPeer, 7100), blockWait), "isolated: peer:53 -> host tcp")
	// ...but the management channel, old and new connections (with an
	// empty neighbour cache, so that IPv6 needs neighbour discovery
	// through the isolation),
	ipCmd(t, "-n", h.name, "neigh", "flush", "all")
	must(roundTrip(mgmt, passWait) == nil, "isolated: management connection opened before")
	must(tcpWorks(h, "", hp(f.mgmt, 4222), passWait), "isolated: new management connection")
	// DNS by the DNS-client profile,
	must(udpWorks(h, "", hp(f.peer, 53), passWait, dnsQuery), "isolated: dns query to the peer")
	// ICMP errors about an allowed flow come through (port unreachable
	// from a resolver address with nothing on port 53), as path MTU
	// discovery needs; unrelated ICMP does not (the pings above).
	must(udpRefused(h, hp(f.peerOther, 53), passWait), "isolated: icmp port unreachable for an allowed dns query")
	// and the custom exclusion, exactly.
	must(tcpWorks(h, "", hp(f.peer, 8443), passWait), "isolated: custom exclusion host -> peer:8443")
	mustNot(tcpWorks(h, "", hp(f.peerOther, 8443), blockWait), "isolated: other peer address:8443")
	mustNot(tcpWorks(h, "", hp(f.peer, 8444), blockWait), "isolated: peer:8444")
	mustNot(udpWorks(h, "", hp(f.peer, 8443), blockWait, udp), "isolated: udp to peer:8443")
	mustNot(tcpWorks(p, "", hp(f.hostPeer, 8443), blockWait), "isolated: peer -> host:8443")
	mustNot(tcpWorks(p, hp(f.peer, 8443), hp(f.hostPeer, 7100), blockWait), "isolated: peer:8443 -> host")

	// Applying the same plan again changes nothing: the rules keep their
	// handles.
	before := ruleHandles(t, e)
	if err := e.Apply(context.Background(), plan); err != nil {
		t.Fatalf("second Apply: %v", err)
	}
	if after := ruleHandles(t, e); !slices.Equal(before, after) {
		t.Errorf("second Apply of the same plan rewrote the rules: handles %v, then %v", before, after)
	}

	// A restarted agent sees the isolation and keeps it.
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e2 := enforcerIn(t, h)
	o, err := e2.Observe(context.Background())
	if err != nil {
		t.Fatalf("Observe after restart: %v", err)
	}
	if !o.Active || !o.Plan.Equivalent(plan) {
		t.Fatalf("after restart: active=%v plan\n%s\nwant\n%s", o.Active, o.Plan, plan)
	}
	mustNot(tcpWorks(h, "", hp(f.peer, 7000), blockWait), "after restart: host -> peer tcp")
	if err := e2.Apply(context.Background(), plan); err != nil {
		t.Fatalf("Apply after restart: %v", err)
	}
	if after := ruleHandles(t, e2); !slices.Equal(before, after) {
		t.Errorf("Apply after restart rewrote the rules")
	}

	// Clear restores everything.
	if err := e2.Clear(context.Background()); err != nil {
		t.Fatal(err)
	}
	must(tcpWorks(h, "", hp(f.peer, 7000), passWait), "cleared: host -> peer tcp")
	must(udpWorks(h, "", hp(f.peer, 7001), passWait, udp), "cleared: host -> peer udp")
	must(tcpWorks(p, "", hp(f.hostPeer, 7100), passWait), "cleared: peer -> host tcp")
	must(udpWorks(p, "", hp(f.hostPeer, 7101), passWait, udp), "cleared: peer -> host udp")
	must(pingWorks(h, netip.MustParseAddr(f.peer), passWait), "cleared: host -> peer ping")
	must(pingWorks(p, netip.MustParseAddr(f.hostPeer), passWait), "cleared: peer -> host ping")
}

func drain(s *tcpServer) {
	for {
		select {
		case <-s.conns:
		default:
			return
		}
	}
}

// ruleHandles lists the handles of the table's rules, chain by chain.
func ruleHandles(t *testing.T, e *Enforcer) []uint64 {
	t.Helper()
	var hs []uint64
	for _, id := range []chainID{chainInput, chainOutput} {
		rs, err := e.conn.GetRules(table, baseChain(id))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			hs = append(hs, r.Handle)
		}
	}
	return hs
}
