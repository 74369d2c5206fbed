package openioc

import (
	"errors"
	"fmt"
)

// Sentinel errors.
var (
	// ErrSyntax is wrapped by every error Parse returns for bad input.
	ErrSyntax = errors.New("openioc: invalid IOC")
	// ErrUnsupported is wrapped, with Config.Strict, when an IOC uses a
	// term cordon does not evaluate.
	ErrUnsupported = errors.New("openioc: unsupported term")
)

// Error is a bad IOC document: the file, the line (0 when not known) and
// what is wrong.
type Error struct {
	File   string
	Line   int
	Reason string
	Err    error // ErrSyntax, or ErrUnsupported
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("openioc: %s: %s", e.File, e.Reason)
	}
	return fmt.Sprintf("openioc: %s:%d: %s", e.File, e.Line, e.Reason)
}

func (e *Error) Unwrap() error { return e.Err }

// Warning is a term an IOC uses that cordon does not evaluate: the item
// never holds.
type Warning struct {
	File string
	Line int
	IOC  string // the IOC's id
	Term string // the Context search term
}

func (w Warning) String() string {
	return fmt.Sprintf("openioc: %s:%d: IOC %s: term %q is not supported; the item never matches", w.File, w.Line, w.IOC, w.Term)
}
