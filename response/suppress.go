package response

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"
)

// Suppression is the state of one suppression key after a firing.
type Suppression struct {
	// Suppressed is true when the key had already fired in the current
	// window: the rule's actions are not run.
	Suppressed bool `json:"suppressed"`
	// Count is the number of firings in the window, this one included.
	Count int64 `json:"count"`
	// Since is when the window opened (the first firing); it closes at
	// Until = Since + period.
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
}

// SuppressionRecord is what a SuppressionStore keeps per key.
type SuppressionRecord struct {
	Rule   string    `json:"rule"`
	Key    string    `json:"key"`
	Since  time.Time `json:"since"`
	Until  time.Time `json:"until"`
	Count  int64     `json:"count"`
	LastID string    `json:"last_id"`
	// FirstID is the id of the firing that opened the window (empty in
	// records written before it was kept).
	FirstID string `json:"first_id,omitempty"`
}

// SuppressionStore keeps suppression windows per (rule, key).
// Implementations are safe for concurrent use.
type SuppressionStore interface {
	// Hit records a firing of (rule, key) identified by id at now: it
	// opens a window of period when none is open (not suppressed, count
	// 1), and otherwise counts the firing as suppressed. A Hit repeating
	// the id of the window's last firing (a redelivered detection)
	// records nothing and returns the state as that firing left it; so
	// does a Hit repeating the id of the firing that opened the window,
	// which is never suppressed: a detection whose actions failed and that
	// is delivered again still acts, even when others were suppressed in
	// between.
	Hit(ctx context.Context, rule, key, id string, now time.Time, period time.Duration) (Suppression, error)
	// Peek reports what Hit would, recording nothing (for dry runs).
	Peek(ctx context.Context, rule, key string, now time.Time, period time.Duration) (Suppression, error)
}

// SuppressionKey is the store key of (rule, key): a hex SHA-256, safe as a
// NATS KV key whatever the rule name and key hold.
func SuppressionKey(rule, key string) string {
	h := sha256.Sum256([]byte(rule + "\x00" + key))
	return hex.EncodeToString(h[:])
}

// NextSuppression applies a firing to rec (nil when the key has no
// record) and returns the new record and the resulting state. It is the
// rule every store follows; changed is false when nothing is to be
// written (a repeated id).
func NextSuppression(rec *SuppressionRecord, rule, key, id string, now time.Time, period time.Duration) (next SuppressionRecord, s Suppression, changed bool) {
	if rec != nil && now.Before(rec.Until) && !now.Before(rec.Since) {
		if id != "" && rec.FirstID == id {
			return *rec, Suppression{Count: rec.Count, Since: rec.Since, Until: rec.Until}, false
		}
		if id != "" && rec.LastID == id {
			return *rec, Suppression{Suppressed: rec.Count > 1, Count: rec.Count, Since: rec.Since, Until: rec.Until}, false
		}
		next = *rec
		next.Count++
		next.LastID = id
		return next, Suppression{Suppressed: true, Count: next.Count, Since: next.Since, Until: next.Until}, true
	}
	next = SuppressionRecord{Rule: rule, Key: key, Since: now, Until: now.Add(period), Count: 1, LastID: id, FirstID: id}
	return next, Suppression{Count: 1, Since: next.Since, Until: next.Until}, true
}

// MemorySuppressions is a SuppressionStore in memory: its windows end
// with the process (see the bus KV store for windows that survive a
// restart). A closed window is replaced when its key fires again, and
// closed windows are dropped every few thousand hits (or by Prune). The
// zero value is ready; it is safe for concurrent use.
type MemorySuppressions struct {
	mu   sync.Mutex
	m    map[string]SuppressionRecord
	hits int
}

// pruneEvery is how many hits pass between two prunes of closed windows.
const pruneEvery = 4096

// Hit implements SuppressionStore.
func (m *MemorySuppressions) Hit(_ context.Context, rule, key, id string, now time.Time, period time.Duration) (Suppression, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = map[string]SuppressionRecord{}
	}
	k := SuppressionKey(rule, key)
	var prev *SuppressionRecord
	if r, ok := m.m[k]; ok {
		prev = &r
	}
	next, s, changed := NextSuppression(prev, rule, key, id, now, period)
	if changed {
		m.m[k] = next
	}
	if m.hits++; m.hits%pruneEvery == 0 {
		m.pruneLocked(now)
	}
	return s, nil
}

// Peek implements SuppressionStore.
func (m *MemorySuppressions) Peek(_ context.Context, rule, key string, now time.Time, period time.Duration) (Suppression, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var prev *SuppressionRecord
	if r, ok := m.m[SuppressionKey(rule, key)]; ok {
		prev = &r
	}
	_, s, _ := NextSuppression(prev, rule, key, "", now, period)
	return s, nil
}

// Prune drops the windows closed at now and returns how many remain.
func (m *MemorySuppressions) Prune(now time.Time) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pruneLocked(now)
}

func (m *MemorySuppressions) pruneLocked(now time.Time) int {
	for k, r := range m.m {
		if !now.Before(r.Until) {
			delete(m.m, k)
		}
	}
	return len(m.m)
}

// Len is the number of windows kept (open or not yet pruned).
func (m *MemorySuppressions) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.m)
}
