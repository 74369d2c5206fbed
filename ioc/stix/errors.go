package stix

import (
	"errors"
	"fmt"
)

// Sentinel errors.
var (
	// ErrSyntax is wrapped by every error Parse returns for bad input.
	ErrSyntax = errors.New("stix: invalid STIX")
	// ErrUnsupported is wrapped, with Config.Strict, when an indicator uses
	// what cordon cannot evaluate.
	ErrUnsupported = errors.New("stix: unsupported indicator")
)

// Error is a bad document: the file, the JSON path of the offending value,
// where it applies the line and column in the file or the column in the
// pattern, and what is wrong.
type Error struct {
	File   string
	Path   string // JSON path, e.g. "objects[3].pattern"
	Line   int    // for malformed JSON
	Column int    // in the file for malformed JSON, in the pattern for a pattern error
	Reason string
	Err    error // ErrSyntax or ErrUnsupported
}

func (e *Error) Error() string {
	switch {
	case e.Path == "" && e.Line > 0:
		return fmt.Sprintf("stix: %s:%d:%d: %s", e.File, e.Line, e.Column, e.Reason)
	case e.Path != "" && e.Column > 0:
		return fmt.Sprintf("stix: %s: %s: column %d: %s", e.File, e.Path, e.Column, e.Reason)
	case e.Path != "":
		return fmt.Sprintf("stix: %s: %s: %s", e.File, e.Path, e.Reason)
	}
	return fmt.Sprintf("stix: %s: %s", e.File, e.Reason)
}

func (e *Error) Unwrap() error { return e.Err }

// Warning is an indicator that was not loaded because cordon cannot
// evaluate it against one event.
type Warning struct {
	File   string
	Path   string // JSON path of the indicator
	ID     string
	Reason string
}

func (w Warning) String() string {
	return fmt.Sprintf("stix: %s: %s (%s): not loaded: %s", w.File, w.Path, w.ID, w.Reason)
}
