package ioc

import (
	"sync/atomic"
	"time"
)

// A Matcher holds the current Set and matches events against it. Swap
// replaces the Set atomically: a Match in progress finishes on the Set it
// started with, later ones see the new Set, and readers never lock.
//
// A Matcher is safe for concurrent use. The zero Matcher is usable: an
// empty set and time.Now, until a Swap.
type Matcher struct {
	set atomic.Pointer[Set]
	now func() time.Time
}

// MatcherConfig configures a Matcher. The zero value is usable.
type MatcherConfig struct {
	// Now is the clock that decides which indicators are within their
	// validity window. Default: time.Now.
	Now func() time.Time
	// Set is the initial set. Default: an empty set.
	Set *Set
}

// NewMatcher returns a Matcher with cfg's clock and initial set.
func NewMatcher(cfg MatcherConfig) *Matcher {
	m := &Matcher{now: cfg.Now}
	if m.now == nil {
		m.now = time.Now
	}
	if cfg.Set == nil {
		cfg.Set = &Set{}
	}
	m.set.Store(cfg.Set)
	return m
}

// Swap makes s the current set and returns the previous one. A nil s is an
// empty set.
func (m *Matcher) Swap(s *Set) *Set {
	if s == nil {
		s = &Set{}
	}
	return m.set.Swap(s)
}

// Set returns the current set (an empty one on the zero Matcher).
func (m *Matcher) Set() *Set {
	if s := m.set.Load(); s != nil {
		return s
	}
	return &Set{}
}

// Match returns the matches of ev in the current set, at the Matcher's
// clock's time.
func (m *Matcher) Match(ev *Event) []Match {
	return m.AppendMatches(nil, ev)
}

// AppendMatches is Match appending to dst, for callers that reuse a slice.
func (m *Matcher) AppendMatches(dst []Match, ev *Event) []Match {
	s := m.set.Load()
	if s == nil {
		return dst
	}
	now := m.now
	if now == nil {
		now = time.Now
	}
	return s.AppendMatches(dst, ev, now())
}
