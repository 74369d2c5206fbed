package bus

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/cordonsec/cordon/ioc"
)

// PublishDetection validates d and stores it on
// "cordon.detections.<d.Host.ID>" with Nats-Msg-Id d.ID, so that
// publishing the same detection again within the duplicate window stores
// it once (PubAck.Duplicate). It fails with ErrMalformed (wrapping the
// ioc.FieldError), ErrInvalidSubject, ErrTooLarge, ErrClosed or a publish
// error; a failed publish may be retried as it is.
func (b *Bus) PublishDetection(ctx context.Context, d ioc.Detection) (PubAck, error) {
	m, err := b.detectionMsg(d)
	if err != nil {
		return PubAck{}, err
	}
	return b.publish(ctx, m)
}

func (b *Bus) detectionMsg(d ioc.Detection) (outMsg, error) {
	if err := d.Validate(); err != nil {
		return outMsg{}, fmt.Errorf("bus: detection %q: %w: %w", d.ID, ErrMalformed, err)
	}
	subj, err := DetectionSubject(d.Host.ID)
	if err != nil {
		return outMsg{}, fmt.Errorf("bus: detection %q: host.id: %w", d.ID, err)
	}
	// One allocation for a typical detection (about 700 bytes) instead
	// of a buffer grown step by step.
	data, err := d.AppendJSON(make([]byte, 0, 1024))
	if err != nil {
		return outMsg{}, fmt.Errorf("bus: encode %s: %w", subj, err)
	}
	return b.encoded(subj, d.ID, data, 0)
}

// BatchError reports the messages of a batch that were not stored.
type BatchError struct {
	// Failed maps the index of each failed message to its error; the
	// others were stored.
	Failed map[int]error
}

func (e *BatchError) Error() string {
	idx := make([]int, 0, len(e.Failed))
	for i := range e.Failed {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	var b strings.Builder
	fmt.Fprintf(&b, "bus: %d of the batch not stored", len(idx))
	for n, i := range idx {
		if n == 3 {
			b.WriteString("; …")
			break
		}
		fmt.Fprintf(&b, "; [%d]: %v", i, e.Failed[i])
	}
	return b.String()
}

// Unwrap returns the individual errors.
func (e *BatchError) Unwrap() []error {
	errs := make([]error, 0, len(e.Failed))
	for _, err := range e.Failed {
		errs = append(errs, err)
	}
	return errs
}

// PublishDetections publishes ds asynchronously and waits for every
// acknowledgement: much faster than one PublishDetection after another.
// acks[i] belongs to ds[i]. When some are not stored the error is a
// *BatchError naming them; retrying the whole batch is safe, since stored
// ones come back as duplicates.
func (b *Bus) PublishDetections(ctx context.Context, ds []ioc.Detection) ([]PubAck, error) {
	if len(ds) == 0 {
		return []PubAck{}, nil
	}
	acks, errs, err := b.publishBatch(ctx, len(ds), func(i int) (outMsg, error) { return b.detectionMsg(ds[i]) })
	if err != nil {
		return nil, err
	}
	failed := map[int]error{}
	for i, err := range errs {
		if err != nil {
			failed[i] = err
		}
	}
	if len(failed) > 0 {
		return acks, &BatchError{Failed: failed}
	}
	return acks, nil
}

// DecodeDetection parses and validates a detection received on subject
// (which, when not empty, must be "cordon.detections.<host.id>"). It fails
// with a *DecodeError wrapping ErrUnsupportedSchema or ErrMalformed; the
// latter wraps the ioc.FieldError that names the field.
func DecodeDetection(subject string, data []byte) (ioc.Detection, error) {
	d, err := ioc.DecodeDetection(data)
	if err != nil {
		// Only on failure read the header on its own, to tell an unknown
		// schema from a malformed detection.
		if _, herr := DecodeHeader(data, SchemaDetection); herr != nil {
			return ioc.Detection{}, withSubject(herr, subject)
		}
		de := &DecodeError{Subject: subject, Schema: SchemaDetection, Offset: -1, Err: fmt.Errorf("%w: %w", ErrMalformed, err)}
		var fe *ioc.FieldError
		if errors.As(err, &fe) {
			de.Field = fe.Field
		}
		if errors.Is(err, ioc.ErrUnknownSchema) {
			de.Err = fmt.Errorf("%w: %w", ErrUnsupportedSchema, err)
		}
		return ioc.Detection{}, de
	}
	if subject != "" && subject != PrefixDetections+d.Host.ID {
		return ioc.Detection{}, &DecodeError{Subject: subject, Schema: d.Schema, Field: "host.id", Offset: -1,
			Err: fmt.Errorf("%w: detection for host %q published on %q", ErrMalformed, d.Host.ID, subject)}
	}
	return d, nil
}

// ConsumeDetections hands detections to h through a durable consumer on
// CORDON_DETECTIONS (default name "cordon-detections", all hosts; set
// FilterSubjects to DetectionSubject values or "cordon.detections.*" forms
// to narrow it). A message is acknowledged after h returns nil, retried
// with backoff when h fails, and dead-lettered when it does not decode,
// is too large, or h failed MaxDeliver times. Delivery is at least once:
// h must be idempotent by detection id. ctx bounds the setup only: the
// subscription runs until Stop or Close. It fails with ErrInvalidConfig,
// ErrInvalidSubject, ErrClosed or a JetStream error.
func (b *Bus) ConsumeDetections(ctx context.Context, cc ConsumerConfig, h func(ctx context.Context, d ioc.Detection, dl Delivery) error) (*Subscription, error) {
	return consume(ctx, b, StreamDetections, PrefixDetections, cc, []string{PrefixDetections + ">"}, "cordon-detections",
		func(d Delivery, data []byte) (ioc.Detection, error) { return DecodeDetection(d.Subject, data) }, h)
}
