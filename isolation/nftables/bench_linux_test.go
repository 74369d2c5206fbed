package nftables

import (
	"context"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cordonsec/cordon/isolation"
)

// plan1000 returns a plan with 1,000 exclusion rules (one remote address
// and one port each, alternating IPv4 and IPv6), offset by off so that two
// plans differ in every rule.
func plan1000(off int) isolation.Plan {
	var p isolation.Plan
	p.Management = []isolation.Endpoint{{Protocol: isolation.ProtocolTCP, Addrs: []netip.Addr{netip.MustParseAddr("198.18.0.2")}, Port: 4222}}
	p.Rules = append(p.Rules, isolation.NeighborDiscoveryRule())
	for i := range 1000 {
		n := i + off
		var remote netip.Addr
		if i%2 == 0 {
			remote = netip.AddrFrom4([4]byte{198, 18, byte(n >> 8), byte(n)})
		} else {
			remote = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(n >> 8), 15: byte(n)})
		}
		p.Rules = append(p.Rules, isolation.Rule{Direction: isolation.DirectionOut, Protocol: isolation.ProtocolTCP,
			Remote: []netip.Prefix{netip.PrefixFrom(remote, remote.BitLen())}, RemotePorts: []isolation.PortRange{isolation.Port(443)}})
	}
	return p
}

// cpuTime returns the process's user plus system CPU time. On a shared
// machine wall time per operation is noisy; the CPU the process (and the
// kernel on its behalf, in its syscalls) spent is reported beside it.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N)/1e6, "cpu-ms/op")
}

// BenchmarkApply1000Rules: Apply of a plan with 1,000 exclusion rules
// (about 1,000 set elements in 4 named sets) in a test namespace, read-back included. Goal:
// < 50 ms. "replace" alternates two plans, so every Apply writes and
// swaps the table; "unchanged" applies the plan in force again.
func BenchmarkApply1000Rules(b *testing.B) {
	needRoot(b)
	h := newNS(b, "h")
	e := enforcerIn(b, h)
	ctx := context.Background()
	plans := []isolation.Plan{plan1000(0), plan1000(1000)}
	b.Run("replace", func(b *testing.B) {
		start := cpuTime()
		for i := 0; b.Loop(); i++ {
			if err := e.Apply(ctx, plans[i%2]); err != nil {
				b.Fatal(err)
			}
		}
		reportCPU(b, start)
	})
	b.Run("unchanged", func(b *testing.B) {
		if err := e.Apply(ctx, plans[0]); err != nil {
			b.Fatal(err)
		}
		start := cpuTime()
		for b.Loop() {
			if err := e.Apply(ctx, plans[0]); err != nil {
				b.Fatal(err)
			}
		}
		reportCPU(b, start)
	})
}

// BenchmarkEnd1000Connections: Apply while 1,000 established TCP
// connections from the host to a peer exist that the plan does not
// allow; the time includes writing the rules, ending all 1,000 with
// SOCK_DESTROY, deleting their conntrack entries and reading back. Goal:
// < 500 ms.
func BenchmarkEnd1000Connections(b *testing.B) {
	needRoot(b)
	h, p := newNS(b, "h"), newNS(b, "p")
	link(b, h, []string{"192.0.2.1/24"}, p, []string{"192.0.2.2/24"})
	srv := listenTCP(b, p, "192.0.2.2:7000")
	e := enforcerIn(b, h)
	ctx := context.Background()
	plan := isolation.Plan{Rules: []isolation.Rule{isolation.NeighborDiscoveryRule()}}
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		if err := e.Clear(ctx); err != nil {
			b.Fatal(err)
		}
		conns := make([]net.Conn, 0, 1000)
		for range 1000 {
			c, err := dialTCP(h, "", "192.0.2.2:7000", passWait)
			if err != nil {
				b.Fatal(err)
			}
			conns = append(conns, c)
		}
		b.StartTimer()
		start := cpuTime()
		if err := e.Apply(ctx, plan); err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime() - start
		b.StopTimer()
		if n := establishedTo(b, h, netip.MustParseAddr("192.0.2.2")); n != 0 {
			b.Fatalf("%d connections to the peer still established after Apply", n)
		}
		for _, c := range conns {
			_ = c.Close()
		}
		// The peer never saw the resets (the isolation dropped them): close
		// its side too, or new connections would meet stale ones.
		for range conns {
			closeNow(<-srv.conns)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(cpu)/float64(b.N)/1e6, "cpu-ms/op")
}

// establishedTo counts the host's established TCP connections to remote.
func establishedTo(tb testing.TB, ns *testNS, remote netip.Addr) int {
	tb.Helper()
	d, err := openDiag(ns.f)
	if err != nil {
		tb.Fatal(err)
	}
	defer d.close()
	socks, err := d.dumpTCP(unix.AF_INET)
	if err != nil {
		tb.Fatal(err)
	}
	n := 0
	for _, s := range socks {
		if s.state == tcpEstablished && s.dst == remote {
			n++
		}
	}
	return n
}

// benchLists returns 1,000 outbound TCP rules that each name remotes
// addresses and ports; each combination is one element of a named set.
func benchLists(off, remotes, ports int) isolation.Plan {
	var p isolation.Plan
	for i := range 1000 {
		r := isolation.Rule{Direction: isolation.DirectionOut, Protocol: isolation.ProtocolTCP}
		for j := range remotes {
			n := (i*remotes+j)*2 + off
			r.Remote = append(r.Remote, netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18 + byte(n>>16), byte(n >> 8), byte(n)}), 32))
		}
		for j := range ports {
			r.RemotePorts = append(r.RemotePorts, isolation.Port(uint16(1000+2*j)))
		}
		p.Rules = append(p.Rules, r)
	}
	return p
}

// BenchmarkApply1000RulesLists: Apply (replace) of 1,000 rules with lists:
// "2x2" two remotes and two ports each (4,000 set elements), "5x4" five
// remotes and four ports each (20,000 set elements).
func BenchmarkApply1000RulesLists(b *testing.B) {
	needRoot(b)
	h := newNS(b, "h")
	e := enforcerIn(b, h)
	ctx := context.Background()
	for _, c := range []struct {
		name           string
		remotes, ports int
	}{{"2x2", 2, 2}, {"5x4", 5, 4}} {
		b.Run(c.name, func(b *testing.B) {
			plans := []isolation.Plan{benchLists(0, c.remotes, c.ports), benchLists(1, c.remotes, c.ports)}
			start := cpuTime()
			for i := 0; b.Loop(); i++ {
				if err := e.Apply(ctx, plans[i%2]); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, start)
		})
	}
}
