package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cordonsec/cordon/ioc"
	"github.com/cordonsec/cordon/ioc/feed"
	"github.com/cordonsec/cordon/ioc/yara"
)

// MatcherConfig configures a Matcher. The zero value is usable.
type MatcherConfig struct {
	// Now is the clock indicators' validity and detections are stamped
	// with. Nil: time.Now.
	Now func() time.Time
	// ReadFiles makes Match read a file event's file (at file.path) for
	// the YARA rules when no content is given. False: YARA rules only see
	// content passed to Match.
	ReadFiles bool
	// MaxScanBytes bounds the content scanned with YARA. Zero: 64 MiB.
	MaxScanBytes int64
	// ScanTimeout bounds one YARA scan. Zero: 30s.
	ScanTimeout time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
}

// YARAFile is one compiled YARA rule file.
type YARAFile struct {
	Path  string
	Rules *yara.Rules
}

// Matcher matches events against feeds of every format (through a
// feed.Loader) and against YARA rule files. It is safe for concurrent use.
type Matcher struct {
	cfg   MatcherConfig
	feeds *feed.Loader

	mu   sync.RWMutex
	yara []YARAFile
}

// NewMatcher returns a Matcher with no feed and no rule.
func NewMatcher(cfg MatcherConfig) (*Matcher, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxScanBytes == 0 {
		cfg.MaxScanBytes = 64 << 20
	}
	if cfg.ScanTimeout == 0 {
		cfg.ScanTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	l, err := feed.NewLoader(feed.Config{Now: cfg.Now, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	return &Matcher{cfg: cfg, feeds: l}, nil
}

// Feeds returns the feed loader, for watching a directory.
func (m *Matcher) Feeds() *feed.Loader { return m.feeds }

// LoadFeedFile loads the feed file at path (any supported format) under its
// base name. The error is a *feed.FileError naming the line or JSON path.
func (m *Matcher) LoadFeedFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return &feed.FileError{File: path, Err: err}
	}
	return m.feeds.Load(filepath.Base(path), data)
}

// LoadFeedDir loads every feed file of dir; the error joins the files that
// failed.
func (m *Matcher) LoadFeedDir(dir string) error {
	if _, err := os.Stat(dir); err != nil {
		return err
	}
	return m.feeds.LoadDir(dir).Err()
}

// IsYARAFile reports whether name looks like a YARA rule file (.yar, .yara).
func IsYARAFile(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	return ext == ".yar" || ext == ".yara"
}

// CompileYARAFile compiles the YARA rule file at path, with includes
// resolved in its directory.
func CompileYARAFile(path string) (YARAFile, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return YARAFile{}, &YARAFileError{Path: path, Err: err}
	}
	r, err := yara.Compile(string(src), yara.WithIncludeDir(filepath.Dir(path)))
	if err != nil {
		return YARAFile{}, &YARAFileError{Path: path, Err: err}
	}
	return YARAFile{Path: path, Rules: r}, nil
}

// LoadYARAFile compiles the YARA rule file at path and adds (or replaces) it.
func (m *Matcher) LoadYARAFile(path string) error {
	f, err := CompileYARAFile(path)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.yara = slices.DeleteFunc(m.yara, func(y YARAFile) bool { return y.Path == path })
	m.yara = append(m.yara, f)
	return nil
}

// LoadYARADir compiles every .yar and .yara file of dir and replaces the
// rule files in force with them; when any file fails nothing changes and
// the errors are joined.
func (m *Matcher) LoadYARADir(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var files []YARAFile
	var errs []error
	for _, e := range ents {
		if e.IsDir() || !IsYARAFile(e.Name()) {
			continue
		}
		f, err := CompileYARAFile(filepath.Join(dir, e.Name()))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		files = append(files, f)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	m.mu.Lock()
	m.yara = files
	m.mu.Unlock()
	return nil
}

// YARARules returns the number of YARA rules in force (files and feeds).
func (m *Matcher) YARARules() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	n := 0
	for _, y := range m.yara {
		n += y.Rules.NumRules()
	}
	for _, y := range m.feeds.Snapshot().YARA() {
		n += y.Rules.NumRules()
	}
	return n
}

// Indicators returns the number of atomic indicators in force.
func (m *Matcher) Indicators() int { return m.feeds.Snapshot().Atomic().Len() }

// Match returns the detections of ev: those of the feeds (atomic indicators
// and logic trees) and, when there is content to scan, one per YARA rule
// (of the rule files and of the feeds) that matches it. content is the
// file's or process image's bytes; when nil and Config.ReadFiles is set,
// a file event's file is read (an unreadable file is an error, returned
// with the feed detections).
func (m *Matcher) Match(ctx context.Context, ev *ioc.Event, content []byte) ([]ioc.Detection, error) {
	now := m.cfg.Now()
	dets := m.feeds.Match(ev)
	if content == nil && m.cfg.ReadFiles && ev.Kind == ioc.EventFile && ev.File != nil && ev.File.Path != "" {
		b, err := readLimited(ev.File.Path, m.cfg.MaxScanBytes)
		if err != nil {
			return dets, fmt.Errorf("scan %s: %w", ev.File.Path, err)
		}
		content = b
	}
	if content == nil {
		return dets, nil
	}
	m.mu.RLock()
	rules := make([]*yara.Rules, 0, len(m.yara))
	for _, y := range m.yara {
		rules = append(rules, y.Rules)
	}
	m.mu.RUnlock()
	for _, y := range m.feeds.Snapshot().YARA() {
		rules = append(rules, y.Rules)
	}
	for _, r := range rules {
		ms, err := r.Scan(ctx, content, yara.WithTimeout(m.cfg.ScanTimeout))
		if err != nil {
			return dets, err
		}
		for _, mt := range ms {
			d, err := yara.NewDetection(mt, *ev, now)
			if err != nil {
				return dets, err
			}
			dets = append(dets, d)
		}
	}
	return dets, nil
}

func readLimited(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("larger than %d bytes", max)
	}
	return b, nil
}
