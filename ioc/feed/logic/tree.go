package logic

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cordonsec/cordon/ioc"
)

type nodeOp uint8

const (
	nodeLeaf nodeOp = iota + 1
	nodeAnd
	nodeOr
	nodeNever
)

// MaxDepth is the deepest nesting of And/Or a Tree may have.
const MaxDepth = 200

// Node is a node of a logic tree: a leaf (NewCond), And, Or or Never.
type Node struct {
	op   nodeOp
	kids []*Node
	cond *Cond
}

// And returns a node that holds when all kids hold. A kid that is itself
// a non-empty And is merged into it, so that a long chain of ANDs (a STIX
// pattern "[a] AND [b] AND …" parses into one) is one level deep, not one
// level per operand.
func And(kids ...*Node) *Node { return &Node{op: nodeAnd, kids: flatten(nodeAnd, kids)} }

// Or returns a node that holds when one of kids holds. A kid that is
// itself a non-empty Or is merged into it, as for And.
func Or(kids ...*Node) *Node { return &Node{op: nodeOr, kids: flatten(nodeOr, kids)} }

// flatten returns kids with the kids of each non-empty op node among them
// in its place. kids is not changed when there is none.
func flatten(op nodeOp, kids []*Node) []*Node {
	merge := false
	for _, k := range kids {
		if k != nil && k.op == op && len(k.kids) > 0 {
			merge = true
			break
		}
	}
	if !merge {
		return kids
	}
	out := make([]*Node, 0, len(kids)+4)
	for _, k := range kids {
		if k != nil && k.op == op && len(k.kids) > 0 {
			out = append(out, k.kids...)
			continue
		}
		out = append(out, k)
	}
	return out
}

// Never returns a leaf that never holds: what a condition the feed's
// format defines but cordon cannot evaluate becomes.
func Never() *Node { return &Node{op: nodeNever} }

// Cond returns the leaf's condition, or nil for a node that is not a leaf.
func (n *Node) Cond() *Cond { return n.cond }

// String renders the node, for messages and tests.
func (n *Node) String() string {
	var b strings.Builder
	n.write(&b)
	return b.String()
}

func (n *Node) write(b *strings.Builder) {
	switch n.op {
	case nodeLeaf:
		c := n.cond
		names := make([]string, len(c.Fields))
		for i, f := range c.Fields {
			names[i] = f.String()
		}
		if c.Negate {
			b.WriteString("NOT ")
		}
		fmt.Fprintf(b, "%s %s %q", strings.Join(names, "|"), c.Op, c.Values)
	case nodeNever:
		b.WriteString("NEVER")
	default:
		sep := " AND "
		if n.op == nodeOr {
			sep = " OR "
		}
		b.WriteByte('(')
		for i, k := range n.kids {
			if i > 0 {
				b.WriteString(sep)
			}
			k.write(b)
		}
		b.WriteByte(')')
	}
}

func (n *Node) check(depth int) error {
	if n == nil {
		return fmt.Errorf("%w: nil node", ErrInvalidTree)
	}
	if depth > MaxDepth {
		return fmt.Errorf("%w: nested deeper than %d", ErrInvalidTree, MaxDepth)
	}
	switch n.op {
	case nodeLeaf:
		if n.cond == nil {
			return fmt.Errorf("%w: leaf without condition", ErrInvalidTree)
		}
	case nodeNever:
	case nodeAnd, nodeOr:
		if len(n.kids) == 0 {
			return fmt.Errorf("%w: empty AND/OR", ErrInvalidTree)
		}
		for _, k := range n.kids {
			if err := k.check(depth + 1); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("%w: node made without And, Or, Never or NewCond", ErrInvalidTree)
	}
	return nil
}

// hit is the first positive leaf that held.
type hit struct {
	field Field
	value string
}

func (n *Node) eval(o *observed, h *hit) bool {
	switch n.op {
	case nodeLeaf:
		ok, f, v := n.cond.eval(o)
		if ok && h.field == 0 {
			h.field, h.value = f, v
		}
		return ok
	case nodeAnd:
		for _, k := range n.kids {
			if !k.eval(o, h) {
				return false
			}
		}
		return true
	case nodeOr:
		for _, k := range n.kids {
			if k.eval(o, h) {
				return true
			}
		}
	}
	return false
}

// Tree is one logic indicator: a root node and what a detection reports
// when it holds.
type Tree struct {
	// ID is the OpenIOC or STIX id; detections carry it as their rule.
	ID string
	// Engine is the engine detections are reported under.
	Engine ioc.Engine
	// Source names the feed.
	Source string
	// Name is a short description.
	Name string
	// Severity is the detections' severity.
	Severity ioc.Severity
	// Indicators, when set, are reported as the detection's indicators
	// (for feed entries that pair two observables, such as MISP ip|port).
	Indicators []ioc.Indicator
	// ValidFrom and ValidUntil, when set, bound when the tree matches.
	ValidFrom, ValidUntil time.Time
	// Root is the condition. Required.
	Root *Node
}

// Validate checks that t can be compiled: it has a root, every node was
// made by And, Or, Never or NewCond, no And or Or is empty, the nesting is
// at most MaxDepth, and the engine is declared. It returns an error
// wrapping ErrInvalidTree that says what is wrong. Parsers call it on each
// tree they build, to name the entry of the feed that is wrong.
func (t *Tree) Validate() error {
	if t == nil || t.Root == nil {
		return fmt.Errorf("%w: no root", ErrInvalidTree)
	}
	if err := t.Root.check(0); err != nil {
		return err
	}
	if !t.Engine.Valid() {
		return fmt.Errorf("%w: unknown engine %q", ErrInvalidTree, t.Engine)
	}
	return nil
}

// activeAt reports whether t is within the tree's validity window.
func (t *Tree) activeAt(now time.Time) bool {
	return (t.ValidFrom.IsZero() || !now.Before(t.ValidFrom)) && (t.ValidUntil.IsZero() || now.Before(t.ValidUntil))
}

// Fields returns the fields the tree's leaves test, sorted.
func (t *Tree) Fields() []Field {
	var fs []Field
	var walk func(n *Node)
	walk = func(n *Node) {
		if n.cond != nil {
			fs = append(fs, n.cond.Fields...)
		}
		for _, k := range n.kids {
			walk(k)
		}
	}
	if t.Root != nil {
		walk(t.Root)
	}
	slices.Sort(fs)
	return slices.Compact(fs)
}
