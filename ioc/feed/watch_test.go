package feed

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cordonsec/cordon/ioc"
	"github.com/cordonsec/cordon/ioc/feed/feedtest"
	"github.com/fsnotify/fsnotify"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recorder collects reload reports.
type recorder struct {
	mu sync.Mutex
	rs []Reload
}

func (r *recorder) add(x Reload) {
	r.mu.Lock()
	r.rs = append(r.rs, x)
	r.mu.Unlock()
}

func (r *recorder) all() []Reload {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Reload(nil), r.rs...)
}

func TestWatchLoopDebounce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		rec := &recorder{}
		l, err := NewLoader(Config{Debounce: time.Second, OnReload: rec.add, Now: func() time.Time { return t0 }})
		require.NoError(t, err)
		events := make(chan fsnotify.Event)
		errs := make(chan error)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			l.watchLoop(ctx, dir, events, errs)
		}()
		path := filepath.Join(dir, "feed.csv")
		ev := feedtest.Event(ioc.EventDNS, "linux")

		// A file written in two steps within the debounce is read once,
		// whole.
		write(t, dir, "feed.csv", "type,value\n")
		events <- fsnotify.Event{Name: path, Op: fsnotify.Create}
		time.Sleep(500 * time.Millisecond)
		write(t, dir, "feed.csv", "type,value\ndomain,watched.example\n")
		events <- fsnotify.Event{Name: path, Op: fsnotify.Write}
		events <- fsnotify.Event{Name: filepath.Join(dir, ".feed.csv.swp"), Op: fsnotify.Create}
		events <- fsnotify.Event{Name: path, Op: fsnotify.Chmod}
		time.Sleep(999 * time.Millisecond)
		synctest.Wait()
		assert.Empty(t, rec.all(), "no reload before the debounce has passed")
		time.Sleep(time.Millisecond)
		synctest.Wait()
		rs := rec.all()
		require.Len(t, rs, 1)
		assert.Equal(t, []string{"feed.csv"}, rs[0].Loaded)
		ev.DNS = &ioc.DNSEvent{Query: "watched.example"}
		assert.Len(t, l.Match(&ev), 1)

		// A bad write keeps the previous content and reports the line.
		write(t, dir, "feed.csv", "type,value\ndomain,other.example\ndomain,bad..example\n")
		events <- fsnotify.Event{Name: path, Op: fsnotify.Write}
		time.Sleep(time.Second)
		synctest.Wait()
		rs = rec.all()
		require.Len(t, rs, 2)
		require.Len(t, rs[1].Errors, 1)
		assert.Contains(t, rs[1].Errors[0].Error(), "feed.csv:3:")
		assert.Len(t, l.Match(&ev), 1)

		// Removal drops it.
		require.NoError(t, os.Remove(path))
		events <- fsnotify.Event{Name: path, Op: fsnotify.Remove}
		time.Sleep(time.Second)
		synctest.Wait()
		rs = rec.all()
		require.Len(t, rs, 3)
		assert.Equal(t, []string{"feed.csv"}, rs[2].Removed)
		assert.Empty(t, l.Match(&ev))

		// Watcher errors are reported; events outside dir are ignored.
		errs <- os.ErrPermission
		events <- fsnotify.Event{Name: filepath.Join(dir, "sub", "x.csv"), Op: fsnotify.Create}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		rs = rec.all()
		require.Len(t, rs, 4)
		assert.ErrorIs(t, rs[3].Err(), os.ErrPermission)

		cancel()
		<-done
	})
}

// TestWatchLoopOverflowAndDirGone: an event overflow (events lost)
// rereads the whole directory; the directory's removal is reported and
// ends the loop, keeping what was loaded.
func TestWatchLoopOverflowAndDirGone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		rec := &recorder{}
		l, err := NewLoader(Config{Debounce: time.Second, OnReload: rec.add, Now: func() time.Time { return t0 }})
		require.NoError(t, err)
		events := make(chan fsnotify.Event)
		errs := make(chan error)
		done := make(chan struct{})
		go func() {
			defer close(done)
			l.watchLoop(t.Context(), dir, events, errs)
		}()
		// Written without an event reaching the loop: only the overflow
		// says something changed.
		write(t, dir, "lost.csv", "type,value\ndomain,lost.example\n")
		errs <- fsnotify.ErrEventOverflow
		time.Sleep(time.Second)
		synctest.Wait()
		rs := rec.all()
		require.Len(t, rs, 2)
		assert.ErrorIs(t, rs[0].Err(), fsnotify.ErrEventOverflow)
		assert.Equal(t, []string{"lost.csv"}, rs[1].Loaded)
		ev := feedtest.Event(ioc.EventDNS, "linux")
		ev.DNS = &ioc.DNSEvent{Query: "lost.example"}
		assert.Len(t, l.Match(&ev), 1)

		events <- fsnotify.Event{Name: dir, Op: fsnotify.Remove}
		<-done
		rs = rec.all()
		require.Len(t, rs, 3)
		assert.ErrorContains(t, rs[2].Err(), "the directory was removed or renamed")
		assert.Len(t, l.Match(&ev), 1, "the loaded feeds stay in force")
	})
}

// TestWatchLoopMaxWait: a file that changes all the time does not hold
// back the reload of the others past 8 debounce periods.
func TestWatchLoopMaxWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		rec := &recorder{}
		l, err := NewLoader(Config{Debounce: time.Second, OnReload: rec.add, Now: func() time.Time { return feedtest.T0 }})
		require.NoError(t, err)
		events := make(chan fsnotify.Event)
		done := make(chan struct{})
		go func() {
			defer close(done)
			l.watchLoop(t.Context(), dir, events, nil)
		}()
		write(t, dir, "feed.csv", "type,value\ndomain,steady.example\n")
		events <- fsnotify.Event{Name: filepath.Join(dir, "feed.csv"), Op: fsnotify.Create}
		start := time.Now()
		busy := filepath.Join(dir, "busy.csv")
		for len(rec.all()) == 0 {
			require.Less(t, time.Since(start), 9*time.Second, "no reload while busy.csv keeps changing")
			write(t, dir, "busy.csv", "type,value\n")
			events <- fsnotify.Event{Name: busy, Op: fsnotify.Write}
			time.Sleep(500 * time.Millisecond)
			synctest.Wait()
		}
		assert.Equal(t, 8*time.Second, time.Since(start).Round(500*time.Millisecond))
		assert.Contains(t, rec.all()[0].Loaded, "feed.csv")
		ev := feedtest.Event(ioc.EventDNS, "linux")
		ev.DNS = &ioc.DNSEvent{Query: "steady.example"}
		assert.Len(t, l.Match(&ev), 1)
	})
}

// TestWatchReal runs the watch on a real directory with fsnotify. It waits
// for the reload reports, not for timers.
func TestWatchReal(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "first.csv", "type,value\nmutex,first-mx\n")
	reloads := make(chan Reload, 16)
	l, err := NewLoader(Config{Debounce: time.Millisecond, OnReload: func(r Reload) { reloads <- r }})
	require.NoError(t, err)
	w, first, err := l.Watch(t.Context(), dir)
	require.NoError(t, err)
	defer w.Stop()
	assert.Equal(t, []string{"first.csv"}, first.Loaded)
	<-reloads // the first load's report

	// Write atomically, as feed updaters should: temp file, then rename.
	tmp := filepath.Join(dir, ".second.csv.tmp")
	require.NoError(t, os.WriteFile(tmp, []byte("type,value\nmutex,second-mx\n"), 0o644))
	require.NoError(t, os.Rename(tmp, filepath.Join(dir, "second.csv")))
	wait := time.After(20 * time.Second)
	for loaded := false; !loaded; {
		select {
		case r := <-reloads:
			require.NoError(t, r.Err())
			loaded = len(r.Loaded) == 1 && r.Loaded[0] == "second.csv"
		case <-wait:
			t.Fatal("no reload of second.csv")
		}
	}
	ev := feedtest.Event(ioc.EventMutex, "windows")
	ev.Mutex = &ioc.MutexEvent{Name: "second-mx"}
	assert.Len(t, l.Match(&ev), 1)
	ev.Mutex.Name = "first-mx"
	assert.Len(t, l.Match(&ev), 1)
	w.Stop()
	w.Stop()
	<-w.Done()
	_, _, err = l.Watch(t.Context(), filepath.Join(dir, "missing"))
	assert.Error(t, err)
}

// TestWatchConfigMap follows a Kubernetes ConfigMap volume update: every
// file is a link through "..data", which is swapped at once.
func TestWatchConfigMap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		mk := func(version, content string) {
			require.NoError(t, os.Mkdir(filepath.Join(dir, version), 0o755))
			write(t, filepath.Join(dir, version), "feed.csv", content)
		}
		mk("..v1", "type,value\nmutex,cm-one\n")
		require.NoError(t, os.Symlink("..v1", filepath.Join(dir, "..data")))
		require.NoError(t, os.Symlink(filepath.Join("..data", "feed.csv"), filepath.Join(dir, "feed.csv")))
		rec := &recorder{}
		l, err := NewLoader(Config{Debounce: time.Second, OnReload: rec.add})
		require.NoError(t, err)
		r := l.LoadDir(dir)
		require.NoError(t, r.Err())
		require.Equal(t, []string{"feed.csv"}, r.Loaded)

		events := make(chan fsnotify.Event)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			l.watchLoop(ctx, dir, events, nil)
		}()
		mk("..v2", "type,value\nmutex,cm-two\n")
		require.NoError(t, os.Symlink("..v2", filepath.Join(dir, "..data_tmp")))
		require.NoError(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
		events <- fsnotify.Event{Name: filepath.Join(dir, "..data"), Op: fsnotify.Create}
		time.Sleep(time.Second)
		synctest.Wait()
		rs := rec.all()
		require.Len(t, rs, 2)
		assert.Equal(t, []string{"feed.csv"}, rs[1].Loaded)
		ev := feedtest.Event(ioc.EventMutex, "linux")
		ev.Mutex = &ioc.MutexEvent{Name: "cm-two"}
		assert.Len(t, l.Match(&ev), 1)
		ev.Mutex.Name = "cm-one"
		assert.Empty(t, l.Match(&ev))
		cancel()
		<-done
	})
}

// TestMatchDuringReloads matches from several goroutines while the feed is
// replaced: every Match sees one whole snapshot, the old or the new.
func TestMatchDuringReloads(t *testing.T) {
	l, err := NewLoader(Config{})
	require.NoError(t, err)
	feeds := [][]byte{
		[]byte("type,value\nmutex,swap-a\nmutex,swap-both\n"),
		[]byte("type,value\nmutex,swap-b\nmutex,swap-both\n"),
	}
	require.NoError(t, l.Load("s.csv", feeds[0]))
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := feedtest.Event(ioc.EventMutex, "linux")
			a.Mutex = &ioc.MutexEvent{Name: "swap-both"}
			for ctx.Err() == nil {
				if len(l.Match(&a)) != 1 {
					t.Error("swap-both not matched during a reload")
					return
				}
				snap := l.Snapshot()
				if n := snap.Atomic().Len(); n != 2 {
					t.Errorf("a snapshot with %d indicators", n)
					return
				}
			}
		}()
	}
	for i := range 200 {
		require.NoError(t, l.Load("s.csv", feeds[i%2]))
	}
	cancel()
	wg.Wait()
}
