package ioc

import (
	"errors"
	"fmt"
)

// Sentinel errors. Errors returned by this package wrap one of these, so
// callers can test with errors.Is.
var (
	// ErrInvalidKind: an indicator kind name or value that is not declared.
	ErrInvalidKind = errors.New("ioc: invalid indicator kind")
	// ErrInvalidSeverity: a severity name that is not declared.
	ErrInvalidSeverity = errors.New("ioc: invalid severity")
	// ErrInvalidValue: an indicator value that is not of its kind's form.
	ErrInvalidValue = errors.New("ioc: invalid indicator value")
	// ErrInvalidIndicator: an indicator whose other fields are wrong
	// (score out of range, validity window reversed, …).
	ErrInvalidIndicator = errors.New("ioc: invalid indicator")
	// ErrInvalidEvent: an event that does not follow cordon.event/v1.
	ErrInvalidEvent = errors.New("ioc: invalid event")
	// ErrInvalidDetection: a detection that does not follow cordon.detection/v1.
	ErrInvalidDetection = errors.New("ioc: invalid detection")
	// ErrUnknownSchema: a message whose schema is not one this version reads.
	ErrUnknownSchema = errors.New("ioc: unknown schema")
)

// IndicatorError reports an indicator rejected while building a Set. It
// names the indicator by its position among those added, its id, kind and
// value, and says why.
type IndicatorError struct {
	Index  int    // position among the indicators added to the Builder
	ID     string // the indicator's id, if any
	Kind   Kind
	Value  string // the value as given
	Reason string
	Err    error // the sentinel: ErrInvalidValue, ErrInvalidKind or ErrInvalidIndicator
}

func (e *IndicatorError) Error() string {
	id := ""
	if e.ID != "" {
		id = fmt.Sprintf(" %q", e.ID)
	}
	return fmt.Sprintf("ioc: indicator #%d%s (%s %q): %s", e.Index, id, e.Kind, e.Value, e.Reason)
}

func (e *IndicatorError) Unwrap() error { return e.Err }

// FieldError reports a wire message (event or detection) that is malformed:
// Field is the JSON path of the offending field ("file.sha256"), Reason says
// what is wrong.
type FieldError struct {
	Field  string
	Reason string
	Err    error // ErrInvalidEvent, ErrInvalidDetection or ErrUnknownSchema
}

func (e *FieldError) Error() string {
	what := "message"
	switch {
	case errors.Is(e.Err, ErrInvalidEvent):
		what = "event"
	case errors.Is(e.Err, ErrInvalidDetection):
		what = "detection"
	}
	if e.Field == "" {
		return fmt.Sprintf("ioc: %s: %s", what, e.Reason)
	}
	return fmt.Sprintf("ioc: %s: %s: %s", what, e.Field, e.Reason)
}

func (e *FieldError) Unwrap() error { return e.Err }
