package response_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cordonsec/cordon/response"
)

func TestMemorySuppressions(t *testing.T) {
	ctx := context.Background()
	var m response.MemorySuppressions
	tests := []struct {
		name       string
		key, id    string
		at         time.Duration
		suppressed bool
		count      int64
	}{
		{"first opens", "k", "a", 0, false, 1},
		{"second within", "k", "b", 10 * time.Minute, true, 2},
		{"same id again", "k", "b", 11 * time.Minute, true, 2},
		{"third within", "k", "b2", 11 * time.Minute, true, 3},
		{"the opener again acts (redelivered after a failure)", "k", "a", 12 * time.Minute, false, 3},
		{"other key", "k2", "c", 12 * time.Minute, false, 1},
		{"at the end of the window", "k", "d", time.Hour, false, 1},
		{"a new window counts anew", "k", "e", time.Hour + time.Minute, true, 2},
	}
	for _, tc := range tests {
		s, err := m.Hit(ctx, "r", tc.key, tc.id, t0.Add(tc.at), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if s.Suppressed != tc.suppressed || s.Count != tc.count {
			t.Fatalf("%s: %+v", tc.name, s)
		}
	}
	if p, _ := m.Peek(ctx, "r", "k", t0.Add(time.Hour+2*time.Minute), time.Hour); !p.Suppressed || p.Count != 3 {
		t.Fatalf("peek %+v", p)
	}
	if n := m.Prune(t0.Add(3 * time.Hour)); n != 0 {
		t.Fatalf("%d windows left after all closed", n)
	}
	// Hits prune closed windows by themselves.
	for i := range 5000 {
		if _, err := m.Hit(ctx, "r", fmt.Sprint(i), "x", t0.Add(time.Duration(i)*time.Second), time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if n := m.Len(); n >= 1000 {
		t.Fatalf("%d windows kept after 5000 one-second windows", n)
	}
}

func TestSuppressionKey(t *testing.T) {
	a := response.SuppressionKey("r", "k")
	if len(a) != 64 || a == response.SuppressionKey("r", "k2") || a == response.SuppressionKey("r2", "k") || a != response.SuppressionKey("r", "k") {
		t.Fatal(a)
	}
}

// MemoryTags drops the expired tags of hosts that are never read again.
func TestMemoryTagsPrunes(t *testing.T) {
	ctx := context.Background()
	var m response.MemoryTags
	for i := range 5000 {
		if err := m.Tag(ctx, fmt.Sprint("h-", i), "t", t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Tag(ctx, "kept", "t", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for range 5000 {
		m.HostTags("reader", t0.Add(2*time.Minute))
	}
	if n := m.Len(); n != 1 {
		t.Fatalf("%d hosts kept, want 1 (the tag in force)", n)
	}
	if got := m.HostTags("kept", t0.Add(2*time.Minute)); len(got) != 1 || got[0] != "t" {
		t.Fatalf("kept: %v", got)
	}
}
