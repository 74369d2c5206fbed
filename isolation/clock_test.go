package isolation_test

import (
	"context"
	"testing"
	"time"

	"github.com/cordonsec/cordon/isolation"
	"github.com/cordonsec/cordon/isolation/isolationtest"
)

// notifySink passes each audit event's kind on a channel.
type notifySink chan isolation.EventKind

func (s notifySink) Publish(_ context.Context, e isolation.Event) error {
	s <- e.Kind
	return nil
}

func waitKind(t *testing.T, s notifySink, want isolation.EventKind) {
	t.Helper()
	for {
		select {
		case k := <-s:
			if k == want {
				return
			}
		case <-time.After(10 * time.Second): // a failure guard, not a timer the test waits on
			t.Fatalf("no %q event", want)
		}
	}
}

// TestInjectedClock drives the 8-hour default deadline with a manual
// clock, outside any synctest bubble, as the rule test runner does.
func TestInjectedClock(t *testing.T) {
	start := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	clock := isolationtest.NewClock(start)
	fake := isolationtest.NewFake()
	events := make(notifySink, 64)
	m, err := isolation.New(isolation.Config{Host: "h-1", Enforcer: fake, Sink: events, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Restore(context.Background()); err != nil {
		t.Fatal(err)
	}
	st, err := m.Isolate(context.Background(), isolation.Request{Mode: isolation.ModeAutomatic, Reason: "ioc", Requester: "rule"})
	if err != nil {
		t.Fatal(err)
	}
	if want := start.Add(isolation.DefaultDuration); !st.Deadline.Equal(want) {
		t.Fatalf("deadline %v, want %v", st.Deadline, want)
	}
	if !st.Since.Equal(start) {
		t.Fatalf("since %v, want the clock's %v", st.Since, start)
	}
	waitKind(t, events, isolation.EventEnabled)

	// One second before the deadline nothing happens; the scheduler's timer
	// is armed on the injected clock.
	clock.Advance(isolation.DefaultDuration - time.Second)
	if st := m.Status(); st.State != isolation.StateOn {
		t.Fatalf("state %s before the deadline", st.State)
	}
	clock.Advance(time.Second)
	waitKind(t, events, isolation.EventReleased)
	if st := m.Status(); st.State != isolation.StateOff {
		t.Fatalf("state %s after the deadline", st.State)
	}
	if active, _ := fake.Host().Active(); active {
		t.Fatal("the fake host is still isolated")
	}
}
