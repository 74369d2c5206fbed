package bus

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Errors returned by this package wrap one of these (test
// with [errors.Is]) and, where a caller needs the details, a typed error
// below (test with [errors.As]).
var (
	// ErrInvalidConfig reports a Config, ConsumerConfig or VerifierConfig
	// that fails Validate.
	ErrInvalidConfig = errors.New("bus: invalid config")

	// ErrClosed is returned by operations on a Bus after Close.
	ErrClosed = errors.New("bus: closed")

	// ErrInvalidSubject reports a host, kind or filter that cannot form a
	// NATS subject token (empty, or holding '.', '*', '>', '/', '\',
	// whitespace or control characters), or a filter outside the stream's
	// subjects.
	ErrInvalidSubject = errors.New("bus: invalid subject")

	// ErrMalformed reports a message that is not a well-formed document of
	// its schema: not JSON, unknown or missing fields, wrong types.
	ErrMalformed = errors.New("bus: malformed message")

	// ErrUnsupportedSchema reports a message whose schema name is not the
	// one expected on its stream, or whose major version is unknown.
	ErrUnsupportedSchema = errors.New("bus: unsupported schema")

	// ErrTooLarge reports a message above Config.MaxMessageBytes.
	ErrTooLarge = errors.New("bus: message too large")

	// ErrInvalidCommand reports a command that misses a required field or
	// holds an invalid one (unknown action, expiry before issue, lifetime
	// above the verifier's MaxLifetime).
	ErrInvalidCommand = errors.New("bus: invalid command")

	// ErrUntrustedIssuer reports a command signed by a key the verifier
	// does not trust.
	ErrUntrustedIssuer = errors.New("bus: untrusted command issuer")

	// ErrBadSignature reports a command whose signature does not verify
	// against its issuer key.
	ErrBadSignature = errors.New("bus: bad command signature")

	// ErrCommandExpired reports a command whose expiry has passed.
	ErrCommandExpired = errors.New("bus: command expired")

	// ErrCommandFromFuture reports a command issued later than now plus
	// the allowed clock skew.
	ErrCommandFromFuture = errors.New("bus: command issued in the future")

	// ErrCommandReplayed reports a command id the verifier already
	// accepted.
	ErrCommandReplayed = errors.New("bus: command replayed")

	// ErrWrongHost reports a command addressed to another host.
	ErrWrongHost = errors.New("bus: command for another host")

	// ErrReplayCacheFull reports that the verifier holds
	// VerifierConfig.MaxRemembered live command ids and refuses new ones
	// rather than forget one that could then be replayed.
	ErrReplayCacheFull = errors.New("bus: command replay memory full")

	// ErrNotFound reports a key absent from the isolation state bucket.
	ErrNotFound = errors.New("bus: not found")
)

// DecodeError is a message that could not be decoded. It wraps
// ErrMalformed, ErrUnsupportedSchema or ErrTooLarge.
type DecodeError struct {
	// Subject the message came from, when known.
	Subject string
	// Schema the message declared, when it could be read.
	Schema string
	// Field is the JSON field at fault, dotted ("event.file.size"), when
	// known.
	Field string
	// Offset is the byte offset in the message at which decoding failed,
	// or -1 when unknown.
	Offset int64
	// Err is the cause.
	Err error
}

func (e *DecodeError) Error() string {
	var b strings.Builder
	b.WriteString("bus: decode")
	if e.Subject != "" {
		fmt.Fprintf(&b, " %s", e.Subject)
	}
	if e.Schema != "" {
		fmt.Fprintf(&b, " (%s)", e.Schema)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, " field %q", e.Field)
	}
	if e.Offset >= 0 {
		fmt.Fprintf(&b, " at byte %d", e.Offset)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

func (e *DecodeError) Unwrap() error { return e.Err }

// CommandError is a command that was refused by SignCommand or by a
// Verifier. It wraps one of the command sentinels (ErrInvalidCommand,
// ErrUntrustedIssuer, ErrBadSignature, ErrCommandExpired,
// ErrCommandFromFuture, ErrCommandReplayed, ErrWrongHost,
// ErrReplayCacheFull) or a DecodeError.
type CommandError struct {
	// ID of the command, when it could be read.
	ID string
	// Issuer public key, when it could be read.
	Issuer string
	// Field at fault ("expires", "host", "sig" …), when one is.
	Field string
	// Err is the cause.
	Err error
}

func (e *CommandError) Error() string {
	var b strings.Builder
	b.WriteString("bus: command")
	if e.ID != "" {
		fmt.Fprintf(&b, " %q", e.ID)
	}
	if e.Issuer != "" {
		fmt.Fprintf(&b, " from %s", e.Issuer)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, " field %q", e.Field)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

func (e *CommandError) Unwrap() error { return e.Err }
