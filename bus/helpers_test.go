package bus_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cordonsec/cordon/bus"
	"github.com/cordonsec/cordon/ioc"
)

// waitTimeout bounds every wait in these tests.
const waitTimeout = 20 * time.Second

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

// detection returns a valid detection for host, unique by n.
func detection(host string, n int) ioc.Detection {
	return ioc.Detection{
		Schema:      ioc.DetectionSchema,
		ID:          fmt.Sprintf("det-%s-%06d", host, n),
		Fingerprint: fmt.Sprintf("fp-%d", n%7),
		Time:        t0.Add(time.Duration(n) * time.Millisecond),
		Host:        ioc.Host{ID: host, Name: "web-01", OS: "linux", Addresses: []string{"192.0.2.10"}},
		Engine:      ioc.EngineAtomic,
		Indicators: []ioc.Indicator{{ID: "i-1", Kind: ioc.KindSHA256, Value: "aa" + fmt.Sprintf("%062d", n),
			Source: "feed-a", Severity: ioc.SeverityHigh, Score: 80, Tags: []string{"ransomware"}}},
		Severity: ioc.SeverityHigh,
		Event: ioc.Event{
			Schema: ioc.EventSchema, ID: fmt.Sprintf("e-%d", n), Time: t0,
			Host: ioc.Host{ID: host, Name: "web-01", OS: "linux", Addresses: []string{"192.0.2.10"}},
			Kind: ioc.EventFile,
			File: &ioc.FileEvent{Path: "/tmp/x.bin", Name: "x.bin", Size: 1234, SHA256: "aa" + fmt.Sprintf("%062d", n)},
		},
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout*3)
	t.Cleanup(cancel)
	return ctx
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitTimeout):
		t.Fatalf("timed out after %v waiting for %s", waitTimeout, what)
		panic("unreachable")
	}
}

func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitTimeout):
		t.Fatalf("timed out after %v waiting for %s", waitTimeout, what)
	}
}

// waitUntil polls cond until it holds, failing the test after waitTimeout.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitTimeout, what)
		}
		<-tick.C
	}
}

// rawPublish stores data on subject as it is, bypassing the typed API.
func rawPublish(t *testing.T, b *bus.Bus, subject, id string, data []byte) {
	t.Helper()
	m := nats.NewMsg(subject)
	m.Data = data
	if id != "" {
		m.Header.Set(nats.MsgIdHdr, id)
	}
	if _, err := b.JetStream().PublishMsg(ctxT(t), m); err != nil {
		t.Fatalf("raw publish on %s: %v", subject, err)
	}
}

// deadLetters collects dead-letter records.
func deadLetters(t *testing.T, b *bus.Bus) <-chan bus.DeadLetter {
	t.Helper()
	ch := make(chan bus.DeadLetter, 100)
	sub, err := b.ConsumeDeadLetters(ctxT(t), bus.ConsumerConfig{}, func(_ context.Context, rec bus.DeadLetter, _ bus.Delivery) error {
		ch <- rec
		return nil
	})
	if err != nil {
		t.Fatalf("ConsumeDeadLetters: %v", err)
	}
	t.Cleanup(sub.Stop)
	return ch
}

// effects is an idempotent effect store: the effect of an id is applied
// once, however many times it is delivered.
type effects struct {
	mu          sync.Mutex
	applied     map[string]int                 // id → times the effect was applied
	deliveries  map[string]int                 // id → times it was handed to a handler
	seqs        map[string]map[uint64]struct{} // id → stream sequences that carried it
	redelivered int
}

func newEffects() *effects {
	return &effects{applied: map[string]int{}, deliveries: map[string]int{}, seqs: map[string]map[uint64]struct{}{}}
}

// apply records a delivery of id and applies its effect unless already
// applied; it reports whether this call applied it.
func (e *effects) apply(id string, d bus.Delivery) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.deliveries[id]++
	if e.seqs[id] == nil {
		e.seqs[id] = map[uint64]struct{}{}
	}
	e.seqs[id][d.StreamSeq] = struct{}{}
	if d.Attempt > 1 {
		e.redelivered++
	}
	if e.applied[id] > 0 {
		return false
	}
	e.applied[id]++
	return true
}

func (e *effects) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.applied)
}

// check fails t unless every id in want was applied, and no id was stored
// twice in the stream (two stream sequences for one id would be a
// duplicate that slipped past the bus's dedup).
func (e *effects) check(t *testing.T, want []string) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	missing := 0
	for _, id := range want {
		if e.applied[id] == 0 {
			if missing < 5 {
				t.Errorf("detection %s acknowledged to the publisher but never handled", id)
			}
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d acknowledged detections never handled", missing, len(want))
	}
	dup := 0
	for id, s := range e.seqs {
		if len(s) > 1 {
			if dup < 5 {
				t.Errorf("detection %s stored %d times (stream sequences %v)", id, len(s), s)
			}
			dup++
		}
	}
	if dup > 0 {
		t.Errorf("%d detections stored more than once", dup)
	}
}
