package misp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/cordonsec/cordon/ioc"
	"github.com/cordonsec/cordon/ioc/feed/logic"
)

// Config says how to read one export. The zero value is usable.
type Config struct {
	// Name is the export's name: the file named in errors, and the Source
	// of its indicators. Default: "misp".
	Name string
	// Severity is the severity when the event's threat level is undefined.
	Severity ioc.Severity
}

// YARA is the source of one yara attribute.
type YARA struct {
	ID     string // the attribute's uuid (or id)
	Path   string // its JSON path
	Source string // the rule text
}

// Result is what an export holds.
type Result struct {
	Indicators []ioc.Indicator
	// Trees are the attributes that pair two observables (ip|port,
	// regkey|value), engine atomic, rule the attribute uuid.
	Trees []*logic.Tree
	// YARA are the yara attributes' rule sources, unparsed.
	YARA []YARA
	// Warnings name the to_ids attribute types that were skipped, with
	// how many of each.
	Warnings []string
}

type flexString string

func (s *flexString) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = flexString(v)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		if string(b) == "null" {
			return nil
		}
		// A type error, so that the decoder names the field.
		return &json.UnmarshalTypeError{Value: jsonKind(b), Type: reflect.TypeFor[string]()}
	}
	*s = flexString(n)
	return nil
}

type flexBool bool

func (v *flexBool) UnmarshalJSON(b []byte) error {
	switch strings.Trim(string(b), `"`) {
	case "true", "1", "True":
		*v = true
	case "false", "0", "False", "", "null":
		*v = false
	default:
		return &json.UnmarshalTypeError{Value: jsonKind(b) + " " + truncate(string(b)), Type: reflect.TypeFor[bool]()}
	}
	return nil
}

// jsonKind names the kind of the JSON value b, as json type errors do.
func jsonKind(b []byte) string {
	switch b = bytes.TrimSpace(b); {
	case len(b) == 0:
		return "value"
	case b[0] == '"':
		return "string"
	case b[0] == '{':
		return "object"
	case b[0] == '[':
		return "array"
	case b[0] == 't' || b[0] == 'f':
		return "bool"
	case b[0] == 'n':
		return "null"
	}
	return "number"
}

type tag struct {
	Name flexString `json:"name"`
}

type attribute struct {
	ID      flexString `json:"id"`
	UUID    flexString `json:"uuid"`
	Type    flexString `json:"type"`
	Value   flexString `json:"value"`
	ToIDs   flexBool   `json:"to_ids"`
	Deleted flexBool   `json:"deleted"`
	Comment flexString `json:"comment"`
	Tag     []tag      `json:"Tag"`
}

// Attributes and objects are decoded one at a time, so that an error
// names the one at fault by its index.
type object struct {
	Deleted   flexBool          `json:"deleted"`
	Attribute []json.RawMessage `json:"Attribute"`
}

type event struct {
	ID          flexString        `json:"id"`
	UUID        flexString        `json:"uuid"`
	Info        flexString        `json:"info"`
	ThreatLevel flexString        `json:"threat_level_id"`
	Attribute   []json.RawMessage `json:"Attribute"`
	Object      []json.RawMessage `json:"Object"`
	Tag         []tag             `json:"Tag"`
}

type wrapper struct {
	Event *event `json:"Event"`
}

// Parse reads a MISP export. It returns an *Error for malformed JSON (with
// line and column), for JSON that is not an event, a list of events or a
// search answer, and for the first to_ids attribute whose value is not of
// its type (with its JSON path).
func Parse(data []byte, cfg Config) (*Result, error) {
	name := cfg.Name
	if name == "" {
		name = "misp"
	}
	p := &parser{name: name, cfg: cfg, res: &Result{}, skipped: map[string]int{}}
	if err := p.parse(data); err != nil {
		return nil, err
	}
	for typ, n := range p.skipped {
		p.res.Warnings = append(p.res.Warnings, fmt.Sprintf("%s: %d to_ids attribute(s) of type %q skipped: not an indicator cordon matches", name, n, typ))
	}
	slices.Sort(p.res.Warnings)
	return p.res, nil
}

type parser struct {
	name    string
	cfg     Config
	res     *Result
	skipped map[string]int
}

func (p *parser) fail(path, format string, args ...any) error {
	return &Error{File: p.name, Path: path, Reason: fmt.Sprintf(format, args...)}
}

// jsonErr turns a decoding error of the value at path into an *Error.
// The file was checked to be valid JSON, so it is a type error: it names
// the JSON path and, when file is the value decoded (the offsets the
// decoder reports count in the value), the line and column; nil file: a
// part of the file.
func (p *parser) jsonErr(file []byte, path string, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		f := path
		if te.Field != "" {
			f = joinPath(path, te.Field)
		}
		e := &Error{File: p.name, Path: f, Reason: fmt.Sprintf("a JSON %s where %s was expected", te.Value, typeName(te.Type))}
		if file != nil && te.Offset > 0 {
			e.Line, e.Column = position(file, te.Offset)
		}
		return e
	}
	return p.fail(path, "%v", err)
}

// typeName says what a Go type the decoder wanted is in JSON terms.
func typeName(t reflect.Type) string {
	if t == nil {
		return "another value"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice:
		return "an array"
	case reflect.Struct, reflect.Map, reflect.Pointer:
		return "an object"
	}
	return t.String()
}

func (p *parser) parse(data []byte) error {
	// A byte order mark (Windows tools write one) is not JSON; leading
	// space is kept so that lines count from the file's first.
	trim := bytes.TrimRight(bytes.TrimPrefix(data, []byte("\ufeff")), " \t\r\n")
	if len(bytes.TrimSpace(trim)) == 0 {
		return p.fail("", "empty file")
	}
	if !json.Valid(trim) {
		var v any
		err := json.Unmarshal(trim, &v)
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := position(trim, se.Offset)
			return &Error{File: p.name, Line: line, Column: col, Reason: "malformed JSON: " + se.Error()}
		}
		return p.fail("", "malformed JSON: %v", err)
	}
	switch bytes.TrimSpace(trim)[0] {
	case '[':
		var list []json.RawMessage
		if err := json.Unmarshal(trim, &list); err != nil {
			return p.jsonErr(trim, "", err)
		}
		for i, raw := range list {
			if err := p.wrapped(raw, fmt.Sprintf("[%d]", i), false); err != nil {
				return err
			}
		}
		return nil
	case '{':
		var top map[string]json.RawMessage
		if err := json.Unmarshal(trim, &top); err != nil {
			return p.jsonErr(trim, "", err)
		}
		if resp, ok := top["response"]; ok {
			var list []json.RawMessage
			if err := json.Unmarshal(resp, &list); err != nil {
				return p.jsonErr(nil, "response", err)
			}
			for i, raw := range list {
				if err := p.wrapped(raw, fmt.Sprintf("response[%d]", i), false); err != nil {
					return err
				}
			}
			return nil
		}
		return p.wrapped(trim, "", true)
	}
	line, col := position(trim, int64(len(trim)-len(bytes.TrimLeft(trim, " \t\r\n"))+1))
	return &Error{File: p.name, Line: line, Column: col, Reason: "not a JSON object or array"}
}

// wrapped reads {"Event": …} at path; whole says raw is the file.
func (p *parser) wrapped(raw []byte, path string, whole bool) error {
	var w wrapper
	if err := json.Unmarshal(raw, &w); err != nil {
		if whole {
			return p.jsonErr(raw, path, err)
		}
		return p.jsonErr(nil, path, err)
	}
	if w.Event == nil {
		return p.fail(path, "has no \"Event\" object")
	}
	return p.event(w.Event, joinPath(path, "Event"))
}

func (p *parser) event(ev *event, path string) error {
	sev := p.cfg.Severity
	switch strings.TrimSpace(string(ev.ThreatLevel)) {
	case "1":
		sev = ioc.SeverityHigh
	case "2":
		sev = ioc.SeverityMedium
	case "3":
		sev = ioc.SeverityLow
	case "4", "":
	default:
		return p.fail(joinPath(path, "threat_level_id"), "%q is not 1, 2, 3 or 4", ev.ThreatLevel)
	}
	var tags []string
	for _, t := range ev.Tag {
		if t.Name != "" {
			tags = append(tags, string(t.Name))
		}
	}
	for i, raw := range ev.Attribute {
		if err := p.rawAttribute(raw, fmt.Sprintf("%s.Attribute[%d]", path, i), ev, sev, tags); err != nil {
			return err
		}
	}
	for j, raw := range ev.Object {
		opath := fmt.Sprintf("%s.Object[%d]", path, j)
		var o object
		if err := json.Unmarshal(raw, &o); err != nil {
			return p.jsonErr(nil, opath, err)
		}
		if o.Deleted {
			// A deleted object's attributes are deleted with it.
			continue
		}
		for i, raw := range o.Attribute {
			if err := p.rawAttribute(raw, fmt.Sprintf("%s.Attribute[%d]", opath, i), ev, sev, tags); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p *parser) rawAttribute(raw json.RawMessage, path string, ev *event, sev ioc.Severity, evTags []string) error {
	var a attribute
	if err := json.Unmarshal(raw, &a); err != nil {
		return p.jsonErr(nil, path, err)
	}
	return p.attribute(&a, path, ev, sev, evTags)
}

func (p *parser) attribute(a *attribute, path string, ev *event, sev ioc.Severity, evTags []string) error {
	if !a.ToIDs || a.Deleted {
		return nil
	}
	typ := strings.ToLower(strings.TrimSpace(string(a.Type)))
	val := strings.TrimSpace(string(a.Value))
	if typ == "" {
		return p.fail(joinPath(path, "type"), "is missing")
	}
	if val == "" {
		return p.fail(joinPath(path, "value"), "is missing")
	}
	id := string(a.UUID)
	if id == "" {
		id = string(a.ID)
	}
	desc := string(a.Comment)
	if desc == "" {
		desc = string(ev.Info)
	}
	tags := append([]string(nil), evTags...)
	for _, t := range a.Tag {
		if t.Name != "" {
			tags = append(tags, string(t.Name))
		}
	}
	base := ioc.Indicator{ID: id, Source: p.name, Severity: sev, Description: desc, Tags: tags}
	vpath := joinPath(path, "value")
	add := func(k ioc.Kind, v string) error {
		ind := base
		ind.Kind, ind.Value = k, v
		n, err := ind.Normalized()
		if err != nil {
			var ie *ioc.IndicatorError
			if errors.As(err, &ie) {
				return p.fail(vpath, "%s %q: %s", typ, v, ie.Reason)
			}
			return p.fail(vpath, "%v", err)
		}
		p.res.Indicators = append(p.res.Indicators, n)
		return nil
	}
	split := func(n int) ([]string, error) {
		parts := strings.Split(val, "|")
		if len(parts) != n {
			return nil, p.fail(vpath, "%q has %d parts separated by \"|\", type %s needs %d", val, len(parts), typ, n)
		}
		for i := range parts {
			parts[i] = strings.TrimSpace(parts[i])
		}
		return parts, nil
	}
	switch typ {
	case "md5", "sha1", "sha256", "sha512":
		k, _ := ioc.ParseKind(typ)
		return add(k, val)
	case "filename|md5", "filename|sha1", "filename|sha256", "filename|sha512":
		parts, err := split(2)
		if err != nil {
			return err
		}
		k, _ := ioc.ParseKind(strings.TrimPrefix(typ, "filename|"))
		base.Description = strings.TrimSpace("file name " + strconv.Quote(parts[0]) + "; " + desc)
		return add(k, parts[1])
	case "ip-src", "ip-dst":
		return add(ipKind(val), val)
	case "domain":
		return add(ioc.KindDomain, val)
	case "hostname":
		return add(ioc.KindHostname, val)
	case "domain|ip":
		parts, err := split(2)
		if err != nil {
			return err
		}
		if err := add(ioc.KindDomain, parts[0]); err != nil {
			return err
		}
		return add(ipKind(parts[1]), parts[1])
	case "url":
		if !strings.Contains(val, "://") {
			// MISP often stores URLs without a scheme: the resource is
			// bad over either.
			if err := add(ioc.KindURL, "http://"+val); err != nil {
				return err
			}
			return add(ioc.KindURL, "https://"+val)
		}
		return add(ioc.KindURL, val)
	case "filename":
		if strings.ContainsAny(val, `/\`) {
			return add(ioc.KindFilePath, val)
		}
		return add(ioc.KindFileName, val)
	case "regkey":
		return add(ioc.KindRegistryKey, val)
	case "mutex":
		return add(ioc.KindMutex, val)
	case "ip-src|port", "ip-dst|port":
		return p.ipPort(base, typ, val, vpath)
	case "regkey|value":
		return p.regValue(base, typ, val, vpath)
	case "yara":
		p.res.YARA = append(p.res.YARA, YARA{ID: id, Path: vpath, Source: string(a.Value)})
		return nil
	}
	p.skipped[typ]++
	return nil
}

func ipKind(v string) ioc.Kind {
	v = strings.TrimSpace(v)
	if strings.Contains(v, "/") {
		return ioc.KindCIDR
	}
	if a, err := netip.ParseAddr(strings.Trim(v, "[]")); err == nil && !a.Unmap().Is4() {
		return ioc.KindIPv6
	}
	return ioc.KindIPv4
}

// ipPort: "192.0.2.1|443", "[2001:db8::1]|443" or "2001:db8::1|443".
func (p *parser) ipPort(base ioc.Indicator, typ, val, vpath string) error {
	i := strings.LastIndexByte(val, '|')
	if i < 0 {
		return p.fail(vpath, "%q is not ADDRESS|PORT", val)
	}
	addr, port := strings.TrimSpace(val[:i]), strings.TrimSpace(val[i+1:])
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return p.fail(vpath, "port %q is not an integer in 0-65535", port)
	}
	ind := base
	ind.Kind, ind.Value = ipKind(addr), addr
	// The indicator is the address; the description says the whole
	// condition, which the detection's rule (the attribute) stands for.
	ind.Description = strings.TrimSuffix(fmt.Sprintf("%s %s; %s", typ, val, base.Description), "; ")
	norm, err := ind.Normalized()
	if err != nil {
		var ie *ioc.IndicatorError
		if errors.As(err, &ie) {
			return p.fail(vpath, "%s %q: %s", typ, addr, ie.Reason)
		}
		return p.fail(vpath, "%v", err)
	}
	a, err := logic.NewCond(logic.Cond{Fields: []logic.Field{logic.NetRemoteAddr}, Op: logic.OpEq, Values: []string{norm.Value}})
	if err != nil {
		return p.fail(vpath, "%v", err)
	}
	b, err := logic.NewCond(logic.Cond{Fields: []logic.Field{logic.NetRemotePort}, Op: logic.OpEq, Values: []string{strconv.Itoa(n)}})
	if err != nil {
		return p.fail(vpath, "%v", err)
	}
	p.res.Trees = append(p.res.Trees, &logic.Tree{
		ID: ruleID(base.ID, vpath), Engine: ioc.EngineAtomic, Source: base.Source, Name: typ + " " + val,
		Severity: base.Severity, Indicators: []ioc.Indicator{norm}, Root: logic.And(a, b),
	})
	return nil
}

// regValue: "HKLM\...\Run\name|data".
func (p *parser) regValue(base ioc.Indicator, typ, val, vpath string) error {
	key, data, ok := strings.Cut(val, "|")
	key, data = strings.TrimSpace(key), strings.TrimSpace(data)
	if !ok || data == "" {
		return p.fail(vpath, "%q is not KEY|VALUE", val)
	}
	ind := base
	ind.Kind, ind.Value = ioc.KindRegistryKey, key
	ind.Description = strings.TrimSuffix(fmt.Sprintf("%s %s; %s", typ, val, base.Description), "; ")
	norm, err := ind.Normalized()
	if err != nil {
		var ie *ioc.IndicatorError
		if errors.As(err, &ie) {
			return p.fail(vpath, "%s %q: %s", typ, key, ie.Reason)
		}
		return p.fail(vpath, "%v", err)
	}
	k, err := logic.NewCond(logic.Cond{Fields: []logic.Field{logic.RegPath, logic.RegKey}, Op: logic.OpEq, Values: []string{norm.Value}})
	if err != nil {
		return p.fail(vpath, "%v", err)
	}
	d, err := logic.NewCond(logic.Cond{Fields: []logic.Field{logic.RegData}, Op: logic.OpEq, Values: []string{data}})
	if err != nil {
		return p.fail(vpath, "%v", err)
	}
	p.res.Trees = append(p.res.Trees, &logic.Tree{
		ID: ruleID(base.ID, vpath), Engine: ioc.EngineAtomic, Source: base.Source, Name: typ + " " + val,
		Severity: base.Severity, Indicators: []ioc.Indicator{norm}, Root: logic.And(k, d),
	})
	return nil
}

func ruleID(id, path string) string {
	if id != "" {
		return id
	}
	return path
}

func joinPath(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// position turns the offset json errors report (the bytes read, the bad
// one included) into the 1-based line and column of the last byte read.
func position(data []byte, off int64) (int, int) {
	if off < 0 {
		off = 0
	}
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := max(1, int(off)-bytes.LastIndexByte(before, '\n')-1)
	return line, col
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
