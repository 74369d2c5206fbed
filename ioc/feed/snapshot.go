package feed

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/cordonsec/cordon/ioc"
	"github.com/cordonsec/cordon/ioc/feed/logic"
	"github.com/cordonsec/cordon/ioc/yara"
)

// Snapshot is the compiled state of a set of feed files: the atomic Set,
// the indexed logic trees and the YARA rules. It is immutable and safe for
// concurrent use.
type Snapshot struct {
	atomic *ioc.Set
	trees  *logic.Set
	yara   []YARARules
	files  []FileInfo
}

// FileInfo describes one file in a snapshot.
type FileInfo struct {
	Name       string
	Format     Format
	Indicators int // atomic indicators
	Trees      int // logic trees
	YARA       int // YARA rule sets
	Warnings   []string
}

// Build compiles files into a Snapshot. Files keep their order; a file
// named twice is an error. Files from Parse always compile: an error here
// is a *FileError for a File built by hand with an invalid indicator or
// tree.
func Build(files []*File) (*Snapshot, error) {
	n := 0
	seen := map[string]bool{}
	for _, f := range files {
		if seen[f.Name] {
			return nil, &FileError{File: f.Name, Err: fmt.Errorf("named twice")}
		}
		seen[f.Name] = true
		n += len(f.Indicators)
	}
	b := ioc.NewBuilder(n)
	var trees []*logic.Tree
	s := &Snapshot{}
	for _, f := range files {
		for _, ind := range f.Indicators {
			if err := b.Add(ind); err != nil {
				return nil, &FileError{File: f.Name, Err: err}
			}
		}
		trees = append(trees, f.Trees...)
		s.yara = append(s.yara, f.YARA...)
		s.files = append(s.files, FileInfo{Name: f.Name, Format: f.Format, Indicators: len(f.Indicators),
			Trees: len(f.Trees), YARA: len(f.YARA), Warnings: f.Warnings})
	}
	set, err := b.Build()
	if err != nil {
		return nil, fmt.Errorf("feed: %w", err)
	}
	ts, err := logic.Compile(trees)
	if err != nil {
		return nil, fmt.Errorf("feed: %w", err)
	}
	s.atomic, s.trees = set, ts
	return s, nil
}

// Atomic returns the compiled atomic indicators.
func (s *Snapshot) Atomic() *ioc.Set {
	if s == nil {
		return nil
	}
	return s.atomic
}

// Trees returns the compiled logic trees.
func (s *Snapshot) Trees() *logic.Set {
	if s == nil {
		return nil
	}
	return s.trees
}

// YARA returns the compiled YARA rules the feeds carry, in file order.
// Scan a file's content with them and turn matches into detections with
// yara.NewDetection.
func (s *Snapshot) YARA() []YARARules {
	if s == nil {
		return nil
	}
	return slices.Clone(s.yara)
}

// Files describes the files the snapshot was built from.
func (s *Snapshot) Files() []FileInfo {
	if s == nil {
		return nil
	}
	return slices.Clone(s.files)
}

// Match returns the detections of ev at now: one detection (engine
// atomic) holding every atomic indicator that matched, when any did, then
// one per logic tree that holds (engine openioc or stix, rule the IOC or
// indicator id). Feed entries of other formats that are more than one
// value report engine atomic with their own rule: MISP ip|port and
// regkey|value (rule the attribute uuid, indicator the address or key),
// Loki file name expressions (rule "<list>:<line>", no indicator, as a
// regular expression is no indicator value). Trees are evaluated only when
// the event carries what they need (see logic.Compile).
func (s *Snapshot) Match(ev *ioc.Event, now time.Time) []ioc.Detection {
	if s == nil || ev == nil {
		return nil
	}
	var dets []ioc.Detection
	if matches := s.atomic.AppendMatches(nil, ev, now); len(matches) > 0 {
		if d, err := ioc.NewDetection(*ev, ioc.EngineAtomic, "", 0, matches, now); err == nil {
			dets = append(dets, d)
		}
	}
	for _, r := range s.trees.Eval(ev, now, nil) {
		t := r.Tree
		field := ""
		if r.Field != 0 {
			field = r.Field.String()
		}
		var matches []ioc.Match
		for _, ind := range t.Indicators {
			matches = append(matches, ioc.Match{Indicator: ind, Field: field, Observable: r.Observable})
		}
		if len(matches) == 0 && r.Observable != "" {
			// What the tree matched, so that it matching two files (or
			// two connections) makes two findings.
			matches = append(matches, ioc.Match{Field: field, Observable: r.Observable})
		}
		if d, err := ioc.NewDetection(*ev, t.Engine, t.ID, t.Severity, matches, now); err == nil {
			dets = append(dets, d)
		}
	}
	return dets
}

// ScanYARA scans data, the content ev describes (a file's bytes, a
// process image), with the YARA rules of the feeds and returns one
// detection (engine yara, rule the YARA rule's name) per rule that
// matches. It stops with ctx's error when ctx is done; opts apply to each
// scan (yara.WithTimeout, …).
func (s *Snapshot) ScanYARA(ctx context.Context, ev *ioc.Event, data []byte, now time.Time, opts ...yara.ScanOption) ([]ioc.Detection, error) {
	if s == nil || ev == nil {
		return nil, nil
	}
	var dets []ioc.Detection
	for _, y := range s.yara {
		ms, err := y.Rules.Scan(ctx, data, opts...)
		if err != nil {
			return dets, fmt.Errorf("feed: %s %s: %w", y.Feed, y.Where, err)
		}
		for _, m := range ms {
			d, err := yara.NewDetection(m, *ev, now)
			if err != nil {
				return dets, fmt.Errorf("feed: %s %s: %w", y.Feed, y.Where, err)
			}
			dets = append(dets, d)
		}
	}
	return dets, nil
}
