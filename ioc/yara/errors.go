package yara

import (
	"errors"
	"fmt"
)

// Sentinel errors. A *CompileError wraps exactly one of the Err* kinds below,
// so callers can test with errors.Is.
var (
	// ErrSyntax is a rule that YARA's grammar does not accept.
	ErrSyntax = errors.New("yara: syntax error")
	// ErrUndefined is a reference to an undefined identifier, string or rule.
	ErrUndefined = errors.New("yara: undefined identifier")
	// ErrDuplicate is a duplicated rule, string, tag or modifier.
	ErrDuplicate = errors.New("yara: duplicate identifier")
	// ErrUnreferencedString is a string that no condition uses.
	ErrUnreferencedString = errors.New("yara: unreferenced string")
	// ErrInvalidString is an invalid text, hex or regular expression string,
	// or an invalid combination of string modifiers.
	ErrInvalidString = errors.New("yara: invalid string")
	// ErrOverflow is an integer overflow in a constant expression.
	ErrOverflow = errors.New("yara: integer overflow")
	// ErrType is an operand of the wrong type or value.
	ErrType = errors.New("yara: invalid operand")
	// ErrUnknownModule is an import of a module this engine does not have.
	ErrUnknownModule = errors.New("yara: unknown module")
	// ErrInclude is an include that cannot be resolved.
	ErrInclude = errors.New("yara: include")
	// ErrVariable is an invalid external variable.
	ErrVariable = errors.New("yara: invalid external variable")
	// ErrScanTimeout is returned by Scan and ScanFile when the scan's timeout
	// expires.
	ErrScanTimeout = errors.New("yara: scan timed out")
)

// CompileError is a compile error with its position. Line and Column are
// 1-based; Column is 0 when only the line is known. File is empty for the
// source given to Compile, or the path of an included file.
type CompileError struct {
	Kind   error  // one of the Err* sentinels
	File   string // included file, or ""
	Line   int
	Column int
	Rule   string // rule the error is in, when known
	Msg    string
}

// Error formats the error as "yara: [file:]line:col: rule "r": message".
func (e *CompileError) Error() string {
	pos := fmt.Sprintf("line %d", e.Line)
	if e.Column > 0 {
		pos = fmt.Sprintf("line %d, column %d", e.Line, e.Column)
	}
	if e.File != "" {
		pos = e.File + ": " + pos
	}
	if e.Rule != "" {
		return fmt.Sprintf("yara: %s: rule %q: %s", pos, e.Rule, e.Msg)
	}
	return fmt.Sprintf("yara: %s: %s", pos, e.Msg)
}

// Unwrap returns the error's Kind.
func (e *CompileError) Unwrap() error { return e.Kind }

// Warning is a compile warning (for example a string that slows scanning).
type Warning struct {
	Line int
	Rule string
	Msg  string
}

func (w Warning) String() string {
	return fmt.Sprintf("line %d: rule %q: %s", w.Line, w.Rule, w.Msg)
}
