package wfp

import (
	"encoding/binary"
	"net/netip"
)

// The iphlpapi TCP tables are decoded here, apart from the system calls,
// so that the decoding is tested on every platform.

// parseTable4 decodes MIB_TCPTABLE_OWNER_PID: a DWORD count, then rows of
// six DWORDs (state, local addr, local port, remote addr, remote port,
// pid); addresses and ports are in network byte order.
func parseTable4(b []byte) []TCPConn {
	const row = 24
	if len(b) < 4 {
		return nil
	}
	n := int(binary.LittleEndian.Uint32(b))
	var out []TCPConn
	for i := 0; i < n && 4+(i+1)*row <= len(b); i++ {
		r := b[4+i*row:]
		out = append(out, TCPConn{
			State:  TCPState(binary.LittleEndian.Uint32(r[0:])),
			Local:  netip.AddrPortFrom(netip.AddrFrom4([4]byte(r[4:8])), binary.BigEndian.Uint16(r[8:10])),
			Remote: netip.AddrPortFrom(netip.AddrFrom4([4]byte(r[12:16])), binary.BigEndian.Uint16(r[16:18])),
			PID:    binary.LittleEndian.Uint32(r[20:]),
		})
	}
	return out
}

// parseTable6 decodes MIB_TCP6TABLE_OWNER_PID: rows of local addr[16],
// local scope, local port, remote addr[16], remote scope, remote port,
// state, pid.
func parseTable6(b []byte) []TCPConn {
	const row = 56
	if len(b) < 4 {
		return nil
	}
	n := int(binary.LittleEndian.Uint32(b))
	var out []TCPConn
	for i := 0; i < n && 4+(i+1)*row <= len(b); i++ {
		r := b[4+i*row:]
		out = append(out, TCPConn{
			Local:  netip.AddrPortFrom(netip.AddrFrom16([16]byte(r[0:16])), binary.BigEndian.Uint16(r[20:22])),
			Remote: netip.AddrPortFrom(netip.AddrFrom16([16]byte(r[24:40])), binary.BigEndian.Uint16(r[44:46])),
			State:  TCPState(binary.LittleEndian.Uint32(r[48:])),
			PID:    binary.LittleEndian.Uint32(r[52:]),
		})
	}
	return out
}

// mibTCPRow is MIB_TCPROW: the row SetTcpEntry takes. Addresses and ports
// are in network byte order (ports in the low 16 bits).
type mibTCPRow struct {
	State      uint32
	LocalAddr  uint32
	LocalPort  uint32
	RemoteAddr uint32
	RemotePort uint32
}

// deleteTCBRow returns the row that makes SetTcpEntry end IPv4
// connection c.
func deleteTCBRow(c TCPConn) mibTCPRow {
	la, ra := c.Local.Addr().Unmap().As4(), c.Remote.Addr().Unmap().As4()
	var lp, rp [4]byte
	binary.BigEndian.PutUint16(lp[:], c.Local.Port())
	binary.BigEndian.PutUint16(rp[:], c.Remote.Port())
	return mibTCPRow{
		State:      uint32(TCPDeleteTCB),
		LocalAddr:  binary.LittleEndian.Uint32(la[:]),
		LocalPort:  binary.LittleEndian.Uint32(lp[:]),
		RemoteAddr: binary.LittleEndian.Uint32(ra[:]),
		RemotePort: binary.LittleEndian.Uint32(rp[:]),
	}
}
