package loki

import (
	"errors"
	"fmt"
)

// ErrSyntax is wrapped by every error Parse returns for bad input.
var ErrSyntax = errors.New("loki: invalid list")

// Error is a bad list: the file, the line (1-based; 0 when not known) and
// what is wrong.
type Error struct {
	File   string
	Line   int
	Reason string
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("loki: %s: %s", e.File, e.Reason)
	}
	return fmt.Sprintf("loki: %s:%d: %s", e.File, e.Line, e.Reason)
}

func (e *Error) Unwrap() error { return ErrSyntax }
