package response

import (
	"slices"

	"github.com/cordonsec/cordon/ioc"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
)

// constraints are the equality conditions that a rule's `when` makes at
// its top level (conjuncts of a chain of && / and): each must hold for
// `when` to be true, so a (detection, indicator) pair that breaks one
// cannot make the rule fire and need not be evaluated.
//
// Recognized conjuncts, either operand order where it applies:
//
//	indicator.kind == "sha256"            indicator.kind in ["md5", "sha1"]
//	indicator.source == "feed-a"          indicator.source in [...]
//	detection.engine == "yara"            detection.engine in [...]
//	"ransomware" in indicator.tags        hasTag(indicator.tags, "ransomware")
//	detection.severity >= "high"          detection.severity > "medium"
//	"high" <= detection.severity          severityAtLeast(detection.severity, "high")
//	(and the same on indicator.severity)
//
// Anything else (||, not, calls, comparisons of other fields) constrains
// nothing. Each field holds a plain string compared with ==, so the
// constraint is exactly the conjunct's value.
type constraints struct {
	kind, source, engine *[]string // nil: unconstrained; else the value must be one of these
	tags                 []string  // each must be one of indicator.tags
	// minDet and minInd are the least detection and indicator severities
	// (0: unconstrained; above critical: never).
	minDet, minInd ioc.Severity
}

// never reports whether the conjuncts contradict each other (an empty
// intersection): the rule can never fire.
func (c constraints) never() bool {
	if c.minDet > ioc.SeverityCritical || c.minInd > ioc.SeverityCritical {
		return true
	}
	for _, s := range []*[]string{c.kind, c.source, c.engine} {
		if s != nil && len(*s) == 0 {
			return true
		}
	}
	return false
}

func (c constraints) satisfied(engine string, sev ioc.Severity, ind *IndicatorVars) bool {
	if sev < c.minDet || ind.Severity < c.minInd {
		return false
	}
	if c.kind != nil && !slices.Contains(*c.kind, ind.Kind) {
		return false
	}
	if c.source != nil && !slices.Contains(*c.source, ind.Source) {
		return false
	}
	if c.engine != nil && !slices.Contains(*c.engine, engine) {
		return false
	}
	for _, t := range c.tags {
		if !slices.Contains(ind.Tags, t) {
			return false
		}
	}
	return true
}

func intersect(dst **[]string, vals []string) {
	if *dst == nil {
		v := slices.Clone(vals)
		slices.Sort(v)
		v = slices.Compact(v)
		*dst = &v
		return
	}
	var out []string
	for _, x := range **dst {
		if slices.Contains(vals, x) {
			out = append(out, x)
		}
	}
	if out == nil {
		out = []string{}
	}
	*dst = &out
}

// extractConstraints parses src (already known to compile) and collects
// its top-level equality constraints.
func extractConstraints(src string) constraints {
	var c constraints
	tree, err := parseSafe(src)
	if err != nil {
		return c
	}
	for _, n := range flatten(tree.Node, "&&", "and") {
		c.add(n)
	}
	return c
}

func parseSafe(src string) (t *parser.Tree, err error) {
	defer func() {
		if r := recover(); r != nil {
			t, err = nil, ErrExpression
		}
	}()
	return parser.Parse(src)
}

// flatten returns the operands of a chain of the given binary operators
// at the root of n, or n alone.
func flatten(n ast.Node, ops ...string) []ast.Node {
	if b, ok := n.(*ast.BinaryNode); ok && slices.Contains(ops, b.Operator) {
		return append(flatten(b.Left, ops...), flatten(b.Right, ops...)...)
	}
	return []ast.Node{n}
}

// topLevelParts splits src at a root chain of && or ||, printing each
// part; src alone when it is not such a chain.
func topLevelParts(src string) []string {
	tree, err := parseSafe(src)
	if err != nil {
		return []string{src}
	}
	parts := flatten(tree.Node, "&&", "and")
	if len(parts) == 1 {
		parts = flatten(tree.Node, "||", "or")
	}
	if len(parts) == 1 {
		return []string{src}
	}
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = p.String()
	}
	return out
}

// path returns "indicator.kind" for the member access indicator.kind (or
// indicator["kind"]), "" for anything else.
func path(n ast.Node) string {
	m, ok := n.(*ast.MemberNode)
	if !ok || m.Optional || m.Method {
		return ""
	}
	id, ok := m.Node.(*ast.IdentifierNode)
	if !ok {
		return ""
	}
	p, ok := m.Property.(*ast.StringNode)
	if !ok {
		return ""
	}
	return id.Value + "." + p.Value
}

func stringList(n ast.Node) ([]string, bool) {
	a, ok := n.(*ast.ArrayNode)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(a.Nodes))
	for _, e := range a.Nodes {
		s, ok := e.(*ast.StringNode)
		if !ok {
			return nil, false
		}
		out = append(out, s.Value)
	}
	return out, true
}

func (c *constraints) dim(p string) **[]string {
	switch p {
	case "indicator.kind":
		return &c.kind
	case "indicator.source":
		return &c.source
	case "detection.engine":
		return &c.engine
	}
	return nil
}

func (c *constraints) add(n ast.Node) {
	switch x := n.(type) {
	case *ast.BinaryNode:
		switch x.Operator {
		case "==":
			l, r := x.Left, x.Right
			if _, ok := l.(*ast.StringNode); ok {
				l, r = r, l
			}
			s, ok := r.(*ast.StringNode)
			if d := c.dim(path(l)); ok && d != nil {
				intersect(d, []string{s.Value})
			}
		case "in":
			if s, ok := x.Left.(*ast.StringNode); ok && path(x.Right) == "indicator.tags" {
				c.tags = append(c.tags, s.Value)
				return
			}
			if list, ok := stringList(x.Right); ok {
				if d := c.dim(path(x.Left)); d != nil {
					intersect(d, list)
				}
			}
		case ">=", ">", "<=", "<":
			c.addSeverity(x.Operator, x.Left, x.Right)
		}
	case *ast.CallNode:
		id, ok := x.Callee.(*ast.IdentifierNode)
		if ok && id.Value == "hasTag" && len(x.Arguments) == 2 && path(x.Arguments[0]) == "indicator.tags" {
			if s, ok := x.Arguments[1].(*ast.StringNode); ok {
				c.tags = append(c.tags, s.Value)
			}
		}
		if ok && id.Value == "severityAtLeast" && len(x.Arguments) == 2 {
			c.addSeverity(">=", x.Arguments[0], x.Arguments[1])
		}
	}
}

// addSeverity records "path op literal" (or "literal op path") where path
// is detection.severity or indicator.severity and literal a severity name
// (checked at load), as a least severity.
func (c *constraints) addSeverity(op string, l, r ast.Node) {
	if _, ok := l.(*ast.StringNode); ok {
		l, r = r, l
		op = map[string]string{">=": "<=", ">": "<", "<=": ">=", "<": ">"}[op]
	}
	s, ok := r.(*ast.StringNode)
	if !ok {
		return
	}
	sev, err := parseSeverityName(s.Value)
	if err != nil {
		return
	}
	var least ioc.Severity
	switch op {
	case ">=":
		least = sev
	case ">":
		least = sev + 1
	default:
		return // an upper bound: not indexed
	}
	switch path(l) {
	case "detection.severity":
		c.minDet = max(c.minDet, least)
	case "indicator.severity":
		c.minInd = max(c.minInd, least)
	}
}

// index maps the values of one constrained field to the rules that need
// them; a rule is in exactly one bucket (or in always). Rule numbers are
// positions in the rule set.
type index struct {
	always   []int32
	bySev    [ioc.SeverityCritical + 1][]int32 // by least detection severity
	byTag    map[string][]int32
	byKind   map[string][]int32
	bySource map[string][]int32
	byEngine map[string][]int32
}

func buildIndex(rules []*Rule) *index {
	ix := &index{byTag: map[string][]int32{}, byKind: map[string][]int32{}, bySource: map[string][]int32{}, byEngine: map[string][]int32{}}
	for i, r := range rules {
		n := int32(i)
		c := r.cons
		switch {
		case c.never():
			// In no bucket: the rule can never fire.
		case len(c.tags) > 0:
			ix.byTag[c.tags[0]] = append(ix.byTag[c.tags[0]], n)
		case c.kind != nil:
			for _, v := range *c.kind {
				ix.byKind[v] = append(ix.byKind[v], n)
			}
		case c.source != nil:
			for _, v := range *c.source {
				ix.bySource[v] = append(ix.bySource[v], n)
			}
		case c.engine != nil:
			for _, v := range *c.engine {
				ix.byEngine[v] = append(ix.byEngine[v], n)
			}
		case c.minDet > 0:
			ix.bySev[c.minDet] = append(ix.bySev[c.minDet], n)
		default:
			ix.always = append(ix.always, n)
		}
	}
	return ix
}

// candidates appends the rules that may fire for (engine, ind): a
// superset of those whose constraints it satisfies, unsorted, maybe with
// repeats.
func (ix *index) candidates(buf []int32, engine string, sev ioc.Severity, ind *IndicatorVars) []int32 {
	buf = append(buf, ix.always...)
	for s := ioc.SeverityLow; s <= sev && s <= ioc.SeverityCritical; s++ {
		buf = append(buf, ix.bySev[s]...)
	}
	buf = append(buf, ix.byKind[ind.Kind]...)
	buf = append(buf, ix.bySource[ind.Source]...)
	buf = append(buf, ix.byEngine[engine]...)
	for _, t := range ind.Tags {
		buf = append(buf, ix.byTag[t]...)
	}
	return buf
}
