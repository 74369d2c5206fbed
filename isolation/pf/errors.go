package pf

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/cordonsec/cordon/isolation"
)

// Sentinel errors. Errors from this package also wrap the isolation
// sentinels (isolation.ErrReadBack, isolation.ErrUnsupported,
// isolation.ErrClosed, isolation.ErrInvalidRule) where the Enforcer
// contract asks for them.
var (
	// ErrSyntax marks pf rule or state text this package cannot read. The
	// concrete error is a *SyntaxError.
	ErrSyntax = errors.New("unreadable pf text")

	// ErrPfctl marks a pfctl command that failed. The concrete error is a
	// *CommandError.
	ErrPfctl = errors.New("pfctl failed")

	// ErrStatesLeft is isolation.ErrConnectionsLeft (kept under this name
	// for callers written against it): Apply wraps it when the rules are in
	// force but some states the plan does not allow could not be listed or
	// killed. It implies isolation.ErrReadBack. The caller retries Apply.
	ErrStatesLeft = isolation.ErrConnectionsLeft

	// ErrAnchorNotEvaluated is returned (wrapping isolation.ErrReadBack)
	// when the main pf ruleset does not evaluate cordon's anchor for every
	// packet: no unconditional "anchor" rule naming it (or its parent's
	// "/*"), or a "pass ... quick" rule before that one. The anchor's
	// rules would then filter nothing, or not everything.
	ErrAnchorNotEvaluated = errors.New("the main pf ruleset does not evaluate the anchor for every packet")

	// ErrNoToken is returned when "pfctl -E" did not print a reference
	// token.
	ErrNoToken = errors.New("pfctl -E printed no token")
)

// SyntaxError says where pf text could not be read: the line (1-based),
// the byte column (1-based) and the token at fault.
type SyntaxError struct {
	Line   int
	Column int
	Token  string
	Msg    string
}

// Error implements error.
func (e *SyntaxError) Error() string {
	var b strings.Builder
	b.WriteString("pf: ")
	b.WriteString(ErrSyntax.Error())
	if e.Line > 0 {
		b.WriteString(" at line ")
		b.WriteString(strconv.Itoa(e.Line))
	}
	if e.Column > 0 {
		b.WriteString(", column ")
		b.WriteString(strconv.Itoa(e.Column))
	}
	if e.Token != "" {
		b.WriteString(" (")
		b.WriteString(strconv.Quote(e.Token))
		b.WriteString(")")
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns ErrSyntax.
func (e *SyntaxError) Unwrap() error { return ErrSyntax }

// CommandError is a failed pfctl command: its arguments, the runner's
// error and what pfctl wrote to stderr.
type CommandError struct {
	Args   []string
	Stderr string
	Err    error
}

// Error implements error.
func (e *CommandError) Error() string {
	s := "pf: pfctl " + strings.Join(e.Args, " ") + ": " + e.Err.Error()
	if msg := strings.TrimSpace(e.Stderr); msg != "" {
		s += ": " + msg
	}
	return s
}

// Unwrap returns ErrPfctl and the runner's error.
func (e *CommandError) Unwrap() []error { return []error{ErrPfctl, e.Err} }

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
