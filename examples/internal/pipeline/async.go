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
	ch   chan isolation.Event

	once sync.Once
	done chan struct{}
}

// NewAsyncSink starts the goroutine that publishes to next; size is the
// queue's length (at least 1). Close stops it.
func NewAsyncSink(next isolation.Sink, size int, log *slog.Logger) *AsyncSink {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &AsyncSink{next: next, log: log, ch: make(chan isolation.Event, max(size, 1)), done: make(chan struct{})}
	go s.run()
	return s
}

// Publish implements isolation.Sink: it queues e and returns nil.
func (s *AsyncSink) Publish(ctx context.Context, e isolation.Event) error {
	select {
	case s.ch <- e:
		return nil
	default:
	}
	s.log.Warn("audit event queue full; waiting for the bus", "event", e.Kind)
	select {
	case s.ch <- e:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *AsyncSink) run() {
	defer close(s.done)
	for e := range s.ch {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := s.next.Publish(ctx, e); err != nil {
			s.log.Error("publishing an audit event", "event", e.Kind, "id", e.ID, "err", err)
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
