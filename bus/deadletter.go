package bus

import (
	"context"
	"strconv"
	"time"
)

// DeadLetterReason says why a message was dead-lettered.
type DeadLetterReason string

// Dead-letter reasons.
const (
	// ReasonTooLarge: the message exceeded Config.MaxMessageBytes.
	ReasonTooLarge DeadLetterReason = "too_large"
	// ReasonMalformed: the message could not be decoded.
	ReasonMalformed DeadLetterReason = "malformed"
	// ReasonUnsupportedSchema: wrong schema name or unknown major version.
	ReasonUnsupportedSchema DeadLetterReason = "unsupported_schema"
	// ReasonRejected: refused without retry (a command failing
	// verification, or a handler error wrapping ErrRejected).
	ReasonRejected DeadLetterReason = "rejected"
	// ReasonMaxDeliver: the handler failed on every one of MaxDeliver
	// attempts.
	ReasonMaxDeliver DeadLetterReason = "max_deliver"
)

// MaxDeadLetterData bounds the copy of the original message kept in a
// dead-letter record; it is also at most half of Config.MaxMessageBytes,
// so that the record itself stays under the limit.
const MaxDeadLetterData = 64 << 10

// maxDeadLetterError bounds the error text kept in a dead-letter record.
const maxDeadLetterError = 1 << 10

// DeadLetter is the record (schema "cordon.deadletter/v1") stored on
// "cordon.deadletter.<stream>" for a message a consumer gave up on.
type DeadLetter struct {
	// Schema is "cordon.deadletter/v1".
	Schema string `json:"schema"`
	// ID is "<stream>-<stream sequence>", so that recording the same
	// message twice stores it once.
	ID string `json:"id"`
	// Time the record was made.
	Time time.Time `json:"time"`
	// Stream, Consumer and Subject of the original message.
	Stream   string `json:"stream"`
	Consumer string `json:"consumer"`
	Subject  string `json:"subject"`
	// StreamSeq is the original message's sequence in its stream.
	StreamSeq uint64 `json:"stream_seq"`
	// Deliveries is how many times it was delivered.
	Deliveries uint64 `json:"deliveries"`
	// MsgID is the original Nats-Msg-Id header, if any.
	MsgID string `json:"msg_id,omitempty"`
	// Reason is the class of failure; Error the last error in words.
	Reason DeadLetterReason `json:"reason"`
	Error  string           `json:"error"`
	// Size of the original message in bytes; Data its first bytes, up to
	// MaxDeadLetterData or half of Config.MaxMessageBytes (base64 in
	// JSON); Truncated when shorter than Size.
	Size      int    `json:"size"`
	Data      []byte `json:"data"`
	Truncated bool   `json:"truncated,omitempty"`
}

func newDeadLetter(now time.Time, d Delivery, reason DeadLetterReason, cause error, msgID string, data []byte, maxData int) DeadLetter {
	errText := cause.Error()
	if len(errText) > maxDeadLetterError {
		errText = errText[:maxDeadLetterError] + "…"
	}
	rec := DeadLetter{
		Schema:     SchemaDeadLetter,
		ID:         d.Stream + "-" + strconv.FormatUint(d.StreamSeq, 10),
		Time:       now.UTC(),
		Stream:     d.Stream,
		Consumer:   d.Consumer,
		Subject:    d.Subject,
		StreamSeq:  d.StreamSeq,
		Deliveries: d.Attempt,
		MsgID:      msgID,
		Reason:     reason,
		Error:      errText,
		Size:       len(data),
		Data:       data,
	}
	if len(data) > maxData {
		rec.Data = data[:maxData]
		rec.Truncated = true
	}
	return rec
}

// DecodeDeadLetter parses a dead-letter record. It fails with a
// *DecodeError.
func DecodeDeadLetter(data []byte) (DeadLetter, error) {
	var rec DeadLetter
	if _, err := DecodeHeader(data, SchemaDeadLetter); err != nil {
		return rec, err
	}
	if err := decodeStrict(SchemaDeadLetter, data, &rec); err != nil {
		return rec, err
	}
	return rec, nil
}

// ConsumeDeadLetters hands dead-letter records to h, through a durable
// consumer on CORDON_DEADLETTERS (default name "cordon-deadletters").
// A record that cannot be decoded is logged and terminated. ctx bounds the
// setup only: the subscription runs until Stop or Close. It fails with
// ErrInvalidConfig, ErrInvalidSubject, ErrClosed or a JetStream error.
func (b *Bus) ConsumeDeadLetters(ctx context.Context, cc ConsumerConfig, h func(ctx context.Context, rec DeadLetter, d Delivery) error) (*Subscription, error) {
	dec := func(d Delivery, data []byte) (DeadLetter, error) {
		rec, err := DecodeDeadLetter(data)
		return rec, withSubject(err, d.Subject)
	}
	return consume(ctx, b, StreamDeadLetters, PrefixDeadLetters, cc, []string{PrefixDeadLetters + ">"}, "cordon-deadletters", dec, h)
}
