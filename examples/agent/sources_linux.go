package main

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/cordonsec/cordon/ioc"
)

// procRoot is /proc (tests point it elsewhere).
var procRoot = "/proc"

// startFileWatcher watches the directories (and their subdirectories) for
// new and changed files; each file, once it has not changed for the settle
// time, is hashed and handed with its content to the matchers (YARA).
func startFileWatcher(ctx context.Context, a *agent, cfg *FilesSource) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	var initial []string
	for _, d := range cfg.Dirs {
		err := filepath.WalkDir(d, func(p string, de fs.DirEntry, err error) error {
			if err != nil {
				a.log.Warn("file watch", "path", p, "err", err)
				return nil
			}
			if de.IsDir() {
				if err := w.Add(p); err != nil {
					return fmt.Errorf("watch %s: %w", p, err)
				}
			} else if cfg.InitialScan && de.Type().IsRegular() {
				initial = append(initial, p)
			}
			return nil
		})
		if err != nil {
			w.Close()
			return err
		}
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		defer w.Close()
		if len(initial) > 0 {
			a.initialScan(ctx, initial, cfg.MaxBytes)
		}
		// A changed file is read once it has not changed for the settle
		// time. Each path has at most one pending read; a read whose timer
		// was superseded does nothing, and on shutdown the reads not begun
		// are cancelled and those begun are waited for.
		type pendingRead struct{ t *time.Timer }
		var (
			mu       sync.Mutex
			pending  = map[string]*pendingRead{}
			inflight sync.WaitGroup
		)
		schedule := func(path string) {
			mu.Lock()
			defer mu.Unlock()
			if ctx.Err() != nil {
				return
			}
			if p, ok := pending[path]; ok && p.t.Stop() {
				p.t.Reset(cfg.settle)
				return
			}
			p := &pendingRead{}
			inflight.Add(1)
			p.t = time.AfterFunc(cfg.settle, func() {
				defer inflight.Done()
				mu.Lock()
				current := pending[path] == p
				if current {
					delete(pending, path)
				}
				mu.Unlock()
				if !current || ctx.Err() != nil {
					return
				}
				if it, err := fileItem(path, cfg.MaxBytes); err != nil {
					a.log.Debug("file skipped", "path", path, "err", err)
				} else {
					a.emit(ctx, it)
				}
			})
			pending[path] = p
		}
		defer func() {
			mu.Lock()
			for path, p := range pending {
				if p.t.Stop() {
					inflight.Done()
				}
				delete(pending, path)
			}
			mu.Unlock()
			inflight.Wait()
		}()
		for {
			select {
			case <-ctx.Done():
				return
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				a.log.Warn("file watch", "err", err)
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if !ev.Has(fsnotify.Create) && !ev.Has(fsnotify.Write) && !ev.Has(fsnotify.Rename) && !ev.Has(fsnotify.Chmod) {
					continue
				}
				st, err := os.Lstat(ev.Name)
				if err != nil {
					continue
				}
				if st.IsDir() {
					if ev.Has(fsnotify.Create) {
						// A new directory (made, or moved in) may hold
						// files and directories already, made before
						// its watch was in place: watch its tree and
						// read what is in it.
						watchNewDir(a, w, ev.Name, schedule)
					}
					continue
				}
				if !st.Mode().IsRegular() {
					continue
				}
				schedule(ev.Name)
			}
		}
	}()
	return nil
}

// watchNewDir adds watches on dir and the directories under it, and
// schedules every regular file found in them.
func watchNewDir(a *agent, w *fsnotify.Watcher, dir string, schedule func(string)) {
	filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			a.log.Debug("file watch", "path", p, "err", err)
			return nil
		}
		switch {
		case de.IsDir():
			if err := w.Add(p); err != nil {
				a.log.Warn("file watch", "path", p, "err", err)
				return fs.SkipDir
			}
		case de.Type().IsRegular():
			schedule(p)
		}
		return nil
	})
}

// initialScan hands the files already there to the matchers, reporting
// progress every two seconds.
func (a *agent) initialScan(ctx context.Context, files []string, maxBytes int64) {
	start := time.Now()
	last := start
	a.log.Info("initial file scan", "files", len(files))
	for i, p := range files {
		if ctx.Err() != nil {
			return
		}
		if it, err := fileItem(p, maxBytes); err == nil {
			a.emit(ctx, it)
		}
		if time.Since(last) >= 2*time.Second {
			last = time.Now()
			a.log.Info("initial file scan", "done", i+1, "files", len(files),
				"percent", fmt.Sprintf("%.0f", float64(i+1)*100/float64(len(files))), "elapsed", time.Since(start).Round(time.Second))
		}
	}
	a.log.Info("initial file scan done", "files", len(files), "elapsed", time.Since(start).Round(time.Millisecond))
}

// fileItem reads a file, hashes it and makes its file event.
func fileItem(path string, maxBytes int64) (item, error) {
	f, err := os.Open(path)
	if err != nil {
		return item{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return item{}, err
	}
	if !st.Mode().IsRegular() {
		return item{}, fmt.Errorf("not a regular file")
	}
	if st.Size() > maxBytes {
		return item{}, fmt.Errorf("%d bytes, above %d", st.Size(), maxBytes)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxBytes+1))
	if err != nil {
		return item{}, err
	}
	m5, s1, s256, s512 := md5.Sum(data), sha1.Sum(data), sha256.Sum256(data), sha512.Sum512(data)
	ev := ioc.Event{Schema: ioc.EventSchema, ID: newEventID("file"), Time: time.Now().UTC(), Kind: ioc.EventFile,
		File: &ioc.FileEvent{Path: path, Name: filepath.Base(path), Size: int64(len(data)),
			MD5: hex.EncodeToString(m5[:]), SHA1: hex.EncodeToString(s1[:]), SHA256: hex.EncodeToString(s256[:]), SHA512: hex.EncodeToString(s512[:])}}
	return item{source: "files", ev: ev, content: data}, nil
}

// startProcessScanner reports each new process found in /proc.
func startProcessScanner(ctx context.Context, a *agent, interval time.Duration) error {
	if _, err := os.Stat(procRoot); err != nil {
		return err
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		seen := map[int]string{} // pid -> comm, to tell a reused pid
		hashes := map[string]string{}
		first := true
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			start := time.Now()
			n := scanProcesses(ctx, a, seen, hashes)
			if first {
				a.log.Info("process scan", "processes", len(seen), "reported", n, "elapsed", time.Since(start).Round(time.Millisecond))
				first = false
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return nil
}

func scanProcesses(ctx context.Context, a *agent, seen map[int]string, hashes map[string]string) int {
	ents, err := os.ReadDir(procRoot)
	if err != nil {
		a.log.Warn("process scan", "err", err)
		return 0
	}
	alive := map[int]bool{}
	n := 0
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		alive[pid] = true
		b, err := os.ReadFile(filepath.Join(procRoot, e.Name(), "stat"))
		if err != nil {
			continue
		}
		st, err := parseProcStat(b)
		if err != nil {
			continue
		}
		if c, ok := seen[pid]; ok && c == st.Comm {
			continue
		}
		seen[pid] = st.Comm
		pe := &ioc.ProcessEvent{PID: pid, Name: st.Comm, ParentPID: st.PPID}
		if exe, err := os.Readlink(filepath.Join(procRoot, e.Name(), "exe")); err == nil {
			pe.Path = strings.TrimSuffix(exe, " (deleted)")
			pe.Name = filepath.Base(pe.Path)
			pe.SHA256 = hashFile(hashes, filepath.Join(procRoot, e.Name(), "exe"), pe.Path)
		}
		if cl, err := os.ReadFile(filepath.Join(procRoot, e.Name(), "cmdline")); err == nil {
			pe.CommandLine = strings.TrimSpace(strings.ReplaceAll(string(cl), "\x00", " "))
		}
		if pb, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(st.PPID), "stat")); err == nil {
			if ps, err := parseProcStat(pb); err == nil {
				pe.ParentName = ps.Comm
			}
		}
		a.emit(ctx, item{source: "processes", ev: ioc.Event{Schema: ioc.EventSchema, ID: newEventID("proc"), Time: time.Now().UTC(),
			Kind: ioc.EventProcess, Process: pe}})
		n++
	}
	for pid := range seen {
		if !alive[pid] {
			delete(seen, pid)
		}
	}
	return n
}

// hashFile returns the SHA-256 of the file at open (the process image,
// /proc/<pid>/exe), cached by path and by the identity and version of the
// file (device, inode, size, modification and change times): a binary
// replaced or rewritten at the same path is hashed again, not reported
// with the hash of the one it replaced.
func hashFile(cache map[string]string, open, path string) string {
	f, err := os.Open(open)
	if err != nil {
		return ""
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	key := path
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		key = fmt.Sprintf("%s\x00%d:%d:%d:%d.%d:%d.%d", path, st.Dev, st.Ino, st.Size,
			st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec)
	} else {
		key = fmt.Sprintf("%s\x00%d:%d", path, fi.Size(), fi.ModTime().UnixNano())
	}
	if h, ok := cache[key]; ok {
		return h
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(f, 256<<20)); err != nil {
		return ""
	}
	s := hex.EncodeToString(h.Sum(nil))
	if len(cache) > 10000 {
		clear(cache)
	}
	cache[key] = s
	return s
}

// startConnectionScanner reports each new connection with a remote end
// found in /proc/net/{tcp,tcp6,udp,udp6}.
func startConnectionScanner(ctx context.Context, a *agent, interval time.Duration) error {
	if _, err := os.Stat(filepath.Join(procRoot, "net", "tcp")); err != nil {
		return err
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		seen := map[string]bool{}
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			scanConnections(ctx, a, seen)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return nil
}

func scanConnections(ctx context.Context, a *agent, seen map[string]bool) {
	now := map[string]bool{}
	for _, proto := range []string{"tcp", "udp"} {
		var entries []socketEntry
		for _, f := range []string{proto, proto + "6"} {
			b, err := os.ReadFile(filepath.Join(procRoot, "net", f))
			if err != nil {
				continue
			}
			es, err := parseProcNet(b)
			if err != nil {
				a.log.Warn("connection scan", "file", f, "err", err)
				continue
			}
			entries = append(entries, es...)
		}
		listening := map[uint16]bool{}
		for _, e := range entries {
			if (proto == "tcp" && e.State == tcpListen) || (proto == "udp" && e.Remote.Addr().IsUnspecified()) {
				listening[e.Local.Port()] = true
			}
		}
		for _, e := range entries {
			if e.Remote.Addr().IsUnspecified() || e.Remote.Port() == 0 {
				continue
			}
			if proto == "tcp" && e.State != tcpEstablished && e.State != tcpSynSent {
				continue
			}
			if e.Remote.Addr().IsLoopback() {
				continue
			}
			key := proto + " " + e.Local.String() + " " + e.Remote.String()
			now[key] = true
			if seen[key] {
				continue
			}
			dir := "out"
			if listening[e.Local.Port()] {
				dir = "in"
			}
			a.emit(ctx, item{source: "connections", ev: connectionEvent(proto, dir, e.Local, e.Remote)})
		}
	}
	clear(seen)
	for k := range now {
		seen[k] = true
	}
}

func connectionEvent(proto, dir string, local, remote netip.AddrPort) ioc.Event {
	return ioc.Event{Schema: ioc.EventSchema, ID: newEventID("conn"), Time: time.Now().UTC(), Kind: ioc.EventNetwork,
		Network: &ioc.NetworkEvent{Protocol: proto, Direction: dir,
			LocalAddress: local.Addr().String(), LocalPort: int(local.Port()),
			RemoteAddress: remote.Addr().String(), RemotePort: int(remote.Port())}}
}
