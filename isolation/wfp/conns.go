package wfp

import (
	"net/netip"

	"github.com/cordonsec/cordon/isolation"
)

// TCPState is a MIB_TCP_STATE value.
type TCPState uint32

// The TCP states of the Windows TCP table (MIB_TCP_STATE).
const (
	TCPClosed    TCPState = 1
	TCPListen    TCPState = 2
	TCPSynSent   TCPState = 3
	TCPSynRcvd   TCPState = 4
	TCPEstab     TCPState = 5
	TCPFinWait1  TCPState = 6
	TCPFinWait2  TCPState = 7
	TCPCloseWait TCPState = 8
	TCPClosing   TCPState = 9
	TCPLastAck   TCPState = 10
	TCPTimeWait  TCPState = 11
	TCPDeleteTCB TCPState = 12 // the state SetTcpEntry is given to end a connection
)

// live reports whether a connection in state s still carries data and is
// worth ending.
func (s TCPState) live() bool { return s >= TCPSynSent && s <= TCPLastAck }

// TCPConn is one row of the host's TCP table.
type TCPConn struct {
	Local  netip.AddrPort
	Remote netip.AddrPort
	State  TCPState
	PID    uint32
	App    string // the owning process's executable path, when known
}

// ConnTable is the seam to the host's TCP connection table. On Windows it
// is GetExtendedTcpTable and SetTcpEntry (iphlpapi); tests use a fake.
type ConnTable interface {
	// TCP lists IPv4 and IPv6 TCP connections, listeners included.
	TCP() ([]TCPConn, error)
	// EndTCP ends connection c (SetTcpEntry with MIB_TCP_STATE_DELETE_TCB,
	// which resets it). Windows has no such call for IPv6: it returns an
	// error wrapping isolation.ErrUnsupported for an IPv6 connection.
	EndTCP(c TCPConn) error
}

// connsToEnd returns the live connections of table that the installed
// filters fs would not let through. Who opened a connection is told by
// the table's listeners (isolation.Listeners). appID resolves a
// connection's executable to its app id ("" when unknown).
func connsToEnd(fs []Filter, table []TCPConn, appID func(path string) string) []TCPConn {
	var listeners isolation.Listeners
	for _, c := range table {
		if c.State == TCPListen {
			listeners.Add(c.Local)
		}
	}
	var out []TCPConn
	for _, c := range table {
		if !c.State.live() || c.Remote.Addr().Unmap().IsLoopback() {
			continue
		}
		id := ""
		if c.App != "" && appID != nil {
			id = appID(c.App)
		}
		if !permitted(fs, listeners.TCPFlow(c.Local, c.Remote, c.App), id) {
			out = append(out, c)
		}
	}
	return out
}
