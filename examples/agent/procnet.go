package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// socketEntry is one line of /proc/net/{tcp,tcp6,udp,udp6}.
type socketEntry struct {
	Local, Remote netip.AddrPort
	State         uint8 // TCP state (1 established, 2 syn-sent, 10 listen); UDP: 7 unconnected, 1 connected
}

// TCP states of /proc/net/tcp.
const (
	tcpEstablished = 0x01
	tcpSynSent     = 0x02
	tcpListen      = 0x0A
)

// parseProcNet parses the content of /proc/net/tcp, tcp6, udp or udp6.
// It returns an error naming the line and field for a malformed line.
func parseProcNet(data []byte) ([]socketEntry, error) {
	var out []socketEntry
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		f := strings.Fields(sc.Text())
		if line == 1 && len(f) > 0 && f[0] == "sl" {
			continue // header
		}
		if len(f) == 0 {
			continue
		}
		if len(f) < 4 {
			return nil, fmt.Errorf("line %d: %d fields, want at least 4", line, len(f))
		}
		local, err := parseHexAddrPort(f[1])
		if err != nil {
			return nil, fmt.Errorf("line %d: local_address: %v", line, err)
		}
		remote, err := parseHexAddrPort(f[2])
		if err != nil {
			return nil, fmt.Errorf("line %d: rem_address: %v", line, err)
		}
		st, err := strconv.ParseUint(f[3], 16, 8)
		if err != nil {
			return nil, fmt.Errorf("line %d: st: %q is not a hex byte", line, f[3])
		}
		out = append(out, socketEntry{Local: local, Remote: remote, State: uint8(st)})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %v", line+1, err)
	}
	return out, nil
}

// parseHexAddrPort parses "0100007F:0016" (IPv4) or 32 hex digits and a
// port (IPv6): the address is in host order by 32-bit words, as the
// kernel prints it (little-endian on the machines cordon runs on).
func parseHexAddrPort(s string) (netip.AddrPort, error) {
	a, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("%q has no port", s)
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("port %q is not 4 hex digits", p)
	}
	raw, err := hex.DecodeString(a)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, fmt.Errorf("address %q is not 8 or 32 hex digits", a)
	}
	var b [16]byte
	for i := 0; i < len(raw); i += 4 {
		binary.BigEndian.PutUint32(b[i:], binary.LittleEndian.Uint32(raw[i:]))
	}
	var addr netip.Addr
	if len(raw) == 4 {
		addr = netip.AddrFrom4([4]byte(b[:4]))
	} else {
		addr = netip.AddrFrom16(b).Unmap()
	}
	return netip.AddrPortFrom(addr, uint16(port)), nil
}

// procStat holds the fields of /proc/<pid>/stat the process scanner uses.
type procStat struct {
	Comm string
	PPID int
}

// parseProcStat parses /proc/<pid>/stat: "pid (comm) state ppid …";
// comm may hold spaces and parentheses, so it ends at the last ')'.
func parseProcStat(data []byte) (procStat, error) {
	s := string(data)
	open := strings.IndexByte(s, '(')
	closing := strings.LastIndexByte(s, ')')
	if open < 0 || closing < open {
		return procStat{}, fmt.Errorf("no (comm)")
	}
	rest := strings.Fields(s[closing+1:])
	if len(rest) < 2 {
		return procStat{}, fmt.Errorf("no ppid after the state")
	}
	ppid, err := strconv.Atoi(rest[1])
	if err != nil || ppid < 0 {
		return procStat{}, fmt.Errorf("ppid %q", rest[1])
	}
	return procStat{Comm: s[open+1 : closing], PPID: ppid}, nil
}
