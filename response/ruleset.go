package response

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/checker"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"

	"github.com/cordonsec/cordon/ioc"
)

// RuleSet is an ordered, immutable set of compiled rules (the rules of
// its files, file after file, each file's rules in file order) with the
// index that lets a detection evaluate only the rules that can match it.
// It is safe for concurrent use.
type RuleSet struct {
	files []*File
	rules []*Rule
	idx   *index
}

// NewRuleSet joins files, in the order given, into a rule set. Rule names
// must be unique across the files; a clash is a LoadErrors with
// ErrDuplicateRule naming both places.
func NewRuleSet(files ...*File) (*RuleSet, error) {
	rs := &RuleSet{files: slices.Clone(files)}
	where := map[string]*Rule{}
	var errs LoadErrors
	for _, f := range files {
		if f == nil {
			continue
		}
		for _, r := range f.Rules {
			if prev, dup := where[r.Name]; dup {
				errs = append(errs, &LoadError{File: r.File, Line: r.Line, Column: 1, Rule: r.Name, Field: "name",
					Err: fmt.Errorf("%w: %q is also the name of the rule at %s:%d", ErrDuplicateRule, r.Name, prev.File, prev.Line)})
				continue
			}
			where[r.Name] = r
			rs.rules = append(rs.rules, r)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	rs.idx = buildIndex(rs.rules)
	return rs, nil
}

// Rules returns the rules in evaluation order.
func (rs *RuleSet) Rules() []*Rule { return slices.Clone(rs.rules) }

// Files returns the files in order.
func (rs *RuleSet) Files() []*File { return slices.Clone(rs.files) }

// Len is the number of rules.
func (rs *RuleSet) Len() int { return len(rs.rules) }

// Firing is a rule that fires for a detection, with the indicator that
// made it fire (-1 when the detection has none).
type Firing struct {
	Rule      *Rule
	Indicator int
}

// evalError is a rule whose `when` failed to run for some indicator and
// matched for none.
type evalError struct {
	rule *Rule
	err  error
}

type scratch struct {
	vm    vm.VM
	marks []uint64
	touch []int32
	cands []int32
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// evaluate returns the rules that fire for env's detection, in order,
// honouring stop (a rule that is not dry-run and has stop: true ends the
// evaluation). indexed selects the indexed path; the outcome is the same
// either way (see TestIndexEquivalence).
func (rs *RuleSet) evaluate(env *Env, indexed bool) ([]Firing, []evalError) {
	s := scratchPool.Get().(*scratch)
	defer scratchPool.Put(s)
	n := len(env.Detection.Indicators)
	if !indexed || n > 64 {
		return rs.evaluateAll(s, env, indexed)
	}
	if cap(s.marks) < len(rs.rules) {
		s.marks = make([]uint64, len(rs.rules))
	}
	marks := s.marks[:len(rs.rules)]
	s.touch = s.touch[:0]
	engine, sev := env.Detection.Engine, env.Detection.Severity
	var zero IndicatorVars
	for i := -1; i < n; i++ {
		if i == -1 && n > 0 {
			continue
		}
		ind := &zero
		bit := uint64(1)
		if i >= 0 {
			ind = &env.Detection.Indicators[i]
			bit = 1 << uint(i)
		}
		s.cands = rs.idx.candidates(s.cands[:0], engine, sev, ind)
		for _, r := range s.cands {
			if marks[r]&bit != 0 || !rs.rules[r].cons.satisfied(engine, sev, ind) {
				continue
			}
			if marks[r] == 0 {
				s.touch = append(s.touch, r)
			}
			marks[r] |= bit
		}
	}
	slices.Sort(s.touch)
	var fired []Firing
	var errs []evalError
	stopped := false
	for _, ri := range s.touch {
		mask := marks[ri]
		marks[ri] = 0
		if stopped {
			continue
		}
		r := rs.rules[ri]
		hit, firstErr := -2, error(nil)
		for i := -1; i < n && hit == -2; i++ {
			if i == -1 {
				if n > 0 {
					continue
				}
			} else if mask&(1<<uint(i)) == 0 {
				continue
			}
			env.Bind(i)
			ok, err := runBool(&s.vm, r.program, env)
			if err != nil && firstErr == nil {
				firstErr = err
			}
			if ok {
				hit = i
			}
		}
		if hit != -2 {
			fired = append(fired, Firing{Rule: r, Indicator: hit})
			if r.Stop && !r.DryRun {
				stopped = true
			}
		} else if firstErr != nil {
			errs = append(errs, evalError{r, firstErr})
		}
	}
	return fired, errs
}

// evaluateAll evaluates every rule for every indicator, in order; with
// prefilter it skips the pairs whose constraints fail.
func (rs *RuleSet) evaluateAll(s *scratch, env *Env, prefilter bool) ([]Firing, []evalError) {
	var fired []Firing
	var errs []evalError
	for _, r := range rs.rules {
		hit, err := r.evalWith(&s.vm, env, prefilter)
		if hit != -2 {
			fired = append(fired, Firing{Rule: r, Indicator: hit})
			if r.Stop && !r.DryRun {
				break
			}
		} else if err != nil {
			errs = append(errs, evalError{r, err})
		}
	}
	return fired, errs
}

// evalWith evaluates r for each indicator in order and returns the first
// that makes it true, or -2; the error is the first failure when none did.
func (r *Rule) evalWith(m *vm.VM, env *Env, prefilter bool) (int, error) {
	n := len(env.Detection.Indicators)
	var firstErr error
	for i := -1; i < n; i++ {
		if i == -1 && n > 0 {
			continue
		}
		env.Bind(i)
		if prefilter && !r.cons.satisfied(env.Detection.Engine, env.Detection.Severity, &env.Indicator) {
			continue
		}
		ok, err := runBool(m, r.program, env)
		if err != nil && firstErr == nil {
			firstErr = err
		}
		if ok {
			return i, nil
		}
	}
	return -2, firstErr
}

// eval reports whether r fires for env's detection (ignoring stop), and
// for which indicator.
func (r *Rule) eval(m *vm.VM, env *Env) (bool, int, error) {
	i, err := r.evalWith(m, env, false)
	return i != -2, i, err
}

// Matches reports whether the rule fires for d, evaluated at d.Time,
// ignoring other rules, suppression and stop; and which indicator made it
// fire (-1 when d has none). A failure to evaluate is an error wrapping
// ErrEval, and the rule does not fire.
func (r *Rule) Matches(d *ioc.Detection) (bool, int, error) {
	var m vm.VM
	ok, i, err := r.eval(&m, NewEnv(d, d.Time))
	return ok, i, err
}

func runBool(m *vm.VM, p *vm.Program, env *Env) (ok bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			ok, err = false, fmt.Errorf("%w: %v", ErrEval, r)
		}
	}()
	v, err := m.Run(p, env)
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrEval, err)
	}
	b, _ := v.(bool)
	return b, nil
}

func runAny(m *vm.VM, p *vm.Program, env *Env) (v any, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("%w: %v", ErrEval, r)
		}
	}()
	v, err = m.Run(p, env)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrEval, err)
	}
	return v, nil
}

// formatValue prints an expression value for explanations and templates:
// severities and kinds by name, lists in brackets.
func formatValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "nil"
	case string:
		return x
	case fmt.Stringer:
		return x.String()
	case []string:
		return "[" + strings.Join(x, ", ") + "]"
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = formatValue(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return fmt.Sprint(v)
}

var severityCalls = map[string]bool{
	sevEQ: true, sevNE: true, sevLT: true, sevLE: true, sevGT: true, sevGE: true, sevIn: true,
	"severityAtLeast": true, "severity": true,
}

// checkSeverityNames type-checks src as expr.Compile does and refuses a
// string literal that is compared with a severity (or given to
// severityAtLeast or severity) but is not a severity name, and a literal
// compared with indicator.kind or detection.engine that no indicator or
// engine can have: such a condition is a typo that would silently never
// hold.
func checkSeverityNames(src string, opts []expr.Option) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: the checker failed: %v", ErrExpression, r)
		}
	}()
	cfg := conf.CreateNew()
	for _, o := range opts {
		o(cfg)
	}
	for name := range cfg.Disabled {
		delete(cfg.Builtins, name)
	}
	cfg.Check()
	tree, err := checker.ParseCheck(src, cfg)
	if err != nil {
		return err
	}
	var bad *file.Error
	fail := func(n ast.Node, format string, args ...any) {
		if bad == nil {
			bad = (&file.Error{Location: n.Location(), Message: fmt.Sprintf(format, args...)}).Bind(tree.Source)
		}
	}
	checkLit := func(n ast.Node) {
		s, ok := n.(*ast.StringNode)
		if !ok {
			return
		}
		if _, err := parseSeverityName(s.Value); err != nil {
			fail(n, "%q is not a severity (low, medium, high, critical)", s.Value)
		}
	}
	ast.Walk(&tree.Node, walker(func(n ast.Node) {
		switch x := n.(type) {
		case *ast.CallNode:
			id, ok := x.Callee.(*ast.IdentifierNode)
			if !ok || !severityCalls[id.Value] {
				return
			}
			for _, a := range x.Arguments {
				checkLit(a)
				if arr, ok := a.(*ast.ArrayNode); ok {
					for _, e := range arr.Nodes {
						checkLit(e)
					}
				}
			}
		case *ast.BinaryNode:
			if x.Operator != "==" && x.Operator != "!=" && x.Operator != "in" {
				return
			}
			var lits []ast.Node
			p := path(x.Left)
			switch {
			case x.Operator == "in":
				if arr, ok := x.Right.(*ast.ArrayNode); ok {
					lits = arr.Nodes
				}
			case p != "":
				lits = []ast.Node{x.Right}
			default:
				p, lits = path(x.Right), []ast.Node{x.Left}
			}
			for _, l := range lits {
				s, ok := l.(*ast.StringNode)
				if !ok {
					continue
				}
				switch p {
				case "indicator.kind":
					if k, err := ioc.ParseKind(s.Value); s.Value != "" && (err != nil || k.String() != s.Value) {
						fail(l, "%q is not an indicator kind (md5, sha1, sha256, ipv4, domain, file-path …)", s.Value)
					}
				case "detection.engine":
					if !ioc.Engine(s.Value).Valid() {
						fail(l, "%q is not an engine (atomic, yara, openioc, stix)", s.Value)
					}
				}
			}
		}
	}))
	if bad != nil {
		return bad
	}
	return nil
}

type walker func(ast.Node)

func (w walker) Visit(n *ast.Node) { w(*n) }

// vmPool holds VMs for templates and suppression keys; a VM is used by
// one goroutine at a time.
var vmPool = sync.Pool{New: func() any { return new(vm.VM) }}

// Evaluate returns the rules of rs that fire for d evaluated at now, in
// order, honouring stop; it uses the index and has no effect.
func (rs *RuleSet) Evaluate(d *ioc.Detection, now time.Time) []Firing {
	fired, _ := rs.evaluate(NewEnv(d, now), true)
	return fired
}

// EvaluateAll is Evaluate without the index: every rule is evaluated for
// every indicator. It gives the same result, more slowly; it is the
// reference the index is tested against.
func (rs *RuleSet) EvaluateAll(d *ioc.Detection, now time.Time) []Firing {
	fired, _ := rs.evaluate(NewEnv(d, now), false)
	return fired
}
