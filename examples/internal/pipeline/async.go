package pipeline

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/cordonsec/cordon/isolation"
)

// AsyncSink is an isolation.Sink that queues events and hands them to
// Next from its own goroutine, in order: the Manager calls its Sink
// synchronously during transitions, and a publish that waits for the bus
// must not hold up the firewall. When the queue is full Publish waits for
// room (an audit event is never dropped). It is safe for concurrent use.
type AsyncSink struct {
	next isolation.Sink
	log  *slog.Logger
	ch   chan queued

	once sync.Once
	done chan struct{}
}

// NewAsyncSink starts the goroutine that publishes to next; size is the
// queue's length (at least 1). Close stops it.
func NewAsyncSink(next isolation.Sink, size int, log *slog.Logger) *AsyncSink {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &AsyncSink{next: next, log: log, ch: make(chan queued, max(size, 1)), done: make(chan struct{})}
	go s.run()
	return s
}

// queued is an event for Next, or other work (Then) kept in the order of
// the events.
type queued struct {
	e    isolation.Event
	then func(context.Context) error
	what string
}

// Publish implements isolation.Sink: it queues e and returns nil.
func (s *AsyncSink) Publish(ctx context.Context, e isolation.Event) error {
	return s.enqueue(ctx, queued{e: e, what: string(e.Kind)})
}

// Then queues f, to run on the sink's goroutine after the events queued
// before it were handed to Next (an answer that must not overtake them);
// what names it in the log if it fails.
func (s *AsyncSink) Then(ctx context.Context, what string, f func(context.Context) error) error {
	return s.enqueue(ctx, queued{then: f, what: what})
}

func (s *AsyncSink) enqueue(ctx context.Context, q queued) error {
	select {
	case s.ch <- q:
		return nil
	default:
	}
	s.log.Warn("audit event queue full; waiting for the bus", "event", q.what)
	select {
	case s.ch <- q:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *AsyncSink) run() {
	defer close(s.done)
	for q := range s.ch {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		var err error
		if q.then != nil {
			err = q.then(ctx)
		} else {
			err = s.next.Publish(ctx, q.e)
		}
		if err != nil {
			s.log.Error("publishing an audit event", "event", q.what, "id", q.e.ID, "err", err)
		}
		cancel()
	}
}

// Close publishes the events still queued and stops; Publish must not be
// called afterwards. It waits at most until ctx ends.
func (s *AsyncSink) Close(ctx context.Context) {
	s.once.Do(func() { close(s.ch) })
	select {
	case <-s.done:
	case <-ctx.Done():
	}
}
