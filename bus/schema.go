package bus

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/cordonsec/cordon/ioc"
)

// Schema names. A schema string is "<name>/v<major>" or
// "<name>/v<major>.<minor>"; a consumer accepts any minor version of the
// major versions it knows and dead-letters the others.
const (
	SchemaDetection  = "cordon.detection/v1"
	SchemaCommand    = "cordon.command/v1"
	SchemaAudit      = "cordon.audit/v1"
	SchemaDeadLetter = "cordon.deadletter/v1"
)

// Schema is a parsed schema string.
type Schema struct {
	Name         string
	Major, Minor int
}

func (s Schema) String() string {
	if s.Minor == 0 {
		return fmt.Sprintf("%s/v%d", s.Name, s.Major)
	}
	return fmt.Sprintf("%s/v%d.%d", s.Name, s.Major, s.Minor)
}

// ParseSchema parses "name/vMAJOR[.MINOR]". It fails with
// ErrUnsupportedSchema when s does not have that form.
func ParseSchema(s string) (Schema, error) {
	name, ver, ok := strings.Cut(s, "/v")
	if !ok || name == "" || ver == "" || strings.ContainsAny(name, "/ \t\r\n") {
		return Schema{}, fmt.Errorf("%w: %q is not name/vMAJOR[.MINOR]", ErrUnsupportedSchema, s)
	}
	majS, minS, hasMinor := strings.Cut(ver, ".")
	maj, err := parseVersionNumber(majS)
	if err != nil {
		return Schema{}, fmt.Errorf("%w: %q: major version: %v", ErrUnsupportedSchema, s, err)
	}
	min := 0
	if hasMinor {
		if min, err = parseVersionNumber(minS); err != nil {
			return Schema{}, fmt.Errorf("%w: %q: minor version: %v", ErrUnsupportedSchema, s, err)
		}
	}
	return Schema{Name: name, Major: maj, Minor: min}, nil
}

func parseVersionNumber(s string) (int, error) {
	if s == "" || len(s) > 6 || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("bad number %q", s)
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("bad number %q", s)
		}
	}
	return strconv.Atoi(s)
}

// Header is the part every cordon message has: its schema and its id. The
// id is also the Nats-Msg-Id header, so that a retried publish is stored
// once.
type Header struct {
	Schema string `json:"schema"`
	ID     string `json:"id"`
}

// DecodeHeader reads the schema and id of a message and checks that the
// schema has the name of want and its major version. It fails with a
// *DecodeError wrapping ErrMalformed or ErrUnsupportedSchema.
func DecodeHeader(data []byte, want string) (Header, error) {
	var h Header
	if len(bytes.TrimSpace(data)) == 0 {
		return h, &DecodeError{Offset: -1, Err: fmt.Errorf("%w: empty message", ErrMalformed)}
	}
	if err := json.Unmarshal(data, &h); err != nil {
		return h, decodeErr("", err)
	}
	if err := checkSchema(h.Schema, want); err != nil {
		return h, &DecodeError{Schema: h.Schema, Field: "schema", Offset: -1, Err: err}
	}
	if h.ID == "" {
		return h, &DecodeError{Schema: h.Schema, Field: "id", Offset: -1, Err: fmt.Errorf("%w: id is empty", ErrMalformed)}
	}
	return h, nil
}

func checkSchema(got, want string) error {
	if got == "" {
		return fmt.Errorf("%w: schema is missing", ErrMalformed)
	}
	g, err := ParseSchema(got)
	if err != nil {
		return err
	}
	w, err := ParseSchema(want)
	if err != nil {
		return err
	}
	if g.Name != w.Name {
		return fmt.Errorf("%w: %q where %q is expected", ErrUnsupportedSchema, got, want)
	}
	if g.Major != w.Major {
		return fmt.Errorf("%w: %q: major version %d unknown (this consumer reads v%d)", ErrUnsupportedSchema, got, g.Major, w.Major)
	}
	return nil
}

// decodeStrict decodes one JSON document into v, refusing unknown fields
// and trailing data, and turns failures into a *DecodeError.
func decodeStrict(schema string, data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeErr(schema, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return &DecodeError{Schema: schema, Offset: dec.InputOffset(), Err: fmt.Errorf("%w: data after the JSON document", ErrMalformed)}
	}
	// encoding/json matches keys without regard to case and lets a
	// repeated key overwrite the first: a signed command must mean one
	// thing to every reader, so neither is accepted.
	if field, reason := ioc.CheckJSONKeys(data, v); reason != "" {
		return &DecodeError{Schema: schema, Offset: -1, Field: field, Err: fmt.Errorf("%w: field %q %s", ErrMalformed, field, reason)}
	}
	return nil
}

// decodeErr turns an encoding/json error into a *DecodeError naming the
// field and offset where it can.
func decodeErr(schema string, err error) error {
	de := &DecodeError{Schema: schema, Offset: -1, Err: fmt.Errorf("%w: %v", ErrMalformed, err)}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		de.Offset = syn.Offset
	case errors.As(err, &typ):
		de.Offset = typ.Offset
		de.Field = typ.Field
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		de.Err = fmt.Errorf("%w: empty or truncated JSON", ErrMalformed)
	default:
		const unknown = "json: unknown field "
		if msg := err.Error(); strings.HasPrefix(msg, unknown) {
			de.Field, _ = strconv.Unquote(strings.TrimPrefix(msg, unknown))
		}
	}
	return de
}

func jsonValid(b []byte) bool { return json.Valid(b) }
