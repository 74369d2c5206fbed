package responsebus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

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
// event, or with the bus error. A decision too large for the bus (long
// indicator values or rendered arguments, many rules) is stored with its
// text cut short and Truncated set, rather than refused: a refusal would
// have the detection delivered again and refused again until it is
// dead-lettered, its decision never recorded.
func (s Sink) Record(ctx context.Context, d *response.Decision) error {
	err := s.publish(ctx, d, d)
	for _, limit := range []int{1 << 10, 64, 0} {
		if !errors.Is(err, bus.ErrTooLarge) {
			break
		}
		err = s.publish(ctx, d, shrink(d, limit))
	}
	if err != nil {
		return fmt.Errorf("responsebus: decision %s: %w", d.ID, err)
	}
	return nil
}

func (s Sink) publish(ctx context.Context, d, rec *response.Decision) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	id := d.ID
	if d.Result == response.ResultFailed {
		id += ".failed"
	}
	_, err = s.Bus.PublishEvent(ctx, bus.Event{ID: id, Time: d.Time, Host: d.Host, Kind: EventKindDecision, Source: "response", Data: data})
	return err
}

// shrink returns a copy of d with every free text cut to limit bytes
// (action arguments dropped when limit is 0) and Truncated set.
func shrink(d *response.Decision, limit int) *response.Decision {
	c := *d
	c.Truncated = true
	c.Rules = make([]response.RuleDecision, len(d.Rules))
	for i, r := range d.Rules {
		r.IndicatorValue = cut(r.IndicatorValue, limit)
		r.SuppressKey = cut(r.SuppressKey, limit)
		r.Error = cut(r.Error, limit)
		acts := make([]response.ActionRecord, len(r.Actions))
		for j, a := range r.Actions {
			a.Detail, a.Error = cut(a.Detail, limit), cut(a.Error, limit)
			if limit == 0 {
				a.Args = nil
			} else if a.Args != nil {
				args := make(map[string]any, len(a.Args))
				for k, v := range a.Args {
					if str, ok := v.(string); ok {
						v = cut(str, limit)
					}
					args[k] = v
				}
				a.Args = args
			}
			acts[j] = a
		}
		r.Actions = acts
		c.Rules[i] = r
	}
	return &c
}

// cut shortens s to at most limit bytes, on a rune boundary, marking the
// cut with "…".
func cut(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	i := limit
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
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
