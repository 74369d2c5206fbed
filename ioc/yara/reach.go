package yara

import "math/bits"

func trailingZeros(w uint64) int { return bits.TrailingZeros64(w) }

// posSet is a set of data positions low..low+64*len-1, one bit each.
type posSet []uint64

func newPosSet(n int) posSet { return make(posSet, (n+64)/64) }

func (s posSet) add(i int)      { s[i>>6] |= 1 << (uint(i) & 63) }
func (s posSet) has(i int) bool { return s[i>>6]&(1<<(uint(i)&63)) != 0 }
func (s posSet) empty() bool {
	for _, w := range s {
		if w != 0 {
			return false
		}
	}
	return true
}

// reachBack returns every position p such that the reversed node n matches
// data[p:q] backward for some q in in. Positions are relative to m.low.
// Unlike the backtracking matcher it finds all starts in polynomial time,
// which is what verifying a pattern backward from its atom needs.
func (m *reMatcher) reachBack(n *reNode, in posSet) posSet {
	out := newPosSet(len(in)*64 - 1)
	switch n.kind {
	case reClass:
		w := 1
		if m.wide {
			w = 2
		}
		for wi, word := range in {
			for word != 0 {
				b := trailingZeros(word)
				word &= word - 1
				i := wi*64 + b
				p := m.low + i // absolute position
				if i-w < 0 || p > len(m.data) {
					continue
				}
				if m.wide {
					if n.set.has(m.data[p-2]) && m.data[p-1] == 0 {
						out.add(i - 2)
					}
				} else if n.set.has(m.data[p-1]) {
					out.add(i - 1)
				}
			}
		}
	case reEmpty:
		copy(out, in)
	case reBOL, reEOL, reWordB, reNotWordB:
		for wi, word := range in {
			for word != 0 {
				b := trailingZeros(word)
				word &= word - 1
				i := wi*64 + b
				p := m.low + i
				var ok bool
				switch n.kind {
				case reBOL:
					ok = p == 0
				case reEOL:
					ok = p == len(m.data)
				case reWordB:
					ok = m.boundary(p)
				default:
					ok = !m.boundary(p)
				}
				if ok {
					out.add(i)
				}
			}
		}
	case reConcat:
		cur := in
		for _, s := range n.subs {
			cur = m.reachBack(s, cur)
			if cur.empty() {
				break
			}
		}
		copy(out, cur)
	case reAlt:
		for _, s := range n.subs {
			r := m.reachBack(s, in)
			for i := range out {
				out[i] |= r[i]
			}
		}
	case reRepeat:
		sub := n.subs[0]
		layer := in
		for k := 0; k < n.min; k++ {
			layer = m.reachBack(sub, layer)
			if layer.empty() {
				return out
			}
		}
		// Positions reachable with min..max iterations. Once past min, a
		// position seen before needs no second visit: its continuations
		// were explored with at least as many iterations left.
		copy(out, layer)
		frontier := layer
		for k := n.min; n.max < 0 || k < n.max; k++ {
			next := m.reachBack(sub, frontier)
			fresh := false
			for i := range next {
				next[i] &^= out[i]
				if next[i] != 0 {
					fresh = true
				}
				out[i] |= next[i]
			}
			if !fresh {
				break
			}
			frontier = next
		}
	}
	return out
}
