package feed

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cordonsec/cordon/ioc"
)

// Config configures a Loader. The zero value is usable.
type Config struct {
	// Options say how feed files are read.
	Options Options
	// Logger receives reloads and their errors. Default: discard.
	Logger *slog.Logger
	// Now is the clock Match uses for validity windows. Default: time.Now.
	Now func() time.Time
	// Debounce is how long Watch waits after the last change to a file
	// before reloading, so a file written in several steps is read once;
	// while changes keep coming, it reloads 8 × Debounce after the first.
	// Default: 250ms. Negative is invalid.
	Debounce time.Duration
	// MaxFileSize is the largest feed file read, in bytes. Default: 1 GiB.
	MaxFileSize int64
	// OnReload, when set, is called after each reload attempt with what
	// changed and what failed; from Watch it is called on the watch
	// goroutine. It must not call the Loader's reloading methods.
	OnReload func(Reload)
}

// Validate checks cfg and returns an error wrapping ErrInvalidConfig.
func (c Config) Validate() error {
	if c.Debounce < 0 {
		return fmt.Errorf("%w: Debounce %v is negative", ErrInvalidConfig, c.Debounce)
	}
	if c.MaxFileSize < 0 {
		return fmt.Errorf("%w: MaxFileSize %d is negative", ErrInvalidConfig, c.MaxFileSize)
	}
	if int(c.Options.Severity) > int(ioc.SeverityCritical) {
		return fmt.Errorf("%w: Options.Severity %d is not declared", ErrInvalidConfig, c.Options.Severity)
	}
	return nil
}

// Reload reports one reload attempt.
type Reload struct {
	// Loaded are the files (re)loaded, Removed those dropped.
	Loaded, Removed []string
	// Errors are the files that failed, each a *FileError; the previous
	// content of each stays in force.
	Errors []error
	// Warnings are what the loaded files hold that is not evaluated
	// (unsupported OpenIOC terms, STIX indicators, MISP attribute types).
	Warnings []string
	// Snapshot is the snapshot in force afterwards.
	Snapshot *Snapshot
}

// Err joins Errors, or returns nil.
func (r Reload) Err() error { return errors.Join(r.Errors...) }

// Loader holds the parsed feed files and the snapshot compiled from them.
// Loading or removing a file rebuilds the snapshot and swaps it
// atomically; a file that fails to parse leaves its previous content, and
// the snapshot, in force.
//
// A Loader is safe for concurrent use: Match and Snapshot never block;
// reloads are serialized.
type Loader struct {
	cfg   Config
	log   *slog.Logger
	mu    sync.Mutex // serializes reloads; guards files
	files map[string]*File
	snap  atomic.Pointer[Snapshot]
}

// NewLoader returns a Loader with no feeds, or an error wrapping
// ErrInvalidConfig.
func NewLoader(cfg Config) (*Loader, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Debounce == 0 {
		cfg.Debounce = 250 * time.Millisecond
	}
	if cfg.MaxFileSize == 0 {
		cfg.MaxFileSize = 1 << 30
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Loader{cfg: cfg, log: log, files: map[string]*File{}}
	empty, _ := Build(nil)
	l.snap.Store(empty)
	return l, nil
}

// Snapshot returns the snapshot in force.
func (l *Loader) Snapshot() *Snapshot { return l.snap.Load() }

// Match matches ev against the snapshot in force at the Loader's clock's
// time; see Snapshot.Match.
func (l *Loader) Match(ev *ioc.Event) []ioc.Detection {
	return l.snap.Load().Match(ev, l.cfg.Now())
}

// Load parses data as the feed file name and swaps in a snapshot with it.
// On error (a *FileError) nothing changes; nil data is an empty file (an
// error), not a removal: use Remove.
func (l *Loader) Load(name string, data []byte) error {
	if data == nil {
		data = []byte{}
	}
	r := l.apply(map[string][]byte{filepath.Base(name): data})
	return r.Err()
}

// Remove drops the feed file name and swaps in a snapshot without it. It
// reports whether the file was loaded.
func (l *Loader) Remove(name string) bool {
	name = filepath.Base(name)
	l.mu.Lock()
	_, ok := l.files[name]
	l.mu.Unlock()
	if !ok {
		return false
	}
	l.apply(map[string][]byte{name: nil})
	return true
}

// LoadDir loads every feed file of dir (regular files, or symbolic links
// to them, whose names do not start with "." or end with "~", ".swp",
// ".tmp" or ".part"; not subdirectories) and drops loaded files that are
// no longer there. Files that fail are reported in the Reload; the others
// are loaded.
func (l *Loader) LoadDir(dir string) Reload {
	entries, err := os.ReadDir(dir)
	if err != nil {
		r := Reload{Errors: []error{&FileError{File: dir, Err: err}}, Snapshot: l.Snapshot()}
		l.report(r)
		return r
	}
	names := map[string]bool{}
	for _, e := range entries {
		if ignored(e.Name()) {
			continue
		}
		regular := e.Type().IsRegular()
		if e.Type()&fs.ModeSymlink != 0 {
			// Kubernetes mounts ConfigMap keys as symlinks.
			st, err := os.Stat(filepath.Join(dir, e.Name()))
			regular = err == nil && st.Mode().IsRegular()
		}
		if regular {
			names[e.Name()] = true
		}
	}
	l.mu.Lock()
	for n := range l.files {
		names[n] = true // gone ones are removed by sync
	}
	l.mu.Unlock()
	return l.sync(dir, slices.Sorted(maps.Keys(names)))
}

// ignored reports whether a file name is an editor's or a writer's
// temporary file, or hidden.
func ignored(name string) bool {
	return name == "" || strings.HasPrefix(name, ".") || strings.HasSuffix(name, "~") ||
		strings.HasSuffix(name, ".swp") || strings.HasSuffix(name, ".tmp") || strings.HasSuffix(name, ".part")
}

// sync reads the named files of dir (a missing one is removed) and
// applies them at once.
func (l *Loader) sync(dir string, names []string) Reload {
	changes := map[string][]byte{}
	var readErrs []error
	for _, n := range names {
		data, err := l.read(filepath.Join(dir, n))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			changes[n] = nil
		case err != nil:
			readErrs = append(readErrs, &FileError{File: n, Err: err})
		default:
			changes[n] = data
		}
	}
	return l.applyWith(changes, readErrs)
}

func (l *Loader) read(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fs.ErrNotExist
	}
	if st.Size() > l.cfg.MaxFileSize {
		return nil, fmt.Errorf("%d bytes, more than MaxFileSize %d", st.Size(), l.cfg.MaxFileSize)
	}
	data, err := io.ReadAll(io.LimitReader(f, l.cfg.MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > l.cfg.MaxFileSize {
		return nil, fmt.Errorf("more than MaxFileSize %d bytes", l.cfg.MaxFileSize)
	}
	return data, nil
}

func (l *Loader) apply(changes map[string][]byte) Reload { return l.applyWith(changes, nil) }

// applyWith parses the changed files (nil content: removed), rebuilds and
// swaps the snapshot when anything changed, and reports.
func (l *Loader) applyWith(changes map[string][]byte, errs []error) Reload {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := Reload{Errors: errs}
	next := make(map[string]*File, len(l.files)+len(changes))
	for n, f := range l.files {
		next[n] = f
	}
	for _, n := range slices.Sorted(maps.Keys(changes)) {
		data := changes[n]
		if data == nil {
			if _, ok := next[n]; ok {
				delete(next, n)
				r.Removed = append(r.Removed, n)
			}
			continue
		}
		f, err := Parse(n, data, l.cfg.Options)
		if err != nil {
			r.Errors = append(r.Errors, err)
			continue
		}
		next[n] = f
		r.Loaded = append(r.Loaded, n)
		r.Warnings = append(r.Warnings, f.Warnings...)
	}
	if len(r.Loaded)+len(r.Removed) > 0 {
		files := make([]*File, 0, len(next))
		for _, n := range slices.Sorted(maps.Keys(next)) {
			files = append(files, next[n])
		}
		snap, err := Build(files)
		if err != nil {
			// Keep everything as it was.
			r.Errors = append(r.Errors, err)
			r.Loaded, r.Removed, r.Warnings = nil, nil, nil
		} else {
			l.files = next
			l.snap.Store(snap)
		}
	}
	r.Snapshot = l.snap.Load()
	l.report(r)
	return r
}

func (l *Loader) report(r Reload) {
	for _, err := range r.Errors {
		l.log.Error("feed: not loaded; the previous content stays in force", "err", err)
	}
	for _, w := range r.Warnings {
		l.log.Warn("feed: not evaluated", "what", w)
	}
	if len(r.Loaded)+len(r.Removed) > 0 {
		atomic, trees := 0, 0
		if r.Snapshot != nil {
			atomic, trees = r.Snapshot.Atomic().Len(), r.Snapshot.Trees().Len()
		}
		l.log.Info("feed: reloaded", "loaded", r.Loaded, "removed", r.Removed, "indicators", atomic, "trees", trees)
	}
	if l.cfg.OnReload != nil {
		l.cfg.OnReload(r)
	}
}
