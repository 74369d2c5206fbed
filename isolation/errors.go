package isolation

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Sentinel errors. Errors returned by this package wrap one of these where
// it applies, so callers test them with errors.Is.
var (
	// ErrInvalidRule marks a rule (or rule text) that breaks the rule
	// grammar or the rule constraints. The concrete error is a *RuleError.
	ErrInvalidRule = errors.New("invalid rule")

	// ErrInvalidPlan marks a Plan that fails Validate.
	ErrInvalidPlan = errors.New("invalid plan")

	// ErrInvalidConfig marks a Config, Request or Exclusions value that
	// fails validation.
	ErrInvalidConfig = errors.New("invalid configuration")

	// ErrUnsupported is returned by an Enforcer (or a platform file) for
	// something the platform cannot do, for example matching a rule by
	// application path, or the control socket's peer check on a platform
	// without one.
	ErrUnsupported = errors.New("not supported on this platform")

	// ErrClosed is returned by an Enforcer, Manager or control server used
	// after Close.
	ErrClosed = errors.New("closed")

	// ErrNotIsolated is returned for operations that need the host to be
	// isolated (listing the exclusions in force over the control socket).
	ErrNotIsolated = errors.New("host is not isolated")

	// ErrFailed is returned over the control socket when the isolation is
	// in state failed (an apply or a clear did not succeed): the rules in
	// force are not known, so no list of exclusions is given; Status has
	// the error.
	ErrFailed = errors.New("isolation failed")

	// ErrReadBack is wrapped by an Enforcer's Apply when it could not
	// verify that the host is exactly in the plan's state: the rules read
	// back differ from the plan, could not be read, or (ErrConnectionsLeft)
	// connections the plan does not allow are still open. The state is
	// then unknown, and applying the same plan again is safe and retries.
	ErrReadBack = errors.New("rules read back differ from the plan")

	// ErrConnectionsLeft is wrapped by an Enforcer's Apply when the plan's
	// rules are in force and verified, but some existing connections the
	// plan does not allow could not be ended (or listed). It implies
	// ErrReadBack: errors.Is(err, ErrReadBack) holds for it, and the host
	// is not "isolated" until an Apply returns nil. Applying the same plan
	// again retries ending them.
	ErrConnectionsLeft error = &impliedError{msg: "connections the plan does not allow are still open", implies: ErrReadBack}

	// ErrBadPassword is returned when the local release password is wrong.
	ErrBadPassword = errors.New("wrong password")

	// ErrRateLimited is returned when too many wrong passwords were given
	// recently; the caller must wait before trying again.
	ErrRateLimited = errors.New("too many wrong passwords; try again later")

	// ErrPermission is returned when the control socket's peer is not
	// allowed (not root).
	ErrPermission = errors.New("permission denied")

	// ErrResolve marks a failure to resolve the management endpoints.
	ErrResolve = errors.New("cannot resolve management endpoints")

	// ErrBadHash marks a password hash that is not a valid argon2id PHC
	// string.
	ErrBadHash = errors.New("invalid argon2id hash")

	// ErrProtocol marks a malformed control-socket message.
	ErrProtocol = errors.New("control protocol error")
)

// impliedError is a sentinel that also matches (through Unwrap) a more
// general sentinel, without repeating its text.
type impliedError struct {
	msg     string
	implies error
}

func (e *impliedError) Error() string { return e.msg }
func (e *impliedError) Unwrap() error { return e.implies }

// RuleError describes why a rule, an endpoint or a line of plan text is
// invalid: where (line, column, field) and what. It wraps ErrInvalidRule,
// or ErrInvalidPlan for plan-level problems.
type RuleError struct {
	Line   int    // 1-based line in a plan text; 0 when not from a plan text
	Column int    // 1-based byte column in the line or rule text; 0 when unknown
	Field  string // the field or key at fault, e.g. "remote", "rport"; may be empty
	Value  string // the offending value, may be empty
	Msg    string // what is wrong
	Err    error  // ErrInvalidRule or ErrInvalidPlan
}

// Error implements error.
func (e *RuleError) Error() string {
	var b strings.Builder
	b.WriteString("isolation: ")
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	}
	if e.Line > 0 {
		b.WriteString(" at line ")
		b.WriteString(strconv.Itoa(e.Line))
		if e.Column > 0 {
			b.WriteString(", column ")
			b.WriteString(strconv.Itoa(e.Column))
		}
	} else if e.Column > 0 {
		b.WriteString(" at column ")
		b.WriteString(strconv.Itoa(e.Column))
	}
	if e.Field != "" {
		b.WriteString(", field ")
		b.WriteString(e.Field)
	}
	if e.Value != "" {
		b.WriteString(" (")
		b.WriteString(strconv.Quote(e.Value))
		b.WriteString(")")
	}
	if e.Msg != "" {
		b.WriteString(": ")
		b.WriteString(e.Msg)
	}
	return b.String()
}

// Unwrap returns the sentinel.
func (e *RuleError) Unwrap() error { return e.Err }

func ruleErr(field, value, format string, args ...any) *RuleError {
	return &RuleError{Field: field, Value: value, Msg: fmt.Sprintf(format, args...), Err: ErrInvalidRule}
}

// ApplyError is returned (wrapped) by Manager operations when the Enforcer
// failed; Status.LastError carries its text.
type ApplyError struct {
	Op  string // "apply" or "clear"
	Err error
}

// Error implements error.
func (e *ApplyError) Error() string { return "isolation: enforcer " + e.Op + ": " + e.Err.Error() }

// Unwrap returns the enforcer's error.
func (e *ApplyError) Unwrap() error { return e.Err }
