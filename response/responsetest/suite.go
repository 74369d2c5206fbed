package responsetest

import (
	"context"
	"testing"
	"time"

	"github.com/cordonsec/cordon/response"
)

// IsolatorHarness is what TestIsolator needs of an implementation.
type IsolatorHarness struct {
	// Isolator under test, new and empty.
	Isolator response.Isolator
	// Deadline returns the deadline in force for host as the
	// implementation's side effect shows it (the fake's state, the last
	// command sent, the Manager's state), and whether there is one.
	Deadline func(t *testing.T, host string) (time.Time, bool)
	// Now is the time the requests are made at.
	Now time.Time
	// Tolerance is how far a deadline may be from the one asked for (an
	// implementation whose clock is the wall clock). Zero: exact.
	Tolerance time.Duration
}

func (h IsolatorHarness) same(a, b time.Time) bool {
	d := a.Sub(b)
	return d <= h.Tolerance && d >= -h.Tolerance
}

// TestIsolator checks the response.Isolator contract: isolate, extend
// (never shorten), idempotence by request id, release, and release of a
// host that is not isolated.
func TestIsolator(t *testing.T, newHarness func(t *testing.T) IsolatorHarness) {
	ctx := context.Background()
	req := func(h IsolatorHarness, id string, d time.Duration) response.IsolateRequest {
		return response.IsolateRequest{ID: id, Host: "h-conf", Until: h.Now.Add(d), Duration: d,
			Reason: "conformance", Mode: response.ModeAutomatic}
	}
	t.Run("isolate", func(t *testing.T) {
		h := newHarness(t)
		got, err := h.Isolator.Isolate(ctx, req(h, "a", time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if !h.same(got, h.Now.Add(time.Hour)) {
			t.Fatalf("deadline %v, want %v", got, h.Now.Add(time.Hour))
		}
		if d, ok := h.Deadline(t, "h-conf"); !ok || !h.same(d, h.Now.Add(time.Hour)) {
			t.Fatalf("in force: %v %v, want %v", d, ok, h.Now.Add(time.Hour))
		}
	})
	t.Run("extend-not-shorten", func(t *testing.T) {
		h := newHarness(t)
		if _, err := h.Isolator.Isolate(ctx, req(h, "a", 2*time.Hour)); err != nil {
			t.Fatal(err)
		}
		got, err := h.Isolator.Isolate(ctx, req(h, "b", time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		want := h.Now.Add(2 * time.Hour)
		if !h.same(got, want) {
			t.Fatalf("a shorter request moved the deadline to %v, want %v", got, want)
		}
		if d, _ := h.Deadline(t, "h-conf"); !h.same(d, want) {
			t.Fatalf("in force %v, want %v", d, want)
		}
		got, err = h.Isolator.Isolate(ctx, req(h, "c", 3*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if want = h.Now.Add(3 * time.Hour); !h.same(got, want) {
			t.Fatalf("a longer request gave %v, want %v", got, want)
		}
		if d, _ := h.Deadline(t, "h-conf"); !h.same(d, want) {
			t.Fatalf("in force %v, want %v", d, want)
		}
	})
	t.Run("idempotent", func(t *testing.T) {
		h := newHarness(t)
		r := req(h, "same", time.Hour)
		a, err := h.Isolator.Isolate(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		b, err := h.Isolator.Isolate(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if !h.same(a, b) {
			t.Fatalf("repeating a request changed the deadline: %v then %v", a, b)
		}
	})
	t.Run("release", func(t *testing.T) {
		h := newHarness(t)
		if _, err := h.Isolator.Isolate(ctx, req(h, "a", time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := h.Isolator.Release(ctx, response.ReleaseRequest{ID: "r", Host: "h-conf", Reason: "done"}); err != nil {
			t.Fatal(err)
		}
		if d, ok := h.Deadline(t, "h-conf"); ok {
			t.Fatalf("still isolated until %v after release", d)
		}
		// After a release a shorter isolation is a new one, not an extension.
		got, err := h.Isolator.Isolate(ctx, req(h, "b", 30*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if want := h.Now.Add(30 * time.Minute); !h.same(got, want) {
			t.Fatalf("after release: deadline %v, want %v", got, want)
		}
	})
	t.Run("release-not-isolated", func(t *testing.T) {
		h := newHarness(t)
		if err := h.Isolator.Release(ctx, response.ReleaseRequest{ID: "r", Host: "h-free", Reason: "x"}); err != nil {
			t.Fatalf("releasing a free host: %v", err)
		}
	})
}
