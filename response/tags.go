package response

import (
	"context"
	"slices"
	"sync"
	"time"
)

// TagReader is implemented by a Tagger whose tags rules can see: the
// engine puts the host's tags in force in host.tags.
type TagReader interface {
	// HostTags returns the host's tags in force at now, sorted.
	HostTags(host string, now time.Time) []string
}

// MemoryTags is a Tagger and TagReader in memory: each (host, tag) has an
// expiry; tagging again keeps the later one. Expired tags are dropped as
// the host is read, and those of every host every few thousand reads, so
// that hosts tagged once and never seen again do not pile up. The zero
// value is ready; it is safe for concurrent use.
type MemoryTags struct {
	mu    sync.Mutex
	m     map[string]map[string]time.Time
	reads int
}

// Tag implements Tagger.
func (t *MemoryTags) Tag(_ context.Context, host, tag string, until time.Time) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[string]map[string]time.Time{}
	}
	tags := t.m[host]
	if tags == nil {
		tags = map[string]time.Time{}
		t.m[host] = tags
	}
	if cur, ok := tags[tag]; !ok || until.After(cur) {
		tags[tag] = until
	}
	return nil
}

// HostTags implements TagReader.
func (t *MemoryTags) HostTags(host string, now time.Time) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	tags := t.m[host]
	var out []string
	for tag, until := range tags {
		if now.Before(until) {
			out = append(out, tag)
		} else {
			delete(tags, tag)
		}
	}
	if len(tags) == 0 {
		delete(t.m, host)
	}
	if t.reads++; t.reads%pruneEvery == 0 {
		t.pruneLocked(now)
	}
	slices.Sort(out)
	return out
}

// Len is the number of hosts with tags kept (in force or not yet dropped).
func (t *MemoryTags) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

func (t *MemoryTags) pruneLocked(now time.Time) {
	for host, tags := range t.m {
		for tag, until := range tags {
			if !now.Before(until) {
				delete(tags, tag)
			}
		}
		if len(tags) == 0 {
			delete(t.m, host)
		}
	}
}
