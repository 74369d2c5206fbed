package stix

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/cordonsec/cordon/ioc"
	"github.com/cordonsec/cordon/ioc/feed/logic"
)

// Config says how to read one document. The zero value is usable.
type Config struct {
	// Name is the document's name: the file named in errors, and the
	// Source of its indicators. Default: "stix".
	Name string
	// Severity is the severity of its indicators and detections (STIX
	// indicators have none). Default: SeverityUnknown.
	Severity ioc.Severity
	// Strict makes an indicator cordon cannot evaluate an error wrapping
	// ErrUnsupported instead of a Warning.
	Strict bool
}

// YARA is the rule source of an indicator with pattern_type yara.
type YARA struct {
	ID     string
	Path   string
	Source string
}

// Result is what a document holds.
type Result struct {
	Indicators []ioc.Indicator
	Trees      []*logic.Tree
	YARA       []YARA
	Warnings   []Warning
	// Revoked counts the revoked indicators skipped.
	Revoked int
}

type object struct {
	Type        string          `json:"type"`
	ID          string          `json:"id"`
	SpecVersion string          `json:"spec_version"`
	Pattern     *string         `json:"pattern"`
	PatternType string          `json:"pattern_type"`
	ValidFrom   string          `json:"valid_from"`
	ValidUntil  string          `json:"valid_until"`
	Revoked     bool            `json:"revoked"`
	Modified    string          `json:"modified"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Labels      []string        `json:"labels"`
	Types       []string        `json:"indicator_types"`
	Confidence  *int            `json:"confidence"`
	Objects     json.RawMessage `json:"objects"`
}

// Parse reads a STIX document. It returns an *Error for malformed JSON
// (with line and column), for a document that is not a bundle, an array
// of objects or an indicator, and for the first indicator that is wrong
// (no id, no pattern, a pattern that does not parse, a value not of its
// object path's form, a bad timestamp or confidence), naming its JSON
// path; with Config.Strict, also for the first it cannot evaluate.
func Parse(data []byte, cfg Config) (*Result, error) {
	name := cfg.Name
	if name == "" {
		name = "stix"
	}
	p := &parser{cfg: cfg, name: name, res: &Result{}, latest: map[string]int{}}
	if err := p.document(data); err != nil {
		return nil, err
	}
	for _, v := range p.versions {
		if v.obj == nil {
			continue // superseded
		}
		if err := p.indicator(v.obj, v.path); err != nil {
			return nil, err
		}
	}
	return p.res, nil
}

type parser struct {
	cfg  Config
	name string
	res  *Result
	// versions are the indicators read, in file order; of the versions of
	// one id (objects sharing an id, told apart by "modified") only the
	// latest keeps its obj: a later version revokes or replaces the
	// earlier ones.
	versions []version
	latest   map[string]int // id -> index in versions
}

type version struct {
	obj      *object
	path     string
	modified time.Time
}

// add records an indicator object; the latest version of each id is read
// once the whole document is.
func (p *parser) add(o *object, path string) error {
	var mod time.Time
	if o.Modified != "" {
		var err error
		if mod, err = parseTime(o.Modified); err != nil {
			return p.fail(joinPath(path, "modified"), 0, "%q is not an RFC 3339 timestamp", o.Modified)
		}
	}
	v := version{obj: o, path: path, modified: mod}
	if i, ok := p.latest[o.ID]; ok && o.ID != "" {
		if mod.Before(p.versions[i].modified) {
			return nil // an older version
		}
		p.versions[i].obj = nil
	}
	if o.ID != "" {
		p.latest[o.ID] = len(p.versions)
	}
	p.versions = append(p.versions, v)
	return nil
}

func (p *parser) fail(path string, col int, format string, args ...any) error {
	return &Error{File: p.name, Path: path, Column: col, Reason: fmt.Sprintf(format, args...), Err: ErrSyntax}
}

func (p *parser) jsonErr(data []byte, base int64, path string, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		line, col := position(data, base+se.Offset)
		return &Error{File: p.name, Line: line, Column: col, Reason: "malformed JSON: " + se.Error(), Err: ErrSyntax}
	case errors.As(err, &te):
		f := path
		if te.Field != "" {
			f = joinPath(path, te.Field)
		}
		return &Error{File: p.name, Path: f, Reason: fmt.Sprintf("a JSON %s where %s was expected", te.Value, te.Type), Err: ErrSyntax}
	}
	return p.fail(path, 0, "%v", err)
}

func (p *parser) document(data []byte) error {
	// A byte order mark (Windows tools write one) is not JSON; leading
	// space is kept so that lines count from the file's first.
	trim := bytes.TrimRight(bytes.TrimPrefix(data, []byte("\ufeff")), " \t\r\n")
	if len(bytes.TrimSpace(trim)) == 0 {
		return p.fail("", 0, "empty file")
	}
	if !json.Valid(trim) {
		var v any
		return p.jsonErr(trim, 0, "", json.Unmarshal(trim, &v))
	}
	// The JSON is valid from here on: the decoder only meets type errors.
	dec := json.NewDecoder(bytes.NewReader(trim))
	dec.UseNumber()
	tok, _ := dec.Token()
	switch tok {
	case json.Delim('['):
		return p.objects(dec, "")
	case json.Delim('{'):
	default:
		return p.fail("", 0, "not a JSON object or array")
	}
	// A bundle or one object: find "type" and "objects" in any order.
	var typ string
	var objects, whole json.RawMessage
	whole = trim
	for dec.More() {
		k, _ := dec.Token()
		key, _ := k.(string)
		switch key {
		case "type":
			var v any
			if err := dec.Decode(&v); err != nil {
				return p.jsonErr(trim, 0, "type", err)
			}
			s, ok := v.(string)
			if !ok {
				return p.fail("type", 0, "is not a string")
			}
			typ = s
		case "objects":
			if typ == "bundle" {
				// Stream the array: bundles are large.
				tok, _ := dec.Token()
				if tok != json.Delim('[') {
					return p.fail("objects", 0, "is not an array")
				}
				if err := p.objects(dec, "objects"); err != nil {
					return err
				}
				continue
			}
			if err := dec.Decode(&objects); err != nil {
				return p.jsonErr(trim, 0, "objects", err)
			}
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return p.jsonErr(trim, 0, key, err)
			}
		}
	}
	switch typ {
	case "bundle":
		if len(objects) == 0 || string(objects) == "null" {
			return nil
		}
		od := json.NewDecoder(bytes.NewReader(objects))
		tok, _ := od.Token()
		if tok != json.Delim('[') {
			return p.fail("objects", 0, "is not an array")
		}
		return p.objects(od, "objects")
	case "indicator":
		var o object
		if err := json.Unmarshal(whole, &o); err != nil {
			return p.jsonErr(whole, 0, "", err)
		}
		return p.add(&o, "")
	case "":
		return p.fail("type", 0, "is missing (a bundle or an indicator is expected)")
	}
	return p.fail("type", 0, "%q is neither bundle nor indicator", typ)
}

// objects reads the elements of an array whose '[' dec has consumed, up
// to and including its ']'.
func (p *parser) objects(dec *json.Decoder, path string) error {
	for i := 0; dec.More(); i++ {
		ip := fmt.Sprintf("%s[%d]", path, i)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return p.jsonErr(raw, 0, ip, err)
		}
		var o object
		err := json.Unmarshal(raw, &o)
		if o.Type != "indicator" {
			// Only indicators are read; others may hold anything.
			if err != nil && !bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) {
				return p.fail(ip, 0, "is not a JSON object")
			}
			if err == nil || !isIndicator(raw) {
				continue
			}
		}
		if err != nil {
			return p.jsonErr(raw, 0, ip, err)
		}
		if err := p.add(&o, ip); err != nil {
			return err
		}
	}
	_, err := dec.Token() // ']'
	if err != nil {
		return p.fail(path, 0, "%v", err)
	}
	return nil
}

// isIndicator reports whether an object's "type" is "indicator", for an
// object that did not decode whole.
func isIndicator(raw []byte) bool {
	var head struct {
		Type string `json:"type"`
	}
	return json.Unmarshal(raw, &head) == nil && head.Type == "indicator"
}

func (p *parser) warn(path, id, format string, args ...any) error {
	reason := fmt.Sprintf(format, args...)
	if p.cfg.Strict {
		return &Error{File: p.name, Path: path, Reason: reason, Err: ErrUnsupported}
	}
	p.res.Warnings = append(p.res.Warnings, Warning{File: p.name, Path: path, ID: id, Reason: reason})
	return nil
}

func parseTime(s string) (time.Time, error) {
	return time.Parse(time.RFC3339Nano, s)
}

func (p *parser) indicator(o *object, path string) error {
	if o.ID == "" {
		return p.fail(joinPath(path, "id"), 0, "is missing")
	}
	if o.Pattern == nil || strings.TrimSpace(*o.Pattern) == "" {
		return p.fail(joinPath(path, "pattern"), 0, "is missing")
	}
	var from, until time.Time
	var err error
	if o.ValidFrom != "" {
		if from, err = parseTime(o.ValidFrom); err != nil {
			return p.fail(joinPath(path, "valid_from"), 0, "%q is not an RFC 3339 timestamp", o.ValidFrom)
		}
	} else if o.SpecVersion == "2.1" {
		return p.fail(joinPath(path, "valid_from"), 0, "is missing (required in STIX 2.1)")
	}
	if o.ValidUntil != "" {
		if until, err = parseTime(o.ValidUntil); err != nil {
			return p.fail(joinPath(path, "valid_until"), 0, "%q is not an RFC 3339 timestamp", o.ValidUntil)
		}
		if !from.IsZero() && !until.After(from) {
			return p.fail(joinPath(path, "valid_until"), 0, "%s is not after valid_from %s", o.ValidUntil, o.ValidFrom)
		}
	}
	conf := 0
	if o.Confidence != nil {
		if *o.Confidence < 0 || *o.Confidence > 100 {
			return p.fail(joinPath(path, "confidence"), 0, "%d is outside 0-100", *o.Confidence)
		}
		conf = *o.Confidence
	}
	if o.Revoked {
		p.res.Revoked++
		return nil
	}
	ppath := joinPath(path, "pattern")
	switch strings.ToLower(o.PatternType) {
	case "stix", "":
	case "yara":
		p.res.YARA = append(p.res.YARA, YARA{ID: o.ID, Path: ppath, Source: *o.Pattern})
		return nil
	default:
		return p.warn(path, o.ID, "pattern_type %q is not evaluated", o.PatternType)
	}
	ast, err := parsePattern(*o.Pattern)
	if err != nil {
		var pe *PatternError
		if errors.As(err, &pe) {
			return p.fail(ppath, pe.Column, "%s", pe.Reason)
		}
		return p.fail(ppath, 0, "%v", err)
	}
	tags := append(append([]string(nil), o.Labels...), o.Types...)
	desc := o.Name
	if desc == "" {
		desc = o.Description
	}
	var single *ioc.Indicator // the one equality that stays a tree
	// One equality on a path with a kind: its value must be of the kind's
	// form, and it is an atomic indicator when the path is atomic.
	if ast.op == "" && len(ast.qualifiers) == 0 && ast.comp.op == "" {
		c := ast.comp.cmp
		if k, atomic, ok := atomicKind(c); ok && c.op == "=" && !c.negate && c.values[0].kind == tString {
			v := c.values[0].text
			k = refineKind(k, v)
			ind := ioc.Indicator{ID: o.ID, Kind: k, Value: v, Source: p.name, Severity: p.cfg.Severity,
				Confidence: conf, Tags: tags, Description: desc, ValidFrom: from, ValidUntil: until}
			n, err := ind.Normalized()
			if err != nil {
				var ie *ioc.IndicatorError
				if errors.As(err, &ie) {
					return p.fail(ppath, c.values[0].col, "%s %q: %s", c.pathString(), v, ie.Reason)
				}
				return p.fail(ppath, c.values[0].col, "%v", err)
			}
			if atomic {
				p.res.Indicators = append(p.res.Indicators, n)
				return nil
			}
			single = &n
		}
	}
	b := &builder{}
	root, err := b.obs(ast)
	if err != nil {
		var pe *PatternError
		if errors.As(err, &pe) {
			return p.fail(ppath, pe.Column, "%s", pe.Reason)
		}
		return p.fail(ppath, 0, "%v", err)
	}
	if b.unsupported != "" {
		return p.warn(path, o.ID, "%s", b.unsupported)
	}
	tree := &logic.Tree{ID: o.ID, Engine: ioc.EngineSTIX, Source: p.name, Name: desc,
		Severity: p.cfg.Severity, ValidFrom: from, ValidUntil: until, Root: root}
	if single != nil {
		// Its detections report the indicator, as an atomic one's would.
		tree.Indicators = []ioc.Indicator{*single}
	}
	if err := tree.Validate(); err != nil {
		return p.fail(ppath, 0, "%s", strings.TrimPrefix(err.Error(), logic.ErrInvalidTree.Error()+": "))
	}
	p.res.Trees = append(p.res.Trees, tree)
	return nil
}

func refineKind(k ioc.Kind, v string) ioc.Kind {
	if k == ioc.KindIPv4 || k == ioc.KindIPv6 {
		if strings.Contains(v, "/") {
			return ioc.KindCIDR
		}
		if a, err := netip.ParseAddr(strings.TrimSpace(v)); err == nil {
			if a.Unmap().Is4() {
				return ioc.KindIPv4
			}
			return ioc.KindIPv6
		}
	}
	return k
}

// builder turns a pattern into a logic tree, noting the first thing it
// cannot evaluate.
type builder struct {
	unsupported string
}

func (b *builder) unsup(format string, args ...any) *logic.Node {
	if b.unsupported == "" {
		b.unsupported = fmt.Sprintf(format, args...)
	}
	return logic.Never()
}

func (b *builder) obs(n *obsNode) (*logic.Node, error) {
	if len(n.qualifiers) > 0 {
		return b.unsup("the qualifier %s needs a sequence of events over time", n.qualifiers[0]), nil
	}
	switch n.op {
	case "":
		return b.comp(n.comp)
	case "FOLLOWEDBY":
		return b.unsup("FOLLOWEDBY needs a sequence of events over time"), nil
	}
	l, err := b.obs(n.l)
	if err != nil {
		return nil, err
	}
	r, err := b.obs(n.r)
	if err != nil {
		return nil, err
	}
	if n.op == "AND" {
		return logic.And(l, r), nil
	}
	return logic.Or(l, r), nil
}

func (b *builder) comp(c *compNode) (*logic.Node, error) {
	if c.op == "" {
		return b.cmp(c.cmp)
	}
	l, err := b.comp(c.l)
	if err != nil {
		return nil, err
	}
	r, err := b.comp(c.r)
	if err != nil {
		return nil, err
	}
	if c.op == "AND" {
		return logic.And(l, r), nil
	}
	return logic.Or(l, r), nil
}

func (c *comparison) pathString() string {
	var s strings.Builder
	s.WriteString(c.objType)
	s.WriteByte(':')
	for i, e := range c.path {
		if i > 0 && !strings.HasPrefix(e, "[") {
			s.WriteByte('.')
		}
		s.WriteString(e)
	}
	return s.String()
}

// key returns the canonical form of the object path used to look it up:
// hash names without dashes, lower case, indices as [*].
func (c *comparison) key() string {
	var s strings.Builder
	s.WriteString(c.objType)
	s.WriteByte(':')
	for i, e := range c.path {
		if strings.HasPrefix(e, "[") {
			s.WriteString("[*]")
			continue
		}
		if i > 0 {
			s.WriteByte('.')
		}
		if i > 0 && (c.path[i-1] == "hashes") {
			e = strings.ToLower(strings.ReplaceAll(e, "-", ""))
		}
		s.WriteString(e)
	}
	return s.String()
}

// pathInfo says what an object path reads, the form of a value it is
// compared with by "=" (kind; 0: any), and whether such an equality,
// alone in a pattern, compiles into the atomic sets.
type pathInfo struct {
	fields []logic.Field
	kind   ioc.Kind
	atomic bool
}

// paths, by canonical object path (comparison.key). A path is atomic only
// when the atomic set of its kind matches exactly the events, with
// exactly the case rules and normalization, that the comparison does as
// a tree (TestAtomicIsTree proves each against the other; the atomic
// kinds' fields are in ioc/set.go, AppendMatches):
//   - hashes MD5, SHA-1, SHA-512: file.md5, file.sha1, file.sha512 only,
//     hex without case: atomic.
//   - hashes SHA-256: the sha256 set also matches process.sha256: tree.
//   - file:name: the name set also matches process names, and ignores
//     case on Windows hosts where STIX compares exactly: tree.
//   - ipv4-addr:value, ipv6-addr:value: network.remote_address,
//     dns.answers and the host of http.url, as the tree: atomic.
//   - network-traffic:dst_ref.value: the address sets also match
//     dns.answers and the host of http.url: tree.
//   - domain-name:value: dns.query, dns.answers and the host of http.url,
//     exactly, in IDNA ASCII form, as the tree: atomic.
//   - url:value: http.url only, normalized alike, compared exactly: atomic.
//   - process:name: the process-name set also matches
//     process.parent_name, and ignores case on Windows hosts: tree.
//   - windows-registry-key:key: the registry set also matches the key
//     joined with registry.value_name: tree. (Both match the key under
//     each of its views, HKEY_USERS\<SID> as HKCU and the Classes keys as
//     HKCR.)
//   - mutex:name: mutex.name only, normalized alike, compared exactly:
//     atomic.
var paths = map[string]pathInfo{
	"file:hashes.md5":                     {[]logic.Field{logic.FileMD5}, ioc.KindMD5, true},
	"file:hashes.sha1":                    {[]logic.Field{logic.FileSHA1}, ioc.KindSHA1, true},
	"file:hashes.sha256":                  {[]logic.Field{logic.FileSHA256}, ioc.KindSHA256, false},
	"file:hashes.sha512":                  {[]logic.Field{logic.FileSHA512}, ioc.KindSHA512, true},
	"file:name":                           {[]logic.Field{logic.FileName}, ioc.KindFileName, false},
	"file:size":                           {[]logic.Field{logic.FileSize}, 0, false},
	"file:parent_directory_ref.path":      {[]logic.Field{logic.FileDir}, 0, false},
	"ipv4-addr:value":                     {[]logic.Field{logic.NetRemoteAddr, logic.DNSAnswer, logic.HTTPHost}, ioc.KindIPv4, true},
	"ipv6-addr:value":                     {[]logic.Field{logic.NetRemoteAddr, logic.DNSAnswer, logic.HTTPHost}, ioc.KindIPv6, true},
	"domain-name:value":                   {[]logic.Field{logic.DNSQuery, logic.DNSAnswer, logic.HTTPHost}, ioc.KindHostname, true},
	"url:value":                           {[]logic.Field{logic.HTTPURL}, ioc.KindURL, true},
	"network-traffic:dst_ref.value":       {[]logic.Field{logic.NetRemoteAddr}, ioc.KindIPv4, false},
	"network-traffic:src_ref.value":       {[]logic.Field{logic.NetLocalAddr}, 0, false},
	"network-traffic:dst_port":            {[]logic.Field{logic.NetRemotePort}, 0, false},
	"network-traffic:src_port":            {[]logic.Field{logic.NetLocalPort}, 0, false},
	"network-traffic:protocols[*]":        {[]logic.Field{logic.NetProtocol}, 0, false},
	"process:name":                        {[]logic.Field{logic.ProcName}, ioc.KindProcessName, false},
	"process:command_line":                {[]logic.Field{logic.ProcCmdLine}, 0, false},
	"process:pid":                         {[]logic.Field{logic.ProcPID}, 0, false},
	"process:image_ref.name":              {[]logic.Field{logic.ProcName}, 0, false},
	"process:binary_ref.name":             {[]logic.Field{logic.ProcName}, 0, false},
	"process:parent_ref.name":             {[]logic.Field{logic.ProcParentName}, 0, false},
	"process:image_ref.hashes.sha256":     {[]logic.Field{logic.ProcSHA256}, 0, false},
	"windows-registry-key:key":            {[]logic.Field{logic.RegKey}, ioc.KindRegistryKey, false},
	"windows-registry-key:values[*].name": {[]logic.Field{logic.RegValueName}, 0, false},
	"windows-registry-key:values[*].data": {[]logic.Field{logic.RegData}, 0, false},
	"mutex:name":                          {[]logic.Field{logic.MutexName}, ioc.KindMutex, true},
}

// atomicKind returns the kind of c's object path and whether an equality
// on it is atomic; ok is false when the path has no kind.
func atomicKind(c *comparison) (k ioc.Kind, atomic, ok bool) {
	pi, found := paths[c.key()]
	return pi.kind, pi.atomic, found && pi.kind != 0
}

var ops = map[string]logic.Op{"=": logic.OpEq, "!=": logic.OpEq, "<": logic.OpLT, "<=": logic.OpLE, ">": logic.OpGT,
	">=": logic.OpGE, "IN": logic.OpIn, "LIKE": logic.OpLike, "MATCHES": logic.OpRegex, "ISSUBSET": logic.OpSubset,
	"ISSUPERSET": logic.OpSuperset}

func (b *builder) cmp(c *comparison) (*logic.Node, error) {
	pi, ok := paths[c.key()]
	if !ok {
		return b.unsup("object path %s is not evaluated", c.pathString()), nil
	}
	vals := make([]string, 0, len(c.values))
	for _, v := range c.values {
		switch v.kind {
		case tFloat:
			if slices.ContainsFunc(pi.fields, logic.Field.Numeric) {
				// Valid STIX, but the integer properties are compared as
				// integers.
				return b.unsup("%s compares an integer property with the real number %s", c.pathString(), v.text), nil
			}
			vals = append(vals, v.text)
		case tString, tInt:
			vals = append(vals, v.text)
		case tIdent:
			vals = append(vals, v.text) // true, false
		default:
			return b.unsup("%s compares with a timestamp, hex or binary literal", c.pathString()), nil
		}
	}
	if c.op == "MATCHES" {
		if reason, ok := logic.PCREOnly(vals[0]); ok {
			return b.unsup("%s MATCHES %q: %s, which Go's RE2 engine does not support", c.pathString(), vals[0], reason), nil
		}
	}
	negate := c.negate
	if c.op == "!=" {
		negate = !negate
	}
	n, err := logic.NewCond(logic.Cond{Fields: pi.fields, Op: ops[c.op], Values: vals, Negate: negate, CaseSensitive: true})
	if err != nil {
		return nil, &PatternError{Column: c.col, Reason: fmt.Sprintf("%s %s: %s", c.pathString(), c.op,
			strings.TrimPrefix(err.Error(), logic.ErrInvalidCond.Error()+": "))}
	}
	return n, nil
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
	off = max(0, min(off, int64(len(data))))
	before := data[:off]
	return bytes.Count(before, []byte("\n")) + 1, max(1, int(off)-bytes.LastIndexByte(before, '\n')-1)
}
