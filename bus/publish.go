package bus

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// PubAck is the server's acknowledgement of a stored message.
type PubAck struct {
	// Stream that stored the message and its sequence there.
	Stream string
	Seq    uint64
	// Duplicate is true when a message with the same id was already
	// stored within the stream's duplicate window; nothing new was stored.
	Duplicate bool
}

// outMsg is one message ready to publish.
type outMsg struct {
	subject string
	id      string
	data    []byte
	ttl     time.Duration
}

func (b *Bus) encode(subject, id string, v any, ttl time.Duration) (outMsg, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return outMsg{}, fmt.Errorf("bus: encode %s: %w", subject, err)
	}
	return b.encoded(subject, id, data, ttl)
}

// encoded checks the size of an encoded message.
func (b *Bus) encoded(subject, id string, data []byte, ttl time.Duration) (outMsg, error) {
	if len(data) > b.cfg.MaxMessageBytes {
		return outMsg{}, fmt.Errorf("%w: %s %q is %d bytes, limit %d", ErrTooLarge, subject, id, len(data), b.cfg.MaxMessageBytes)
	}
	return outMsg{subject: subject, id: id, data: data, ttl: ttl}, nil
}

func (m outMsg) natsMsg() (*nats.Msg, []jetstream.PublishOpt) {
	nm := nats.NewMsg(m.subject)
	nm.Data = m.data
	opts := []jetstream.PublishOpt{jetstream.WithMsgID(m.id)}
	if m.ttl > 0 {
		// The server counts TTLs in whole seconds; round up so that a
		// message is never removed before its expiry.
		opts = append(opts, jetstream.WithMsgTTL((m.ttl + time.Second - 1).Truncate(time.Second)))
	}
	return nm, opts
}

// publishJSON encodes v and publishes it with Nats-Msg-Id id, waiting for
// the server's acknowledgement.
func (b *Bus) publishJSON(ctx context.Context, subject, id string, v any, ttl time.Duration) (PubAck, error) {
	m, err := b.encode(subject, id, v, ttl)
	if err != nil {
		return PubAck{}, err
	}
	return b.publish(ctx, m)
}

func (b *Bus) publish(ctx context.Context, m outMsg) (PubAck, error) {
	if b.isClosed() {
		return PubAck{}, ErrClosed
	}
	ctx, cancel := b.pubCtx(ctx)
	defer cancel()
	nm, opts := m.natsMsg()
	ack, err := b.js.PublishMsg(ctx, nm, opts...)
	if err != nil {
		return PubAck{}, fmt.Errorf("bus: publish %s %q: %w", m.subject, m.id, err)
	}
	return PubAck{Stream: ack.Stream, Seq: ack.Sequence, Duplicate: ack.Duplicate}, nil
}

// publishBatch publishes n messages asynchronously and waits for every
// acknowledgement. msg(i) encodes the i-th message; each is published as
// soon as it is encoded, so that the server stores the first ones while
// the later ones are still being encoded. acks[i] is valid where errs[i]
// is nil. It fails only with ErrClosed, before publishing anything.
func (b *Bus) publishBatch(ctx context.Context, n int, msg func(i int) (outMsg, error)) ([]PubAck, []error, error) {
	if b.isClosed() {
		return nil, nil, ErrClosed
	}
	ctx, cancel := b.pubCtx(ctx)
	defer cancel()
	acks := make([]PubAck, n)
	errs := make([]error, n)
	type pending struct {
		f           jetstream.PubAckFuture
		subject, id string
	}
	futures := make([]pending, n)
	for i := range n {
		m, err := msg(i)
		if err != nil {
			errs[i] = err
			continue
		}
		nm, opts := m.natsMsg()
		f, err := b.js.PublishMsgAsync(nm, opts...)
		if err != nil {
			errs[i] = fmt.Errorf("bus: publish %s %q: %w", m.subject, m.id, err)
			continue
		}
		futures[i] = pending{f: f, subject: m.subject, id: m.id}
	}
	for i, p := range futures {
		if p.f == nil {
			continue
		}
		select {
		case a := <-p.f.Ok():
			acks[i] = PubAck{Stream: a.Stream, Seq: a.Sequence, Duplicate: a.Duplicate}
		case err := <-p.f.Err():
			errs[i] = fmt.Errorf("bus: publish %s %q: %w", p.subject, p.id, err)
		case <-ctx.Done():
			errs[i] = fmt.Errorf("bus: publish %s %q: %w", p.subject, p.id, ctx.Err())
		}
	}
	return acks, errs, nil
}
