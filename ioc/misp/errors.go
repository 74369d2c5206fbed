package misp

import (
	"errors"
	"fmt"
)

// ErrSyntax is wrapped by every error Parse returns for bad input.
var ErrSyntax = errors.New("misp: invalid event")

// Error is a bad export: the file, where (a JSON path, and for malformed
// JSON the line and column) and what is wrong.
type Error struct {
	File   string
	Path   string // JSON path, e.g. "Event.Attribute[2].value"
	Line   int    // for malformed JSON, and a wrong type where the decoder can tell; 0 otherwise
	Column int
	Reason string
}

func (e *Error) Error() string {
	switch {
	case e.Line > 0 && e.Path != "":
		return fmt.Sprintf("misp: %s:%d:%d: %s: %s", e.File, e.Line, e.Column, e.Path, e.Reason)
	case e.Line > 0:
		return fmt.Sprintf("misp: %s:%d:%d: %s", e.File, e.Line, e.Column, e.Reason)
	case e.Path != "":
		return fmt.Sprintf("misp: %s: %s: %s", e.File, e.Path, e.Reason)
	}
	return fmt.Sprintf("misp: %s: %s", e.File, e.Reason)
}

func (e *Error) Unwrap() error { return ErrSyntax }
