//go:build windows

package wfp

import (
	"fmt"
	"unsafe"

	"github.com/cordonsec/cordon/isolation"
	"golang.org/x/sys/windows"
)

var (
	modiphlpapi             = windows.NewLazySystemDLL("iphlpapi.dll")
	procGetExtendedTcpTable = modiphlpapi.NewProc("GetExtendedTcpTable")
	procSetTcpEntry         = modiphlpapi.NewProc("SetTcpEntry")
)

const tcpTableOwnerPIDAll = 5 // TCP_TABLE_OWNER_PID_ALL

// iphlpTable implements ConnTable with GetExtendedTcpTable and SetTcpEntry.
type iphlpTable struct{}

// NewConnTable returns the host's TCP table (iphlpapi). EndTCP needs
// administrator rights.
func NewConnTable() ConnTable { return iphlpTable{} }

func platformConns() (ConnTable, error) { return NewConnTable(), nil }

func (iphlpTable) TCP() ([]TCPConn, error) {
	v4, err := extendedTable(windows.AF_INET)
	if err != nil {
		return nil, err
	}
	v6, err := extendedTable(windows.AF_INET6)
	if err != nil {
		return nil, err
	}
	conns := append(parseTable4(v4), parseTable6(v6)...)
	paths := map[uint32]string{}
	for i := range conns {
		pid := conns[i].PID
		p, ok := paths[pid]
		if !ok {
			p = processPath(pid)
			paths[pid] = p
		}
		conns[i].App = p
	}
	return conns, nil
}

// extendedTable returns the raw MIB_TCPTABLE_OWNER_PID (or the TCP6 form).
func extendedTable(family uint32) ([]byte, error) {
	if err := procGetExtendedTcpTable.Find(); err != nil {
		return nil, err
	}
	size := uint32(16 << 10)
	for range 8 {
		buf := make([]byte, size)
		r, _, _ := procGetExtendedTcpTable.Call(uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&size)),
			0, uintptr(family), tcpTableOwnerPIDAll, 0)
		switch windows.Errno(r) {
		case 0:
			return buf[:size], nil
		case windows.ERROR_INSUFFICIENT_BUFFER:
			size += 4 << 10 // the table may grow between the calls
			continue
		default:
			return nil, fmt.Errorf("GetExtendedTcpTable(family %d): %w", family, windows.Errno(r))
		}
	}
	return nil, fmt.Errorf("GetExtendedTcpTable(family %d): table keeps growing", family)
}

func processPath(pid uint32) string {
	if pid == 0 || pid == 4 {
		return ""
	}
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, pid)
	if err != nil {
		return ""
	}
	defer windows.CloseHandle(h)
	buf := make([]uint16, windows.MAX_LONG_PATH)
	n := uint32(len(buf))
	if err := windows.QueryFullProcessImageName(h, 0, &buf[0], &n); err != nil {
		return ""
	}
	return windows.UTF16ToString(buf[:n])
}

func (iphlpTable) EndTCP(c TCPConn) error {
	if !c.Local.Addr().Unmap().Is4() || !c.Remote.Addr().Unmap().Is4() {
		return fmt.Errorf("end TCP connection %s -> %s: no SetTcpEntry for IPv6: %w", c.Local, c.Remote, isolation.ErrUnsupported)
	}
	if err := procSetTcpEntry.Find(); err != nil {
		return err
	}
	row := deleteTCBRow(c)
	r, _, _ := procSetTcpEntry.Call(uintptr(unsafe.Pointer(&row)))
	if r != 0 {
		return fmt.Errorf("SetTcpEntry(%s -> %s, DELETE_TCB): %w", c.Local, c.Remote, windows.Errno(r))
	}
	return nil
}
