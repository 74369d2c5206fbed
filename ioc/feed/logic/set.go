package logic

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/gaissmai/bart"

	"github.com/cordonsec/cordon/ioc"
)

// Set is a compiled, indexed collection of trees. It is immutable and safe
// for concurrent use.
type Set struct {
	trees    []*Tree
	byKey    map[string][]uint32             // field byte + folded value -> trees
	byPrefix [fieldEnd]*bart.Table[[]uint32] // field -> CIDR prefix -> trees that need an address within it
	byField  [fieldEnd][]uint32              // field -> trees that need only its presence
	never    int                             // trees that can never hold
}

// Compile checks trees and indexes them. It returns an error wrapping
// ErrInvalidTree naming the first bad tree (by position and id). The trees
// must not be changed afterwards.
func Compile(trees []*Tree) (*Set, error) {
	s := &Set{trees: trees, byKey: map[string][]uint32{}}
	byPrefix := map[fieldPrefix][]uint32{}
	for i, t := range trees {
		if t == nil {
			return nil, fmt.Errorf("%w: tree #%d is nil", ErrInvalidTree, i)
		}
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("tree #%d %q: %w", i, t.ID, err)
		}
		r := need(t.Root)
		if r.never {
			s.never++
			continue
		}
		for _, k := range r.keys {
			s.byKey[k] = append(s.byKey[k], uint32(i))
		}
		for _, p := range r.prefixes {
			byPrefix[p] = append(byPrefix[p], uint32(i))
		}
		for _, f := range r.fields {
			s.byField[f] = append(s.byField[f], uint32(i))
		}
	}
	for p, ids := range byPrefix {
		if s.byPrefix[p.field] == nil {
			s.byPrefix[p.field] = new(bart.Table[[]uint32])
		}
		s.byPrefix[p.field].Insert(p.prefix, ids)
	}
	return s, nil
}

// Len returns the number of trees.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.trees)
}

// Trees returns the trees, in the order given to Compile.
func (s *Set) Trees() []*Tree {
	if s == nil {
		return nil
	}
	return s.trees
}

// requirement: a tree cannot hold unless the event has one of keys, an
// address within one of prefixes, or one of fields; never: it cannot hold
// at all.
type requirement struct {
	keys     []string
	prefixes []fieldPrefix
	fields   []Field
	never    bool
}

// fieldPrefix is a CIDR prefix (masked) one of whose addresses a field must
// hold.
type fieldPrefix struct {
	field  Field
	prefix netip.Prefix
}

func compareFieldPrefix(a, b fieldPrefix) int {
	if c := cmp.Compare(a.field, b.field); c != 0 {
		return c
	}
	if c := a.prefix.Addr().Compare(b.prefix.Addr()); c != 0 {
		return c
	}
	return cmp.Compare(a.prefix.Bits(), b.prefix.Bits())
}

// cost: a key and a prefix are each one lookup that selects the few trees
// that need them; a field selects every tree that needs it.
func (r requirement) cost() int { return len(r.keys) + len(r.prefixes) + 1000*len(r.fields) }

func indexKey(f Field, folded string) string { return string(rune(f)) + folded }

func need(n *Node) requirement {
	switch n.op {
	case nodeNever:
		return requirement{never: true}
	case nodeLeaf:
		c := n.cond
		if !c.Negate && (c.Op == OpEq || c.Op == OpIn) && len(c.prefixes) == 0 {
			var r requirement
			for _, f := range c.Fields {
				for _, v := range c.Values {
					r.keys = append(r.keys, indexKey(f, strings.ToLower(v)))
				}
			}
			return r
		}
		if !c.Negate && len(c.prefixes) > 0 {
			switch c.Op {
			case OpEq, OpIn, OpSubset:
				// test: an address that one of c.prefixes contains.
				return prefixRequirement(c.Fields, c.prefixes)
			case OpSuperset:
				// test: the one address of a host prefix; a wider
				// prefix is the superset of no address.
				p := c.prefixes[0]
				if p.Bits() != p.Addr().BitLen() {
					return requirement{never: true}
				}
				return prefixRequirement(c.Fields, c.prefixes)
			}
		}
		return requirement{fields: slices.Clone(c.Fields)}
	case nodeAnd:
		best := requirement{}
		first := true
		for _, k := range n.kids {
			r := need(k)
			if r.never {
				return r
			}
			if first || r.cost() < best.cost() {
				best, first = r, false
			}
		}
		return best
	case nodeOr:
		var u requirement
		any := false
		for _, k := range n.kids {
			r := need(k)
			if r.never {
				continue
			}
			any = true
			u.keys = append(u.keys, r.keys...)
			u.prefixes = append(u.prefixes, r.prefixes...)
			u.fields = append(u.fields, r.fields...)
		}
		if !any {
			return requirement{never: true}
		}
		slices.Sort(u.keys)
		u.keys = slices.Compact(u.keys)
		slices.SortFunc(u.prefixes, compareFieldPrefix)
		u.prefixes = slices.Compact(u.prefixes)
		slices.Sort(u.fields)
		u.fields = slices.Compact(u.fields)
		return u
	}
	return requirement{never: true}
}

func prefixRequirement(fields []Field, prefixes []netip.Prefix) requirement {
	var r requirement
	for _, f := range fields {
		for _, p := range prefixes {
			r.prefixes = append(r.prefixes, fieldPrefix{f, p})
		}
	}
	return r
}

// Result is one tree that holds for an event.
type Result struct {
	Tree *Tree
	// Field and Observable are the first positive condition that held: the
	// event field and its normalized value that satisfied it (of a
	// registry key, the view that did: the event's own key when it did).
	// Field is 0 when only negated conditions held.
	Field      Field
	Observable string
}

// Eval appends to dst the trees that hold for ev at now (a tree outside
// its validity window does not) and returns the extended slice, in the
// order of the trees given to Compile. Only trees whose index keys the
// event carries (a value, an address within a prefix, or a field) are
// evaluated.
func (s *Set) Eval(ev *ioc.Event, now time.Time, dst []Result) []Result {
	if s == nil || len(s.trees) == 0 || ev == nil {
		return dst
	}
	var o observed
	observe(ev, &o)
	var cand []uint32
	var buf []byte
	for f := FileMD5; f < fieldEnd; f++ {
		if !o.present(f) {
			continue
		}
		cand = append(cand, s.byField[f]...)
		for _, v := range o.values(f) {
			buf = append(buf[:0], string(rune(f))...)
			buf = appendLower(buf, v)
			cand = append(cand, s.byKey[string(buf)]...)
		}
		if t := s.byPrefix[f]; t != nil {
			for _, v := range o.values(f) {
				cand = appendWithin(cand, t, v)
			}
		}
	}
	if len(cand) == 0 {
		return dst
	}
	slices.Sort(cand)
	cand = slices.Compact(cand)
	for _, i := range cand {
		t := s.trees[i]
		if !t.activeAt(now) {
			continue
		}
		var h hit
		if t.Root.eval(&o, &h) {
			dst = append(dst, Result{Tree: t, Field: h.field, Observable: h.value})
		}
	}
	return dst
}

// appendWithin appends to cand the trees of t's prefixes that contain the
// address v, as Cond.test parses it; it appends none when v is no address
// (or one with a zone, which netip.Prefix.Contains refuses).
func appendWithin(cand []uint32, t *bart.Table[[]uint32], v string) []uint32 {
	a, err := netip.ParseAddr(v)
	if err != nil || a.Zone() != "" {
		return cand
	}
	for _, ids := range t.Supernets(netip.PrefixFrom(a, a.BitLen())) {
		cand = append(cand, ids...)
	}
	return cand
}

// appendLower appends v in lower case, as strings.ToLower would.
func appendLower(dst []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		if v[i] >= 0x80 {
			return append(dst, strings.ToLower(v)...)
		}
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}
