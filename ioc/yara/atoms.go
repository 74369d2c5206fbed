package yara

// Atoms are short byte strings (up to maxAtomLen) that every match of a
// pattern must contain at a fixed distance from its start. One Aho-Corasick
// pass over the data finds them; each hit is then verified.

const maxAtomLen = 4

// maxAtomCombos bounds how many concrete atoms one pattern may expand to.
const maxAtomCombos = 64

// posKind classifies a byte set the way YARA classifies atom bytes.
type posInfo struct {
	mask byte // 0xFF known byte, 0x0F/0xF0 nibble, 0x00 any
	b    byte
	ok   bool // false: a general class (ends a literal run)
}

func classify(s *byteSet) posInfo {
	n := s.count()
	switch {
	case n == 1:
		return posInfo{mask: 0xFF, b: s.members()[0], ok: true}
	case n >= 255:
		return posInfo{mask: 0x00, ok: true}
	case n == 2:
		m := s.members()
		if m[0] >= 'A' && m[0] <= 'Z' && m[1] == m[0]+32 {
			return posInfo{mask: 0xFF, b: m[1], ok: true}
		}
	case n == 16:
		m := s.members()
		if m[1]-m[0] == 1 && m[15]-m[0] == 15 && m[0]&0x0F == 0 {
			return posInfo{mask: 0xF0, b: m[0], ok: true}
		}
		if m[1]-m[0] == 16 && m[0]&0xF0 == 0 {
			return posInfo{mask: 0x0F, b: m[0], ok: true}
		}
	}
	return posInfo{}
}

// atomQuality is YARA's heuristic atom quality (without its constant offset).
func atomQuality(ps []posInfo) int {
	q := 0
	var seen byteSet
	unique := 0
	for _, p := range ps {
		switch p.mask {
		case 0x00:
			q -= 10
		case 0x0F, 0xF0:
			q += 4
		case 0xFF:
			switch p.b {
			case 0x00, 0x20, 0xCC, 0xFF:
				q += 12
			default:
				l := p.b | 0x20
				if l >= 'a' && l <= 'z' {
					q += 18
				} else {
					q += 20
				}
			}
			if !seen.has(p.b) {
				seen.add(p.b)
				unique++
			}
		}
	}
	if unique == 1 && (seen.has(0x00) || seen.has(0x20) || seen.has(0x90) || seen.has(0xCC) || seen.has(0xFF)) {
		q -= 10 * len(ps)
	} else {
		q += 2 * unique
	}
	return q
}

// trimQuality applies YARA's atom trimming (drop leading and trailing
// wildcards; fall back to one byte when wildcards dominate) and rates it.
func trimQuality(ps []posInfo) int {
	for len(ps) > 0 && ps[0].mask == 0 {
		ps = ps[1:]
	}
	for len(ps) > 0 && ps[len(ps)-1].mask == 0 {
		ps = ps[:len(ps)-1]
	}
	if len(ps) == 0 {
		return -1 << 20
	}
	ff, zero := 0, 0
	for _, p := range ps {
		if p.mask == 0xFF {
			ff++
		} else if p.mask == 0 {
			zero++
		}
	}
	if zero >= ff {
		ps = ps[:1]
	}
	return atomQuality(ps)
}

func bestWindow(ps []posInfo) int {
	if len(ps) == 0 {
		return -1 << 20
	}
	if len(ps) <= maxAtomLen {
		return trimQuality(ps)
	}
	best := -1 << 20
	for i := 0; i+maxAtomLen <= len(ps); i++ {
		if q := trimQuality(ps[i : i+maxAtomLen]); q > best {
			best = q
		}
	}
	return best
}

// reQuality estimates the quality YARA gives the atoms of a regex or hex
// string: the best literal run of an alternative-free sequence, and for an
// alternation the worst of its branches.
func reQuality(n *reNode) int {
	best := -1 << 20
	var run []posInfo
	flush := func() {
		if q := bestWindow(run); q > best {
			best = q
		}
		run = nil
	}
	var walk func(n *reNode)
	walk = func(n *reNode) {
		switch n.kind {
		case reClass:
			p := classify(&n.set)
			if !p.ok {
				flush()
				return
			}
			run = append(run, p)
		case reConcat:
			for _, s := range n.subs {
				walk(s)
			}
		case reAlt:
			flush()
			worst := 1 << 20
			for _, s := range n.subs {
				if q := reQuality(s); q < worst {
					worst = q
				}
			}
			if worst > best {
				best = worst
			}
		case reRepeat:
			if n.min > 0 {
				k := n.min
				if k > maxAtomLen {
					k = maxAtomLen
				}
				for i := 0; i < k; i++ {
					walk(n.subs[0])
				}
			}
			flush()
		default:
			flush()
		}
	}
	walk(n)
	flush()
	return best
}

// literalAtom picks the best window of a literal pattern as its atom and
// returns the window's quality (the minimum over case variants is the same).
func literalAtom(p *pattern) int {
	lit := p.lit
	bestQ, bestI, bestL := -1<<30, 0, 0
	l := len(lit)
	if l > maxAtomLen {
		l = maxAtomLen
	}
	for i := 0; i+l <= len(lit); i++ {
		ps := make([]posInfo, l)
		for j := range ps {
			b := lit[i+j]
			if p.nocase && b >= 'A' && b <= 'Z' {
				b += 32
			}
			ps[j] = posInfo{mask: 0xFF, b: b, ok: true}
		}
		if q := atomQuality(ps); q > bestQ {
			bestQ, bestI, bestL = q, i, l
		}
	}
	atom := lit[bestI : bestI+bestL]
	p.atomOff = bestI
	if p.nocase {
		p.atoms = casePermutations(atom)
	} else {
		p.atoms = [][]byte{append([]byte(nil), atom...)}
	}
	return bestQ
}

func casePermutations(a []byte) [][]byte {
	out := [][]byte{{}}
	for _, b := range a {
		var next [][]byte
		l := b | 0x20
		for _, o := range out {
			if l >= 'a' && l <= 'z' {
				next = append(next, append(append([]byte(nil), o...), l), append(append([]byte(nil), o...), l-32))
			} else {
				next = append(next, append(append([]byte(nil), o...), b))
			}
		}
		out = next
	}
	return out
}

// prefixSets returns the byte sets of the fixed-width prefix of n: the
// positions every match starts with, in order. bol reports a leading ^.
func prefixSets(n *reNode) (sets []*byteSet, bol bool) {
	var items []*reNode
	if n.kind == reConcat {
		items = n.subs
	} else {
		items = []*reNode{n}
	}
	for idx, it := range items {
		switch it.kind {
		case reClass:
			sets = append(sets, &it.set)
			continue
		case reBOL:
			if idx == 0 {
				bol = true
				continue
			}
		case reRepeat:
			if it.subs[0].kind == reClass && it.min > 0 {
				k := it.min
				if k > 16 {
					k = 16
				}
				for i := 0; i < k; i++ {
					sets = append(sets, &it.subs[0].set)
				}
				if it.max == it.min && it.min <= 16 {
					continue
				}
			}
		case reAlt:
			// An alternation of single positions is one position.
			var u byteSet
			single := true
			for _, s := range it.subs {
				if s.kind != reClass {
					single = false
					break
				}
				u.union(&s.set)
			}
			if single {
				sets = append(sets, &u)
				continue
			}
		}
		break
	}
	return sets, bol
}

// reAtom chooses the atom of a regex or hex pattern from its fixed prefix.
func reAtom(p *pattern) {
	sets, bol := prefixSets(p.re)
	p.bol = bol
	// The atom is chosen on the characters; a wide pattern's atom is that
	// atom widened (as YARA does), cut to maxAtomLen bytes.
	bestQ, bestI, bestL := -1<<30, -1, 0
	for i := range sets {
		combos := 1
		var ps []posInfo
		for l := 1; l <= maxAtomLen && i+l <= len(sets); l++ {
			s := sets[i+l-1]
			n := s.count()
			if n > 16 {
				break
			}
			combos *= n
			if combos > maxAtomCombos {
				break
			}
			// Like YARA, atoms hold only known bytes, case pairs, nibble
			// masks and wildcards, not general classes such as [ab].
			pi := classify(s)
			if !pi.ok {
				break
			}
			ps = append(ps, pi)
			if q := atomQuality(ps); q > bestQ {
				bestQ, bestI, bestL = q, i, l
			}
		}
	}
	if bestI < 0 {
		if !bol && infixAtom(p) {
			return
		}
		// YARA takes the atom from inside a leading optional item (X? or
		// X{0,1}) when nothing else gives one, which makes that item
		// mandatory; emulate that observable behaviour.
		if lead := leadingOptional(p.re); lead != nil {
			p.re = lead
			p.fwd, p.bwd = nil, nil
			reAtom(p)
			return
		}
		p.atoms = nil
		if len(sets) > 0 {
			p.first = sets[0]
		}
		return
	}
	window := sets[bestI : bestI+bestL]
	p.atomOff = bestI
	if p.wide {
		var zero byteSet
		zero.add(0)
		var w []*byteSet
		for _, s := range window {
			w = append(w, s, &zero)
		}
		window = w[:min(len(w), maxAtomLen)]
		p.atomOff = 2 * bestI
	}
	out := [][]byte{{}}
	for _, s := range window {
		var next [][]byte
		for _, o := range out {
			for _, b := range s.members() {
				next = append(next, append(append([]byte(nil), o...), b))
			}
		}
		out = next
	}
	p.atoms = out
}

// infixAtom looks for an atom after the variable-width start of a regex or
// hex pattern, among the single positions of its top-level sequence. On
// success the pattern is split at the atom: matches are verified forward
// from the atom and backward to every possible start, as YARA does.
func infixAtom(p *pattern) bool {
	if p.re.kind != reConcat {
		return false
	}
	items := p.re.subs
	bestQ, bestK, bestL := -1<<30, -1, 0
	for k := 1; k < len(items); k++ {
		var ps []posInfo
		combos := 1
		for l := 1; l <= maxAtomLen && k+l <= len(items); l++ {
			it := items[k+l-1]
			if it.kind != reClass {
				break
			}
			n := it.set.count()
			if n > 16 || combos*n > maxAtomCombos {
				break
			}
			combos *= n
			pi := classify(&it.set)
			if !pi.ok {
				break
			}
			ps = append(ps, pi)
			if q := atomQuality(ps); q > bestQ {
				bestQ, bestK, bestL = q, k, l
			}
		}
	}
	if bestK < 0 {
		return false
	}
	var zero byteSet
	zero.add(0)
	var sets []*byteSet
	for _, it := range items[bestK : bestK+bestL] {
		sets = append(sets, &it.set)
		if p.wide {
			sets = append(sets, &zero)
		}
	}
	if p.wide && len(sets) > maxAtomLen {
		sets = sets[:maxAtomLen]
	}
	out := [][]byte{{}}
	for _, s := range sets {
		var next [][]byte
		for _, o := range out {
			for _, b := range s.members() {
				next = append(next, append(append([]byte(nil), o...), b))
			}
		}
		out = next
	}
	p.atoms = out
	p.atomOff = 0
	p.fwd = &reNode{kind: reConcat, subs: items[bestK:]}
	p.bwd = reverseNode(&reNode{kind: reConcat, subs: items[:bestK]})
	return true
}

// leadingOptional returns n with its leading X{0,1} item replaced by X, or
// nil when n does not start with such an item.
func leadingOptional(n *reNode) *reNode {
	isOpt := func(it *reNode) bool { return it.kind == reRepeat && it.min == 0 && it.max == 1 }
	switch {
	case isOpt(n):
		return n.subs[0]
	case n.kind == reConcat && len(n.subs) > 0 && isOpt(n.subs[0]):
		subs := append([]*reNode{n.subs[0].subs[0]}, n.subs[1:]...)
		return &reNode{kind: reConcat, subs: subs}
	}
	return nil
}
