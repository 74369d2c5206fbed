package response

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/cordonsec/cordon/ioc"
)

// Load limits and defaults; see LoadConfig.
const (
	DefaultMaxFileBytes      = 4 << 20
	DefaultMaxRules          = 10000
	DefaultMaxExprBytes      = 4096
	DefaultMaxExprNodes      = 500
	DefaultIsolation         = 8 * time.Hour
	DefaultMaxIsolation      = 7 * 24 * time.Hour
	DefaultMaxSuppressPeriod = 30 * 24 * time.Hour
	DefaultTagPeriod         = 24 * time.Hour
	maxErrorsPerFile         = 50
)

// LoadConfig configures how rule files are compiled. The zero value is
// valid: every field has a documented default.
type LoadConfig struct {
	// MaxFileBytes bounds a rule file. Zero: 4 MiB.
	MaxFileBytes int
	// MaxRules bounds the rules of one file. Zero: 10,000.
	MaxRules int
	// MaxExprBytes bounds the source of one expression (when,
	// suppress.key, one template part). Zero: 4096.
	MaxExprBytes int
	// MaxExprNodes bounds the syntax-tree nodes of one expression.
	// Zero: 500.
	MaxExprNodes uint
	// MaxIsolation is the longest duration an isolate action may ask
	// for. Zero: 7 days.
	MaxIsolation time.Duration
	// MaxSuppressPeriod is the longest suppression period. Zero: 30 days.
	MaxSuppressPeriod time.Duration
	// Actions is the action registry. Nil: DefaultRegistry().
	Actions *Registry
}

// Validate reports the first invalid field, wrapping ErrInvalidConfig.
func (c LoadConfig) Validate() error {
	switch {
	case c.MaxFileBytes < 0:
		return fmt.Errorf("%w: MaxFileBytes %d is negative", ErrInvalidConfig, c.MaxFileBytes)
	case c.MaxRules < 0:
		return fmt.Errorf("%w: MaxRules %d is negative", ErrInvalidConfig, c.MaxRules)
	case c.MaxExprBytes < 0:
		return fmt.Errorf("%w: MaxExprBytes %d is negative", ErrInvalidConfig, c.MaxExprBytes)
	case c.MaxIsolation < 0:
		return fmt.Errorf("%w: MaxIsolation %v is negative", ErrInvalidConfig, c.MaxIsolation)
	case c.MaxSuppressPeriod < 0:
		return fmt.Errorf("%w: MaxSuppressPeriod %v is negative", ErrInvalidConfig, c.MaxSuppressPeriod)
	}
	return nil
}

func (c LoadConfig) withDefaults() LoadConfig {
	if c.MaxFileBytes == 0 {
		c.MaxFileBytes = DefaultMaxFileBytes
	}
	if c.MaxRules == 0 {
		c.MaxRules = DefaultMaxRules
	}
	if c.MaxExprBytes == 0 {
		c.MaxExprBytes = DefaultMaxExprBytes
	}
	if c.MaxExprNodes == 0 {
		c.MaxExprNodes = DefaultMaxExprNodes
	}
	if c.MaxIsolation == 0 {
		c.MaxIsolation = DefaultMaxIsolation
	}
	if c.MaxSuppressPeriod == 0 {
		c.MaxSuppressPeriod = DefaultMaxSuppressPeriod
	}
	if c.Actions == nil {
		c.Actions = DefaultRegistry()
	}
	return c
}

// File is the compiled rules of one rule file, in file order. It is
// immutable and safe for concurrent use.
type File struct {
	// Name is the file's name as given to Compile.
	Name  string
	Rules []*Rule
}

// Rule is one compiled rule. It is immutable and safe for concurrent use.
type Rule struct {
	Name        string
	Description string
	// File and Line say where the rule starts.
	File string
	Line int
	// When is the condition's source.
	When   string
	DryRun bool
	Stop   bool
	// Suppress is nil when the rule is not suppressed.
	Suppress *Suppress
	Actions  []Action

	program  *vm.Program
	cons     constraints
	maxNodes uint

	condOnce sync.Once
	conds    []condition // built on first use (Explain, a failing test)
}

// conditions returns the top-level sub-conditions of `when`, compiled
// once on first use.
func (r *Rule) conditions() []condition {
	r.condOnce.Do(func() {
		opts := append(slices.Clone(baseOptions()), expr.MaxNodes(r.maxNodes))
		for _, part := range topLevelParts(r.When) {
			prog, err := compileExprSafe(part, opts)
			if err != nil {
				continue // a part that does not compile alone is left out
			}
			r.conds = append(r.conds, condition{src: part, prog: prog})
		}
	})
	return r.conds
}

// Suppress is a rule's suppression: after the rule fires for a key, it
// does not fire again for the same key until Period has passed since.
type Suppress struct {
	// Key is the key's expression source; its value (printed with
	// fmt.Sprint) is the key.
	Key    string
	Period time.Duration
	key    *vm.Program
}

// condition is one top-level sub-condition of `when`, for Explain.
type condition struct {
	src  string
	prog *vm.Program
}

var ruleNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$`)

var ruleKeys = []string{"name", "description", "when", "actions", "suppress", "dry_run", "stop", "tests"}

// Compile compiles one rule file: a YAML list of rules. Decoding is
// strict: an unknown key, a value of the wrong type, a `when` that does
// not compile to a boolean against Env, an unknown action, a bad action
// argument, a template that does not compile or a failing inline test is
// an error. It returns LoadErrors (every error found, each a *LoadError
// with file, line, column and snippet) and no rules when anything is
// wrong: a file is taken whole or not at all. Anchors, aliases and tags
// are refused.
func Compile(cfg LoadConfig, name string, data []byte) (*File, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	l := &loader{cfg: cfg, name: name, src: data}
	f := l.compile()
	if len(l.errs) > 0 {
		return nil, l.errs
	}
	return f, nil
}

type loader struct {
	cfg   LoadConfig
	name  string
	src   []byte
	lines []string
	errs  LoadErrors
	rule  string // current rule name, for errors
}

func (l *loader) compile() *File {
	if len(l.src) > l.cfg.MaxFileBytes {
		l.errs = append(l.errs, &LoadError{File: l.name, Err: fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(l.src), l.cfg.MaxFileBytes)})
		return nil
	}
	if !utf8.Valid(l.src) {
		l.errs = append(l.errs, &LoadError{File: l.name, Err: fmt.Errorf("%w: the file is not UTF-8", ErrSyntax)})
		return nil
	}
	l.lines = strings.Split(string(l.src), "\n")
	f := &File{Name: l.name}
	file, err := parseYAML(l.src)
	if err != nil {
		l.yamlErr("", err)
		return nil
	}
	var body ast.Node
	for _, d := range file.Docs {
		if d == nil || d.Body == nil {
			continue
		}
		if body != nil {
			l.errAt(d.Body, "", ErrSyntax, "a rule file holds one YAML document")
			return nil
		}
		body = d.Body
	}
	if body == nil || body.Type() == ast.NullType {
		return f
	}
	if !l.checkPlain(body) {
		return nil
	}
	seq, ok := body.(*ast.SequenceNode)
	if !ok {
		l.errAt(body, "", ErrSyntax, "a rule file is a list of rules, not a %s", nodeKind(body))
		return nil
	}
	if len(seq.Values) > l.cfg.MaxRules {
		l.errAt(seq, "", ErrTooLarge, "%d rules, limit %d", len(seq.Values), l.cfg.MaxRules)
		return nil
	}
	names := map[string]int{}
	for i, n := range seq.Values {
		if len(l.errs) >= maxErrorsPerFile {
			break
		}
		l.rule = fmt.Sprintf("#%d", i)
		r := l.compileRule(n)
		if r == nil {
			continue
		}
		if prev, dup := names[r.Name]; dup {
			l.errAt(n, "name", ErrDuplicateRule, "%q is also the name of the rule at line %d", r.Name, prev)
			continue
		}
		names[r.Name] = r.Line
		f.Rules = append(f.Rules, r)
	}
	l.rule = ""
	return f
}

// parseYAML parses without panicking on any input.
func parseYAML(src []byte) (f *ast.File, err error) {
	defer func() {
		if p := recover(); p != nil {
			f, err = nil, fmt.Errorf("%w: the YAML parser failed: %v", ErrSyntax, p)
		}
	}()
	return parser.ParseBytes(src, 0)
}

// checkPlain refuses anchors, aliases, tags and merge keys anywhere.
func (l *loader) checkPlain(root ast.Node) bool {
	ok := true
	ast.Walk(visitFunc(func(n ast.Node) bool {
		switch n.(type) {
		case *ast.AnchorNode, *ast.AliasNode, *ast.TagNode, *ast.MergeKeyNode:
			if ok {
				l.errAt(n, "", ErrSyntax, "anchors, aliases, tags and merge keys are not allowed in rule files")
			}
			ok = false
			return false
		}
		return true
	}), root)
	return ok
}

type visitFunc func(ast.Node) bool

func (f visitFunc) Visit(n ast.Node) ast.Visitor {
	if f(n) {
		return f
	}
	return nil
}

func nodeKind(n ast.Node) string {
	switch n.Type() {
	case ast.MappingType, ast.MappingValueType:
		return "mapping"
	case ast.SequenceType:
		return "list"
	case ast.NullType:
		return "null"
	}
	return "scalar"
}

// mapping returns the key/value pairs of a mapping node, refusing
// duplicate keys and non-string keys.
func (l *loader) mapping(n ast.Node, field string) ([]*ast.MappingValueNode, bool) {
	var values []*ast.MappingValueNode
	switch m := n.(type) {
	case *ast.MappingNode:
		values = m.Values
	case *ast.MappingValueNode:
		values = []*ast.MappingValueNode{m}
	default:
		l.errAt(n, field, ErrInvalidRule, "is a %s, want a mapping", nodeKind(n))
		return nil, false
	}
	seen := map[string]bool{}
	for _, mv := range values {
		k := keyOf(mv)
		if seen[k] {
			l.errAt(mv.Key, joinPath(field, k), ErrInvalidRule, "duplicate key %q", k)
			return nil, false
		}
		seen[k] = true
	}
	return values, true
}

func keyOf(mv *ast.MappingValueNode) string {
	if s, ok := mv.Key.(*ast.StringNode); ok {
		return s.Value
	}
	return mv.Key.GetToken().Value
}

func joinPath(a, b string) string {
	if a == "" {
		return b
	}
	if strings.HasPrefix(b, "[") {
		return a + b
	}
	return a + "." + b
}

func (l *loader) compileRule(n ast.Node) *Rule {
	values, ok := l.mapping(n, "")
	if !ok {
		return nil
	}
	pos := n.GetToken().Position
	r := &Rule{File: l.name, Line: pos.Line}
	fields := map[string]*ast.MappingValueNode{}
	bad := false
	for _, mv := range values {
		if keyOf(mv) == "name" {
			var s string
			if decodeNode(mv.Value, &s) == nil && ruleNameRE.MatchString(s) {
				l.rule = s
			}
		}
	}
	for _, mv := range values {
		k := keyOf(mv)
		if !contains(ruleKeys, k) {
			l.errAt(mv.Key, k, ErrUnknownKey, "unknown key %q (a rule has %s)%s", k, strings.Join(ruleKeys, ", "), suggest(k, ruleKeys))
			bad = true
			continue
		}
		fields[k] = mv
	}
	if mv := fields["name"]; mv == nil {
		l.errAt(n, "name", ErrInvalidRule, "is required")
		return nil
	} else if !l.decode(mv.Value, "name", &r.Name) {
		return nil
	} else if !ruleNameRE.MatchString(r.Name) {
		l.errAt(mv.Value, "name", ErrInvalidRule, "%q is not a rule name (letters, digits, _ . : -; at most 128)", r.Name)
		return nil
	}
	l.rule = r.Name
	if mv := fields["description"]; mv != nil {
		bad = !l.decode(mv.Value, "description", &r.Description) || bad
	}
	if mv := fields["dry_run"]; mv != nil {
		bad = !l.decode(mv.Value, "dry_run", &r.DryRun) || bad
	}
	if mv := fields["stop"]; mv != nil {
		bad = !l.decode(mv.Value, "stop", &r.Stop) || bad
	}
	mv := fields["when"]
	if mv == nil {
		l.errAt(n, "when", ErrInvalidRule, "is required")
		return nil
	}
	if b, ok := mv.Value.(*ast.BoolNode); ok {
		r.When = b.GetToken().Value // when: true
	} else if !l.decode(mv.Value, "when", &r.When) {
		return nil
	}
	prog, ok := l.compileExpr(mv.Value, "when", r.When, 0, expr.AsBool())
	if !ok {
		bad = true
	} else {
		r.program = prog
		r.maxNodes = l.cfg.MaxExprNodes
		r.cons = extractConstraints(r.When)
	}
	if mv := fields["suppress"]; mv != nil {
		r.Suppress = l.compileSuppress(mv.Value)
		bad = r.Suppress == nil || bad
	}
	if mv := fields["actions"]; mv == nil {
		l.errAt(n, "actions", ErrInvalidRule, "is required (a list of actions)")
		bad = true
	} else {
		acts, ok := l.compileActions(mv.Value, r)
		bad = !ok || bad
		r.Actions = acts
	}
	if bad {
		return nil
	}
	if mv := fields["tests"]; mv != nil {
		if !l.runTests(mv.Value, r) {
			return nil
		}
	}
	return r
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// suggest names the closest known key when k is a likely typo of it.
func suggest(k string, known []string) string {
	best, bestD := "", 3
	for _, w := range known {
		if d := editDistance(k, w); d < bestD {
			best, bestD = w, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// decode decodes a scalar or structure strictly into v, recording a
// located error on failure.
func (l *loader) decode(n ast.Node, field string, v any) bool {
	if err := decodeNode(n, v); err != nil {
		l.yamlErrAt(n, field, err)
		return false
	}
	return true
}

func decodeNode(n ast.Node, v any) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: cannot decode: %v", ErrInvalidRule, p)
		}
	}()
	// A string target takes only a string scalar: "8" or "true" for a name
	// or an expression would be a silent surprise.
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && rv.Elem().Kind() == reflect.String {
		if _, ok := n.(*ast.StringNode); !ok {
			if _, ok := n.(*ast.LiteralNode); !ok {
				return fmt.Errorf("%w: is a %s, want a string", ErrInvalidRule, yamlType(n))
			}
		}
	}
	return yaml.NodeToValue(n, v, yaml.DisallowUnknownField())
}

func yamlType(n ast.Node) string {
	switch n.Type() {
	case ast.IntegerType, ast.FloatType:
		return "number"
	case ast.BoolType:
		return "boolean"
	case ast.NullType:
		return "null"
	}
	return nodeKind(n)
}

// errAt records an error located at n.
func (l *loader) errAt(n ast.Node, field string, sentinel error, format string, args ...any) {
	line, col := 0, 0
	if n != nil {
		if tk := n.GetToken(); tk != nil && tk.Position != nil {
			line, col = tk.Position.Line, tk.Position.Column
		}
	}
	l.errLineCol(line, col, field, fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...)))
}

func (l *loader) errLineCol(line, col int, field string, err error) {
	e := &LoadError{File: l.name, Line: line, Column: col, Rule: l.rule, Field: field, Err: err}
	e.Snippet = l.snippet(line, col)
	l.errs = append(l.errs, e)
}

func (l *loader) snippet(line, col int) string {
	if line < 1 || line > len(l.lines) {
		return ""
	}
	text := strings.TrimRight(l.lines[line-1], "\r")
	if len(text) > 200 {
		text = text[:200] + "…"
	}
	prefix := fmt.Sprintf("%5d | ", line)
	caret := ""
	if col >= 1 {
		// Columns count characters; tabs keep their width in the caret line.
		var b strings.Builder
		for i, r := range []rune(text) {
			if i >= col-1 {
				break
			}
			if r == '\t' {
				b.WriteByte('\t')
			} else {
				b.WriteByte(' ')
			}
		}
		caret = "\n" + strings.Repeat(" ", len(prefix)-2) + "| " + b.String() + "^"
	}
	return prefix + text + caret
}

// yamlErr records a parser or decoder error with its own position.
func (l *loader) yamlErr(field string, err error) {
	var ye yaml.Error
	sentinel := ErrSyntax
	var uf *yaml.UnknownFieldError
	if errors.As(err, &uf) {
		sentinel = ErrUnknownKey
	}
	if errors.As(err, &ye) && ye.GetToken() != nil && ye.GetToken().Position != nil {
		p := ye.GetToken().Position
		l.errLineCol(p.Line, p.Column, field, fmt.Errorf("%w: %s", sentinel, ye.GetMessage()))
		return
	}
	if errors.Is(err, ErrSyntax) || errors.Is(err, ErrInvalidRule) {
		l.errLineCol(0, 0, field, err)
		return
	}
	l.errLineCol(0, 0, field, fmt.Errorf("%w: %v", sentinel, err))
}

// yamlErrAt records a decoder error, at its own position when it has one
// and at n otherwise.
func (l *loader) yamlErrAt(n ast.Node, field string, err error) {
	var ye yaml.Error
	if errors.As(err, &ye) && ye.GetToken() != nil && ye.GetToken().Position != nil {
		sentinel := ErrInvalidRule
		var uf *yaml.UnknownFieldError
		if errors.As(err, &uf) {
			sentinel = ErrUnknownKey
		}
		p := ye.GetToken().Position
		l.errLineCol(p.Line, p.Column, field, fmt.Errorf("%w: %s", sentinel, ye.GetMessage()))
		return
	}
	if errors.Is(err, ErrInvalidRule) {
		line, col := nodePos(n)
		l.errLineCol(line, col, field, err)
		return
	}
	l.errAt(n, field, ErrInvalidRule, "%v", err)
}

func nodePos(n ast.Node) (int, int) {
	if n == nil {
		return 0, 0
	}
	if tk := n.GetToken(); tk != nil && tk.Position != nil {
		return tk.Position.Line, tk.Position.Column
	}
	return 0, 0
}

// baseOptions are the options every expression is compiled with; built
// once, since each is only applied to a new compiler configuration.
var baseOptions = sync.OnceValue(func() []expr.Option {
	opts := []expr.Option{
		expr.Env(Env{}),
		expr.DisableBuiltin("now"),
		expr.DisableBuiltin("repeat"),
	}
	opts = append(opts, helperOptions...)
	return append(opts, severityOptions()...)
})

// exprOptions are the options of one expression.
func (l *loader) exprOptions(extra ...expr.Option) []expr.Option {
	opts := append(slices.Clone(baseOptions()), expr.MaxNodes(l.cfg.MaxExprNodes))
	return append(opts, extra...)
}

// envTypeNames turns the Go names of the environment's types in expr's
// messages into the names a rule author writes.
var envTypeNames = strings.NewReplacer(
	"type response.DetectionVars", "detection", "type response.IndicatorVars", "indicator",
	"type response.EventVars", "event", "type response.HostVars", "host", "type response.MatchVars", "match",
	"type response.FileVars", "event.file", "type response.ProcessVars", "event.process",
	"type response.NetworkVars", "event.network", "type response.DNSVars", "event.dns",
	"type response.HTTPVars", "event.http", "type response.RegistryVars", "event.registry",
	"type response.MutexVars", "event.mutex", "response.Env", "the environment",
	"ioc.Severity", "severity",
)

// compileExpr compiles src, the value of node n (or a part of it starting
// at rune offset off), locating errors in the file.
func (l *loader) compileExpr(n ast.Node, field, src string, off int, extra ...expr.Option) (*vm.Program, bool) {
	if len(src) > l.cfg.MaxExprBytes {
		l.errAt(n, field, ErrTooLarge, "expression of %d bytes, limit %d", len(src), l.cfg.MaxExprBytes)
		return nil, false
	}
	if strings.TrimSpace(src) == "" {
		l.errAt(n, field, ErrExpression, "is empty")
		return nil, false
	}
	opts := l.exprOptions(extra...)
	prog, err := compileExprSafe(src, opts)
	if err == nil {
		err = checkSeverityNames(src, opts)
	}
	if err != nil {
		l.exprErr(n, field, off, err)
		return nil, false
	}
	return prog, true
}

func compileExprSafe(src string, opts []expr.Option) (p *vm.Program, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("%w: the compiler failed: %v", ErrExpression, r)
		}
	}()
	return expr.Compile(src, opts...)
}

// exprErr maps an expr error's line and column within the expression to
// the file: a single-line scalar starts at its token (after the quote), a
// block scalar's line k is the k-th line after its indicator, starting at
// that line's indentation.
func (l *loader) exprErr(n ast.Node, field string, off int, err error) {
	line, col := nodePos(n)
	msg := err.Error()
	var fe *file.Error
	if errors.As(err, &fe) {
		msg = envTypeNames.Replace(fe.Message)
		if _, block := n.(*ast.LiteralNode); block {
			first := line + 1 // the block's first content line sets its indentation
			line += fe.Line
			if first >= 1 && first <= len(l.lines) {
				text := l.lines[first-1]
				col = len(text) - len(strings.TrimLeft(text, " \t")) + 1 + fe.Column
			}
		} else {
			if line >= 1 && line <= len(l.lines) {
				if r := []rune(l.lines[line-1]); col-1 < len(r) && col >= 1 && (r[col-1] == '"' || r[col-1] == '\'') {
					col++
				}
			}
			line += fe.Line - 1
			col += off + fe.Column
		}
	}
	l.errLineCol(line, col, field, fmt.Errorf("%w: %s", ErrExpression, msg))
}

func (l *loader) compileSuppress(n ast.Node) *Suppress {
	values, ok := l.mapping(n, "suppress")
	if !ok {
		return nil
	}
	s := &Suppress{}
	var keyNode, periodNode ast.Node
	for _, mv := range values {
		switch k := keyOf(mv); k {
		case "key":
			keyNode = mv.Value
		case "period":
			periodNode = mv.Value
		default:
			l.errAt(mv.Key, "suppress."+k, ErrUnknownKey, "unknown key %q (suppress has key, period)%s", k, suggest(k, []string{"key", "period"}))
			return nil
		}
	}
	if keyNode == nil {
		l.errAt(n, "suppress.key", ErrInvalidRule, "is required")
		return nil
	}
	if periodNode == nil {
		l.errAt(n, "suppress.period", ErrInvalidRule, "is required")
		return nil
	}
	if !l.decode(keyNode, "suppress.key", &s.Key) {
		return nil
	}
	p, ok := l.compileExpr(keyNode, "suppress.key", s.Key, 0)
	if !ok {
		return nil
	}
	s.key = p
	d, ok := l.duration(periodNode, "suppress.period")
	if !ok {
		return nil
	}
	if d <= 0 || d > l.cfg.MaxSuppressPeriod {
		l.errAt(periodNode, "suppress.period", ErrInvalidRule, "%v is not in (0, %v]", d, l.cfg.MaxSuppressPeriod)
		return nil
	}
	s.Period = d
	return s
}

// duration decodes a Go duration string ("8h", "90m").
func (l *loader) duration(n ast.Node, field string) (time.Duration, bool) {
	var s string
	if !l.decode(n, field, &s) {
		return 0, false
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		l.errAt(n, field, ErrInvalidRule, "%q is not a duration (like 8h or 30m)", s)
		return 0, false
	}
	return d, true
}

func (l *loader) compileActions(n ast.Node, r *Rule) ([]Action, bool) {
	seq, ok := n.(*ast.SequenceNode)
	if !ok {
		l.errAt(n, "actions", ErrInvalidRule, "is a %s, want a list", nodeKind(n))
		return nil, false
	}
	if len(seq.Values) == 0 {
		l.errAt(n, "actions", ErrInvalidRule, "is empty")
		return nil, false
	}
	var acts []Action
	good := true
	for i, an := range seq.Values {
		field := fmt.Sprintf("actions[%d]", i)
		values, ok := l.mapping(an, field)
		if !ok {
			good = false
			continue
		}
		if len(values) != 1 {
			l.errAt(an, field, ErrInvalidRule, "an action is a mapping with one key, the action's type (%s)", strings.Join(l.cfg.Actions.Names(), ", "))
			good = false
			continue
		}
		typ := keyOf(values[0])
		factory, ok := l.cfg.Actions.lookup(typ)
		if !ok {
			names := l.cfg.Actions.Names()
			l.errAt(values[0].Key, field, ErrUnknownAction, "%q is not an action (%s)%s", typ, strings.Join(names, ", "), suggest(typ, names))
			good = false
			continue
		}
		args := &ActionArgs{l: l, node: values[0].Value, field: field + "." + typ, Rule: r.Name, Config: &l.cfg}
		nerr := len(l.errs)
		a, err := factory(args)
		if err != nil || a == nil {
			if len(l.errs) == nerr {
				if err == nil {
					err = fmt.Errorf("%w: the factory returned no action", ErrInvalidRule)
				}
				line, col := nodePos(values[0].Key)
				if !errors.Is(err, ErrInvalidRule) && !errors.Is(err, ErrExpression) && !errors.Is(err, ErrUnknownKey) {
					err = fmt.Errorf("%w: %w", ErrInvalidRule, err)
				}
				l.errLineCol(line, col, args.field, err)
			}
			good = false
			continue
		}
		acts = append(acts, a)
	}
	return acts, good
}

// ActionArgs is what an ActionFactory gets: the action's arguments as
// written in the rule file, and the means to decode and check them with
// errors located in the file.
type ActionArgs struct {
	l     *loader
	node  ast.Node
	field string
	// Rule is the name of the rule the action belongs to.
	Rule string
	// Config is the load configuration (limits, the registry).
	Config *LoadConfig
}

// Decode decodes the arguments strictly into v (a pointer to a struct
// with `yaml` tags): an unknown key is an error. A missing or null
// argument block leaves v as it is. On failure the error is already
// recorded with its location; return it from the factory.
func (a *ActionArgs) Decode(v any) error {
	if a.node == nil || a.node.Type() == ast.NullType {
		return nil
	}
	if _, ok := a.node.(*ast.MappingNode); !ok {
		if _, ok := a.node.(*ast.MappingValueNode); !ok {
			return a.Errorf("", "the arguments are a %s, want a mapping", nodeKind(a.node))
		}
	}
	if _, ok := a.l.mapping(a.node, a.field); !ok {
		return a.l.errs[len(a.l.errs)-1]
	}
	if err := decodeNode(a.node, v); err != nil {
		a.l.yamlErrAt(a.node, a.field, err)
		return a.l.errs[len(a.l.errs)-1]
	}
	return nil
}

// Errorf records an invalid-argument error located at the value of key
// (or at the action when key is "" or absent) and returns it.
func (a *ActionArgs) Errorf(key, format string, args ...any) error {
	n := a.valueNode(key)
	field := a.field
	if key != "" {
		field = a.field + "." + key
	}
	a.l.errAt(n, field, ErrInvalidRule, format, args...)
	return a.l.errs[len(a.l.errs)-1]
}

// Template compiles src, the string value of key, as a template: text
// with {{ expression }} parts evaluated against Env. Errors are recorded
// at the part's location and returned.
func (a *ActionArgs) Template(key, src string) (*Template, error) {
	n := a.valueNode(key)
	t, ok := a.l.compileTemplate(n, a.field+"."+key, src)
	if !ok {
		return nil, a.l.errs[len(a.l.errs)-1]
	}
	return t, nil
}

// Duration parses the string value of key as a duration; empty gives def.
func (a *ActionArgs) Duration(key, s string, def time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, a.Errorf(key, "%q is not a duration (like 8h or 30m)", s)
	}
	return d, nil
}

func (a *ActionArgs) valueNode(key string) ast.Node {
	if key != "" {
		var values []*ast.MappingValueNode
		switch m := a.node.(type) {
		case *ast.MappingNode:
			values = m.Values
		case *ast.MappingValueNode:
			values = []*ast.MappingValueNode{m}
		}
		for _, mv := range values {
			if keyOf(mv) == key {
				return mv.Value
			}
		}
	}
	if a.node != nil {
		return a.node
	}
	return nil
}

// runTests checks the rule's inline tests: each detection under match
// must make `when` true for one of its indicators, each under non_match
// for none.
func (l *loader) runTests(n ast.Node, r *Rule) bool {
	values, ok := l.mapping(n, "tests")
	if !ok {
		return false
	}
	good := true
	for _, mv := range values {
		k := keyOf(mv)
		want := k == "match"
		if k != "match" && k != "non_match" {
			l.errAt(mv.Key, "tests."+k, ErrUnknownKey, "unknown key %q (tests has match, non_match)%s", k, suggest(k, []string{"match", "non_match"}))
			good = false
			continue
		}
		seq, ok := mv.Value.(*ast.SequenceNode)
		if !ok {
			l.errAt(mv.Value, "tests."+k, ErrInvalidRule, "is a %s, want a list of detections", nodeKind(mv.Value))
			good = false
			continue
		}
		for i, dn := range seq.Values {
			field := fmt.Sprintf("tests.%s[%d]", k, i)
			d, ok := l.testDetection(dn, field, r.Name, i)
			if !ok {
				good = false
				continue
			}
			env := NewEnv(&d, d.Time)
			var m vm.VM
			got, _, err := r.eval(&m, env)
			if err != nil {
				l.errAt(dn, field, ErrRuleTest, "when failed: %v", err)
				good = false
				continue
			}
			if got != want {
				verb := "does not match"
				if got {
					verb = "matches"
				}
				l.errAt(dn, field, ErrRuleTest, "the rule %s this detection; %s", verb, describeConds(r, env))
				good = false
			}
		}
	}
	return good
}

// describeConds gives each top-level sub-condition's value for the first
// indicator (or none), for test failure messages.
func describeConds(r *Rule, env *Env) string {
	env.Bind(0) // the first indicator, or none
	var m vm.VM
	conds := r.conditions()
	parts := make([]string, 0, len(conds))
	for _, c := range conds {
		v, err := m.Run(c.prog, env)
		if err != nil {
			parts = append(parts, fmt.Sprintf("%s → error", c.src))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s → %s", c.src, formatValue(v)))
	}
	return strings.Join(parts, "; ")
}

// testDetection decodes an inline test detection: the fields of
// cordon.detection/v1, all optional here (schema, id, time get defaults).
func (l *loader) testDetection(n ast.Node, field, rule string, i int) (ioc.Detection, bool) {
	if _, ok := l.mapping(n, field); !ok {
		return ioc.Detection{}, false
	}
	var v any
	if err := decodeNode(n, &v); err != nil {
		l.yamlErrAt(n, field, err)
		return ioc.Detection{}, false
	}
	data, err := json.Marshal(jsonable(v))
	if err != nil {
		l.errAt(n, field, ErrInvalidRule, "cannot convert the detection: %v", err)
		return ioc.Detection{}, false
	}
	type plain ioc.Detection
	var p plain
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		sentinel := ErrInvalidRule
		if strings.Contains(err.Error(), "unknown field") {
			sentinel = ErrUnknownKey
		}
		l.errAt(n, field, sentinel, "%v", strings.TrimPrefix(err.Error(), "json: "))
		return ioc.Detection{}, false
	}
	d := ioc.Detection(p)
	if d.Schema == "" {
		d.Schema = ioc.DetectionSchema
	}
	if d.ID == "" {
		d.ID = fmt.Sprintf("test-%s-%s-%d", rule, strings.Split(field, "[")[0], i)
	}
	if d.Time.IsZero() {
		d.Time = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	return d, true
}

// jsonable turns decoded YAML (maps with any keys) into JSON-encodable
// values.
func jsonable(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = jsonable(e)
		}
		return x
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[fmt.Sprint(k)] = jsonable(e)
		}
		return m
	case []any:
		for i, e := range x {
			x[i] = jsonable(e)
		}
		return x
	}
	return v
}
