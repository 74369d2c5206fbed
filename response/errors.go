package response

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Load errors are *LoadError values (collected in
// LoadErrors) that wrap one of the load sentinels; match them with
// errors.Is.
var (
	// ErrSyntax: the file is not well-formed YAML, or is not a list of
	// rules.
	ErrSyntax = errors.New("response: syntax error")
	// ErrUnknownKey: a key that the rule, action or test does not have.
	ErrUnknownKey = errors.New("response: unknown key")
	// ErrInvalidRule: a field has a wrong type or value (missing name,
	// bad duration, duration above the maximum …).
	ErrInvalidRule = errors.New("response: invalid rule")
	// ErrExpression: an expression (when, suppress.key or a template)
	// does not compile or does not type-check.
	ErrExpression = errors.New("response: invalid expression")
	// ErrTooLarge: a file, rule list or expression is above its limit.
	ErrTooLarge = errors.New("response: too large")
	// ErrUnknownAction: an action type that is not registered.
	ErrUnknownAction = errors.New("response: unknown action")
	// ErrDuplicateRule: two rules of the loaded files have the same name.
	ErrDuplicateRule = errors.New("response: duplicate rule name")
	// ErrRuleTest: an inline test of a rule failed.
	ErrRuleTest = errors.New("response: rule test failed")

	// ErrEval: an expression failed while it ran (for example an index
	// out of range). The rule does not fire.
	ErrEval = errors.New("response: evaluation error")
	// ErrDuplicateAction: Register was given a name already registered.
	ErrDuplicateAction = errors.New("response: action already registered")
	// ErrNoService: an action needs a service (Isolator, Publisher,
	// Tagger) that the engine was not given.
	ErrNoService = errors.New("response: service not configured")
	// ErrInvalidConfig: a Config or LoadConfig field is out of range.
	ErrInvalidConfig = errors.New("response: invalid config")
	// ErrInvalidDetection: a detection the engine cannot handle.
	ErrInvalidDetection = errors.New("response: invalid detection")
	// ErrActionFailed: Engine.Run's handler returns it (wrapped, naming
	// the decision, rule and action) when an action failed in a way a
	// later attempt may not (the Isolator, Publisher or suppression store
	// failed), so that the detection is delivered again. The decision was
	// recorded with the failure first.
	ErrActionFailed = errors.New("response: action failed")
)

// LoadError says where a rule file is wrong: file, 1-based line and
// column, the rule and field when known, and the offending source line
// with a caret under the column.
type LoadError struct {
	File   string
	Line   int
	Column int
	// Rule is the rule's name, or "#<index>" when it has none yet.
	Rule string
	// Field is the dotted path of the offending field ("when",
	// "actions[0].isolate.duration"), "" for the file as a whole.
	Field string
	// Snippet is the source line and a caret line, "" when unknown.
	Snippet string
	// Err wraps the sentinel and says what is wrong.
	Err error
}

func (e *LoadError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
	}
	b.WriteString(": ")
	if e.Rule != "" {
		fmt.Fprintf(&b, "rule %s: ", e.Rule)
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	if e.Snippet != "" {
		b.WriteString("\n")
		b.WriteString(e.Snippet)
	}
	return b.String()
}

func (e *LoadError) Unwrap() error { return e.Err }

// LoadErrors are all the errors found in one load, in file order. A load
// with any error loads nothing.
type LoadErrors []*LoadError

func (es LoadErrors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

// Unwrap returns the errors, for errors.Is and errors.As.
func (es LoadErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

func wrapExpr(msg string) error { return fmt.Errorf("%w: %s", ErrExpression, msg) }
