package responsebus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/cordonsec/cordon/bus"
	"github.com/cordonsec/cordon/ioc"
	"github.com/cordonsec/cordon/response"
)

// EventKindDecision is the audit event kind of decisions.
const EventKindDecision = "decision"

// Sink records decisions as audit events on
// cordon.events.<host>.decision, with the decision id as event id and
// message id, so that a decision recorded twice is stored once. A
// decision whose result is response.ResultFailed has the event id
// "<decision id>.failed": Engine.Run has such a detection delivered
// again, and the decision of the delivery that succeeds, under the
// decision id, is then stored too instead of being dropped as a
// duplicate of the failure.
type Sink struct {
	Bus *bus.Bus
}

// Record implements response.Sink. It returns once the stream stored the
// event, or with the bus error.
func (s Sink) Record(ctx context.Context, d *response.Decision) error {
	data, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("responsebus: decision %s: %w", d.ID, err)
	}
	id := d.ID
	if d.Result == response.ResultFailed {
		id += ".failed"
	}
	_, err = s.Bus.PublishEvent(ctx, bus.Event{ID: id, Time: d.Time, Host: d.Host, Kind: EventKindDecision, Source: "response", Data: data})
	if err != nil {
		return fmt.Errorf("responsebus: decision %s: %w", d.ID, err)
	}
	return nil
}

// Publisher publishes notify messages on their subject with core NATS,
// and waits until the server has them.
type Publisher struct {
	Conn *nats.Conn
}

// Publish implements response.Publisher.
func (p Publisher) Publish(ctx context.Context, subject string, data []byte) error {
	if err := p.Conn.Publish(subject, data); err != nil {
		return fmt.Errorf("responsebus: publish %s: %w", subject, err)
	}
	if err := p.Conn.FlushWithContext(ctx); err != nil {
		return fmt.Errorf("responsebus: publish %s: %w", subject, err)
	}
	return nil
}

// ErrStopped is returned by Detections.Consume when the subscription ends
// while its context is still live (the bus closed, the consumer deleted).
var ErrStopped = errors.New("responsebus: detection subscription stopped")

// Detections is a response.DetectionSource over the bus's durable
// detections consumer.
type Detections struct {
	Bus *bus.Bus
	// Consumer configures the durable consumer (name, filter, ack wait,
	// redeliveries); the zero value takes the bus defaults.
	Consumer bus.ConsumerConfig
}

// Consume implements response.DetectionSource: h's nil acknowledges a
// detection, an error has it delivered again (with the consumer's
// backoff, dead-lettered after MaxDeliver); an error wrapping
// response.ErrInvalidDetection dead-letters it at once. It returns nil when ctx ends,
// ErrStopped when the subscription ends first, or the error of starting
// the consumer.
func (s Detections) Consume(ctx context.Context, h func(ctx context.Context, d ioc.Detection) error) error {
	sub, err := s.Bus.ConsumeDetections(ctx, s.Consumer, func(ctx context.Context, d ioc.Detection, _ bus.Delivery) error {
		err := h(ctx, d)
		if errors.Is(err, response.ErrInvalidDetection) {
			// No retry can help: dead-letter it at once.
			return fmt.Errorf("%w: %w", bus.ErrRejected, err)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("responsebus: %w", err)
	}
	select {
	case <-ctx.Done():
		sub.Stop()
		<-sub.Closed()
		return nil
	case <-sub.Closed():
		if ctx.Err() != nil {
			return nil
		}
		return ErrStopped
	}
}
