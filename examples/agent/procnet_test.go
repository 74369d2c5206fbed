package main

import (
	"net/netip"
	"testing"
)

const sampleTCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1234 1 0000000000000000 100 0 0 10 0
   1: 0A00020F:C350 170064C6:01BB 01 00000000:00000000 02:000A7D50 00000000  1000        0 5678 2 0000000000000000 20 4 30 10 -1
`

const sampleTCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: B80D01200000000000000000100000000:01BB B80D0120000000000000000001000000:D431 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1
`

func TestParseProcNet(t *testing.T) {
	got, err := parseProcNet([]byte(sampleTCP))
	if err != nil {
		t.Fatal(err)
	}
	want := []socketEntry{
		{Local: netip.MustParseAddrPort("127.0.0.1:22"), Remote: netip.MustParseAddrPort("0.0.0.0:0"), State: tcpListen},
		{Local: netip.MustParseAddrPort("15.2.0.10:50000"), Remote: netip.MustParseAddrPort("198.100.0.23:443"), State: tcpEstablished},
	}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d: got %v, want %v", i, got[i], want[i])
		}
	}
}

func TestParseProcNet6(t *testing.T) {
	// Line 1 has 33 hex digits in the local address: an error naming it.
	if _, err := parseProcNet([]byte(sampleTCP6)); err == nil || err.Error()[:6] != "line 3" {
		t.Fatalf("err %v", err)
	}
	good := `   0: 00000000000000000000000001000000:0016 00000000000000000000000000000000:0000 0A 0
   1: B80D0120000000000000000001000000:01BB B80D0120000000000000000002000000:D431 01 0
   2: 0000000000000000FFFF00000100007F:0035 0000000000000000FFFF0000030200C0:A000 01 0
`
	got, err := parseProcNet([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	want := []socketEntry{
		{Local: netip.MustParseAddrPort("[::1]:22"), Remote: netip.MustParseAddrPort("[::]:0"), State: tcpListen},
		{Local: netip.MustParseAddrPort("[2001:db8::1]:443"), Remote: netip.MustParseAddrPort("[2001:db8::2]:54321"), State: tcpEstablished},
		{Local: netip.MustParseAddrPort("127.0.0.1:53"), Remote: netip.MustParseAddrPort("192.0.2.3:40960"), State: tcpEstablished},
	}
	for i := range want {
		if i >= len(got) || got[i] != want[i] {
			t.Errorf("entry %d: got %v, want %v", i, got, want[i])
		}
	}
}

func TestParseProcStat(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want procStat
		ok   bool
	}{
		{"1234 (bash) S 1000 1234 1234 0 -1", procStat{"bash", 1000}, true},
		{"99 (a (b) c) R 7 1 1", procStat{"a (b) c", 7}, true},
		{"99 bash S 7", procStat{}, false},
		{"99 (x) S", procStat{}, false},
		{"99 (x) S -4", procStat{}, false},
	} {
		got, err := parseProcStat([]byte(tc.in))
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("%q: got %v, %v", tc.in, got, err)
		}
	}
}

func FuzzParseProcNet(f *testing.F) {
	f.Add([]byte(sampleTCP))
	f.Add([]byte(sampleTCP6))
	f.Add([]byte("0: 0:0 0:0 0"))
	f.Fuzz(func(t *testing.T, data []byte) {
		es, err := parseProcNet(data)
		if err == nil {
			for _, e := range es {
				if !e.Local.IsValid() || !e.Remote.IsValid() {
					t.Fatalf("invalid entry %v accepted", e)
				}
			}
		}
		parseProcStat(data)
	})
}
