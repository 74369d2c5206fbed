package nftables

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	gnft "github.com/google/nftables"
	"golang.org/x/sys/unix"

	"github.com/cordonsec/cordon/isolation"
	"github.com/cordonsec/cordon/isolation/isolationtest"
)

// probeHost is a host namespace linked to a peer namespace that holds
// every remote address the conformance suite probes; the host routes
// 198.18.0.0/15 and 2001:db8::/32 to the peer.
type probeHost struct {
	h, p         *testNS
	host4, host6 netip.Addr
}

func newProbeHost(t *testing.T) *probeHost {
	ph := &probeHost{h: newNS(t, "h"), p: newNS(t, "p"),
		host4: netip.MustParseAddr("192.0.2.1"), host6: netip.MustParseAddr("2001:db8:ff::1")}
	peerAddrs := []string{"192.0.2.2/24", "2001:db8:ff::2/64"}
	seen := map[netip.Addr]bool{}
	for _, f := range isolationtest.ProbeFlows() {
		if f.Remote.IsLoopback() || seen[f.Remote] {
			continue
		}
		seen[f.Remote] = true
		peerAddrs = append(peerAddrs, netip.PrefixFrom(f.Remote, f.Remote.BitLen()).String())
	}
	link(t, ph.h, []string{"192.0.2.1/24", "2001:db8:ff::1/64"}, ph.p, peerAddrs)
	ipCmd(t, "-n", ph.h.name, "route", "add", "198.18.0.0/15", "via", "192.0.2.2")
	ipCmd(t, "-n", ph.h.name, "-6", "route", "add", "2001:db8::/32", "via", "2001:db8:ff::2")
	// Resolve the gateway before any isolation, so that probes that must
	// pass are not slowed by a first neighbour discovery.
	for _, gw := range []string{"192.0.2.2", "2001:db8:ff::2"} {
		if !pingWorks(ph.h, netip.MustParseAddr(gw), passWait) {
			t.Fatalf("no route to the peer %s before isolation", gw)
		}
	}
	return ph
}

func (ph *probeHost) hostAddr(remote netip.Addr) netip.Addr {
	switch {
	case remote.IsLoopback():
		return remote
	case remote.Is4():
		return ph.host4
	}
	return ph.host6
}

// probe sends real traffic for flow f and reports whether it passed.
func (ph *probeHost) probe(t *testing.T, f isolation.Flow) (bool, error) {
	local := ph.hostAddr(f.Remote)
	remoteNS := ph.p
	if f.Remote.IsLoopback() {
		remoteNS = ph.h
	}
	remote := netip.AddrPortFrom(f.Remote, f.RemotePort).String()
	host := netip.AddrPortFrom(local, f.LocalPort).String()
	switch {
	case f.Protocol == isolation.ProtocolTCP && f.Initiator == isolation.DirectionOut:
		srv := listenTCP(t, remoteNS, remote)
		defer srv.ln.Close()
		return tcpWorks(ph.h, host, remote, blockWait), nil
	case f.Protocol == isolation.ProtocolTCP:
		srv := listenTCP(t, ph.h, host)
		defer srv.ln.Close()
		return tcpWorks(remoteNS, remote, host, blockWait), nil
	case f.Protocol == isolation.ProtocolUDP && f.Initiator == isolation.DirectionOut:
		defer udpEcho(t, remoteNS, remote)()
		return udpWorks(ph.h, host, remote, blockWait, []byte("\x01\x02probe")), nil
	case f.Protocol == isolation.ProtocolUDP:
		defer udpEcho(t, ph.h, host)()
		return udpWorks(remoteNS, remote, host, blockWait, []byte("\x01\x02probe")), nil
	case f.Protocol.IsICMP() && f.Initiator == isolation.DirectionOut && (f.ICMPType == 8 || f.ICMPType == 128):
		return pingWorks(ph.h, f.Remote, blockWait), nil
	}
	return false, fmt.Errorf("no probe for flow %+v", f)
}

func TestConformance(t *testing.T) {
	needRoot(t)
	isolationtest.RunHost(t, func(t *testing.T) isolationtest.Host {
		ph := newProbeHost(t)
		e, err := New(Config{NetNSPath: ph.h.path})
		if err != nil {
			t.Fatal(err)
		}
		// An enforcer of its own reads the state back, independently of
		// the one under test (which the suite closes and reopens).
		obs := enforcerIn(t, ph.h)
		return isolationtest.Host{
			Enforcer: e,
			Observe:  obs.Observe,
			Reopen:   func(t *testing.T) isolation.Enforcer { return enforcerIn(t, ph.h) },
			Tamper:   func(ctx context.Context) error { return deleteLastRule(e) },
			Probe: func(ctx context.Context, f isolation.Flow) (bool, error) {
				return ph.probe(t, f)
			},
		}
	})
}

// deleteLastRule deletes, behind the enforcer's back, everything of the
// last plan rule (the rules and set elements that carry its comment), as
// an administrator deleting one exclusion would.
func deleteLastRule(e *Enforcer) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	last, lastIndex := "", -1
	consider := func(tag string) {
		if kind, i, _, err := parseTag(tag); err == nil && kind == 'r' && i > lastIndex {
			last, lastIndex = tag, i
		}
	}
	rules := map[chainID][]*gnft.Rule{}
	for _, id := range []chainID{chainInput, chainOutput} {
		rs, err := e.conn.GetRules(table, baseChain(id))
		if err != nil {
			return err
		}
		rules[id] = rs
		for _, r := range rs {
			if c, ok := parseComment(r.UserData); ok {
				consider(c)
			}
		}
	}
	sets, err := e.gen.dumpSets()
	if err != nil {
		return err
	}
	elems := map[string][]dumpedElem{}
	for _, s := range sets {
		if s.flags&unix.NFT_SET_ANONYMOUS != 0 {
			continue
		}
		es, err := e.gen.dumpSetElems(s.name)
		if err != nil {
			return err
		}
		elems[s.name] = es
		for _, el := range es {
			if c, ok := parseComment(el.userData); ok {
				consider(c)
			}
		}
	}
	if last == "" {
		return fmt.Errorf("tamper: no plan rule in the table")
	}
	n := 0
	for _, id := range []chainID{chainInput, chainOutput} {
		for _, r := range rules[id] {
			if c, ok := parseComment(r.UserData); ok && c == last {
				if err := e.conn.DelRule(r); err != nil {
					return err
				}
				n++
			}
		}
	}
	for name, es := range elems {
		var del []gnft.SetElement
		for _, el := range es {
			if c, ok := parseComment(el.userData); ok && c == last {
				del = append(del, gnft.SetElement{Key: el.key, KeyEnd: el.keyEnd})
			}
		}
		if len(del) > 0 {
			if err := e.conn.SetDeleteElements(&gnft.Set{Table: table, Name: name}, del); err != nil {
				return err
			}
			n += len(del)
		}
	}
	if n == 0 {
		return fmt.Errorf("tamper: nothing carries %q", last)
	}
	return e.conn.Flush()
}
