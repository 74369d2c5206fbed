package csvfeed

import (
	"errors"
	"fmt"
)

// ErrSyntax is wrapped by every error Parse returns for bad input.
var ErrSyntax = errors.New("csvfeed: invalid feed")

// Error is a bad feed: the file, the line and column (1-based; 0 when not
// known) and what is wrong.
type Error struct {
	File   string
	Line   int
	Column int
	Reason string
}

func (e *Error) Error() string {
	switch {
	case e.Line == 0:
		return fmt.Sprintf("csvfeed: %s: %s", e.File, e.Reason)
	case e.Column == 0:
		return fmt.Sprintf("csvfeed: %s:%d: %s", e.File, e.Line, e.Reason)
	}
	return fmt.Sprintf("csvfeed: %s:%d:%d: %s", e.File, e.Line, e.Column, e.Reason)
}

func (e *Error) Unwrap() error { return ErrSyntax }
