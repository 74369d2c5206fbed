package nftables

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cordonsec/cordon/isolation"
)

// TestSockDestroySupported proves that this kernel ends a TCP connection
// on SOCK_DESTROY (CONFIG_INET_DIAG_DESTROY), for IPv4 and IPv6, inside a
// test namespace.
func TestSockDestroySupported(t *testing.T) {
	needRoot(t)
	h := newNS(t, "h")
	for _, addr := range []string{"127.0.0.1:7300", "[::1]:7301"} {
		srv := listenTCP(t, h, addr)
		c, err := dialTCP(h, "", addr, passWait)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := roundTrip(c, passWait); err != nil {
			t.Fatal(err)
		}
		d, err := openDiag(h.f)
		if err != nil {
			t.Fatal(err)
		}
		defer d.close()
		local := netip.MustParseAddrPort(c.LocalAddr().String())
		var victim []sockInfo
		for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
			socks, err := d.dumpTCP(fam)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range socks {
				if s.state == tcpEstablished && s.src == local.Addr() && s.sport == local.Port() {
					victim = append(victim, s)
				}
			}
		}
		if len(victim) != 1 {
			t.Fatalf("%s: found %d sockets for %s in the dump, want 1", addr, len(victim), local)
		}
		n, err := d.destroy(victim)
		if err != nil || n != 1 {
			t.Fatalf("destroy: %d ended, %v", n, err)
		}
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		_, err = c.Read(make([]byte, 8))
		if !errors.Is(err, syscall.ECONNABORTED) {
			t.Fatalf("read after SOCK_DESTROY: %v, want ECONNABORTED", err)
		}
		// Destroying it again: gone, not an error.
		if n, err := d.destroy(victim); err != nil || n != 0 {
			t.Fatalf("second destroy: %d ended, %v", n, err)
		}
		_ = srv.ln.Close()
	}
}

func TestConnectionsToEnd(t *testing.T) {
	a := netip.MustParseAddr
	host := a("192.0.2.1")
	local := map[netip.Addr]bool{host: true, a("2001:db8::1"): true}
	plan := isolation.Plan{
		Management: []isolation.Endpoint{{Protocol: isolation.ProtocolTCP, Addrs: []netip.Addr{a("198.18.0.2")}, Port: 4222}},
		Rules:      []isolation.Rule{mustRule(t, "in tcp lport=22 remote=198.18.5.0/24"), mustRule(t, "out tcp rport=443")},
	}
	s := func(state uint8, src string, sport uint16, dst string, dport uint16) sockInfo {
		return sockInfo{family: unix.AF_INET, state: state, src: a(src), sport: sport, dst: a(dst), dport: dport}
	}
	socks := []sockInfo{
		s(tcpListen, "0.0.0.0", 22, "0.0.0.0", 0),
		s(tcpListen, "192.0.2.1", 8080, "0.0.0.0", 0),
		s(tcpEstablished, "192.0.2.1", 40000, "198.18.0.2", 4222),                                                                          // management: keep
		s(tcpEstablished, "192.0.2.1", 40001, "198.18.0.2", 4223),                                                                          // wrong port: end
		s(tcpEstablished, "192.0.2.1", 22, "198.18.5.7", 50000),                                                                            // accepted on 22 from the allowed range: keep
		s(tcpEstablished, "192.0.2.1", 22, "198.18.6.7", 50000),                                                                            // accepted on 22 from elsewhere: end
		s(tcpEstablished, "192.0.2.1", 8080, "198.18.9.9", 443),                                                                            // accepted on 8080 from port 443: inbound, end
		s(tcpEstablished, "192.0.2.1", 40002, "198.18.9.9", 443),                                                                           // outbound to 443: keep
		s(tcpSynSent, "192.0.2.1", 40003, "198.18.9.9", 80),                                                                                // handshake: end
		s(tcpTimeWait, "192.0.2.1", 40004, "198.18.9.9", 80),                                                                               // time-wait: nothing to end
		s(tcpEstablished, "127.0.0.1", 40005, "127.0.0.1", 9),                                                                              // loopback: keep
		s(tcpEstablished, "192.0.2.1", 40006, "192.0.2.1", 9),                                                                              // own address: keep
		{family: unix.AF_INET6, state: tcpEstablished, src: a("::ffff:192.0.2.1"), sport: 40007, dst: a("::ffff:198.18.0.2"), dport: 4222}, // mapped management: keep
	}
	got := connectionsToEnd(plan, socks, local)
	var ports []uint16
	for _, g := range got {
		ports = append(ports, g.sport)
	}
	want := []uint16{40001, 22, 8080, 40003}
	if len(ports) != len(want) {
		t.Fatalf("ended %v, want %v", ports, want)
	}
	for i := range want {
		if ports[i] != want[i] {
			t.Fatalf("ended %v, want %v", ports, want)
		}
	}
}

func FuzzParseSockDiag(f *testing.F) {
	msg := make([]byte, sizeofNlmsg+sizeofDiagMsg)
	binary.NativeEndian.PutUint32(msg[0:4], uint32(len(msg)))
	binary.NativeEndian.PutUint16(msg[4:6], unix.SOCK_DIAG_BY_FAMILY)
	msg[sizeofNlmsg] = unix.AF_INET
	msg[sizeofNlmsg+1] = tcpEstablished
	f.Add(msg)
	f.Add(append(msg[:len(msg):len(msg)], 0, 0, 0))
	f.Add([]byte{16, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		msgs, _ := parseNetlink(b)
		for _, m := range msgs {
			if len(m.data) > len(b) {
				t.Fatal("message longer than its buffer")
			}
			s, err := parseDiagMsg(m.data)
			if err == nil && !s.src.IsValid() {
				t.Fatal("parsed a socket without a source address")
			}
		}
	})
}
