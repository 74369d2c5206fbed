package yara

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"

	"github.com/VirusTotal/gyp"
	"github.com/VirusTotal/gyp/ast"
	gyperror "github.com/VirusTotal/gyp/error"
)

// CompileOption configures Compile.
type CompileOption func(*compileConfig)

type compileConfig struct {
	vars       map[string]any
	varOrder   []string
	includeDir string
}

// WithVariable defines the external variable name for the rules' conditions.
// value must be an int64 (or int), bool, string or float64; any other type
// makes Compile fail with ErrVariable.
func WithVariable(name string, value any) CompileOption {
	return func(c *compileConfig) {
		if c.vars == nil {
			c.vars = map[string]any{}
		}
		if _, ok := c.vars[name]; !ok {
			c.varOrder = append(c.varOrder, name)
		}
		c.vars[name] = value
	}
}

// WithIncludeDir allows include directives and resolves them in dir (a
// relative include is relative to the including file). Included files must
// lie inside dir. Without this option an include is a compile error.
func WithIncludeDir(dir string) CompileOption {
	return func(c *compileConfig) { c.includeDir = dir }
}

// Meta is one metadata entry of a rule. Value is a string, int64 or bool.
type Meta struct {
	Key   string
	Value any
}

// DefaultNamespace is the namespace of every rule compiled by Compile.
const DefaultNamespace = "default"

type vtype uint8

const (
	tInt vtype = iota + 1
	tFloat
	tStr
	tBool
	tRegex
	tModule
)

func (t vtype) String() string {
	switch t {
	case tInt:
		return "integer"
	case tFloat:
		return "float"
	case tStr:
		return "string"
	case tBool:
		return "boolean"
	case tRegex:
		return "regexp"
	case tModule:
		return "module"
	}
	return "unknown"
}

// val is a runtime value; ok is false for YARA's undefined.
type val struct {
	i  int64
	f  float64
	s  string
	ok bool
}

var undef = val{}

func vInt(i int64) val     { return val{i: i, ok: true} }
func vFloat(f float64) val { return val{f: f, ok: true} }
func vStr(s string) val    { return val{s: s, ok: true} }
func vBool(b bool) val {
	if b {
		return val{i: 1, ok: true}
	}
	return val{ok: true}
}

// cexpr is a compiled, typed expression.
type cexpr struct {
	t       vtype
	ev      func(*scanCtx) val
	isConst bool
	// chk is the value YARA's parser folds an integer expression to for its
	// compile-time checks (zero divisors, negative shifts), or nil when it
	// does not fold it. It differs from the real value only through ">>",
	// which YARA 4.2.3 folds as "<<" (its scan-time value is right).
	chk *int64
	re  *reNode // tRegex
	mod string  // tModule
}

func constExpr(t vtype, v val) *cexpr {
	e := &cexpr{t: t, isConst: true, ev: func(*scanCtx) val { return v }}
	if t == tInt {
		e.chk = &v.i
	}
	return e
}

func chkOf(v int64) *int64 { return &v }

// cstring is one string of a rule.
type cstring struct {
	id       string // with the leading '$'
	rule     int
	private  bool
	line     int
	patterns []int
	// fixed: the string is only used as "$a at fixedOff" with a constant
	// offset, so only a match there is recorded (YARA's fixed-offset
	// strings).
	fixed    bool
	fixedOff int64
	// chain is set for a hex string split at long jumps (as YARA chains
	// them): its parts are internal strings matched on their own and
	// linked after the scan, so the jumps are not bound by reScanLimit.
	chain []chainLink
}

// chainLink is one part of a chained hex string: the internal string that
// matches it and the jump before it (min..max bytes, max < 0: unbounded).
type chainLink struct {
	str      int
	min, max int
}

// chainThreshold is YARA's YR_STRING_CHAINING_THRESHOLD: a hex jump whose
// upper bound is larger (or unbounded) splits the string into chained parts.
const chainThreshold = 200

type rule struct {
	name     string
	tags     []string
	meta     []Meta
	global   bool
	private  bool
	strings  []int // global string indexes
	cond     *cexpr
	line     int
	nslots   int
	usesData bool
}

// Rules is a compiled set of YARA rules. It is immutable and safe for
// concurrent use by multiple goroutines.
type Rules struct {
	rules    []*rule
	strs     []*cstring
	pats     []*pattern
	atoms    *atomIndex
	noAtom   []int32 // patterns verified at every offset
	chained  []int   // strings whose matches are linked from their parts
	warnings []Warning
	vars     map[string]val
}

// Warnings returns the compile warnings (for example strings that slow down
// scanning), in source order.
func (r *Rules) Warnings() []Warning { return append([]Warning(nil), r.warnings...) }

// NumRules returns the number of rules, private ones included.
func (r *Rules) NumRules() int { return len(r.rules) }

type scopeVar struct {
	name string
	slot int
	t    vtype
}

type compiler struct {
	cfg      *compileConfig
	pp       *preprocessed
	lineOff  []int
	vars     map[string]val
	varTypes map[string]vtype
	imports  map[string]bool
	out      *Rules
	ruleIdx  map[string]int
	cur      *rule
	curStrs  map[string]int // identifier without '$' -> global string index
	refd     map[int]bool
	// refAt holds the constant offsets of "$a at N" references, refOther
	// the strings referenced any other way: a string referenced only at one
	// constant offset is matched only there, as YARA does.
	refAt      map[int][]int64
	refOther   map[int]bool
	scope      []scopeVar
	nslots     int
	forOfDepth int // depth of for..of loops (anonymous string allowed)
	depth      int // nesting of expr calls, bounded by maxExprDepth
}

// catchPanics turns an internal panic during Compile into an error; the fuzz
// tests turn it off so that such bugs surface.
var catchPanics = true

var implementedModules = map[string]bool{"hash": true, "math": true}

// Compile compiles YARA source into Rules. Errors are *CompileError values
// wrapping one of the Err* sentinels, with the line and, where known, the
// column of the problem.
func Compile(src string, opts ...CompileOption) (rules *Rules, err error) {
	cfg := &compileConfig{}
	for _, o := range opts {
		o(cfg)
	}
	defer func() {
		if !catchPanics {
			return
		}
		if r := recover(); r != nil {
			rules, err = nil, &CompileError{Kind: ErrSyntax, Line: 1, Msg: fmt.Sprintf("internal error: %v", r)}
		}
	}()
	c := &compiler{cfg: cfg, vars: map[string]val{}, varTypes: map[string]vtype{},
		imports: map[string]bool{}, ruleIdx: map[string]int{},
		out: &Rules{vars: map[string]val{}}}
	for _, name := range cfg.varOrder {
		v, t, err := externalValue(cfg.vars[name])
		if err != nil || !isIdentifier(name) {
			return nil, &CompileError{Kind: ErrVariable, Msg: fmt.Sprintf("external variable %q: %v", name, errOr(err, "invalid name"))}
		}
		c.vars[name] = v
		c.varTypes[name] = t
		c.out.vars[name] = v
	}
	pp, err := preprocess(src, cfg.includeDir)
	if err != nil {
		return nil, err
	}
	c.pp = pp
	c.lineOff = []int{0}
	for i := 0; i < len(pp.text); i++ {
		if pp.text[i] == '\n' {
			c.lineOff = append(c.lineOff, i+1)
		}
	}
	rs, err := gyp.ParseString(pp.text)
	if err != nil {
		return nil, c.parseError(err)
	}
	for _, imp := range rs.Imports {
		if !implementedModules[imp] {
			line, col := c.find(1, `"`+imp+`"`)
			kind := ErrUnknownModule
			msg := fmt.Sprintf("unknown module %q (implemented: hash, math)", imp)
			if imp == "" || strings.ContainsAny(imp, "\\\x00") {
				msg = fmt.Sprintf("invalid module name %q", imp)
			}
			return nil, c.errAtLine(kind, "", line, col, msg)
		}
		c.imports[imp] = true
	}
	for _, r := range rs.Rules {
		if err := c.compileRule(r); err != nil {
			return nil, err
		}
	}
	if err := c.out.buildScanner(); err != nil {
		return nil, err
	}
	return c.out, nil
}

func errOr(err error, s string) string {
	if err != nil {
		return err.Error()
	}
	return s
}

var identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func isIdentifier(s string) bool { return identRe.MatchString(s) && len(s) <= 128 }

func externalValue(v any) (val, vtype, error) {
	switch x := v.(type) {
	case int64:
		return vInt(x), tInt, nil
	case int:
		return vInt(int64(x)), tInt, nil
	case int32:
		return vInt(int64(x)), tInt, nil
	case bool:
		return vBool(x), tBool, nil
	case string:
		return vStr(x), tStr, nil
	case float64:
		return vFloat(x), tFloat, nil
	}
	return undef, 0, fmt.Errorf("unsupported type %T (want int64, bool, string or float64)", v)
}

func (c *compiler) parseError(err error) error {
	var ge gyperror.Error
	if errors.As(err, &ge) {
		kind := ErrSyntax
		switch ge.Code {
		case gyperror.DuplicateRuleError, gyperror.DuplicateTagError, gyperror.DuplicateStringError, gyperror.DuplicateModifierError:
			kind = ErrDuplicate
		case gyperror.UndefinedStringIdentifierError, gyperror.UndefinedRuleIdentifierError:
			kind = ErrUndefined
		case gyperror.IntegerOverflowError, gyperror.NumberConversionError:
			kind = ErrOverflow
		case gyperror.InvalidJumpLengthError, gyperror.JumpTooLargeInsideAlternationError,
			gyperror.NegativeJumpError, gyperror.InvalidJumpRangeError,
			gyperror.UnboundedJumpInsideAlternationError, gyperror.InvalidCharInHexStringError,
			gyperror.InvalidStringModifierError, gyperror.UnevenNumberOfDigitsError,
			gyperror.IllegalEscapeSequenceError, gyperror.InvalidRegexModifierError,
			gyperror.UnterminatedRegexError, gyperror.UnterminatedStringError:
			kind = ErrInvalidString
		}
		gl := ge.Line
		if gl <= 0 {
			gl = 1
		}
		col := 0
		// gyp reports the line where the parser stopped; for an error that
		// names a token, find that token's last occurrence up to there.
		if i := strings.LastIndex(ge.Message, ": "); i >= 0 && gl <= len(c.lineOff) {
			tok := strings.Trim(ge.Message[i+2:], `"`)
			end := len(c.pp.text)
			if gl < len(c.lineOff) {
				end = c.lineOff[gl]
			}
			if tok != "" && !strings.ContainsAny(tok, " \n") {
				if at := strings.LastIndex(c.pp.text[:end], tok); at >= 0 {
					l := 1
					for l < len(c.lineOff) && c.lineOff[l] <= at {
						l++
					}
					gl, col = l, at-c.lineOff[l-1]+1
				}
			}
		}
		end := len(c.pp.text)
		if gl < len(c.lineOff) {
			end = c.lineOff[gl]
		}
		if col > 0 {
			end = min(end, c.lineOff[gl-1]+col)
		}
		file, line := c.pp.position(gl)
		rule := ruleBefore(c.pp.text, end)
		msg := strings.TrimPrefix(ge.Message, fmt.Sprintf("rule %q: ", rule))
		return &CompileError{Kind: kind, File: file, Line: line, Column: col, Rule: rule, Msg: msg}
	}
	return &CompileError{Kind: ErrSyntax, Line: 1, Msg: err.Error()}
}

// ruleBefore returns the name of the last rule declared in src[:end], the
// rule a parse error at end is in, or "". Comments, text strings and
// regular expressions are skipped (YARA has no '/' operator, so a '/' that
// starts no comment starts a regular expression).
func ruleBefore(src string, end int) string {
	end = min(end, len(src))
	name := ""
	isIdent := func(b byte) bool {
		return b == '_' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
	}
	// skipQuoted returns the index after the closing q of a literal
	// starting at i (src[i] == q), honouring backslash escapes.
	skipQuoted := func(i int, q byte) int {
		for i++; i < end; i++ {
			switch src[i] {
			case '\\':
				i++
			case q:
				return i + 1
			case '\n':
				return i
			}
		}
		return end
	}
	for i := 0; i < end; {
		switch b := src[i]; {
		case b == '/' && i+1 < end && src[i+1] == '/':
			for i < end && src[i] != '\n' {
				i++
			}
		case b == '/' && i+1 < end && src[i+1] == '*':
			if j := strings.Index(src[i+2:end], "*/"); j >= 0 {
				i += j + 4
			} else {
				i = end
			}
		case b == '"' || b == '/':
			i = skipQuoted(i, b)
		case isIdent(b):
			j := i
			for j < end && isIdent(src[j]) {
				j++
			}
			if src[i:j] == "rule" {
				k := j
				for k < end && (src[k] == ' ' || src[k] == '\t' || src[k] == '\n' || src[k] == '\r') {
					k++
				}
				l := k
				for l < end && isIdent(src[l]) {
					l++
				}
				if l > k {
					name = src[k:l]
				}
			}
			i = j
		default:
			i++
		}
	}
	return name
}

// find locates tok in the preprocessed source at or after line (1-based),
// returning the line and column of its first occurrence, or (line, 0).
func (c *compiler) find(line int, tok string) (int, int) {
	if line < 1 || line > len(c.lineOff) {
		return line, 0
	}
	start := c.lineOff[line-1]
	idx := strings.Index(c.pp.text[start:], tok)
	if idx < 0 || tok == "" {
		return line, 0
	}
	abs := start + idx
	l := line
	for l < len(c.lineOff) && c.lineOff[l] <= abs {
		l++
	}
	return l, abs - c.lineOff[l-1] + 1
}

func (c *compiler) errAtLine(kind error, ruleName string, line, col int, msg string) *CompileError {
	file, fl := c.pp.position(line)
	return &CompileError{Kind: kind, File: file, Line: fl, Column: col, Rule: ruleName, Msg: msg}
}

// errf reports an error in the current rule, positioned at the first
// occurrence of tok after the rule's start.
func (c *compiler) errf(kind error, tok string, format string, a ...any) *CompileError {
	line, col := c.cur.line, 0
	if tok != "" {
		line, col = c.find(c.cur.line, tok)
	}
	return c.errAtLine(kind, c.cur.name, line, col, fmt.Sprintf(format, a...))
}

func (c *compiler) compileRule(r *ast.Rule) error {
	ru := &rule{name: r.Identifier, tags: r.Tags, global: r.Global, private: r.Private, line: r.LineNo}
	if ru.line <= 0 {
		ru.line = 1
	}
	c.cur = ru
	c.curStrs = map[string]int{}
	c.refd = map[int]bool{}
	c.refAt = map[int][]int64{}
	c.refOther = map[int]bool{}
	c.scope = nil
	c.nslots = 0
	if _, dup := c.ruleIdx[r.Identifier]; dup {
		return c.errf(ErrDuplicate, r.Identifier, "duplicate rule identifier %q", r.Identifier)
	}
	if _, isVar := c.vars[r.Identifier]; isVar {
		return c.errf(ErrDuplicate, r.Identifier, "rule %q has the name of an external variable", r.Identifier)
	}
	seenTag := map[string]bool{}
	for _, t := range r.Tags {
		if seenTag[t] {
			return c.errf(ErrDuplicate, t, "duplicate tag %q", t)
		}
		seenTag[t] = true
	}
	for _, m := range r.Meta {
		v := m.Value
		if s, ok := v.(string); ok {
			u, err := unescapeText(s)
			if err != nil {
				return c.errf(ErrSyntax, m.Key, "meta %q: %v", m.Key, err)
			}
			v = string(u)
		}
		if i, ok := v.(int); ok {
			v = int64(i)
		}
		ru.meta = append(ru.meta, Meta{Key: m.Key, Value: v})
	}
	for _, s := range r.Strings {
		if err := c.compileString(s); err != nil {
			return err
		}
	}
	if r.Condition == nil {
		return c.errf(ErrSyntax, "", "rule without condition")
	}
	cond, err := c.expr(r.Condition)
	if err != nil {
		return err
	}
	if cond, err = c.toBool(cond, "condition"); err != nil {
		return err
	}
	ru.cond = cond
	ru.nslots = c.nslots
	for _, si := range ru.strings {
		if offs := c.refAt[si]; len(offs) > 0 && !c.refOther[si] && !slices.ContainsFunc(offs, func(o int64) bool { return o != offs[0] }) {
			s := c.out.strs[si]
			s.fixed, s.fixedOff = true, offs[0]
		}
		if !c.refd[si] {
			s := c.out.strs[si]
			line, col := c.find(s.line, s.id)
			return c.errAtLine(ErrUnreferencedString, ru.name, line, col,
				fmt.Sprintf("unreferenced string %q", s.id))
		}
	}
	c.ruleIdx[r.Identifier] = len(c.out.rules)
	c.out.rules = append(c.out.rules, ru)
	return nil
}

// toBool converts e to a boolean expression.
func (c *compiler) toBool(e *cexpr, what string) (*cexpr, error) {
	ev := e.ev
	switch e.t {
	case tBool:
		return e, nil
	case tInt:
		return &cexpr{t: tBool, isConst: e.isConst, ev: func(x *scanCtx) val {
			v := ev(x)
			if !v.ok {
				return v
			}
			return vBool(v.i != 0)
		}}, nil
	case tFloat:
		return &cexpr{t: tBool, isConst: e.isConst, ev: func(x *scanCtx) val {
			v := ev(x)
			if !v.ok {
				return v
			}
			return vBool(v.f != 0)
		}}, nil
	case tStr:
		return &cexpr{t: tBool, isConst: e.isConst, ev: func(x *scanCtx) val {
			v := ev(x)
			if !v.ok {
				return v
			}
			return vBool(v.s != "")
		}}, nil
	}
	return nil, c.errf(ErrType, "", "%s: a %s is not a boolean", what, e.t)
}

func toFloat(e *cexpr) *cexpr {
	if e.t == tFloat {
		return e
	}
	ev := e.ev
	return &cexpr{t: tFloat, isConst: e.isConst, ev: func(x *scanCtx) val {
		v := ev(x)
		if !v.ok {
			return v
		}
		return vFloat(float64(v.i))
	}}
}

// fold evaluates constant expressions at compile time.
func fold(e *cexpr) *cexpr {
	if !e.isConst || e.t == tRegex {
		return e
	}
	return constExpr(e.t, e.ev(nil))
}

// maxExprDepth bounds the nesting of a condition. YARA's parser stack
// rejects deeper nesting ("memory exhausted"); without a bound a hostile rule
// (a million nested parentheses) would overflow the goroutine stack, which
// is a fatal error, not a panic. Chains of one operator (a or b or c ...)
// are flat in gyp's AST and do not count.
const maxExprDepth = 10000

func (c *compiler) expr(e ast.Expression) (*cexpr, error) {
	c.depth++
	defer func() { c.depth-- }()
	if c.depth > maxExprDepth {
		return nil, c.errf(ErrSyntax, "", "condition nested too deeply (more than %d levels)", maxExprDepth)
	}
	return c.expr1(e)
}

func (c *compiler) expr1(e ast.Expression) (*cexpr, error) {
	switch n := e.(type) {
	case *ast.Group:
		return c.expr(n.Expression)
	case *ast.LiteralInteger:
		return constExpr(tInt, vInt(n.Value)), nil
	case *ast.LiteralFloat:
		return constExpr(tFloat, vFloat(n.Value)), nil
	case *ast.LiteralString:
		b, err := unescapeText(n.Value)
		if err != nil {
			return nil, c.errf(ErrSyntax, "", "string %q: %v", n.Value, err)
		}
		return constExpr(tStr, vStr(string(b))), nil
	case *ast.LiteralRegexp:
		re, err := parseRegex(n.Value, n.Modifiers&ast.RegexpCaseInsensitive != 0, n.Modifiers&ast.RegexpDotAll != 0)
		if err != nil {
			return nil, c.errf(ErrInvalidString, n.Value, "invalid regular expression /%s/: %v", n.Value, err)
		}
		return &cexpr{t: tRegex, re: re, isConst: true, ev: func(*scanCtx) val { return undef }}, nil
	case ast.Keyword:
		switch n {
		case ast.KeywordTrue:
			return constExpr(tBool, vBool(true)), nil
		case ast.KeywordFalse:
			return constExpr(tBool, vBool(false)), nil
		case ast.KeywordFilesize:
			return &cexpr{t: tInt, ev: func(x *scanCtx) val { return vInt(int64(len(x.data))) }}, nil
		case ast.KeywordEntrypoint:
			return &cexpr{t: tInt, ev: func(x *scanCtx) val { return x.entrypoint() }}, nil
		}
		return nil, c.errf(ErrSyntax, string(n), "unexpected %q", string(n))
	case *ast.Minus:
		a, err := c.expr(n.Expression)
		if err != nil {
			return nil, err
		}
		ev := a.ev
		switch a.t {
		case tInt:
			if a.isConst {
				if v := a.ev(nil); v.ok && v.i == math.MinInt64 {
					return nil, c.errf(ErrOverflow, "", "integer overflow in -(%d)", v.i)
				}
			}
			neg := &cexpr{t: tInt, isConst: a.isConst, ev: func(x *scanCtx) val {
				v := ev(x)
				if v.ok {
					v.i = -v.i
				}
				return v
			}}
			if a.chk != nil {
				neg.chk = chkOf(-*a.chk)
			}
			return fold(neg), nil
		case tFloat:
			return fold(&cexpr{t: tFloat, isConst: a.isConst, ev: func(x *scanCtx) val {
				v := ev(x)
				if v.ok {
					v.f = -v.f
				}
				return v
			}}), nil
		}
		return nil, c.errf(ErrType, "-", "operand of unary minus is a %s", a.t)
	case *ast.BitwiseNot:
		a, err := c.expr(n.Expression)
		if err != nil {
			return nil, err
		}
		if a.t != tInt {
			return nil, c.errf(ErrType, "~", "operand of ~ is a %s, not an integer", a.t)
		}
		ev := a.ev
		not := &cexpr{t: tInt, isConst: a.isConst, ev: func(x *scanCtx) val {
			v := ev(x)
			if v.ok {
				v.i = ^v.i
			}
			return v
		}}
		if a.chk != nil {
			not.chk = chkOf(^*a.chk)
		}
		return fold(not), nil
	case *ast.Not:
		a, err := c.expr(n.Expression)
		if err != nil {
			return nil, err
		}
		if a, err = c.toBool(a, "operand of not"); err != nil {
			return nil, err
		}
		ev := a.ev
		return fold(&cexpr{t: tBool, isConst: a.isConst, ev: func(x *scanCtx) val {
			v := ev(x)
			if v.ok {
				return vBool(v.i == 0)
			}
			return v
		}}), nil
	case *ast.Defined:
		a, err := c.expr(n.Expression)
		if err != nil {
			return nil, err
		}
		if a.t == tRegex || a.t == tModule {
			return nil, c.errf(ErrType, "defined", "operand of defined is a %s", a.t)
		}
		ev := a.ev
		return fold(&cexpr{t: tBool, isConst: a.isConst, ev: func(x *scanCtx) val { return vBool(ev(x).ok) }}), nil
	case *ast.Identifier:
		return c.identifier(n.Identifier)
	case *ast.Operation:
		return c.operation(n)
	case *ast.StringIdentifier:
		return c.stringIdent(n)
	case *ast.StringCount:
		return c.stringCount(n)
	case *ast.StringOffset:
		return c.stringOffLen(n.Identifier, n.Index, false)
	case *ast.StringLength:
		return c.stringOffLen(n.Identifier, n.Index, true)
	case *ast.FunctionCall:
		return c.call(n)
	case *ast.MemberAccess:
		return c.member(n)
	case *ast.Of:
		return c.of(n)
	case *ast.ForOf:
		return c.forOf(n)
	case *ast.ForIn:
		return c.forIn(n)
	case *ast.Subscripting:
		return nil, c.errf(ErrUndefined, "[", "subscripting is only defined for module arrays, which are not implemented")
	case *ast.Percentage:
		return nil, c.errf(ErrSyntax, "%", "a percentage is only valid before \"of\"")
	}
	return nil, c.errf(ErrSyntax, "", "unsupported expression %T", e)
}

func (c *compiler) identifier(name string) (*cexpr, error) {
	for i := len(c.scope) - 1; i >= 0; i-- {
		if c.scope[i].name == name {
			slot := c.scope[i].slot
			return &cexpr{t: c.scope[i].t, ev: func(x *scanCtx) val { return x.vars[slot] }}, nil
		}
	}
	if v, ok := c.vars[name]; ok {
		return constExprRuntime(c.varTypes[name], v), nil
	}
	if idx, ok := c.ruleIdx[name]; ok {
		return &cexpr{t: tBool, ev: func(x *scanCtx) val { return vBool(x.ruleRes[idx]) }}, nil
	}
	if c.imports[name] {
		return &cexpr{t: tModule, mod: name, ev: func(*scanCtx) val { return undef }}, nil
	}
	if name == c.cur.name {
		return nil, c.errf(ErrUndefined, name, "rule %q refers to itself", name)
	}
	return nil, c.errf(ErrUndefined, name, "undefined identifier %q", name)
}

// constExprRuntime is an external variable: its value is fixed per Rules,
// but it is not folded (so errors such as division by zero stay runtime).
func constExprRuntime(t vtype, v val) *cexpr {
	return &cexpr{t: t, ev: func(*scanCtx) val { return v }}
}

func (c *compiler) operation(n *ast.Operation) (*cexpr, error) {
	if len(n.Operands) == 0 {
		return nil, c.errf(ErrSyntax, "", "operator %s without operands", n.Operator)
	}
	ops := make([]*cexpr, len(n.Operands))
	for i, o := range n.Operands {
		e, err := c.expr(o)
		if err != nil {
			return nil, err
		}
		ops[i] = e
	}
	switch n.Operator {
	case ast.OpAnd, ast.OpOr:
		evs := make([]func(*scanCtx) val, len(ops))
		allConst := true
		for i, o := range ops {
			b, err := c.toBool(o, "operand of "+string(n.Operator))
			if err != nil {
				return nil, err
			}
			evs[i] = b.ev
			allConst = allConst && b.isConst
		}
		if n.Operator == ast.OpAnd {
			return fold(&cexpr{t: tBool, isConst: allConst, ev: func(x *scanCtx) val {
				for _, ev := range evs {
					v := ev(x)
					if !v.ok || v.i == 0 {
						return vBool(false)
					}
				}
				return vBool(true)
			}}), nil
		}
		// Like YARA 4.2.3, "or" is always defined: undefined operands count
		// as false (so "not (undefined or undefined)" is true).
		return fold(&cexpr{t: tBool, isConst: allConst, ev: func(x *scanCtx) val {
			for _, ev := range evs {
				if v := ev(x); v.ok && v.i != 0 {
					return vBool(true)
				}
			}
			return vBool(false)
		}}), nil
	}
	// Binary operators, applied left to right.
	acc := ops[0]
	for _, o := range ops[1:] {
		var err error
		acc, err = c.binary(n.Operator, acc, o)
		if err != nil {
			return nil, err
		}
	}
	return acc, nil
}

func (c *compiler) binary(op ast.OperatorType, a, b *cexpr) (*cexpr, error) {
	isConst := a.isConst && b.isConst
	opTok := string(op)
	if op == ast.OpDiv {
		opTok = `\`
	}
	bad := func() error {
		return c.errf(ErrType, opTok, "wrong operand types for %s: %s and %s", opTok, a.t, b.t)
	}
	num := func(t vtype) bool { return t == tInt || t == tFloat }
	switch op {
	case ast.OpEqual, ast.OpNotEqual, ast.OpLessThan, ast.OpGreaterThan, ast.OpLessOrEqual, ast.OpGreaterOrEqual:
		var cmp func(x *scanCtx) (int, bool)
		ae, be := a.ev, b.ev
		switch {
		case a.t == tInt && b.t == tInt:
			cmp = func(x *scanCtx) (int, bool) {
				va, vb := ae(x), be(x)
				if !va.ok || !vb.ok {
					return 0, false
				}
				return cmpOrdered(va.i, vb.i), true
			}
		case num(a.t) && num(b.t):
			af, bf := toFloat(a).ev, toFloat(b).ev
			cmp = func(x *scanCtx) (int, bool) {
				va, vb := af(x), bf(x)
				if !va.ok || !vb.ok {
					return 0, false
				}
				return cmpOrdered(va.f, vb.f), true
			}
		case a.t == tStr && b.t == tStr:
			cmp = func(x *scanCtx) (int, bool) {
				va, vb := ae(x), be(x)
				if !va.ok || !vb.ok {
					return 0, false
				}
				return compareSigned(va.s, vb.s), true
			}
		case a.t == tBool && b.t == tBool:
			cmp = func(x *scanCtx) (int, bool) {
				va, vb := ae(x), be(x)
				if !va.ok || !vb.ok {
					return 0, false
				}
				return cmpOrdered(va.i, vb.i), true
			}
		default:
			return nil, bad()
		}
		var test func(int) bool
		switch op {
		case ast.OpEqual:
			test = func(r int) bool { return r == 0 }
		case ast.OpNotEqual:
			test = func(r int) bool { return r != 0 }
		case ast.OpLessThan:
			test = func(r int) bool { return r < 0 }
		case ast.OpGreaterThan:
			test = func(r int) bool { return r > 0 }
		case ast.OpLessOrEqual:
			test = func(r int) bool { return r <= 0 }
		default:
			test = func(r int) bool { return r >= 0 }
		}
		return fold(&cexpr{t: tBool, isConst: isConst, ev: func(x *scanCtx) val {
			r, ok := cmp(x)
			if !ok {
				return undef
			}
			return vBool(test(r))
		}}), nil
	case ast.OpAdd, ast.OpSub, ast.OpMul, ast.OpDiv:
		if !num(a.t) || !num(b.t) {
			return nil, bad()
		}
		if a.t == tInt && b.t == tInt {
			ae, be := a.ev, b.ev
			var f func(x, y int64) (int64, bool, bool) // result, defined, overflow
			switch op {
			case ast.OpAdd:
				f = func(x, y int64) (int64, bool, bool) {
					r := x + y
					return r, true, (x > 0 && y > 0 && r < 0) || (x < 0 && y < 0 && r >= 0)
				}
			case ast.OpSub:
				f = func(x, y int64) (int64, bool, bool) {
					r := x - y
					return r, true, (x >= 0 && y < 0 && r < 0) || (x < 0 && y > 0 && r >= 0)
				}
			case ast.OpMul:
				f = func(x, y int64) (int64, bool, bool) {
					if x == 0 || y == 0 {
						return 0, true, false
					}
					// YARA's check: |x| > MaxInt64/|y| is an overflow.
					ax, ay := absU(x), absU(y)
					return x * y, true, ax > uint64(math.MaxInt64)/ay
				}
			default:
				f = func(x, y int64) (int64, bool, bool) {
					if y == 0 {
						return 0, false, false
					}
					if x == math.MinInt64 && y == -1 {
						return 0, true, true
					}
					return x / y, true, false
				}
			}
			if op == ast.OpDiv && b.chk != nil && *b.chk == 0 {
				return nil, c.errf(ErrType, opTok, "division by zero")
			}
			var chk *int64
			if a.chk != nil && b.chk != nil {
				if r, def, _ := f(*a.chk, *b.chk); def {
					chk = &r
				}
			}
			if isConst {
				va, vb := ae(nil), be(nil)
				if va.ok && vb.ok {
					r, def, ovf := f(va.i, vb.i)
					if ovf {
						return nil, c.errf(ErrOverflow, "", "integer overflow in %d %s %d", va.i, opTok, vb.i)
					}
					if !def {
						return nil, c.errf(ErrType, opTok, "division by zero")
					}
					return constExpr(tInt, vInt(r)), nil
				}
			}
			return &cexpr{t: tInt, chk: chk, ev: func(x *scanCtx) val {
				va, vb := ae(x), be(x)
				if !va.ok || !vb.ok {
					return undef
				}
				r, def, _ := f(va.i, vb.i)
				if !def {
					return undef
				}
				return vInt(r)
			}}, nil
		}
		af, bf := toFloat(a).ev, toFloat(b).ev
		var f func(x, y float64) float64
		switch op {
		case ast.OpAdd:
			f = func(x, y float64) float64 { return x + y }
		case ast.OpSub:
			f = func(x, y float64) float64 { return x - y }
		case ast.OpMul:
			f = func(x, y float64) float64 { return x * y }
		default:
			f = func(x, y float64) float64 { return x / y }
		}
		return fold(&cexpr{t: tFloat, isConst: isConst, ev: func(x *scanCtx) val {
			va, vb := af(x), bf(x)
			if !va.ok || !vb.ok {
				return undef
			}
			return vFloat(f(va.f, vb.f))
		}}), nil
	case ast.OpMod, ast.OpBitAnd, ast.OpBitOr, ast.OpBitXor, ast.OpShiftLeft, ast.OpShiftRight:
		if a.t != tInt || b.t != tInt {
			return nil, bad()
		}
		ae, be := a.ev, b.ev
		var f func(x, y int64) (int64, bool)
		switch op {
		case ast.OpMod:
			f = func(x, y int64) (int64, bool) {
				if y == 0 {
					return 0, false
				}
				if y == -1 {
					return 0, true
				}
				return x % y, true
			}
		case ast.OpBitAnd:
			f = func(x, y int64) (int64, bool) { return x & y, true }
		case ast.OpBitOr:
			f = func(x, y int64) (int64, bool) { return x | y, true }
		case ast.OpBitXor:
			f = func(x, y int64) (int64, bool) { return x ^ y, true }
		case ast.OpShiftLeft:
			f = func(x, y int64) (int64, bool) {
				if y < 0 {
					return 0, false
				}
				if y >= 64 {
					return 0, true
				}
				return x << uint(y), true
			}
		default:
			f = func(x, y int64) (int64, bool) {
				if y < 0 {
					return 0, false
				}
				if y >= 64 {
					return 0, true
				}
				return x >> uint(y), true
			}
		}
		if b.chk != nil {
			// Like YARA, a constant zero divisor or negative shift count is
			// an error even when the other operand is not constant.
			if op == ast.OpMod && *b.chk == 0 {
				return nil, c.errf(ErrType, "%", "division by zero")
			}
			if (op == ast.OpShiftLeft || op == ast.OpShiftRight) && *b.chk < 0 {
				return nil, c.errf(ErrType, opTok, "negative shift count %d", *b.chk)
			}
		}
		var chk *int64
		if a.chk != nil && b.chk != nil {
			fc := f
			if op == ast.OpShiftRight {
				fc = func(x, y int64) (int64, bool) { // YARA 4.2.3 folds >> as <<
					if y >= 64 {
						return 0, true
					}
					return x << uint(y), true
				}
			}
			if r, def := fc(*a.chk, *b.chk); def {
				chk = &r
			}
		}
		if isConst && op != ast.OpShiftRight {
			if va, vb := ae(nil), be(nil); va.ok && vb.ok {
				if r, def := f(va.i, vb.i); def {
					return constExpr(tInt, vInt(r)), nil
				}
			}
		}
		return &cexpr{t: tInt, chk: chk, ev: func(x *scanCtx) val {
			va, vb := ae(x), be(x)
			if !va.ok || !vb.ok {
				return undef
			}
			r, def := f(va.i, vb.i)
			if !def {
				return undef
			}
			return vInt(r)
		}}, nil
	case ast.OpContains, ast.OpIContains, ast.OpStartsWith, ast.OpIStartsWith, ast.OpEndsWith, ast.OpIEndsWith, ast.OpIEquals:
		if a.t != tStr || b.t != tStr {
			return nil, bad()
		}
		ae, be := a.ev, b.ev
		var f func(x, y string) bool
		switch op {
		case ast.OpContains:
			f = strings.Contains
		case ast.OpIContains:
			f = func(x, y string) bool { return strings.Contains(asciiLower(x), asciiLower(y)) }
		case ast.OpStartsWith:
			f = strings.HasPrefix
		case ast.OpIStartsWith:
			f = func(x, y string) bool { return strings.HasPrefix(asciiLower(x), asciiLower(y)) }
		case ast.OpEndsWith:
			f = strings.HasSuffix
		case ast.OpIEndsWith:
			f = func(x, y string) bool { return strings.HasSuffix(asciiLower(x), asciiLower(y)) }
		default:
			f = func(x, y string) bool { return asciiLower(x) == asciiLower(y) }
		}
		return fold(&cexpr{t: tBool, isConst: isConst, ev: func(x *scanCtx) val {
			va, vb := ae(x), be(x)
			if !va.ok || !vb.ok {
				return undef
			}
			return vBool(f(va.s, vb.s))
		}}), nil
	case ast.OpMatches:
		if a.t != tStr || b.t != tRegex {
			return nil, bad()
		}
		ae, re := a.ev, b.re
		return fold(&cexpr{t: tBool, isConst: a.isConst, ev: func(x *scanCtx) val {
			va := ae(x)
			if !va.ok {
				return undef
			}
			return vBool(regexSearch(re, []byte(va.s)))
		}}), nil
	}
	return nil, c.errf(ErrSyntax, string(op), "unknown operator %q", op)
}

// compareSigned compares strings byte by byte as signed chars, as YARA
// does ("\x80" < "a").
func compareSigned(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return cmpOrdered(int64(int8(a[i])), int64(int8(b[i])))
		}
	}
	return cmpOrdered(int64(len(a)), int64(len(b)))
}

func absU(x int64) uint64 {
	if x < 0 {
		return uint64(-(x + 1)) + 1
	}
	return uint64(x)
}

func cmpOrdered[T int64 | float64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}

// regexSearch reports whether re matches anywhere in s.
func regexSearch(re *reNode, s []byte) bool {
	m := &reMatcher{data: s, limit: len(s)}
	for i := 0; i <= len(s); i++ {
		if m.matchAt(re, i) >= 0 {
			return true
		}
	}
	return false
}

// unescapeText decodes YARA's text string escapes: \n \t \r \\ \" \xHH.
func unescapeText(s string) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		if i >= len(s) {
			return nil, errors.New("trailing backslash")
		}
		switch s[i] {
		case 'n':
			out = append(out, '\n')
		case 't':
			out = append(out, '\t')
		case 'r':
			out = append(out, '\r')
		case '\\':
			out = append(out, '\\')
		case '"':
			out = append(out, '"')
		case 'x':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return nil, errors.New(`illegal escape sequence \x`)
			}
			out = append(out, hexVal(s[i+1])<<4|hexVal(s[i+2]))
			i += 2
		default:
			return nil, fmt.Errorf(`illegal escape sequence \%c`, s[i])
		}
	}
	return out, nil
}
