package bus

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nuid"
)

// Event is an audit event (schema "cordon.audit/v1") published on
// "cordon.events.<host>.<kind>" and kept in CORDON_EVENTS: a response
// decision, isolation enabled, extended, released or failed. The packages
// that emit events define the payload in Data.
type Event struct {
	// Schema is "cordon.audit/v1"; PublishEvent sets it when empty.
	Schema string `json:"schema"`
	// ID is unique per event and is its Nats-Msg-Id; PublishEvent makes
	// one when empty.
	ID string `json:"id"`
	// Time the event happened; PublishEvent uses the bus clock when zero.
	Time time.Time `json:"time"`
	// Host is the host id the event is about; a subject token.
	Host string `json:"host"`
	// Kind names the event, e.g. "decision", "isolation.enabled"; one or
	// more subject tokens separated by dots.
	Kind string `json:"kind"`
	// Source names the component that emitted it ("response",
	// "isolation"…). Optional.
	Source string `json:"source,omitempty"`
	// Data is the payload, a JSON value defined by the emitter. Optional.
	Data json.RawMessage `json:"data,omitempty"`
}

// Subject is the subject e is published on. It fails with
// ErrInvalidSubject.
func (e Event) Subject() (string, error) { return EventSubject(e.Host, e.Kind) }

// PublishEvent stores e on "cordon.events.<host>.<kind>", filling Schema,
// ID and Time when empty. It fails with ErrInvalidSubject, ErrMalformed
// (Data not valid JSON, or a foreign schema), ErrTooLarge, ErrClosed or a
// publish error.
func (b *Bus) PublishEvent(ctx context.Context, e Event) (PubAck, error) {
	if e.Schema == "" {
		e.Schema = SchemaAudit
	}
	if err := checkSchema(e.Schema, SchemaAudit); err != nil {
		return PubAck{}, fmt.Errorf("bus: event: %w", err)
	}
	if e.ID == "" {
		e.ID = nuid.Next()
	}
	if e.Time.IsZero() {
		e.Time = b.cfg.Clock()
	}
	subj, err := e.Subject()
	if err != nil {
		return PubAck{}, fmt.Errorf("bus: event %q: %w", e.ID, err)
	}
	if len(e.Data) > 0 && !json.Valid(e.Data) {
		return PubAck{}, fmt.Errorf("bus: event %q: %w: data is not valid JSON", e.ID, ErrMalformed)
	}
	return b.publishJSON(ctx, subj, e.ID, e, 0)
}

// DecodeEvent parses an audit event and checks it: schema, id, and that
// host and kind form a valid subject. When subject is not empty it must
// be the event's own subject. It fails with a *DecodeError.
func DecodeEvent(subject string, data []byte) (Event, error) {
	var e Event
	if _, err := DecodeHeader(data, SchemaAudit); err != nil {
		return e, withSubject(err, subject)
	}
	if err := decodeStrict(SchemaAudit, data, &e); err != nil {
		return e, withSubject(err, subject)
	}
	want, err := e.Subject()
	if err != nil {
		return e, &DecodeError{Subject: subject, Schema: e.Schema, Field: fieldOf(err), Offset: -1, Err: fmt.Errorf("%w: %v", ErrMalformed, err)}
	}
	if subject != "" && subject != want {
		return e, &DecodeError{Subject: subject, Schema: e.Schema, Field: "host", Offset: -1, Err: fmt.Errorf("%w: event for %q published on %q", ErrMalformed, want, subject)}
	}
	if e.Time.IsZero() {
		return e, &DecodeError{Subject: subject, Schema: e.Schema, Field: "time", Offset: -1, Err: fmt.Errorf("%w: time is missing", ErrMalformed)}
	}
	return e, nil
}

func fieldOf(err error) string {
	if strings.Contains(err.Error(), "kind") {
		return "kind"
	}
	return "host"
}

func withSubject(err error, subject string) error {
	if de, ok := err.(*DecodeError); ok && de.Subject == "" {
		c := *de
		c.Subject = subject
		return &c
	}
	return err
}

// ConsumeEvents hands audit events to h through a durable consumer on
// CORDON_EVENTS (default name "cordon-events", all subjects). A message
// that does not decode is dead-lettered. ctx bounds the setup only: the
// subscription runs until Stop or Close. It fails with ErrInvalidConfig,
// ErrInvalidSubject, ErrClosed or a JetStream error.
func (b *Bus) ConsumeEvents(ctx context.Context, cc ConsumerConfig, h func(ctx context.Context, e Event, d Delivery) error) (*Subscription, error) {
	return consume(ctx, b, StreamEvents, PrefixEvents, cc, []string{PrefixEvents + ">"}, "cordon-events",
		func(d Delivery, data []byte) (Event, error) { return DecodeEvent(d.Subject, data) }, h)
}
