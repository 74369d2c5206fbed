package nftables

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// TCP socket states (include/net/tcp_states.h).
const (
	tcpEstablished = 1
	tcpSynSent     = 2
	tcpSynRecv     = 3
	tcpFinWait1    = 4
	tcpFinWait2    = 5
	tcpTimeWait    = 6
	tcpClose       = 7
	tcpCloseWait   = 8
	tcpLastAck     = 9
	tcpListen      = 10
	tcpClosing     = 11
	tcpNewSynRecv  = 12
)

// destroyable reports whether a socket in state st is a connection that
// SOCK_DESTROY ends (an open or half-closed one, or a handshake).
func destroyable(st uint8) bool {
	switch st {
	case tcpEstablished, tcpSynSent, tcpSynRecv, tcpFinWait1, tcpFinWait2, tcpCloseWait, tcpLastAck, tcpClosing, tcpNewSynRecv:
		return true
	}
	return false
}

// Sizes of struct inet_diag_req_v2 and struct inet_diag_msg.
const (
	sizeofDiagReq = 56
	sizeofDiagMsg = 72
	sizeofNlmsg   = unix.SizeofNlMsghdr
)

// sockInfo is one TCP socket as sock_diag reports it.
type sockInfo struct {
	family       uint8
	state        uint8
	src, dst     netip.Addr
	sport, dport uint16
	ifindex      uint32
	cookie       [8]byte
}

// diagRequest encodes struct inet_diag_req_v2 for TCP sockets of family
// with the given state mask; id fields come from s when s is not nil.
func diagRequest(family uint8, states uint32, s *sockInfo) []byte {
	b := make([]byte, sizeofDiagReq)
	b[0] = family
	b[1] = unix.IPPROTO_TCP
	binary.NativeEndian.PutUint32(b[4:8], states)
	if s == nil {
		// No cookie: INET_DIAG_NOCOOKIE.
		for i := 48; i < 56; i++ {
			b[i] = 0xff
		}
		return b
	}
	binary.BigEndian.PutUint16(b[8:10], s.sport)
	binary.BigEndian.PutUint16(b[10:12], s.dport)
	putAddr(b[12:28], s.src)
	putAddr(b[28:44], s.dst)
	binary.NativeEndian.PutUint32(b[44:48], s.ifindex)
	copy(b[48:56], s.cookie[:])
	return b
}

func putAddr(b []byte, a netip.Addr) {
	if a.Is4() {
		v := a.As4()
		copy(b, v[:])
		return
	}
	v := a.As16()
	copy(b, v[:])
}

// parseDiagMsg decodes struct inet_diag_msg (the payload after the netlink
// header). It never panics on short or odd input.
func parseDiagMsg(b []byte) (sockInfo, error) {
	var s sockInfo
	if len(b) < sizeofDiagMsg {
		return s, fmt.Errorf("inet_diag_msg of %d bytes, want at least %d", len(b), sizeofDiagMsg)
	}
	s.family, s.state = b[0], b[1]
	s.sport = binary.BigEndian.Uint16(b[4:6])
	s.dport = binary.BigEndian.Uint16(b[6:8])
	switch s.family {
	case unix.AF_INET:
		s.src = netip.AddrFrom4([4]byte(b[8:12]))
		s.dst = netip.AddrFrom4([4]byte(b[24:28]))
	case unix.AF_INET6:
		s.src = netip.AddrFrom16([16]byte(b[8:24]))
		s.dst = netip.AddrFrom16([16]byte(b[24:40]))
	default:
		return s, fmt.Errorf("inet_diag_msg of family %d", s.family)
	}
	s.ifindex = binary.NativeEndian.Uint32(b[40:44])
	copy(s.cookie[:], b[44:52])
	return s, nil
}

// nlMessage is one netlink message of a reply.
type nlMessage struct {
	typ   uint16
	seq   uint32
	data  []byte
	errno int32 // for NLMSG_ERROR: 0 is an ack
}

// parseNetlink splits a buffer read from a netlink socket into messages.
func parseNetlink(b []byte) ([]nlMessage, error) {
	var out []nlMessage
	for len(b) > 0 {
		if len(b) < sizeofNlmsg {
			return out, fmt.Errorf("netlink: %d trailing bytes", len(b))
		}
		n := binary.NativeEndian.Uint32(b[0:4])
		if n < sizeofNlmsg || uint64(n) > uint64(len(b)) {
			return out, fmt.Errorf("netlink: message length %d of %d bytes left", n, len(b))
		}
		m := nlMessage{typ: binary.NativeEndian.Uint16(b[4:6]), seq: binary.NativeEndian.Uint32(b[8:12]), data: b[sizeofNlmsg:n]}
		if m.typ == unix.NLMSG_ERROR {
			if len(m.data) < 4 {
				return out, errors.New("netlink: short error message")
			}
			m.errno = int32(binary.NativeEndian.Uint32(m.data[0:4]))
		}
		out = append(out, m)
		aligned := (uint64(n) + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1)
		if aligned > uint64(len(b)) {
			aligned = uint64(len(b))
		}
		b = b[aligned:]
	}
	return out, nil
}

func nlHeader(typ, flags uint16, seq uint32, payload int) []byte {
	h := make([]byte, sizeofNlmsg, sizeofNlmsg+payload)
	binary.NativeEndian.PutUint32(h[0:4], uint32(sizeofNlmsg+payload))
	binary.NativeEndian.PutUint16(h[4:6], typ)
	binary.NativeEndian.PutUint16(h[6:8], flags)
	binary.NativeEndian.PutUint32(h[8:12], seq)
	return h
}

// diagSocket is a NETLINK_SOCK_DIAG socket, opened in the enforcer's
// namespace.
type diagSocket struct {
	fd  int
	seq uint32
	buf []byte
}

func (d *diagSocket) close() error { return unix.Close(d.fd) }

// dumpTCP lists the TCP sockets of family.
func (d *diagSocket) dumpTCP(family uint8) ([]sockInfo, error) {
	d.seq++
	seq := d.seq
	req := append(nlHeader(unix.SOCK_DIAG_BY_FAMILY, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, seq, sizeofDiagReq), diagRequest(family, ^uint32(0), nil)...)
	if err := unix.Sendto(d.fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("sock_diag dump: %w", err)
	}
	var out []sockInfo
	for {
		msgs, err := d.recv()
		if err != nil {
			return nil, fmt.Errorf("sock_diag dump: %w", err)
		}
		for _, m := range msgs {
			if m.seq != seq {
				continue
			}
			switch m.typ {
			case unix.NLMSG_DONE:
				return out, nil
			case unix.NLMSG_ERROR:
				return nil, fmt.Errorf("sock_diag dump: %w", syscall.Errno(-m.errno))
			case unix.SOCK_DIAG_BY_FAMILY:
				s, err := parseDiagMsg(m.data)
				if err != nil {
					return nil, err
				}
				out = append(out, s)
			}
		}
	}
}

func (d *diagSocket) recv() ([]nlMessage, error) {
	if d.buf == nil {
		d.buf = make([]byte, 1<<16)
	}
	for {
		n, _, err := unix.Recvfrom(d.fd, d.buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		return parseNetlink(d.buf[:n])
	}
}

// destroyBatch is how many SOCK_DESTROY requests go in one write; the
// acknowledgements of one batch must fit the socket's receive buffer.
const destroyBatch = 64

// destroy ends the given TCP sockets with SOCK_DESTROY, as `ss -K` does.
// A socket that is already gone is not an error. It returns how many
// sockets were ended.
func (d *diagSocket) destroy(socks []sockInfo) (int, error) {
	ended := 0
	var errs []error
	for start := 0; start < len(socks); start += destroyBatch {
		chunk := socks[start:min(start+destroyBatch, len(socks))]
		var buf []byte
		first := d.seq + 1
		for i := range chunk {
			d.seq++
			buf = append(buf, nlHeader(unix.SOCK_DESTROY, unix.NLM_F_REQUEST|unix.NLM_F_ACK, d.seq, sizeofDiagReq)...)
			buf = append(buf, diagRequest(chunk[i].family, ^uint32(0), &chunk[i])...)
		}
		if err := unix.Sendto(d.fd, buf, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			return ended, fmt.Errorf("sock_destroy: %w", err)
		}
		pending := len(chunk)
		for pending > 0 {
			msgs, err := d.recv()
			if err != nil {
				return ended, fmt.Errorf("sock_destroy: %w", err)
			}
			for _, m := range msgs {
				if m.typ != unix.NLMSG_ERROR || m.seq < first || m.seq > d.seq {
					continue
				}
				pending--
				switch errno := syscall.Errno(-m.errno); errno {
				case 0:
					ended++
				case unix.ENOENT:
					// Closed meanwhile.
				default:
					s := chunk[m.seq-first]
					errs = append(errs, fmt.Errorf("sock_destroy %s:%d -> %s:%d: %w", s.src, s.sport, s.dst, s.dport, errno))
				}
			}
		}
	}
	return ended, errors.Join(errs...)
}
