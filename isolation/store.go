package isolation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// RecordVersion is the version of the persisted Record format.
const RecordVersion = 1

// Record is the persisted state of the Manager, written before and after
// every transition. Deadlines are absolute.
type Record struct {
	Version       int        `json:"version"`                  // RecordVersion
	State         State      `json:"state"`                    // the state at the time of writing
	Target        State      `json:"target,omitempty"`         // on or off: where the Manager is going (for isolating, releasing, failed)
	Mode          Mode       `json:"mode,omitzero"`            // the mode in force
	Since         time.Time  `json:"since,omitzero"`           // when the isolation began
	Deadline      time.Time  `json:"deadline,omitzero"`        // absolute; zero with UntilReleased
	UntilReleased bool       `json:"until_released,omitempty"` // manual only
	Reason        string     `json:"reason,omitempty"`         // of the last isolate request
	Requester     string     `json:"requester,omitempty"`      // of the last isolate request
	CommandID     string     `json:"command_id,omitempty"`     // of the last isolate request
	Exclusions    Exclusions `json:"exclusions"`               // the exclusion list in force (the mode's)
	Management    []Endpoint `json:"management,omitempty"`     // last resolved endpoints, the fallback when resolution fails on start
	LastError     string     `json:"last_error,omitempty"`     // the last failure
	Commands      []string   `json:"commands,omitempty"`       // recent command ids, to ignore redelivered commands
}

// Store persists the Manager's Record. Implementations must make Save
// atomic: after a crash, Load returns either the old or the new record,
// whole.
type Store interface {
	// Load returns the saved record; ok is false when none was saved.
	Load(ctx context.Context) (r Record, ok bool, err error)
	// Save replaces the saved record.
	Save(ctx context.Context, r Record) error
}

// FileStore is a Store in one JSON file, written to a temporary file in the
// same directory, fsynced, renamed over the old one, and the directory
// fsynced. It is safe for concurrent use by one process (the Manager
// serializes its saves).
type FileStore struct {
	Path string // the file; its directory must exist
}

// ErrCorrupt marks a persisted record that cannot be read.
var ErrCorrupt = errors.New("persisted isolation state is corrupt")

// maxRecordSize bounds the file read by Load.
const maxRecordSize = 4 << 20

// Load implements Store. A missing file is ok=false; an unreadable or
// malformed one is an error wrapping ErrCorrupt that names the file.
func (s FileStore) Load(ctx context.Context) (Record, bool, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, false, err
	}
	f, err := os.Open(s.Path)
	if errors.Is(err, os.ErrNotExist) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, fmt.Errorf("isolation: load %s: %w", s.Path, err)
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(f, maxRecordSize+1)); err != nil {
		return Record{}, false, fmt.Errorf("isolation: load %s: %w", s.Path, err)
	}
	if buf.Len() > maxRecordSize {
		return Record{}, false, fmt.Errorf("isolation: load %s: %w: larger than %d bytes", s.Path, ErrCorrupt, maxRecordSize)
	}
	r, err := DecodeRecord(buf.Bytes())
	if err != nil {
		return Record{}, false, fmt.Errorf("isolation: load %s: %w", s.Path, err)
	}
	return r, true, nil
}

// DecodeRecord parses a persisted record strictly (unknown fields, a
// wrong version or an invalid state are errors wrapping ErrCorrupt).
func DecodeRecord(b []byte) (Record, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var r Record
	if err := dec.Decode(&r); err != nil {
		return Record{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if dec.More() {
		return Record{}, fmt.Errorf("%w: trailing data", ErrCorrupt)
	}
	if r.Version != RecordVersion {
		return Record{}, fmt.Errorf("%w: version %d, want %d", ErrCorrupt, r.Version, RecordVersion)
	}
	if !r.State.valid() {
		return Record{}, fmt.Errorf("%w: state %q", ErrCorrupt, r.State)
	}
	if r.Target != "" && r.Target != StateOn && r.Target != StateOff {
		return Record{}, fmt.Errorf("%w: target %q", ErrCorrupt, r.Target)
	}
	if err := r.Exclusions.Validate(); err != nil {
		return Record{}, fmt.Errorf("%w: exclusions: %v", ErrCorrupt, err)
	}
	for i, e := range r.Management {
		if err := e.Validate(); err != nil {
			return Record{}, fmt.Errorf("%w: management[%d]: %v", ErrCorrupt, i, err)
		}
	}
	return r, nil
}

// Save implements Store.
func (s FileStore) Save(ctx context.Context, r Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.Version = RecordVersion
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("isolation: save %s: %w", s.Path, err)
	}
	b = append(b, '\n')
	return writeFileAtomic(s.Path, b, 0o600)
}

func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("isolation: save %s: %w", path, err)
	}
	name := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			_ = tmp.Close()
			_ = os.Remove(name)
		}
	}()
	if err := tmp.Chmod(perm); err != nil {
		return fmt.Errorf("isolation: save %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("isolation: save %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("isolation: save %s: fsync: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("isolation: save %s: %w", path, err)
	}
	if err := os.Rename(name, path); err != nil {
		return fmt.Errorf("isolation: save %s: %w", path, err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		// Directory fsync makes the rename durable; not every platform
		// supports it (Windows), so its failure is not an error.
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
