package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cordonsec/cordon/isolation"
)

func TestFileWatcherYARAIsolates(t *testing.T) {
	watch := t.TempDir()
	env := startAgent(t, "", "sources: {files: {dirs: ["+watch+"], settle: 20ms}}\n")
	// The note is written elsewhere and renamed in, so that the watcher
	// sees one complete file: written in place, a stall between the
	// create and the write longer than the settle time (a loaded machine)
	// would make two events, the first of an empty file.
	tmp := filepath.Join(t.TempDir(), "README_RESTORE.txt")
	if err := os.WriteFile(tmp, []byte("Your files have been encrypted!\nsend 2 BTC to get them back\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(watch, "README_RESTORE.txt")); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "isolation after the ransom note", func() bool { return env.a.mgr.Status().State == isolation.StateOn })
	// Both counters are updated before the detection is published, so
	// they are final once the host is isolated.
	m := metricsText(t, env.a.metricsAddr)
	for _, want := range []string{`cordon_agent_events_total{source="files"} 1` + "\n", `cordon_agent_detections_total{engine="yara"} 1` + "\n"} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func testAgent() *agent {
	return &agent{log: slog.New(slog.DiscardHandler), items: make(chan item, 64)}
}

func TestScanProcesses(t *testing.T) {
	root := t.TempDir()
	old := procRoot
	procRoot = root
	t.Cleanup(func() { procRoot = old })
	exe := filepath.Join(root, "xmrig-binary")
	os.WriteFile(exe, []byte("hello world"), 0o755)
	mk := func(pid, stat, cmdline string, link bool) {
		d := filepath.Join(root, pid)
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "stat"), []byte(stat), 0o644)
		os.WriteFile(filepath.Join(d, "cmdline"), []byte(cmdline), 0o644)
		if link {
			os.Symlink(exe, filepath.Join(d, "exe"))
		}
	}
	mk("1", "1 (systemd) S 0 1 1", "/sbin/init\x00", false)
	mk("4242", "4242 (xmrig) S 1 4242 4242", "./xmrig\x00-o\x00pool.example:3333\x00", true)
	a := testAgent()
	seen, hashes := map[int]string{}, map[string]string{}
	if n := scanProcesses(context.Background(), a, seen, hashes); n != 2 {
		t.Fatalf("first scan reported %d processes, want 2", n)
	}
	var got item
	for range 2 {
		it := <-a.items
		if it.ev.Process.PID == 4242 {
			got = it
		}
	}
	p := got.ev.Process
	if p == nil || p.Name != "xmrig-binary" || p.Path != exe || p.ParentPID != 1 || p.ParentName != "systemd" ||
		p.CommandLine != "./xmrig -o pool.example:3333" || p.SHA256 != "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9" {
		t.Fatalf("process event %+v", p)
	}
	if n := scanProcesses(context.Background(), a, seen, hashes); n != 0 {
		t.Fatalf("second scan reported %d processes, want 0 (none is new)", n)
	}
	os.RemoveAll(filepath.Join(root, "4242"))
	mk("4242", "4242 (bash) S 1 4242 4242", "bash\x00", false)
	if n := scanProcesses(context.Background(), a, seen, hashes); n != 1 {
		t.Fatalf("a reused pid with another name was not reported (%d)", n)
	}
}

func TestScanConnections(t *testing.T) {
	root := t.TempDir()
	old := procRoot
	procRoot = root
	t.Cleanup(func() { procRoot = old })
	os.MkdirAll(filepath.Join(root, "net"), 0o755)
	// 10.2.0.15:22 listens; 198.100.0.23:443 is reached from 15.2.0.10:50000
	// (out); 192.0.2.77 reached our port 22 (in); loopback is ignored.
	tcp := "  sl local rem st\n" +
		"0: 0F00020A:0016 00000000:0000 0A 0\n" +
		"1: 0A00020F:C350 170064C6:01BB 01 0\n" +
		"2: 0F00020A:0016 4D0200C0:D000 01 0\n" +
		"3: 0100007F:1F90 0100007F:C000 01 0\n"
	os.WriteFile(filepath.Join(root, "net", "tcp"), []byte(tcp), 0o644)
	os.WriteFile(filepath.Join(root, "net", "udp"), []byte("  sl local rem st\n0: 0A00020F:D431 08080808:0035 01 0\n"), 0o644)
	a := testAgent()
	seen := map[string]bool{}
	scanConnections(context.Background(), a, seen)
	got := map[string]string{}
	for len(a.items) > 0 {
		it := <-a.items
		n := it.ev.Network
		got[n.Protocol+" "+n.RemoteAddress] = n.Direction
	}
	want := map[string]string{"tcp 198.100.0.23": "out", "tcp 192.0.2.77": "in", "udp 8.8.8.8": "out"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
	scanConnections(context.Background(), a, seen)
	if len(a.items) != 0 {
		t.Fatalf("known connections reported again: %d", len(a.items))
	}
}
