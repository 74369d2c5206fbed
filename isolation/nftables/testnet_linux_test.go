package nftables

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// Tests here build their own hosts as network namespaces joined by veth
// pairs, and run enforcers only inside them: never in the namespace the
// test process runs in.

// needRoot skips the test when it cannot build namespaces, or fails it when
// CI is set.
func needRoot(tb testing.TB) {
	tb.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "needs root (network namespaces, nftables)"
	} else if _, err := exec.LookPath("ip"); err != nil {
		why = "needs the ip command (iproute2)"
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") != "" {
		tb.Fatalf("CI is set but the test cannot run: %s", why)
	}
	tb.Skip(why)
}

var nsCounter atomic.Int32

// testNS is a network namespace created by a test; it is deleted when the
// test ends, whatever the outcome.
type testNS struct {
	name string
	path string
	f    *os.File
}

func ipCmd(tb testing.TB, args ...string) {
	tb.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		tb.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func newNS(tb testing.TB, role string) *testNS {
	tb.Helper()
	name := fmt.Sprintf("cordon-t%d-%d-%s", os.Getpid(), nsCounter.Add(1), role)
	ipCmd(tb, "netns", "add", name)
	n := &testNS{name: name, path: "/var/run/netns/" + name}
	tb.Cleanup(func() {
		if n.f != nil {
			_ = n.f.Close()
		}
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			tb.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	f, err := os.Open(n.path)
	if err != nil {
		tb.Fatal(err)
	}
	n.f = f
	// Safety: the namespace must not be the one this process runs in.
	var self, other unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &self); err != nil {
		tb.Fatal(err)
	}
	if err := unix.Fstat(int(f.Fd()), &other); err != nil {
		tb.Fatal(err)
	}
	if self.Ino == other.Ino && self.Dev == other.Dev {
		tb.Fatalf("namespace %s is the test process's own namespace", name)
	}
	ipCmd(tb, "-n", name, "link", "set", "lo", "up")
	return n
}

// run runs fn on a thread inside the namespace; sockets it opens belong
// to the namespace.
func (n *testNS) run(fn func() error) error { return inNamespace(n.f, fn) }

// link joins a and b with a veth pair and gives each side its addresses
// (IPv6 without duplicate address detection).
func link(tb testing.TB, a *testNS, aAddrs []string, b *testNS, bAddrs []string) {
	tb.Helper()
	id := nsCounter.Add(1)
	an, bn := fmt.Sprintf("cv%da%d", os.Getpid()%100000, id), fmt.Sprintf("cv%db%d", os.Getpid()%100000, id)
	ipCmd(tb, "-n", a.name, "link", "add", an, "type", "veth", "peer", "name", bn, "netns", b.name)
	for _, side := range []struct {
		ns    *testNS
		dev   string
		addrs []string
	}{{a, an, aAddrs}, {b, bn, bAddrs}} {
		for _, ad := range side.addrs {
			args := []string{"-n", side.ns.name, "addr", "add", ad, "dev", side.dev}
			if strings.Contains(ad, ":") {
				args = append(args, "nodad")
			}
			ipCmd(tb, args...)
		}
		ipCmd(tb, "-n", side.ns.name, "link", "set", side.dev, "up")
	}
	// The kernel reports carrier with a delay (linkwatch); until then IPv6
	// does not work on the link. Wait for both sides to be operationally up.
	deadline := time.Now().Add(10 * time.Second)
	for _, side := range []struct {
		ns  *testNS
		dev string
	}{{a, an}, {b, bn}} {
		for {
			out, err := exec.Command("ip", "-n", side.ns.name, "-o", "link", "show", "dev", side.dev).CombinedOutput()
			if err == nil && strings.Contains(string(out), "state UP") {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("%s in %s is not up: %s", side.dev, side.ns.name, out)
			}
			time.Sleep(10 * time.Millisecond) // polling the kernel, not waiting for a timer of ours
		}
	}
}

// enforcerIn returns an Enforcer for ns, closed when the test ends.
func enforcerIn(tb testing.TB, ns *testNS) *Enforcer {
	tb.Helper()
	e, err := New(Config{NetNSPath: ns.path})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = e.Close() })
	return e
}

// ---- traffic: servers ----

// tcpServer accepts connections in a namespace and echoes lines; accepted
// connections are also sent on conns.
type tcpServer struct {
	ln    net.Listener
	conns chan net.Conn
	wg    sync.WaitGroup
}

func listenTCP(tb testing.TB, ns *testNS, addr string) *tcpServer {
	tb.Helper()
	s := &tcpServer{conns: make(chan net.Conn, 4096)}
	err := ns.run(func() error {
		var err error
		s.ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		tb.Fatalf("listen tcp %s: %v", addr, err)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := s.ln.Accept()
			if err != nil {
				return
			}
			select {
			case s.conns <- c:
			default:
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				echo(c)
			}()
		}
	}()
	tb.Cleanup(func() {
		_ = s.ln.Close()
		for {
			select {
			case c := <-s.conns:
				_ = c.Close()
				continue
			default:
			}
			break
		}
	})
	return s
}

func echo(c net.Conn) {
	buf := make([]byte, 512)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		if _, err := c.Write(buf[:n]); err != nil {
			return
		}
	}
}

// udpEcho answers every datagram with the same bytes until the test ends
// or the returned function is called.
func udpEcho(tb testing.TB, ns *testNS, addr string) (stop func()) {
	tb.Helper()
	var pc net.PacketConn
	err := ns.run(func() error {
		var err error
		pc, err = net.ListenPacket("udp", addr)
		return err
	})
	if err != nil {
		tb.Fatalf("listen udp %s: %v", addr, err)
	}
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(buf[:n], from)
		}
	}()
	tb.Cleanup(func() { _ = pc.Close() })
	return func() { _ = pc.Close() }
}

// dnsResponder answers anything that looks like a DNS query (12-byte
// header or more) with the same id and the QR bit set.
func dnsResponder(tb testing.TB, ns *testNS, addr string) {
	tb.Helper()
	var pc net.PacketConn
	err := ns.run(func() error {
		var err error
		pc, err = net.ListenPacket("udp", addr)
		return err
	})
	if err != nil {
		tb.Fatalf("listen dns %s: %v", addr, err)
	}
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if n < 12 {
				continue
			}
			resp := append([]byte(nil), buf[:n]...)
			resp[2] |= 0x80 // QR: response
			_, _ = pc.WriteTo(resp, from)
		}
	}()
	tb.Cleanup(func() { _ = pc.Close() })
}

// ---- traffic: clients ----

const (
	passWait  = 3 * time.Second        // generous wait for traffic that must pass
	blockWait = 400 * time.Millisecond // how long silence means "blocked"
)

// dialTCP opens a connection from ns (from local, when set) to addr.
func dialTCP(ns *testNS, local, addr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := ns.run(func() error {
		d := net.Dialer{Timeout: timeout}
		if local != "" {
			la, err := net.ResolveTCPAddr("tcp", local)
			if err != nil {
				return err
			}
			d.LocalAddr = la
		}
		var err error
		c, err = d.Dial("tcp", addr)
		return err
	})
	return c, err
}

// roundTrip writes a line on c and reads it back within wait.
func roundTrip(c net.Conn, wait time.Duration) error {
	_ = c.SetDeadline(time.Now().Add(wait))
	defer c.SetDeadline(time.Time{})
	msg := []byte("ping\n")
	if _, err := c.Write(msg); err != nil {
		return err
	}
	buf := make([]byte, len(msg))
	_, err := ioReadFull(c, buf)
	return err
}

func ioReadFull(c net.Conn, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := c.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// tcpWorks reports whether a new connection from ns to addr can be opened
// and carries an echo.
func tcpWorks(ns *testNS, local, addr string, wait time.Duration) bool {
	c, err := dialTCP(ns, local, addr, wait)
	if err != nil {
		return false
	}
	defer closeNow(c)
	return roundTrip(c, wait) == nil
}

// closeNow closes with a reset, leaving no TIME_WAIT behind.
func closeNow(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// udpWorks sends a datagram from ns (from local, when set) to addr and
// reports whether the same bytes come back within wait.
func udpWorks(ns *testNS, local, addr string, wait time.Duration, payload []byte) bool {
	var pc net.PacketConn
	err := ns.run(func() error {
		var err error
		if local == "" {
			local = ":0"
			if strings.Count(addr, ":") > 1 {
				local = "[::]:0"
			}
		}
		pc, err = net.ListenPacket("udp", local)
		return err
	})
	if err != nil {
		return false
	}
	defer pc.Close()
	to, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return false
	}
	if _, err := pc.WriteTo(payload, to); err != nil {
		return false
	}
	_ = pc.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 1500)
	for {
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			return false
		}
		// Echoes return the payload; the DNS responder flips the QR bit.
		if n == len(payload) && string(buf[:2]) == string(payload[:2]) {
			return true
		}
	}
}

// udpRefused sends a datagram from a connected socket in ns to addr and
// reports whether the ICMP port unreachable error comes back (the read
// fails with ECONNREFUSED) within wait.
func udpRefused(ns *testNS, addr string, wait time.Duration) bool {
	var c net.Conn
	err := ns.run(func() error {
		var err error
		c, err = net.Dial("udp", addr)
		return err
	})
	if err != nil {
		return false
	}
	defer c.Close()
	if _, err := c.Write([]byte("\x00\x01nobody-listens")); err != nil {
		return false
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	_, err = c.Read(make([]byte, 64))
	return errors.Is(err, syscall.ECONNREFUSED)
}

// pingWorks sends an ICMP or ICMPv6 echo request from ns to dst and
// reports whether the reply comes back within wait.
func pingWorks(ns *testNS, dst netip.Addr, wait time.Duration) bool {
	var pc *icmp.PacketConn
	network, local := "ip4:icmp", "0.0.0.0"
	var typ icmp.Type = ipv4.ICMPTypeEcho
	proto := 1
	if dst.Is6() {
		network, local, typ, proto = "ip6:ipv6-icmp", "::", ipv6.ICMPTypeEchoRequest, 58
	}
	err := ns.run(func() error {
		var err error
		pc, err = icmp.ListenPacket(network, local)
		return err
	})
	if err != nil {
		return false
	}
	defer pc.Close()
	id := int(nsCounter.Add(1)) & 0xffff
	msg := icmp.Message{Type: typ, Body: &icmp.Echo{ID: id, Seq: 1, Data: []byte("cordon")}}
	b, err := msg.Marshal(nil)
	if err != nil {
		return false
	}
	if _, err := pc.WriteTo(b, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
		return false
	}
	_ = pc.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 1500)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return false
		}
		m, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil {
			continue
		}
		e, ok := m.Body.(*icmp.Echo)
		if (m.Type == ipv4.ICMPTypeEchoReply || m.Type == ipv6.ICMPTypeEchoReply) && ok && e.ID == id &&
			from.String() == dst.String() {
			return true
		}
	}
}

// endedBy reports whether reading from c fails, with something other than
// a timeout, before the deadline: the connection was ended.
func endedBy(c net.Conn, deadline time.Time) error {
	_ = c.SetReadDeadline(deadline)
	buf := make([]byte, 64)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return fmt.Errorf("still open at the deadline")
		}
		return nil
	}
}

func ctxTimeout(tb testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	tb.Cleanup(cancel)
	return ctx
}
