package feed

import (
	"errors"
	"fmt"
)

// Sentinel errors.
var (
	// ErrUnknownFormat: the content of a file is none of the formats read.
	ErrUnknownFormat = errors.New("feed: unknown feed format")
	// ErrInvalidConfig: a Config that does not validate.
	ErrInvalidConfig = errors.New("feed: invalid config")
	// ErrClosed: the Loader or the Watch was stopped.
	ErrClosed = errors.New("feed: closed")
)

// FileError is a feed file that could not be loaded: its name and why. Err
// is the format parser's own error (*csvfeed.Error, *loki.Error,
// *misp.Error, *openioc.Error, *stix.Error or *yara.CompileError), which
// names the line or JSON path, or ErrUnknownFormat, or an I/O error.
type FileError struct {
	File string
	Err  error
}

func (e *FileError) Error() string { return fmt.Sprintf("feed: %s: %v", e.File, e.Err) }

func (e *FileError) Unwrap() error { return e.Err }
