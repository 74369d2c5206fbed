package wfp

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// le appends v as a little-endian DWORD, as the x86/arm64 tables hold it.
func le(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }

// portDWORD is a port as iphlpapi stores it: network byte order in the
// first two bytes of the DWORD.
func portDWORD(b []byte, p uint16) []byte { return append(binary.BigEndian.AppendUint16(b, p), 0, 0) }

func TestParseTable4(t *testing.T) {
	b := le(nil, 2)
	b = le(b, uint32(TCPEstab))
	b = append(b, 192, 0, 2, 10)
	b = portDWORD(b, 40001)
	b = append(b, 198, 18, 9, 9)
	b = portDWORD(b, 443)
	b = le(b, 4242)
	b = le(b, uint32(TCPListen))
	b = append(b, 0, 0, 0, 0)
	b = portDWORD(b, 22)
	b = append(b, 0, 0, 0, 0)
	b = portDWORD(b, 0)
	b = le(b, 7)
	got := parseTable4(b)
	want := []TCPConn{
		{State: TCPEstab, Local: netip.MustParseAddrPort("192.0.2.10:40001"), Remote: netip.MustParseAddrPort("198.18.9.9:443"), PID: 4242},
		{State: TCPListen, Local: netip.MustParseAddrPort("0.0.0.0:22"), Remote: netip.MustParseAddrPort("0.0.0.0:0"), PID: 7},
	}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	// A count larger than the buffer holds stops at the last whole row.
	binary.LittleEndian.PutUint32(b, 1000)
	if n := len(parseTable4(b)); n != 2 {
		t.Fatalf("truncated table: %d rows", n)
	}
	if parseTable4(b[:3]) != nil {
		t.Fatal("3-byte table parsed")
	}
}

func TestParseTable6(t *testing.T) {
	l := netip.MustParseAddr("2001:db8::2").As16()
	r := netip.MustParseAddr("2001:db8:9::9").As16()
	b := le(nil, 1)
	b = append(b, l[:]...)
	b = le(b, 0) // scope
	b = portDWORD(b, 40010)
	b = append(b, r[:]...)
	b = le(b, 0)
	b = portDWORD(b, 443)
	b = le(b, uint32(TCPEstab))
	b = le(b, 99)
	got := parseTable6(b)
	want := TCPConn{State: TCPEstab, Local: netip.MustParseAddrPort("[2001:db8::2]:40010"), Remote: netip.MustParseAddrPort("[2001:db8:9::9]:443"), PID: 99}
	if len(got) != 1 || got[0] != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestDeleteTCBRowLayout(t *testing.T) {
	row := deleteTCBRow(TCPConn{Local: netip.MustParseAddrPort("192.0.2.10:40001"), Remote: netip.MustParseAddrPort("198.18.9.9:443")})
	var b []byte
	for _, v := range []uint32{row.State, row.LocalAddr, row.LocalPort, row.RemoteAddr, row.RemotePort} {
		b = le(b, v)
	}
	want := []byte{12, 0, 0, 0, 192, 0, 2, 10, 0x9c, 0x41, 0, 0, 198, 18, 9, 9, 0x01, 0xbb, 0, 0}
	if string(b) != string(want) {
		t.Fatalf("MIB_TCPROW bytes % x, want % x", b, want)
	}
}

func FuzzParseTables(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, 5, 0, 0, 0, 192, 0, 2, 1, 0, 80, 0, 0, 198, 18, 0, 1, 1, 187, 0, 0, 9, 0, 0, 0})
	f.Add([]byte{255, 255, 255, 255})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, c := range append(parseTable4(b), parseTable6(b)...) {
			if !c.Local.Addr().IsValid() || !c.Remote.Addr().IsValid() {
				t.Fatalf("invalid address decoded: %+v", c)
			}
		}
	})
}
