package ioc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"reflect"
	"strings"
	"time"
)

// The wire schemas this version writes and reads. A reader accepts the
// same major version with any minor suffix ("cordon.event/v1.3").
const (
	EventSchema     = "cordon.event/v1"
	DetectionSchema = "cordon.detection/v1"
)

// EventKind says which block of an Event is filled in.
type EventKind string

// The event kinds; each has the block of the same name.
const (
	EventFile     EventKind = "file"
	EventProcess  EventKind = "process"
	EventNetwork  EventKind = "network"
	EventDNS      EventKind = "dns"
	EventHTTP     EventKind = "http"
	EventRegistry EventKind = "registry"
	EventMutex    EventKind = "mutex"
)

// Event is what a host saw, in the cordon.event/v1 wire schema: one kind and
// the block of that kind. Decode it with DecodeEvent or json.Unmarshal
// (both strict: unknown fields, missing required fields and a block other
// than the kind's are errors naming the field).
type Event struct {
	// Schema is "cordon.event/v1". Required.
	Schema string `json:"schema"`
	// ID identifies the event at its source; detections derive their ids
	// from it, so a replayed event yields the same detection id. Required.
	ID string `json:"id"`
	// Time is when the host saw it. Required.
	Time time.Time `json:"time"`
	// Host is the host that saw it. Host.ID is required.
	Host Host `json:"host"`
	// Kind names the block that is filled in. Required.
	Kind EventKind `json:"kind"`

	File     *FileEvent     `json:"file,omitempty"`
	Process  *ProcessEvent  `json:"process,omitempty"`
	Network  *NetworkEvent  `json:"network,omitempty"`
	DNS      *DNSEvent      `json:"dns,omitempty"`
	HTTP     *HTTPEvent     `json:"http,omitempty"`
	Registry *RegistryEvent `json:"registry,omitempty"`
	Mutex    *MutexEvent    `json:"mutex,omitempty"`
}

// Host identifies a host.
type Host struct {
	// ID is the agent's stable host id; subjects are named after it. Required.
	ID string `json:"id"`
	// Name is the host name.
	Name string `json:"name,omitempty"`
	// OS is "windows", "linux", "macos" or another name; "windows" makes
	// file and process names compare case-insensitively.
	OS string `json:"os,omitempty"`
	// Addresses are the host's own IP addresses.
	Addresses []string `json:"addresses,omitempty"`
}

// FileEvent: a file was created, changed or scanned.
type FileEvent struct {
	Path   string `json:"path,omitempty"`   // full path
	Name   string `json:"name,omitempty"`   // file name; derived from Path for matching when empty
	Size   int64  `json:"size,omitempty"`   // bytes
	MD5    string `json:"md5,omitempty"`    // hex digest
	SHA1   string `json:"sha1,omitempty"`   // hex digest
	SHA256 string `json:"sha256,omitempty"` // hex digest
	SHA512 string `json:"sha512,omitempty"` // hex digest
}

// ProcessEvent: a process started or was seen running.
type ProcessEvent struct {
	PID         int    `json:"pid,omitempty"`
	Name        string `json:"name,omitempty"` // image name
	Path        string `json:"path,omitempty"` // image path
	CommandLine string `json:"command_line,omitempty"`
	ParentPID   int    `json:"parent_pid,omitempty"`
	ParentName  string `json:"parent_name,omitempty"`
	SHA256      string `json:"sha256,omitempty"` // of the image
}

// NetworkEvent: a connection or flow.
type NetworkEvent struct {
	Protocol      string `json:"protocol,omitempty"`  // "tcp", "udp", "icmp", …
	Direction     string `json:"direction,omitempty"` // "in" or "out"
	LocalAddress  string `json:"local_address,omitempty"`
	LocalPort     int    `json:"local_port,omitempty"`
	RemoteAddress string `json:"remote_address,omitempty"`
	RemotePort    int    `json:"remote_port,omitempty"`
}

// DNSEvent: a name was resolved.
type DNSEvent struct {
	Query   string   `json:"query"`             // the name asked for; required
	Answers []string `json:"answers,omitempty"` // addresses or names answered
}

// HTTPEvent: a URL was requested.
type HTTPEvent struct {
	URL    string `json:"url"` // absolute URL; required
	Method string `json:"method,omitempty"`
}

// RegistryEvent: a registry key or value was written.
type RegistryEvent struct {
	Key       string `json:"key"` // required
	ValueName string `json:"value_name,omitempty"`
	Data      string `json:"data,omitempty"`
}

// MutexEvent: a mutex was created or opened.
type MutexEvent struct {
	Name string `json:"name"` // required
}

// DecodeEvent decodes one cordon.event/v1 JSON object strictly and
// validates it. Errors are *FieldError values naming the field.
func DecodeEvent(data []byte) (Event, error) {
	var ev Event
	if err := ev.UnmarshalJSON(data); err != nil {
		return Event{}, err
	}
	return ev, nil
}

// UnmarshalJSON decodes strictly and validates, as DecodeEvent does.
func (ev *Event) UnmarshalJSON(data []byte) error {
	r := jsonReader{b: data}
	var fast Event
	if r.event(&fast) && r.end() {
		if err := fast.Validate(); err != nil {
			return err
		}
		*ev = fast
		return nil
	}
	type plain Event
	var p plain
	if err := decodeStrict(data, &p, ErrInvalidEvent); err != nil {
		return err
	}
	e := Event(p)
	if err := e.Validate(); err != nil {
		return err
	}
	*ev = e
	return nil
}

// Validate checks the event against cordon.event/v1: required fields,
// exactly the block of its kind, well-formed digests, addresses and ports.
// It returns a *FieldError naming the first offending field.
func (ev *Event) Validate() error {
	bad := func(field, format string, args ...any) error {
		return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...), Err: ErrInvalidEvent}
	}
	if err := checkSchema(ev.Schema, EventSchema, ErrInvalidEvent); err != nil {
		return err
	}
	if ev.ID == "" {
		return bad("id", "is required")
	}
	if ev.Time.IsZero() {
		return bad("time", "is required")
	}
	if err := ev.Host.validate("host", ErrInvalidEvent); err != nil {
		return err
	}
	blocks := [...]struct {
		kind    EventKind
		present bool
	}{
		{EventFile, ev.File != nil}, {EventProcess, ev.Process != nil}, {EventNetwork, ev.Network != nil},
		{EventDNS, ev.DNS != nil}, {EventHTTP, ev.HTTP != nil}, {EventRegistry, ev.Registry != nil},
		{EventMutex, ev.Mutex != nil},
	}
	known, has := false, false
	for _, b := range blocks {
		if b.kind == ev.Kind {
			known, has = true, b.present
		}
	}
	switch {
	case ev.Kind == "":
		return bad("kind", "is required")
	case !known:
		return bad("kind", "%q is not one of file, process, network, dns, http, registry, mutex", ev.Kind)
	case !has:
		return bad(string(ev.Kind), "is required for kind %q", ev.Kind)
	}
	for _, b := range blocks {
		if b.present && b.kind != ev.Kind {
			return bad(string(b.kind), "is not allowed in an event of kind %q", ev.Kind)
		}
	}
	switch ev.Kind {
	case EventFile:
		f := ev.File
		if f.Path == "" && f.Name == "" && f.MD5 == "" && f.SHA1 == "" && f.SHA256 == "" && f.SHA512 == "" {
			return bad("file", "needs at least one of path, name or a digest")
		}
		if f.Size < 0 {
			return bad("file.size", "is negative")
		}
		for _, h := range []struct {
			field, v string
			k        Kind
		}{{"file.md5", f.MD5, KindMD5}, {"file.sha1", f.SHA1, KindSHA1}, {"file.sha256", f.SHA256, KindSHA256}, {"file.sha512", f.SHA512, KindSHA512}} {
			if h.v == "" {
				continue
			}
			if _, err := normalizeHash(h.k, h.v); err != nil {
				return bad(h.field, "%s", reasonOf(err))
			}
		}
	case EventProcess:
		p := ev.Process
		if p.Name == "" && p.Path == "" {
			return bad("process", "needs name or path")
		}
		if p.PID < 0 {
			return bad("process.pid", "is negative")
		}
		if p.ParentPID < 0 {
			return bad("process.parent_pid", "is negative")
		}
		if p.SHA256 != "" {
			if _, err := normalizeHash(KindSHA256, p.SHA256); err != nil {
				return bad("process.sha256", "%s", reasonOf(err))
			}
		}
	case EventNetwork:
		n := ev.Network
		if n.RemoteAddress == "" {
			return bad("network.remote_address", "is required")
		}
		for _, a := range []struct{ field, v string }{{"network.remote_address", n.RemoteAddress}, {"network.local_address", n.LocalAddress}} {
			if a.v == "" {
				continue
			}
			if _, err := netip.ParseAddr(a.v); err != nil {
				return bad(a.field, "%q is not an IP address", a.v)
			}
		}
		for _, p := range []struct {
			field string
			v     int
		}{{"network.local_port", n.LocalPort}, {"network.remote_port", n.RemotePort}} {
			if p.v < 0 || p.v > 65535 {
				return bad(p.field, "%d is outside 0-65535", p.v)
			}
		}
		switch n.Direction {
		case "", "in", "out":
		default:
			return bad("network.direction", "%q is not \"in\" or \"out\"", n.Direction)
		}
	case EventDNS:
		if ev.DNS.Query == "" {
			return bad("dns.query", "is required")
		}
	case EventHTTP:
		if ev.HTTP.URL == "" {
			return bad("http.url", "is required")
		}
	case EventRegistry:
		if ev.Registry.Key == "" {
			return bad("registry.key", "is required")
		}
	case EventMutex:
		if ev.Mutex.Name == "" {
			return bad("mutex.name", "is required")
		}
	}
	return nil
}

func (h *Host) validate(field string, sentinel error) error {
	if h.ID == "" {
		return &FieldError{Field: field + ".id", Reason: "is required", Err: sentinel}
	}
	for i, a := range h.Addresses {
		if _, err := netip.ParseAddr(a); err != nil {
			return &FieldError{Field: fmt.Sprintf("%s.addresses[%d]", field, i), Reason: fmt.Sprintf("%q is not an IP address", a), Err: sentinel}
		}
	}
	return nil
}

// checkSchema accepts want ("cordon.x/v1") and its minor versions
// ("cordon.x/v1.2"), and rejects anything else, naming an unknown major
// version as ErrUnknownSchema.
func checkSchema(got, want string, sentinel error) error {
	if got == "" {
		return &FieldError{Field: "schema", Reason: "is required", Err: sentinel}
	}
	if got == want || strings.HasPrefix(got, want+".") {
		return nil
	}
	name, _, _ := strings.Cut(want, "/")
	if strings.HasPrefix(got, name+"/") {
		return &FieldError{Field: "schema", Reason: fmt.Sprintf("%q is a version this reader does not know (it reads %s)", got, want),
			Err: errors.Join(sentinel, ErrUnknownSchema)}
	}
	return &FieldError{Field: "schema", Reason: fmt.Sprintf("%q is not %s", got, want), Err: sentinel}
}

// decodeStrict decodes one JSON object into v, rejecting unknown fields
// and trailing data. On an unknown field it finds the field's path.
func decodeStrict(data []byte, v any, sentinel error) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(data, v, err, sentinel)
	}
	if _, err := dec.Token(); err != io.EOF {
		return &FieldError{Reason: "trailing data after the JSON object", Err: sentinel}
	}
	// encoding/json matches keys without regard to case and lets a
	// repeated key overwrite the first; the schema does neither.
	return checkKeys(data, v, sentinel)
}

// CheckJSONKeys reports the first object key of the JSON document data
// that encoding/json accepts even with DisallowUnknownFields but a strict
// schema does not: a key that is a field's JSON name in another case
// ("Schema" for "schema"), or a key repeated in its object. v is the
// pointer data was decoded into without error; values that decode
// themselves (json.Unmarshaler, time.Time) are not looked into. It returns
// the key's path ("event.file.Path") and why it is refused, or two empty
// strings.
func CheckJSONKeys(data []byte, v any) (field, reason string) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return walkKeys(dec, reflect.TypeOf(v), "")
}

var (
	timeType        = reflect.TypeFor[time.Time]()
	unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
)

// checkKeys is CheckJSONKeys as a *FieldError with sentinel.
func checkKeys(data []byte, v any, sentinel error) error {
	field, reason := CheckJSONKeys(data, v)
	if reason == "" {
		return nil
	}
	return &FieldError{Field: field, Reason: reason, Err: sentinel}
}

// walkKeys reads one value from dec, checking the keys of the objects in it
// against t (nil: not checked), and returns the path of the first bad key
// and why it is bad ("" when all are good). prefix is the value's path with
// a trailing ".".
func walkKeys(dec *json.Decoder, t reflect.Type, prefix string) (field, reason string) {
	tok, err := dec.Token()
	if err != nil {
		return "", ""
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && (t == timeType || reflect.PointerTo(t).Implements(unmarshalerType)) {
		t = nil // decodes itself
	}
	switch tok {
	case json.Delim('{'):
		var fields map[string]reflect.Type
		if t != nil && t.Kind() == reflect.Struct {
			fields = map[string]reflect.Type{}
			jsonFields(t, fields, false)
		}
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return "", ""
			}
			key, _ := kt.(string)
			if seen[key] {
				return prefix + key, "appears twice in its object"
			}
			seen[key] = true
			var ft reflect.Type
			if fields != nil {
				var ok bool
				if ft, ok = fields[key]; !ok {
					for name := range fields {
						if strings.EqualFold(name, key) {
							return prefix + key, fmt.Sprintf("is not a field of the schema (field names are case-sensitive: %q)", name)
						}
					}
					return prefix + key, "is not a field of the schema"
				}
			}
			if f, r := walkKeys(dec, ft, prefix+key+"."); r != "" {
				return f, r
			}
		}
		_, _ = dec.Token() // '}'
	case json.Delim('['):
		var et reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			et = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if f, r := walkKeys(dec, et, fmt.Sprintf("%s[%d].", strings.TrimSuffix(prefix, "."), i)); r != "" {
				return f, r
			}
		}
		_, _ = dec.Token() // ']'
	}
	return "", ""
}

func decodeError(data []byte, v any, err error, sentinel error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		return &FieldError{Field: te.Field, Reason: fmt.Sprintf("cannot hold a JSON %s (it is %s)", te.Value, te.Type), Err: sentinel}
	case errors.As(err, &se):
		return &FieldError{Reason: fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, se), Err: sentinel}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		if path := unknownFieldPath(data, reflect.TypeOf(v).Elem(), ""); path != "" {
			return &FieldError{Field: path, Reason: "is not a field of the schema", Err: sentinel}
		}
		return &FieldError{Reason: strings.TrimPrefix(err.Error(), "json: "), Err: sentinel}
	case err == io.EOF:
		return &FieldError{Reason: "empty input", Err: sentinel}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &FieldError{Reason: "malformed JSON: unexpected end of input", Err: sentinel}
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		return err
	}
	return &FieldError{Reason: err.Error(), Err: sentinel}
}

// jsonFields adds the JSON names of t's fields to fields, with the fields
// of embedded structs, the shallower name winning as in encoding/json;
// lower-cased when fold is set.
func jsonFields(t reflect.Type, fields map[string]reflect.Type, fold bool) {
	var embedded []reflect.Type
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || !f.IsExported() && !f.Anonymous {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			et := f.Type
			for et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				embedded = append(embedded, et)
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		if fold {
			name = strings.ToLower(name)
		}
		fields[name] = f.Type
	}
	for _, et := range embedded {
		inner := map[string]reflect.Type{}
		jsonFields(et, inner, fold)
		for k, v := range inner {
			if _, ok := fields[k]; !ok {
				fields[k] = v
			}
		}
	}
}

// unknownFieldPath walks data along type t and returns the dotted path of
// the first object key that t has no field for.
func unknownFieldPath(data []byte, t reflect.Type, prefix string) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if t == reflect.TypeOf(time.Time{}) {
			return ""
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(data, &obj) != nil {
			return ""
		}
		fields := map[string]reflect.Type{}
		jsonFields(t, fields, true)
		for key, raw := range obj {
			ft, ok := fields[strings.ToLower(key)]
			if !ok {
				return prefix + key
			}
			if p := unknownFieldPath(raw, ft, prefix+key+"."); p != "" {
				return p
			}
		}
	case reflect.Slice:
		var arr []json.RawMessage
		if json.Unmarshal(data, &arr) != nil {
			return ""
		}
		for i, raw := range arr {
			if p := unknownFieldPath(raw, t.Elem(), fmt.Sprintf("%s[%d].", strings.TrimSuffix(prefix, "."), i)); p != "" {
				return p
			}
		}
	}
	return ""
}
