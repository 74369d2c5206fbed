package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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

// TestScanProcessesRehashesReplacedImage: a new process whose image was
// replaced at the same path since an earlier process ran from it carries
// the new image's hash, not the cached one of the old image.
func TestScanProcessesRehashesReplacedImage(t *testing.T) {
	root := t.TempDir()
	old := procRoot
	procRoot = root
	t.Cleanup(func() { procRoot = old })
	bin := filepath.Join(t.TempDir(), "tool")
	mk := func(pid string) {
		d := filepath.Join(root, pid)
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "stat"), []byte(pid+" (tool) S 1 1 1"), 0o644)
		os.WriteFile(filepath.Join(d, "cmdline"), []byte("tool\x00"), 0o644)
		os.Symlink(bin, filepath.Join(d, "exe"))
	}
	hashOf := func(a *agent) string {
		t.Helper()
		it := <-a.items
		return it.ev.Process.SHA256
	}
	const sumHW = "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9" // "hello world"
	if err := os.WriteFile(bin, []byte("hello world"), 0o755); err != nil {
		t.Fatal(err)
	}
	a := testAgent()
	seen, hashes := map[int]string{}, map[string]string{}
	mk("100")
	scanProcesses(context.Background(), a, seen, hashes)
	if got := hashOf(a); got != sumHW {
		t.Fatalf("first image: %s", got)
	}
	// Replaced by rename (a new inode), same size and modification time.
	st, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	tmp := bin + ".new"
	if err := os.WriteFile(tmp, []byte("hello xorld"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatal(err)
	}
	want := sha256Hex("hello xorld")
	mk("101")
	scanProcesses(context.Background(), a, seen, hashes)
	if got := hashOf(a); got != want {
		t.Fatalf("replaced image reported with hash %s, want %s", got, want)
	}
	// Rewritten in place (same inode, modification time put back; the
	// size differs, as the timestamps may not within a clock tick).
	if err := os.WriteFile(bin, []byte("hello world, again"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(bin, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	mk("102")
	scanProcesses(context.Background(), a, seen, hashes)
	if got, want := hashOf(a), sha256Hex("hello world, again"); got != want {
		t.Fatalf("image rewritten in place reported with hash %s, want %s", got, want)
	}
	// Unchanged: the cache answers (the same hash).
	mk("103")
	scanProcesses(context.Background(), a, seen, hashes)
	if got, want := hashOf(a), sha256Hex("hello world, again"); got != want || len(hashes) != 3 {
		t.Fatalf("unchanged image: hash %s (want %s), %d cache entries (want 3)", got, want, len(hashes))
	}
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// TestFileWatcherNewDirectoryContents: a directory tree moved into a
// watched directory (an archive extracted elsewhere, then moved) is
// read: its files were there before any watch on it could report them.
func TestFileWatcherNewDirectoryContents(t *testing.T) {
	watch := t.TempDir()
	env := startAgent(t, "", "sources: {files: {dirs: ["+watch+"], settle: 20ms}}\n")
	tree := filepath.Join(t.TempDir(), "extracted")
	nested := filepath.Join(tree, "docs", "2026")
	if err := os.MkdirAll(nested, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(nested, "README_RESTORE.txt"), []byte("Your files have been encrypted!\nsend 2 BTC to get them back\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tree, filepath.Join(watch, "extracted")); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "isolation after the ransom note in the moved tree", func() bool { return env.a.mgr.Status().State == isolation.StateOn })
	// The new directories are watched too: a file written later in one
	// is read.
	m := waitMetrics(t, env.a.metricsAddr, `cordon_agent_detections_total{engine="yara"} 1`+"\n")
	if !strings.Contains(m, `cordon_agent_events_total{source="files"} 1`+"\n") {
		t.Errorf("metrics: want one file event:\n%s", m)
	}
	tmp := filepath.Join(t.TempDir(), "note2.txt")
	if err := os.WriteFile(tmp, []byte("YOUR FILES HAVE BEEN ENCRYPTED again: send 3 BTC\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(watch, "extracted", "docs", "2026", "note2.txt")); err != nil {
		t.Fatal(err)
	}
	waitMetrics(t, env.a.metricsAddr, `cordon_agent_detections_total{engine="yara"} 2`+"\n", `cordon_agent_events_total{source="files"} 2`+"\n")
}
