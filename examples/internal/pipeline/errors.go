package pipeline

import (
	"errors"
	"fmt"
)

// ErrBadCommand marks a verified bus command whose action or arguments the
// isolation Manager cannot take.
var ErrBadCommand = errors.New("pipeline: bad command")

// YARAFileError is a YARA rule file that could not be read or compiled.
type YARAFileError struct {
	Path string
	Err  error // an I/O error or a *yara.CompileError with line and column
}

func (e *YARAFileError) Error() string { return fmt.Sprintf("yara: %s: %v", e.Path, e.Err) }

// Unwrap returns the cause.
func (e *YARAFileError) Unwrap() error { return e.Err }
