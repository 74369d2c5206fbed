package nftables

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"syscall"

	mnl "github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// nfSocket is a raw nfnetlink socket in the enforcer's namespace. It asks
// nftables for the ruleset generation (generation) and sends batches
// (sendBatch). The generation is a counter the kernel bumps on every
// committed change to any table: unchanged since the enforcer last read its
// table back, it proves the table unchanged, so Apply of the same plan
// needs no dump.
type nfSocket struct {
	fd  int
	seq uint32
	buf []byte
}

func openNFSocket(ns *os.File) (*nfSocket, error) {
	var g *nfSocket
	err := inNamespace(ns, func() error {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
		if err != nil {
			return fmt.Errorf("%w: nfnetlink socket: %w", ErrNetlink, err)
		}
		if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			_ = unix.Close(fd)
			return fmt.Errorf("%w: nfnetlink bind: %w", ErrNetlink, err)
		}
		// A whole table goes in one write: raise the send buffer past the
		// system maximum (SO_SNDBUFFORCE needs CAP_NET_ADMIN, which
		// enforcing needs anyway).
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, batchBuffer); err != nil {
			_ = unix.Close(fd)
			return fmt.Errorf("%w: nfnetlink send buffer: %w", ErrNetlink, err)
		}
		g = &nfSocket{fd: fd, buf: make([]byte, 1<<16)}
		return nil
	})
	return g, err
}

func (g *nfSocket) close() error { return unix.Close(g.fd) }

// generation returns the current ruleset generation.
func (g *nfSocket) generation() (uint32, error) {
	g.seq++
	req := nlHeader(unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_GETGEN, unix.NLM_F_REQUEST, g.seq, 4)
	req = append(req, unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, 0)
	if err := unix.Sendto(g.fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, fmt.Errorf("%w: getgen: %w", ErrNetlink, err)
	}
	for {
		n, _, err := unix.Recvfrom(g.fd, g.buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("%w: getgen: %w", ErrNetlink, err)
		}
		msgs, err := parseNetlink(g.buf[:n])
		if err != nil {
			return 0, fmt.Errorf("%w: getgen: %w", ErrNetlink, err)
		}
		for _, m := range msgs {
			if m.seq != g.seq {
				continue
			}
			if m.typ == unix.NLMSG_ERROR {
				return 0, fmt.Errorf("%w: getgen: %w", ErrNetlink, syscall.Errno(-m.errno))
			}
			if m.typ == unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_NEWGEN {
				return parseGen(m.data)
			}
		}
	}
}

// parseGen reads NFTA_GEN_ID from a NEWGEN message (after the netlink
// header).
func parseGen(b []byte) (uint32, error) {
	if len(b) < 4 {
		return 0, errors.New("getgen: short message")
	}
	b = b[4:] // struct nfgenmsg
	for len(b) >= 4 {
		l := int(binary.NativeEndian.Uint16(b[0:2]))
		typ := binary.NativeEndian.Uint16(b[2:4]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
		if l < 4 || l > len(b) {
			return 0, errors.New("getgen: bad attribute length")
		}
		if typ == unix.NFTA_GEN_ID && l == 8 {
			return binary.BigEndian.Uint32(b[4:8]), nil
		}
		al := (l + unix.NLA_ALIGNTO - 1) &^ (unix.NLA_ALIGNTO - 1)
		if al > len(b) {
			break
		}
		b = b[al:]
	}
	return 0, errors.New("getgen: no generation id in the reply")
}

// batchSender receives the messages a gnft.Conn would send on Flush, so
// that the enforcer sends the batch itself (see sendBatch).
type batchSender struct {
	msgs []mnl.Message
}

// dial is the test dial of the capturing connection: it keeps what Flush
// sends and answers every command with an acknowledgement.
func (b *batchSender) dial(req []mnl.Message) ([]mnl.Message, error) {
	if req != nil {
		b.msgs = append(b.msgs, req...)
		return nil, nil
	}
	return []mnl.Message{{Header: mnl.Header{Type: mnl.Error}, Data: make([]byte, 20)}}, nil
}

// sendBatch sends one nftables batch (BATCH_BEGIN ... BATCH_END) in one
// write, asking an acknowledgement for the last command only. The library
// asks one for every command and reads them one system call each, which
// for thousands of rules costs more than the kernel's work. The kernel
// handles a netlink write synchronously: when sendto returns, the batch
// has been committed or aborted and every reply is queued. Errors are
// reported for any failing command whether or not it asked for an
// acknowledgement.
func (g *nfSocket) sendBatch(msgs []mnl.Message) error {
	if len(msgs) < 3 {
		return errors.New("empty batch")
	}
	// Sized up front: a thousand exclusions make a batch of about a
	// megabyte, which growing from nil would copy many times over.
	size := 0
	for _, m := range msgs {
		size += nlmsgAlign(unix.NLMSG_HDRLEN + len(m.Data))
	}
	buf := make([]byte, 0, size)
	first := g.seq + 1
	for i, m := range msgs {
		g.seq++
		// No acknowledgement and no echo of every command.
		flags := uint16(m.Header.Flags) &^ (unix.NLM_F_ACK | unix.NLM_F_ECHO)
		if i == len(msgs)-2 { // the last command before BATCH_END
			flags |= unix.NLM_F_ACK
		}
		// The header as nlHeader writes it, appended in place.
		buf = binary.NativeEndian.AppendUint32(buf, uint32(sizeofNlmsg+len(m.Data)))
		buf = binary.NativeEndian.AppendUint16(buf, uint16(m.Header.Type))
		buf = binary.NativeEndian.AppendUint16(buf, flags)
		buf = binary.NativeEndian.AppendUint32(buf, g.seq)
		buf = binary.NativeEndian.AppendUint32(buf, 0) // port id: the kernel's
		buf = append(buf, m.Data...)
		for len(buf)%unix.NLMSG_ALIGNTO != 0 {
			buf = append(buf, 0)
		}
	}
	last := g.seq - 1
	if err := unix.Sendto(g.fd, buf, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("send batch: %w", err)
	}
	var errs []error
	acked := false
	for {
		n, _, err := unix.Recvfrom(g.fd, g.buf, unix.MSG_DONTWAIT)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			break
		}
		if err != nil {
			return fmt.Errorf("batch replies: %w", err)
		}
		replies, err := parseNetlink(g.buf[:n])
		if err != nil {
			return fmt.Errorf("batch replies: %w", err)
		}
		for _, m := range replies {
			if m.typ != unix.NLMSG_ERROR || m.seq < first || m.seq > g.seq {
				continue
			}
			if m.errno != 0 {
				errs = append(errs, fmt.Errorf("command %d of the batch: %w", m.seq-first, syscall.Errno(-m.errno)))
			} else if m.seq == last {
				acked = true
			}
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if !acked {
		return errors.New("batch not acknowledged")
	}
	return nil
}

// nlmsgAlign rounds n up to the netlink message alignment.
func nlmsgAlign(n int) int {
	return (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1)
}
