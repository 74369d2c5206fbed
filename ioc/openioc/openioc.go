package openioc

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/cordonsec/cordon/ioc"
	"github.com/cordonsec/cordon/ioc/feed/logic"
)

// Config says how to read one document. The zero value is usable.
type Config struct {
	// Name is the document's name: the file named in errors, and the
	// Source of its indicators. Default: "openioc".
	Name string
	// Severity is the severity of its indicators and detections (OpenIOC
	// has none). Default: SeverityUnknown.
	Severity ioc.Severity
	// Strict makes an unsupported term an error wrapping ErrUnsupported
	// instead of a Warning.
	Strict bool
}

// Version is the OpenIOC version of a document.
type Version string

// The versions.
const (
	V10 Version = "1.0"
	V11 Version = "1.1"
)

// Result is what a document holds.
type Result struct {
	// ID is the IOC's id; Version its format; Description its short
	// description.
	ID, Description string
	Version         Version
	// Indicators are set when the IOC compiled to atomic indicators; Trees
	// (one, engine openioc, rule ID) otherwise.
	Indicators []ioc.Indicator
	Trees      []*logic.Tree
	// Warnings are the unsupported terms.
	Warnings []Warning
}

// term says what a search term reads, the form an "is" value on it must
// have (kind; 0: any), and when such an "is" compiles into the atomic sets.
type term struct {
	fields []logic.Field
	kind   ioc.Kind
	atomic atomicWhen
}

// atomicWhen says when an "is" item on a term may become an atomic
// indicator: only when the atomic set of its kind matches exactly the
// events, with exactly the case rules and normalization, that the item as
// a tree does. TestAtomicIsTree proves each entry of terms against the
// other.
type atomicWhen uint8

const (
	// treeOnly: the atomic kind reads other event fields than the term
	// does, or compares case differently on some host, or normalizes
	// differently; the item stays a tree (indexed by its value, so it is
	// still looked up, not scanned).
	treeOnly atomicWhen = iota
	// atomicAlways: the values compare in a case-free normalized form
	// (digests), preserve-case or not.
	atomicAlways
	// atomicPreserveCase: the atomic set compares exactly, as the tree
	// does only with preserve-case; without it the tree ignores case and
	// the item stays a tree.
	atomicPreserveCase
)

func t(kind ioc.Kind, atomic atomicWhen, fields ...logic.Field) term {
	return term{fields: fields, kind: kind, atomic: atomic}
}

// terms, by lower-case search term. Why each term with a kind is or is not
// atomic (the atomic kinds' fields are in ioc/set.go, AppendMatches):
//   - Md5sum, Sha1sum: file.md5, file.sha1 only, hex without case: atomic.
//   - Sha256sum: the sha256 set also matches process.sha256: tree.
//   - FullPath: the path set also matches process.path, and compares
//     POSIX paths with case where the tree ignores it: tree.
//   - FileName: the name set also matches process names, and compares
//     with case on non-Windows hosts and without on Windows, whatever
//     preserve-case says: tree.
//   - ProcessItem/name: the process-name set also matches
//     process.parent_name, and has FileName's case rules: tree.
//   - HandleList/Handle/Name: mutex.name only, compared exactly: atomic
//     with preserve-case; without it the tree ignores case: tree.
//   - PortItem/remoteIP: the address sets also match dns.answers and the
//     host of http.url: tree.
//   - DnsEntryItem/Host, Network/DNS: the hostname set also matches
//     dns.answers and the host of http.url, and maps names through IDNA,
//     where the tree compares dns.query as written: tree.
//   - UrlHistoryItem/URL: http.url only, normalized alike, compared
//     exactly: atomic with preserve-case; without it the tree ignores the
//     case of the path: tree.
//   - RegistryItem/Path: registry.key, and it joined with
//     registry.value_name, in lower case, each under every view of the
//     key (HKEY_USERS\<SID> as HKCU, the Software\Classes keys and
//     <SID>_Classes as HKCR), as the tree: atomic.
var terms = map[string]term{
	"fileitem/md5sum":                    t(ioc.KindMD5, atomicAlways, logic.FileMD5),
	"fileitem/sha1sum":                   t(ioc.KindSHA1, atomicAlways, logic.FileSHA1),
	"fileitem/sha256sum":                 t(ioc.KindSHA256, treeOnly, logic.FileSHA256),
	"fileitem/fullpath":                  t(ioc.KindFilePath, treeOnly, logic.FilePath),
	"fileitem/filepath":                  t(0, treeOnly, logic.FileDir),
	"fileitem/filename":                  t(ioc.KindFileName, treeOnly, logic.FileName),
	"fileitem/fileextension":             t(0, treeOnly, logic.FileExt),
	"fileitem/sizeinbytes":               t(0, treeOnly, logic.FileSize),
	"processitem/name":                   t(ioc.KindProcessName, treeOnly, logic.ProcName),
	"processitem/path":                   t(0, treeOnly, logic.ProcPath, logic.ProcDir),
	"processitem/arguments":              t(0, treeOnly, logic.ProcCmdLine),
	"processitem/parentprocessname":      t(0, treeOnly, logic.ProcParentName),
	"processitem/pid":                    t(0, treeOnly, logic.ProcPID),
	"processitem/handlelist/handle/name": t(ioc.KindMutex, atomicPreserveCase, logic.MutexName),
	"portitem/remoteip":                  t(ioc.KindIPv4, treeOnly, logic.NetRemoteAddr),
	"portitem/remoteport":                t(0, treeOnly, logic.NetRemotePort),
	"portitem/localip":                   t(0, treeOnly, logic.NetLocalAddr),
	"portitem/localport":                 t(0, treeOnly, logic.NetLocalPort),
	"portitem/protocol":                  t(0, treeOnly, logic.NetProtocol),
	"dnsentryitem/host":                  t(ioc.KindHostname, treeOnly, logic.DNSQuery),
	"network/dns":                        t(ioc.KindHostname, treeOnly, logic.DNSQuery),
	"network/uri":                        t(0, treeOnly, logic.HTTPURI),
	"urlhistoryitem/url":                 t(ioc.KindURL, atomicPreserveCase, logic.HTTPURL),
	"registryitem/path":                  t(ioc.KindRegistryKey, atomicAlways, logic.RegPath, logic.RegKey),
	"registryitem/keypath":               t(0, treeOnly, logic.RegKeyPath),
	"registryitem/valuename":             t(0, treeOnly, logic.RegValueName),
	"registryitem/text":                  t(0, treeOnly, logic.RegData),
	"serviceitem/name":                   t(0, treeOnly, logic.ServiceName),
}

// atomicOK reports whether an "is" with preserve-case preserve on tm
// compiles into the atomic sets.
func (tm term) atomicOK(preserve bool) bool {
	return tm.kind != 0 && (tm.atomic == atomicAlways || tm.atomic == atomicPreserveCase && preserve)
}

// Terms returns the supported search terms, in lower case, sorted.
func Terms() []string {
	return slices.Sorted(maps.Keys(terms))
}

type parser struct {
	cfg      Config
	name     string
	version  Version
	id       string
	warnings []Warning
	// atomic tracking: one of the form "any of these values of one term"
	// (all items "is", one term with a kind, only OR) has its values
	// checked against the kind; it compiles atomic when, besides, every
	// item is atomicOK.
	atomic bool
	term   string
	items  []item
	leaves int
}

type item struct {
	line     int
	term     string
	search   string
	value    string
	preserve bool
}

// Parse reads one OpenIOC document. It returns an *Error for malformed
// XML, a root that is not ioc (1.0) or OpenIOC (1.1), an IOC without
// definition or criteria, an Indicator with an operator other than AND and
// OR, an IndicatorItem without Context search or Content, an unknown
// condition, a value that does not fit its term (a regular expression that
// does not compile, a number that is not one, an atomic value of the wrong
// form), or, with Config.Strict, an unsupported term.
func Parse(data []byte, cfg Config) (*Result, error) {
	name := cfg.Name
	if name == "" {
		name = "openioc"
	}
	root, err := parseXML(data)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.File = name
		}
		return nil, err
	}
	p := &parser{cfg: cfg, name: name, atomic: true}
	res, err := p.document(root)
	if err != nil {
		return nil, err
	}
	return res, nil
}

func (p *parser) fail(line int, format string, args ...any) error {
	return &Error{File: p.name, Line: line, Reason: fmt.Sprintf(format, args...), Err: ErrSyntax}
}

func (p *parser) document(root *elem) (*Result, error) {
	var top *elem
	var desc string
	switch strings.ToLower(root.name) {
	case "ioc":
		p.version = V10
		top = root.child("definition")
		if d := root.child("short_description"); d != nil {
			desc = strings.TrimSpace(d.text.String())
		}
		if top == nil {
			return nil, p.fail(root.line, "the ioc element has no definition")
		}
	case "openioc":
		p.version = V11
		top = root.child("criteria")
		if m := root.child("metadata"); m != nil {
			if d := m.child("short_description"); d != nil {
				desc = strings.TrimSpace(d.text.String())
			}
		}
		if top == nil {
			return nil, p.fail(root.line, "the OpenIOC element has no criteria")
		}
	default:
		return nil, p.fail(root.line, "root element %q is neither ioc (OpenIOC 1.0) nor OpenIOC (1.1)", root.name)
	}
	p.id = root.attr("id")
	if p.id == "" {
		return nil, p.fail(root.line, "the %s element has no id", root.name)
	}
	var inds []*elem
	for _, k := range top.kids {
		if strings.EqualFold(k.name, "Indicator") {
			inds = append(inds, k)
		}
	}
	if len(inds) == 0 {
		return nil, p.fail(top.line, "%s has no Indicator", top.name)
	}
	var kids []*logic.Node
	for _, in := range inds {
		n, err := p.indicator(in, 0)
		if err != nil {
			return nil, err
		}
		kids = append(kids, n)
	}
	rootNode := kids[0]
	if len(kids) > 1 {
		// Several top-level Indicators: all must hold, as under an AND.
		rootNode = logic.And(kids...)
		if len(kids) > 1 {
			p.atomic = false
		}
	}
	res := &Result{ID: p.id, Description: desc, Version: p.version, Warnings: p.warnings}
	if tm := terms[p.term]; p.atomic && p.leaves > 0 && tm.kind != 0 {
		var inds []ioc.Indicator
		exact := true
		for _, it := range p.items {
			ind := ioc.Indicator{ID: p.id, Kind: atomicKind(tm.kind, it.value), Value: it.value,
				Source: p.name, Severity: p.cfg.Severity, Description: desc}
			n, err := ind.Normalized()
			if err != nil {
				var ie *ioc.IndicatorError
				if errors.As(err, &ie) {
					return nil, p.fail(it.line, "%s %q: %s", it.search, it.value, ie.Reason)
				}
				return nil, p.fail(it.line, "%v", err)
			}
			inds = append(inds, n)
			exact = exact && tm.atomicOK(it.preserve)
		}
		if exact {
			res.Indicators = inds
			return res, nil
		}
	}
	res.Trees = []*logic.Tree{{ID: p.id, Engine: ioc.EngineOpenIOC, Source: p.name, Name: desc, Severity: p.cfg.Severity, Root: rootNode}}
	return res, nil
}

func atomicKind(k ioc.Kind, v string) ioc.Kind {
	if k == ioc.KindIPv4 {
		if strings.Contains(v, "/") {
			return ioc.KindCIDR
		}
		if a, err := netip.ParseAddr(strings.TrimSpace(v)); err == nil && !a.Unmap().Is4() {
			return ioc.KindIPv6
		}
	}
	return k
}

func (p *parser) indicator(e *elem, depth int) (*logic.Node, error) {
	if depth > logic.MaxDepth-1 {
		return nil, p.fail(e.line, "Indicators nested deeper than %d", logic.MaxDepth-1)
	}
	op := strings.ToUpper(e.attr("operator"))
	if op != "AND" && op != "OR" {
		return nil, p.fail(e.line, "Indicator operator %q is not AND or OR", e.attr("operator"))
	}
	var kids []*logic.Node
	for _, k := range e.kids {
		var n *logic.Node
		var err error
		switch strings.ToLower(k.name) {
		case "indicator":
			n, err = p.indicator(k, depth+1)
		case "indicatoritem":
			n, err = p.item(k)
		default:
			continue
		}
		if err != nil {
			return nil, err
		}
		kids = append(kids, n)
	}
	if len(kids) == 0 {
		return nil, p.fail(e.line, "Indicator has no Indicator or IndicatorItem")
	}
	if op == "AND" {
		if len(kids) > 1 {
			p.atomic = false
		}
		return logic.And(kids...), nil
	}
	return logic.Or(kids...), nil
}

func (p *parser) item(e *elem) (*logic.Node, error) {
	ctx, content := e.child("Context"), e.child("Content")
	if ctx == nil {
		return nil, p.fail(e.line, "IndicatorItem has no Context")
	}
	if content == nil {
		return nil, p.fail(e.line, "IndicatorItem has no Content")
	}
	search := ctx.attr("search")
	if search == "" {
		return nil, p.fail(ctx.line, "Context has no search term")
	}
	value := strings.TrimSpace(content.text.String())
	if value == "" {
		return nil, p.fail(content.line, "Content is empty")
	}
	negate, err := boolAttr(e, "negate")
	if err != nil {
		return nil, p.fail(e.line, "%v", err)
	}
	preserve, err := boolAttr(e, "preserve-case")
	if err != nil {
		return nil, p.fail(e.line, "%v", err)
	}
	cond := strings.ToLower(e.attr("condition"))
	var op logic.Op
	switch cond {
	case "is":
		op = logic.OpEq
	case "isnot":
		op, negate = logic.OpEq, !negate
	case "contains":
		op = logic.OpContains
	case "containsnot":
		op, negate = logic.OpContains, !negate
	case "starts-with":
		op = logic.OpPrefix
	case "ends-with":
		op = logic.OpSuffix
	case "matches":
		op = logic.OpRegex
	case "greater-than":
		op = logic.OpGT
	case "less-than":
		op = logic.OpLT
	case "":
		return nil, p.fail(e.line, "IndicatorItem has no condition")
	default:
		return nil, p.fail(e.line, "condition %q is not one of is, isnot, contains, containsnot, starts-with, ends-with, matches, greater-than, less-than", e.attr("condition"))
	}
	key := strings.ToLower(search)
	tm, ok := terms[key]
	if !ok {
		if p.cfg.Strict {
			return nil, &Error{File: p.name, Line: ctx.line, Reason: fmt.Sprintf("term %q is not supported", search), Err: ErrUnsupported}
		}
		p.warnings = append(p.warnings, Warning{File: p.name, Line: ctx.line, IOC: p.id, Term: search})
		p.atomic = false
		return logic.Never(), nil
	}
	p.leaves++
	if op != logic.OpEq || negate || (p.term != "" && p.term != key) {
		p.atomic = false
	}
	p.term = key
	p.items = append(p.items, item{line: content.line, term: key, search: search, value: value, preserve: preserve})
	n, err := logic.NewCond(logic.Cond{Fields: tm.fields, Op: op, Values: []string{value}, Negate: negate, CaseSensitive: preserve})
	if err != nil {
		return nil, p.fail(content.line, "%s %s %q: %s", search, cond, value, strings.TrimPrefix(err.Error(), logic.ErrInvalidCond.Error()+": "))
	}
	return n, nil
}

func boolAttr(e *elem, name string) (bool, error) {
	switch strings.ToLower(e.attr(name)) {
	case "", "false", "0":
		return false, nil
	case "true", "1":
		return true, nil
	}
	return false, fmt.Errorf("attribute %s=%q is not true or false", name, e.attr(name))
}
