package feed

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watch is a running directory watch; see Loader.Watch.
type Watch struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// Stop ends the watch and waits for it to finish. It is idempotent.
func (w *Watch) Stop() {
	w.cancel()
	<-w.done
}

// Done is closed when the watch has ended (Stop, or ctx done).
func (w *Watch) Done() <-chan struct{} { return w.done }

// Watch loads every feed file of dir (as LoadDir) and then watches dir:
// after a file is created, written, renamed or removed and Config.Debounce
// has passed without another change (or at the latest 8 × Debounce after
// the first change, when changes keep coming), the changed files are
// reloaded at once and the snapshot swapped; a file that fails keeps its previous
// content and is reported (Config.OnReload, Config.Logger). Subdirectories
// are not watched. A change to a name starting with ".." (the "..data"
// link of a Kubernetes ConfigMap volume), or a lost-events overflow of the
// watcher, reloads the whole directory. Only dir's entries are watched: a
// change to the target of a symbolic link that lives elsewhere is seen at
// the next change in dir. When dir itself is removed or renamed the watch
// reports it and ends (Done is closed); the feeds loaded stay in force. It
// returns the first load's report, and an error when dir cannot be
// watched. The watch runs until ctx is done or Stop.
func (l *Loader) Watch(ctx context.Context, dir string) (*Watch, Reload, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, Reload{}, fmt.Errorf("feed: watch %s: %w", dir, err)
	}
	if err := fw.Add(dir); err != nil {
		fw.Close()
		return nil, Reload{}, fmt.Errorf("feed: watch %s: %w", dir, err)
	}
	// Load after the watch is in place, so no change falls between.
	first := l.LoadDir(dir)
	ctx, cancel := context.WithCancel(ctx)
	w := &Watch{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		defer fw.Close()
		l.watchLoop(ctx, dir, fw.Events, fw.Errors)
	}()
	return w, first, nil
}

// watchLoop debounces file events and reloads the files they name. It
// returns when ctx is done or events is closed.
func (l *Loader) watchLoop(ctx context.Context, dir string, events <-chan fsnotify.Event, errs <-chan error) {
	pending := map[string]bool{}
	all := false // reload every file of dir
	// The debounce timer; time's timers are faked by testing/synctest.
	t := time.NewTimer(l.cfg.Debounce)
	t.Stop()
	defer t.Stop()
	var timer <-chan time.Time
	// arm starts or extends the debounce, but never past MaxWait after
	// the first change not yet reloaded: a file that changes all the time
	// must not hold back the others.
	var first time.Time
	arm := func() {
		now := time.Now()
		if timer == nil {
			first = now
		}
		t.Reset(min(l.cfg.Debounce, first.Add(l.maxWait()).Sub(now)))
		timer = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			if filepath.Clean(ev.Name) == filepath.Clean(dir) && ev.Op&(fsnotify.Remove|fsnotify.Rename) != 0 {
				// The kernel drops the watch with the directory: say so
				// and end, rather than go on watching nothing.
				l.watchFailed(dir, errors.New("the directory was removed or renamed; the watch ends and the feeds loaded stay in force"))
				return
			}
			if filepath.Clean(filepath.Dir(ev.Name)) != filepath.Clean(dir) {
				continue
			}
			name := filepath.Base(ev.Name)
			switch {
			case ev.Op == fsnotify.Chmod:
				continue
			case strings.HasPrefix(name, ".."):
				// A Kubernetes ConfigMap update swaps the "..data" link
				// that every file links through: read the whole directory.
				all = true
			case ignored(name):
				continue
			default:
				pending[name] = true
			}
			arm()
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			l.watchFailed(dir, err)
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				// Events were lost: read the whole directory again.
				all = true
				arm()
			}
		case <-timer:
			timer = nil
			if all {
				all = false
				clear(pending)
				l.LoadDir(dir)
				continue
			}
			names := slices.Sorted(maps.Keys(pending))
			clear(pending)
			l.sync(dir, names)
		}
	}
}

// watchFailed reports a watch error (not a file's).
func (l *Loader) watchFailed(dir string, err error) {
	l.log.Error("feed: watch error", "dir", dir, "err", err)
	if l.cfg.OnReload != nil {
		l.cfg.OnReload(Reload{Errors: []error{&FileError{File: dir, Err: err}}, Snapshot: l.Snapshot()})
	}
}

// maxWait is the longest a change waits for its reload while more changes
// keep coming: 8 debounce periods.
func (l *Loader) maxWait() time.Duration { return 8 * l.cfg.Debounce }
