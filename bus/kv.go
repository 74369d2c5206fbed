package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// IsolationState is one host's entry in the cordon-isolation bucket. The
// isolation package defines what Value holds (JSON).
type IsolationState struct {
	// Host is the host id (the key).
	Host string
	// Value is the stored JSON; nil when the entry was deleted.
	Value []byte
	// Revision is the bucket revision of this entry.
	Revision uint64
	// Updated is when it was stored.
	Updated time.Time
	// Deleted is true for a deletion.
	Deleted bool
}

func stateOf(e jetstream.KeyValueEntry) IsolationState {
	return IsolationState{
		Host:     e.Key(),
		Value:    e.Value(),
		Revision: e.Revision(),
		Updated:  e.Created(),
		Deleted:  e.Operation() != jetstream.KeyValuePut,
	}
}

// PutIsolationState stores value, a JSON document, as host's last
// isolation state and returns the new revision. It fails with
// ErrInvalidSubject, ErrMalformed (not JSON), ErrTooLarge, ErrClosed or a
// JetStream error.
func (b *Bus) PutIsolationState(ctx context.Context, host string, value []byte) (uint64, error) {
	if err := b.checkState(host, value); err != nil {
		return 0, err
	}
	ctx, cancel := b.pubCtx(ctx)
	defer cancel()
	rev, err := b.kv.Put(ctx, host, value)
	if err != nil {
		return 0, fmt.Errorf("bus: isolation state %q: %w", host, err)
	}
	return rev, nil
}

// UpdateIsolationState stores value only if host's entry is still at
// revision (0: only if there is none), for read-modify-write without lost
// updates. It fails like PutIsolationState, and with a JetStream error
// wrapping jetstream.ErrKeyExists on a revision mismatch.
func (b *Bus) UpdateIsolationState(ctx context.Context, host string, value []byte, revision uint64) (uint64, error) {
	if err := b.checkState(host, value); err != nil {
		return 0, err
	}
	ctx, cancel := b.pubCtx(ctx)
	defer cancel()
	var rev uint64
	var err error
	if revision == 0 {
		rev, err = b.kv.Create(ctx, host, value)
	} else {
		rev, err = b.kv.Update(ctx, host, value, revision)
	}
	if err != nil {
		return 0, fmt.Errorf("bus: isolation state %q at revision %d: %w", host, revision, err)
	}
	return rev, nil
}

func (b *Bus) checkState(host string, value []byte) error {
	if b.isClosed() {
		return ErrClosed
	}
	if err := checkToken("host", host); err != nil {
		return fmt.Errorf("bus: isolation state: %w", err)
	}
	if len(value) > b.cfg.MaxMessageBytes {
		return fmt.Errorf("bus: isolation state %q: %w: %d bytes, limit %d", host, ErrTooLarge, len(value), b.cfg.MaxMessageBytes)
	}
	if !jsonValid(value) {
		return fmt.Errorf("bus: isolation state %q: %w: value is not JSON", host, ErrMalformed)
	}
	return nil
}

// IsolationState returns host's last isolation state. It fails with
// ErrNotFound when there is none (or it was deleted), ErrInvalidSubject,
// ErrClosed or a JetStream error.
func (b *Bus) IsolationState(ctx context.Context, host string) (IsolationState, error) {
	if b.isClosed() {
		return IsolationState{}, ErrClosed
	}
	if err := checkToken("host", host); err != nil {
		return IsolationState{}, fmt.Errorf("bus: isolation state: %w", err)
	}
	e, err := b.kv.Get(ctx, host)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return IsolationState{}, fmt.Errorf("bus: isolation state %q: %w", host, ErrNotFound)
	}
	if err != nil {
		return IsolationState{}, fmt.Errorf("bus: isolation state %q: %w", host, err)
	}
	return stateOf(e), nil
}

// DeleteIsolationState removes host's entry (watchers see a deletion).
func (b *Bus) DeleteIsolationState(ctx context.Context, host string) error {
	if b.isClosed() {
		return ErrClosed
	}
	if err := checkToken("host", host); err != nil {
		return fmt.Errorf("bus: isolation state: %w", err)
	}
	if err := b.kv.Delete(ctx, host); err != nil {
		return fmt.Errorf("bus: isolation state %q: delete: %w", host, err)
	}
	return nil
}

// StateWatch is a running watch of the isolation bucket. It is safe for
// concurrent use.
type StateWatch struct {
	w       jetstream.KeyWatcher
	updates chan IsolationState
	stop    chan struct{}
	closed  chan struct{}
	once    sync.Once
}

// Updates delivers the current state of each watched host, then every
// change. A zero IsolationState (empty Host) marks the end of the initial
// values. The channel is closed when the watch stops.
func (w *StateWatch) Updates() <-chan IsolationState { return w.updates }

// Stop ends the watch. It is idempotent.
func (w *StateWatch) Stop() { w.once.Do(func() { close(w.stop) }) }

// Closed is closed once the watch has stopped and Updates is closed.
func (w *StateWatch) Closed() <-chan struct{} { return w.closed }

// WatchIsolation watches host's state, or every host's when host is "*".
// The watch lasts until Stop, or until ctx ends. It fails with
// ErrInvalidSubject, ErrClosed or a JetStream error.
func (b *Bus) WatchIsolation(ctx context.Context, host string) (*StateWatch, error) {
	if b.isClosed() {
		return nil, ErrClosed
	}
	if host != "*" {
		if err := checkToken("host", host); err != nil {
			return nil, fmt.Errorf("bus: watch isolation: %w", err)
		}
	}
	kw, err := b.kv.Watch(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("bus: watch isolation %q: %w", host, err)
	}
	w := &StateWatch{w: kw, updates: make(chan IsolationState), stop: make(chan struct{}), closed: make(chan struct{})}
	go func() {
		defer close(w.closed)
		defer close(w.updates)
		defer kw.Stop()
		for {
			var e jetstream.KeyValueEntry
			var ok bool
			select {
			case e, ok = <-kw.Updates():
				if !ok {
					return
				}
			case <-w.stop:
				return
			case <-ctx.Done():
				return
			case <-b.closed:
				return
			}
			var s IsolationState
			if e != nil {
				s = stateOf(e)
			}
			select {
			case w.updates <- s:
			case <-w.stop:
				return
			case <-ctx.Done():
				return
			case <-b.closed:
				return
			}
		}
	}()
	return w, nil
}
