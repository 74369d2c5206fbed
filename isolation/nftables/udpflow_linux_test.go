package nftables

import (
	"net"
	"testing"
	"time"

	gnft "github.com/google/nftables"
	"github.com/google/nftables/expr"

	"github.com/cordonsec/cordon/isolation"
)

// udpSession is one UDP socket that keeps its 5-tuple across exchanges,
// so that the conntrack entry of its flow outlives a single probe.
type udpSession struct {
	pc net.PacketConn
	to *net.UDPAddr
}

func openUDPSession(tb testing.TB, ns *testNS, local, remote string) *udpSession {
	tb.Helper()
	s := &udpSession{}
	err := ns.run(func() error {
		var err error
		s.pc, err = net.ListenPacket("udp", local)
		return err
	})
	if err != nil {
		tb.Fatalf("udp %s: %v", local, err)
	}
	tb.Cleanup(func() { _ = s.pc.Close() })
	if s.to, err = net.ResolveUDPAddr("udp", remote); err != nil {
		tb.Fatal(err)
	}
	return s
}

// exchange sends payload and reports whether it comes back within wait.
func (s *udpSession) exchange(payload []byte, wait time.Duration) bool {
	if _, err := s.pc.WriteTo(payload, s.to); err != nil {
		return false
	}
	_ = s.pc.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 1500)
	for {
		n, _, err := s.pc.ReadFrom(buf)
		if err != nil {
			return false
		}
		if string(buf[:n]) == string(payload) {
			return true
		}
	}
}

// TestExistingUDPFlowsEnd checks that UDP flows tracked before isolation
// stop when the plan does not allow them, even where a reply rule ("ct
// state established") of an allowed flow matches their packets: from
// the peer's port 53 to a host port looks like a DNS answer to the
// DNS-client rule, and from the host's port 53 like a DNS-server answer.
// Only the deletion of their conntrack entries stops them.
func TestExistingUDPFlowsEnd(t *testing.T) {
	needRoot(t)
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			h, p := newNS(t, "h"), newNS(t, "p")
			link(t, h, f.hostPeerCIDR, p, f.peerCIDR)
			// Connection tracking is on in the host before isolation, as on
			// most hosts (another firewall, a container runtime): its
			// flows have conntrack entries when the plan comes.
			trackConnections(t, h)
			udpEcho(t, h, hp(f.hostPeer, 7101))
			udpEcho(t, p, hp(f.peer, 7001))
			udpEcho(t, p, hp(f.peer, 8443))

			// Opened by the peer, from its port 53, to a host port.
			fromPeer53 := openUDPSession(t, p, hp(f.peer, 53), hp(f.hostPeer, 7101))
			// Opened by the host, from its port 53, to a peer port.
			fromHost53 := openUDPSession(t, h, hp(f.hostPeer, 53), hp(f.peer, 7001))
			// Opened by the host to the peer's port 8443 (the custom
			// exclusion is TCP only).
			toPeer := openUDPSession(t, h, hp(f.hostPeer, 0), hp(f.peer, 8443))
			// An allowed flow (the DNS-client profile: outbound to port
			// 53): it must keep working.
			udpEcho(t, p, hp(f.peerOther, 53))
			toResolver := openUDPSession(t, h, hp(f.hostPeer, 0), hp(f.peerOther, 53))

			sessions := []struct {
				name    string
				s       *udpSession
				allowed bool
			}{
				{"peer:53 -> host:7101", fromPeer53, false},
				{"host:53 -> peer:7001", fromHost53, false},
				{"host -> peer:8443/udp", toPeer, false},
				{"host -> resolver:53 (dns-client profile)", toResolver, true},
			}
			for _, c := range sessions {
				if !c.s.exchange([]byte("before-"+c.name), passWait) {
					t.Fatalf("before isolation: %s: no answer", c.name)
				}
			}

			e := enforcerIn(t, h)
			plan := isolationPlan(f)
			dnsServer, err := isolation.ProfileDNSServer.Rules()
			if err != nil {
				t.Fatal(err)
			}
			plan.Rules = append(plan.Rules, dnsServer...)
			if err := e.Apply(ctxTimeout(t, 10*time.Second), plan); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			for _, c := range sessions {
				wait := blockWait
				if c.allowed {
					wait = passWait
				}
				if got := c.s.exchange([]byte("after-"+c.name), wait); got != c.allowed {
					t.Errorf("isolated: existing flow %s: passes=%v, want %v", c.name, got, c.allowed)
				}
			}
			if err := e.Clear(ctxTimeout(t, 10*time.Second)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// trackConnections turns connection tracking on in ns with a table of its
// own ("inet cordon-test-ct": input and output chains, policy accept, one
// rule testing ct state), as another firewall on the host would.
func trackConnections(tb testing.TB, ns *testNS) {
	tb.Helper()
	c, err := gnft.New(gnft.WithNetNSFd(int(ns.f.Fd())))
	if err != nil {
		tb.Fatal(err)
	}
	t := c.AddTable(&gnft.Table{Family: gnft.TableFamilyINet, Name: "cordon-test-ct"})
	accept := gnft.ChainPolicyAccept
	for name, hook := range map[string]*gnft.ChainHook{"input": gnft.ChainHookInput, "output": gnft.ChainHookOutput} {
		ch := c.AddChain(&gnft.Chain{Name: name, Table: t, Type: gnft.ChainTypeFilter,
			Hooknum: hook, Priority: gnft.ChainPriorityFilter, Policy: &accept})
		c.AddRule(&gnft.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
			&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: ctEstablished, Xor: make([]byte, 4)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
			&expr.Counter{},
		}})
	}
	if err := c.Flush(); err != nil {
		tb.Fatalf("conntrack table: %v", err)
	}
}
