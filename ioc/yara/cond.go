package yara

import (
	"encoding/binary"
	"sort"
	"strings"

	"github.com/VirusTotal/gyp/ast"
)

// stringRef resolves a string identifier (without '$'); "" is the current
// string of an enclosing for..of loop.
func (c *compiler) stringRef(id, prefix string) (func(*scanCtx) int, error) {
	if id == "" {
		if c.forOfDepth == 0 {
			return nil, c.errf(ErrUndefined, prefix, "anonymous %s outside of a for..of loop", prefix)
		}
		return func(x *scanCtx) int { return x.cur }, nil
	}
	si, ok := c.curStrs[id]
	if !ok {
		return nil, c.errf(ErrUndefined, prefix+id, "undefined string identifier %s%s", prefix, id)
	}
	c.refd[si] = true
	c.refOther[si] = true // stringIdent undoes this for "$a at N"
	return func(*scanCtx) int { return si }, nil
}

func (c *compiler) intExpr(e ast.Expression, what string) (func(*scanCtx) val, *cexpr, error) {
	x, err := c.expr(e)
	if err != nil {
		return nil, nil, err
	}
	if x.t != tInt {
		return nil, nil, c.errf(ErrType, "", "%s must be an integer, not a %s", what, x.t)
	}
	return x.ev, x, nil
}

func (c *compiler) rangeExpr(r *ast.Range) (lo, hi func(*scanCtx) val, err error) {
	// Like YARA, bounds are not checked at compile time: a range whose lower
	// bound is above its upper bound is empty.
	if lo, _, err = c.intExpr(r.Start, "range lower bound"); err != nil {
		return nil, nil, err
	}
	if hi, _, err = c.intExpr(r.End, "range upper bound"); err != nil {
		return nil, nil, err
	}
	return lo, hi, nil
}

func (c *compiler) stringIdent(n *ast.StringIdentifier) (*cexpr, error) {
	si, named := c.curStrs[n.Identifier]
	named = named && n.Identifier != ""
	otherBefore := named && c.refOther[si]
	ref, err := c.stringRef(n.Identifier, "$")
	if err != nil {
		return nil, err
	}
	switch {
	case n.At != nil:
		at, atExpr, err := c.intExpr(n.At, "offset after at")
		if err != nil {
			return nil, err
		}
		if named && atExpr.chk != nil {
			// "$a at N" with a constant N does not count as another use.
			c.refAt[si] = append(c.refAt[si], *atExpr.chk)
			c.refOther[si] = otherBefore
		}
		return &cexpr{t: tBool, ev: func(x *scanCtx) val {
			a := at(x)
			if !a.ok {
				return vBool(false) // YARA: false, not undefined
			}
			return vBool(x.matchAt(ref(x), a.i))
		}}, nil
	case n.In != nil:
		lo, hi, err := c.rangeExpr(n.In)
		if err != nil {
			return nil, err
		}
		return &cexpr{t: tBool, ev: func(x *scanCtx) val {
			l, h := lo(x), hi(x)
			if !l.ok || !h.ok {
				return undef // YARA: undefined, unlike "at"
			}
			return vBool(x.countIn(ref(x), l.i, h.i) > 0)
		}}, nil
	}
	return &cexpr{t: tBool, ev: func(x *scanCtx) val { return vBool(len(x.matches[ref(x)]) > 0) }}, nil
}

func (c *compiler) stringCount(n *ast.StringCount) (*cexpr, error) {
	ref, err := c.stringRef(n.Identifier, "#")
	if err != nil {
		return nil, err
	}
	if n.In != nil {
		lo, hi, err := c.rangeExpr(n.In)
		if err != nil {
			return nil, err
		}
		return &cexpr{t: tInt, ev: func(x *scanCtx) val {
			l, h := lo(x), hi(x)
			if !l.ok || !h.ok {
				return undef
			}
			return vInt(int64(x.countIn(ref(x), l.i, h.i)))
		}}, nil
	}
	return &cexpr{t: tInt, ev: func(x *scanCtx) val { return vInt(int64(len(x.matches[ref(x)]))) }}, nil
}

func (c *compiler) stringOffLen(id string, index ast.Expression, length bool) (*cexpr, error) {
	prefix := "@"
	if length {
		prefix = "!"
	}
	ref, err := c.stringRef(id, prefix)
	if err != nil {
		return nil, err
	}
	idx := func(*scanCtx) val { return vInt(1) }
	if index != nil {
		if idx, _, err = c.intExpr(index, "string match index"); err != nil {
			return nil, err
		}
	}
	return &cexpr{t: tInt, ev: func(x *scanCtx) val {
		i := idx(x)
		ms := x.matches[ref(x)]
		if !i.ok || i.i < 1 || i.i > int64(len(ms)) {
			return undef
		}
		m := ms[i.i-1]
		if length {
			return vInt(int64(m.n))
		}
		return vInt(m.off)
	}}, nil
}

const (
	qAll = iota
	qAny
	qNone
	qNum
	qPct
)

type quant struct {
	kind int
	n    func(*scanCtx) val
}

func (c *compiler) quantifier(e ast.Expression) (quant, error) {
	switch q := e.(type) {
	case ast.Keyword:
		switch q {
		case ast.KeywordAll:
			return quant{kind: qAll}, nil
		case ast.KeywordAny:
			return quant{kind: qAny}, nil
		case ast.KeywordNone:
			return quant{kind: qNone}, nil
		}
	case *ast.Percentage:
		ev, x, err := c.intExpr(q.Expression, "percentage")
		if err != nil {
			return quant{}, err
		}
		if x.isConst {
			if v := ev(nil); v.ok && (v.i < 1 || v.i > 100) {
				return quant{}, c.errf(ErrType, "%", "percentage %d%% is not in 1..100", v.i)
			}
		}
		return quant{kind: qPct, n: ev}, nil
	}
	ev, _, err := c.intExpr(e, "quantifier")
	if err != nil {
		return quant{}, err
	}
	return quant{kind: qNum, n: ev}, nil
}

// done reports whether the outcome is already decided after succ successes
// and fail failures out of total.
func (q quant) eval(x *scanCtx, succ, total int) bool {
	switch q.kind {
	case qAll:
		return succ == total
	case qAny:
		return succ > 0
	case qNone:
		return succ == 0
	case qNum:
		v := q.n(x)
		return v.ok && int64(succ) >= v.i
	default:
		v := q.n(x)
		return v.ok && int64(succ)*100 >= v.i*int64(total)
	}
}

// stringSet resolves "them" or an enumeration of string identifiers and
// wildcards to global string indexes, marking them referenced.
func (c *compiler) stringSet(n ast.Node) ([]int, error) {
	var out []int
	seen := map[int]bool{}
	add := func(si int) {
		c.refd[si] = true
		c.refOther[si] = true
		if !seen[si] {
			seen[si] = true
			out = append(out, si)
		}
	}
	switch s := n.(type) {
	case ast.Keyword:
		if s != ast.KeywordThem {
			return nil, c.errf(ErrSyntax, string(s), "unexpected %q in string set", s)
		}
		if len(c.cur.strings) == 0 {
			return nil, c.errf(ErrUndefined, "them", "\"them\" used in a rule without strings")
		}
		for _, si := range c.cur.strings {
			add(si)
		}
	case *ast.Enum:
		for _, v := range s.Values {
			id, ok := v.(*ast.StringIdentifier)
			if !ok {
				return nil, c.errf(ErrSyntax, "", "string set item %T is not a string identifier", v)
			}
			name := id.Identifier
			if strings.HasSuffix(name, "*") {
				pre := "$" + strings.TrimSuffix(name, "*")
				found := false
				for _, si := range c.cur.strings {
					if strings.HasPrefix(c.out.strs[si].id, pre) {
						add(si)
						found = true
					}
				}
				if !found {
					return nil, c.errf(ErrUndefined, "$"+name, "undefined string identifier $%s", name)
				}
				continue
			}
			si, ok := c.curStrs[name]
			if !ok {
				return nil, c.errf(ErrUndefined, "$"+name, "undefined string identifier $%s", name)
			}
			add(si)
		}
	default:
		return nil, c.errf(ErrSyntax, "", "unsupported string set %T", n)
	}
	sort.Ints(out)
	return out, nil
}

func (c *compiler) ruleSet(n ast.Node) ([]int, error) {
	e, ok := n.(*ast.Enum)
	if !ok {
		return nil, c.errf(ErrSyntax, "", "unsupported rule set %T", n)
	}
	var out []int
	seen := map[int]bool{}
	for _, v := range e.Values {
		id, ok := v.(*ast.Identifier)
		if !ok {
			return nil, c.errf(ErrSyntax, "", "rule set item %T is not an identifier", v)
		}
		name := id.Identifier
		if strings.HasSuffix(name, "*") {
			pre := strings.TrimSuffix(name, "*")
			found := false
			for i, r := range c.out.rules {
				if strings.HasPrefix(r.name, pre) {
					found = true
					if !seen[i] {
						seen[i] = true
						out = append(out, i)
					}
				}
			}
			// Like YARA, the rule being declared is part of its own wildcard
			// set; its value is false while its condition is evaluated.
			if strings.HasPrefix(c.cur.name, pre) {
				found = true
				self := len(c.out.rules)
				if !seen[self] {
					seen[self] = true
					out = append(out, self)
				}
			}
			if !found {
				return nil, c.errf(ErrUndefined, name, "undefined rule identifier %s", name)
			}
			continue
		}
		i, ok := c.ruleIdx[name]
		if !ok {
			return nil, c.errf(ErrUndefined, name, "undefined rule identifier %s", name)
		}
		if !seen[i] {
			seen[i] = true
			out = append(out, i)
		}
	}
	return out, nil
}

func (c *compiler) of(n *ast.Of) (*cexpr, error) {
	q, err := c.quantifier(n.Quantifier)
	if err != nil {
		return nil, err
	}
	if n.Rules != nil {
		rs, err := c.ruleSet(n.Rules)
		if err != nil {
			return nil, err
		}
		return &cexpr{t: tBool, ev: func(x *scanCtx) val {
			succ := 0
			for _, ri := range rs {
				if x.ruleRes[ri] {
					succ++
				}
			}
			return vBool(q.eval(x, succ, len(rs)))
		}}, nil
	}
	if n.Strings == nil {
		return nil, c.errf(ErrSyntax, "of", "\"of\" needs a string or rule set")
	}
	ss, err := c.stringSet(n.Strings)
	if err != nil {
		return nil, err
	}
	var test func(x *scanCtx, si int) bool
	switch {
	case n.In != nil:
		lo, hi, err := c.rangeExpr(n.In)
		if err != nil {
			return nil, err
		}
		test = func(x *scanCtx, si int) bool {
			l, h := lo(x), hi(x)
			return l.ok && h.ok && x.countIn(si, l.i, h.i) > 0
		}
	case n.At != nil:
		return nil, c.errf(ErrSyntax, "at", "\"of ... at\" is YARA 4.3 syntax, not 4.2.3")
	default:
		test = func(x *scanCtx, si int) bool { return len(x.matches[si]) > 0 }
	}
	return &cexpr{t: tBool, ev: func(x *scanCtx) val {
		succ := 0
		for _, si := range ss {
			if test(x, si) {
				succ++
			}
		}
		return vBool(q.eval(x, succ, len(ss)))
	}}, nil
}

func (c *compiler) forOf(n *ast.ForOf) (*cexpr, error) {
	q, err := c.quantifier(n.Quantifier)
	if err != nil {
		return nil, err
	}
	ss, err := c.stringSet(n.Strings)
	if err != nil {
		return nil, err
	}
	c.forOfDepth++
	cond, err := c.expr(n.Condition)
	c.forOfDepth--
	if err != nil {
		return nil, err
	}
	if cond, err = c.toBool(cond, "for..of condition"); err != nil {
		return nil, err
	}
	ev := cond.ev
	return &cexpr{t: tBool, ev: func(x *scanCtx) val {
		saved := x.cur
		succ := 0
		for _, si := range ss {
			x.cur = si
			if v := ev(x); v.ok && v.i != 0 {
				succ++
			}
		}
		x.cur = saved
		return vBool(q.eval(x, succ, len(ss)))
	}}, nil
}

func (c *compiler) forIn(n *ast.ForIn) (*cexpr, error) {
	q, err := c.quantifier(n.Quantifier)
	if err != nil {
		return nil, err
	}
	if len(n.Variables) != 1 {
		return nil, c.errf(ErrType, "for", "%d loop variables for an integer iterator (want 1)", len(n.Variables))
	}
	name := n.Variables[0]
	for _, s := range c.scope {
		if s.name == name {
			return nil, c.errf(ErrDuplicate, name, "loop variable %q is already defined", name)
		}
	}
	if _, ok := c.vars[name]; ok {
		return nil, c.errf(ErrDuplicate, name, "loop variable %q shadows an external variable", name)
	}
	// items produces the values to iterate; ok false means undefined.
	var items func(x *scanCtx, yield func(val) bool) bool
	var vt vtype
	switch it := n.Iterator.(type) {
	case *ast.Range:
		lo, hi, err := c.rangeExpr(it)
		if err != nil {
			return nil, err
		}
		vt = tInt
		items = func(x *scanCtx, yield func(val) bool) bool {
			l, h := lo(x), hi(x)
			if !l.ok || !h.ok {
				return false
			}
			for i := l.i; i <= h.i; i++ {
				if x.cancelled(i-l.i) || !yield(vInt(i)) || i == h.i {
					break
				}
			}
			return true
		}
	case *ast.Enum:
		var evs []func(*scanCtx) val
		for _, v := range it.Values {
			e, err := c.expr(v)
			if err != nil {
				return nil, err
			}
			if vt == 0 {
				vt = e.t
			}
			// YARA 4.2.3 iterates over integers only.
			if e.t != tInt {
				return nil, c.errf(ErrType, "for", "loop items must be integers, not a %s", e.t)
			}
			evs = append(evs, e.ev)
		}
		items = func(x *scanCtx, yield func(val) bool) bool {
			for _, ev := range evs {
				if !yield(ev(x)) {
					break
				}
			}
			return true
		}
	default:
		return nil, c.errf(ErrType, "for", "iterating over %T needs a module that is not implemented", n.Iterator)
	}
	slot := c.nslots
	c.nslots++
	c.scope = append(c.scope, scopeVar{name: name, slot: slot, t: vt})
	cond, err := c.expr(n.Condition)
	c.scope = c.scope[:len(c.scope)-1]
	if err != nil {
		return nil, err
	}
	if cond, err = c.toBool(cond, "for condition"); err != nil {
		return nil, err
	}
	ev := cond.ev
	return &cexpr{t: tBool, ev: func(x *scanCtx) val {
		succ, total := 0, 0
		saved := x.vars[slot]
		var need int64 = -1
		if q.kind == qNum {
			if v := q.n(x); v.ok {
				need = v.i
			}
		}
		ok := items(x, func(v val) bool {
			x.vars[slot] = v
			total++
			r := ev(x)
			if r.ok && r.i != 0 {
				succ++
				if q.kind == qAny || q.kind == qNone || (need >= 0 && int64(succ) >= need) {
					return false
				}
			} else if q.kind == qAll {
				return false
			}
			return true
		})
		x.vars[slot] = saved
		if !ok {
			return undef
		}
		if total == 0 {
			// Like YARA 4.2.3, a loop over an empty range is false whatever
			// its quantifier.
			return vBool(false)
		}
		if q.kind == qAll {
			// A failure stopped the loop early; total counts it.
			return vBool(succ == total)
		}
		return vBool(q.eval(x, succ, total))
	}}, nil
}

var intFuncs = map[string]struct {
	size int
	be   bool
	sign bool
}{
	"int8": {1, false, true}, "int16": {2, false, true}, "int32": {4, false, true},
	"uint8": {1, false, false}, "uint16": {2, false, false}, "uint32": {4, false, false},
	"int8be": {1, true, true}, "int16be": {2, true, true}, "int32be": {4, true, true},
	"uint8be": {1, true, false}, "uint16be": {2, true, false}, "uint32be": {4, true, false},
}

func readInt(data []byte, off int64, size int, be, sign bool) val {
	if off < 0 || off > int64(len(data))-int64(size) {
		return undef
	}
	b := data[off : off+int64(size)]
	var u uint64
	switch size {
	case 1:
		u = uint64(b[0])
	case 2:
		if be {
			u = uint64(binary.BigEndian.Uint16(b))
		} else {
			u = uint64(binary.LittleEndian.Uint16(b))
		}
	default:
		if be {
			u = uint64(binary.BigEndian.Uint32(b))
		} else {
			u = uint64(binary.LittleEndian.Uint32(b))
		}
	}
	if !sign {
		return vInt(int64(u))
	}
	switch size {
	case 1:
		return vInt(int64(int8(u)))
	case 2:
		return vInt(int64(int16(u)))
	}
	return vInt(int64(int32(u)))
}

func (c *compiler) call(n *ast.FunctionCall) (*cexpr, error) {
	if id, ok := n.Callable.(*ast.Identifier); ok {
		f, ok := intFuncs[id.Identifier]
		if !ok {
			return nil, c.errf(ErrUndefined, id.Identifier, "undefined function %q", id.Identifier)
		}
		if len(n.Arguments) != 1 {
			return nil, c.errf(ErrType, id.Identifier, "%s takes one argument", id.Identifier)
		}
		arg, _, err := c.intExpr(n.Arguments[0], id.Identifier+" argument")
		if err != nil {
			return nil, err
		}
		return &cexpr{t: tInt, ev: func(x *scanCtx) val {
			o := arg(x)
			if !o.ok {
				return undef
			}
			return readInt(x.data, o.i, f.size, f.be, f.sign)
		}}, nil
	}
	ma, ok := n.Callable.(*ast.MemberAccess)
	if !ok {
		return nil, c.errf(ErrType, "(", "expression is not callable")
	}
	mod, err := c.expr(ma.Container)
	if err != nil {
		return nil, err
	}
	if mod.t != tModule {
		return nil, c.errf(ErrType, ma.Member, "%s is not a module function", ma.Member)
	}
	args := make([]*cexpr, len(n.Arguments))
	for i, a := range n.Arguments {
		if args[i], err = c.expr(a); err != nil {
			return nil, err
		}
	}
	return c.moduleCall(mod.mod, ma.Member, args)
}

func (c *compiler) member(n *ast.MemberAccess) (*cexpr, error) {
	mod, err := c.expr(n.Container)
	if err != nil {
		return nil, err
	}
	if mod.t != tModule {
		return nil, c.errf(ErrType, n.Member, "%s is not a structure", mod.t)
	}
	if mod.mod == "math" && n.Member == "MEAN_BYTES" {
		return constExpr(tFloat, vFloat(127.5)), nil
	}
	return nil, c.errf(ErrUndefined, n.Member, "module %q has no field %q", mod.mod, n.Member)
}
