package yara

import (
	"fmt"
	"math/bits"
	"slices"
)

// byteSet is a set of byte values, one bit per value.
type byteSet [4]uint64

func (s *byteSet) add(b byte)      { s[b>>6] |= 1 << (b & 63) }
func (s *byteSet) has(b byte) bool { return s[b>>6]&(1<<(b&63)) != 0 }
func (s *byteSet) addRange(lo, hi byte) {
	for c := int(lo); c <= int(hi); c++ {
		s.add(byte(c))
	}
}
func (s *byteSet) union(o *byteSet) {
	for i := range s {
		s[i] |= o[i]
	}
}
func (s *byteSet) invert() {
	for i := range s {
		s[i] = ^s[i]
	}
}
func (s *byteSet) count() int {
	n := 0
	for _, w := range s {
		n += bits.OnesCount64(w)
	}
	return n
}

// first returns the smallest member; ok is false for an empty set.
func (s *byteSet) members() []byte {
	var out []byte
	for c := 0; c < 256; c++ {
		if s.has(byte(c)) {
			out = append(out, byte(c))
		}
	}
	return out
}

// foldCase adds the other case of every ASCII letter in s.
func (s *byteSet) foldCase() {
	for c := 'a'; c <= 'z'; c++ {
		if s.has(byte(c)) || s.has(byte(c-32)) {
			s.add(byte(c))
			s.add(byte(c - 32))
		}
	}
}

func isWordByte(b byte) bool {
	return b == '_' || (b >= '0' && b <= '9') || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z')
}

func isAlnum(b byte) bool {
	return (b >= '0' && b <= '9') || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z')
}

type reKind uint8

const (
	reClass    reKind = iota // one position, any byte of set
	reConcat                 // subs in sequence
	reAlt                    // one of subs, in order of preference
	reRepeat                 // subs[0] repeated min..max times (max < 0: unbounded)
	reBOL                    // start of data
	reEOL                    // end of data
	reWordB                  // \b
	reNotWordB               // \B
	reEmpty                  // matches the empty string
)

// reNode is one node of a compiled YARA regular expression or hex string.
type reNode struct {
	kind   reKind
	dot    bool // a '.' (as opposed to a class such as [^a])
	set    byteSet
	subs   []*reNode
	min    int
	max    int
	greedy bool
}

// reMaxRepeat is the largest repeat bound YARA accepts (RE_MAX_RANGE).
const reMaxRepeat = 32767

// reScanLimit is the longest match YARA reports for a regex or hex string.
const reScanLimit = 4096

// reMaxSteps bounds the work of one match attempt, so a pathological pattern
// cannot stall a scan; an attempt that exceeds it is reported as no match.
const reMaxSteps = 200000

// regexSyntaxError is a problem in a regular expression, at byte offset Pos.
type regexSyntaxError struct {
	Pos int
	Msg string
}

func (e *regexSyntaxError) Error() string { return fmt.Sprintf("at offset %d: %s", e.Pos, e.Msg) }

type reParser struct {
	src    string
	pos    int
	nocase bool
	dotall bool
	greedy bool // a greedy quantifier was seen
	lazy   bool // a non-greedy quantifier was seen
}

// parseRegex parses YARA's regular expression dialect into a node tree.
func parseRegex(src string, nocase, dotall bool) (*reNode, error) {
	p := &reParser{src: src, nocase: nocase, dotall: dotall}
	n, err := p.alternation(0)
	if err != nil {
		return nil, err
	}
	if p.pos < len(p.src) {
		return nil, p.errf("unexpected %q", p.src[p.pos])
	}
	return n, nil
}

func (p *reParser) errf(format string, a ...any) error {
	return &regexSyntaxError{Pos: p.pos, Msg: fmt.Sprintf(format, a...)}
}

func (p *reParser) alternation(depth int) (*reNode, error) {
	if depth > 500 {
		return nil, p.errf("nested too deeply")
	}
	var alts []*reNode
	for {
		c, err := p.concat(depth)
		if err != nil {
			return nil, err
		}
		if c == nil {
			// An empty alternative is only allowed after a '|' (YARA's grammar).
			if len(alts) == 0 {
				if p.pos < len(p.src) && p.src[p.pos] == '|' {
					return nil, p.errf("empty alternative")
				}
				if depth > 0 || len(p.src) == 0 {
					return nil, p.errf("empty expression")
				}
				return nil, p.errf("empty expression")
			}
			c = &reNode{kind: reEmpty}
		}
		alts = append(alts, c)
		if p.pos < len(p.src) && p.src[p.pos] == '|' {
			p.pos++
			continue
		}
		break
	}
	if len(alts) == 1 {
		return alts[0], nil
	}
	return &reNode{kind: reAlt, subs: alts}, nil
}

// concat parses a sequence; it returns nil for an empty one.
func (p *reParser) concat(depth int) (*reNode, error) {
	var items []*reNode
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		if c == '|' || c == ')' {
			break
		}
		atom, err := p.atom(depth)
		if err != nil {
			return nil, err
		}
		atom, err = p.quantifier(atom)
		if err != nil {
			return nil, err
		}
		items = append(items, atom)
	}
	switch len(items) {
	case 0:
		return nil, nil
	case 1:
		return items[0], nil
	}
	return &reNode{kind: reConcat, subs: items}, nil
}

func (p *reParser) quantifier(atom *reNode) (*reNode, error) {
	if p.pos >= len(p.src) {
		return atom, nil
	}
	min, max := 0, 0
	braces := false
	switch p.src[p.pos] {
	case '*':
		min, max = 0, -1
		p.pos++
	case '+':
		min, max = 1, -1
		p.pos++
	case '?':
		min, max = 0, 1
		p.pos++
	case '{':
		lo, hi, n, ok, err := p.parseBraces(p.pos)
		if err != nil {
			return nil, err
		}
		if !ok {
			return atom, nil // a literal '{', handled by the next atom
		}
		min, max = lo, hi
		p.pos += n
		braces = true
	default:
		return atom, nil
	}
	greedy := true
	if p.pos < len(p.src) && p.src[p.pos] == '?' {
		greedy = false
		p.pos++
	}
	// YARA 4.2.3 rejects mixing greedy and non-greedy quantifiers.
	if greedy {
		p.greedy = true
	} else {
		p.lazy = true
	}
	if p.greedy && p.lazy {
		return nil, p.errf("greedy and ungreedy quantifiers can't be mixed in a regular expression")
	}
	if p.pos < len(p.src) {
		switch p.src[p.pos] {
		case '*', '+', '?':
			return nil, p.errf("nested quantifier")
		case '{':
			if _, _, _, ok, _ := p.parseBraces(p.pos); ok {
				return nil, p.errf("nested quantifier")
			}
		}
	}
	// YARA 4.2.3 matches a lazy .{n,}? across newlines even without the s
	// flag (its "repeat any ungreedy" instruction ignores it); so do we.
	if braces && !greedy && max < 0 && atom.kind == reClass && atom.dot && !p.dotall {
		nl := *atom
		nl.set.add('\n')
		atom = &nl
	}
	return &reNode{kind: reRepeat, subs: []*reNode{atom}, min: min, max: max, greedy: greedy}, nil
}

// parseBraces reads {n}, {n,}, {,m} or {n,m} at i. ok is false when the text
// is not a repeat (then '{' is a literal).
func (p *reParser) parseBraces(i int) (lo, hi, n int, ok bool, err error) {
	j := i + 1
	readNum := func() (int, bool, bool) {
		start := j
		v := 0
		big := false
		for j < len(p.src) && p.src[j] >= '0' && p.src[j] <= '9' {
			v = v*10 + int(p.src[j]-'0')
			if v > 1<<30 {
				big = true
				v = 1 << 30
			}
			j++
		}
		return v, j > start, big
	}
	a, hasA, bigA := readNum()
	if j < len(p.src) && p.src[j] == '}' {
		if !hasA {
			return 0, 0, 0, false, nil
		}
		if bigA || a > reMaxRepeat {
			return 0, 0, 0, false, p.errf("repeat interval too large")
		}
		if a == 0 {
			return 0, 0, 0, false, p.errf("bad repeat interval {0}")
		}
		return a, a, j + 1 - i, true, nil
	}
	if j >= len(p.src) || p.src[j] != ',' {
		return 0, 0, 0, false, nil
	}
	j++
	b, hasB, bigB := readNum()
	if j >= len(p.src) || p.src[j] != '}' {
		return 0, 0, 0, false, nil
	}
	if !hasA {
		a = 0
	}
	if bigA || bigB || a > reMaxRepeat || (hasB && b > reMaxRepeat) {
		return 0, 0, 0, false, p.errf("repeat interval too large")
	}
	if !hasB {
		return a, -1, j + 1 - i, true, nil
	}
	if b < a {
		return 0, 0, 0, false, p.errf("bad repeat interval")
	}
	if b == 0 {
		return 0, 0, 0, false, p.errf("bad repeat interval {0,0}")
	}
	return a, b, j + 1 - i, true, nil
}

func (p *reParser) class(set byteSet) *reNode {
	if p.nocase {
		set.foldCase()
	}
	return &reNode{kind: reClass, set: set}
}

func (p *reParser) atom(depth int) (*reNode, error) {
	c := p.src[p.pos]
	switch c {
	case '(':
		p.pos++
		if p.pos < len(p.src) && p.src[p.pos] == ')' {
			return nil, p.errf("empty group")
		}
		n, err := p.alternation(depth + 1)
		if err != nil {
			return nil, err
		}
		if p.pos >= len(p.src) || p.src[p.pos] != ')' {
			return nil, p.errf("missing )")
		}
		p.pos++
		return n, nil
	case '*', '+', '?':
		return nil, p.errf("quantifier %q without operand", c)
	case '{':
		if _, _, _, ok, err := p.parseBraces(p.pos); err != nil {
			return nil, err
		} else if ok {
			return nil, p.errf("quantifier without operand")
		}
		p.pos++
		var s byteSet
		s.add('{')
		return p.class(s), nil
	case '.':
		p.pos++
		var s byteSet
		s.invert()
		if !p.dotall {
			s[0] &^= 1 << '\n'
		}
		return &reNode{kind: reClass, set: s, dot: true}, nil
	case '^':
		p.pos++
		return &reNode{kind: reBOL}, nil
	case '$':
		p.pos++
		return &reNode{kind: reEOL}, nil
	case '[':
		return p.bracket()
	case '\\':
		p.pos++
		if p.pos >= len(p.src) {
			return nil, p.errf("trailing backslash")
		}
		e := p.src[p.pos]
		switch e {
		case 'b':
			p.pos++
			return &reNode{kind: reWordB}, nil
		case 'B':
			p.pos++
			return &reNode{kind: reNotWordB}, nil
		}
		if e >= '0' && e <= '9' {
			return nil, p.errf("backreferences are not allowed")
		}
		var s byteSet
		if err := p.escapeInto(&s); err != nil {
			return nil, err
		}
		return p.class(s), nil
	}
	p.pos++
	var s byteSet
	s.add(c)
	return p.class(s), nil
}

// escapeInto reads the escape at p.pos (after the backslash) into s.
func (p *reParser) escapeInto(s *byteSet) error {
	e := p.src[p.pos]
	p.pos++
	switch e {
	case 'w', 'W':
		var w byteSet
		for c := 0; c < 256; c++ {
			if isWordByte(byte(c)) {
				w.add(byte(c))
			}
		}
		if e == 'W' {
			w.invert()
		}
		s.union(&w)
	case 's', 'S':
		var w byteSet
		for _, c := range []byte{' ', '\t', '\n', '\r', '\v', '\f'} {
			w.add(c)
		}
		if e == 'S' {
			w.invert()
		}
		s.union(&w)
	case 'd', 'D':
		var w byteSet
		w.addRange('0', '9')
		if e == 'D' {
			w.invert()
		}
		s.union(&w)
	case 'n':
		s.add('\n')
	case 't':
		s.add('\t')
	case 'r':
		s.add('\r')
	case 'f':
		s.add('\f')
	case 'a':
		s.add('\a')
	case 'x':
		if p.pos+2 > len(p.src) || !isHex(p.src[p.pos]) || !isHex(p.src[p.pos+1]) {
			return p.errf(`illegal escape sequence \x`)
		}
		s.add(hexVal(p.src[p.pos])<<4 | hexVal(p.src[p.pos+1]))
		p.pos += 2
	default:
		s.add(e)
	}
	return nil
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func hexVal(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// bracket parses a character class starting at '['.
func (p *reParser) bracket() (*reNode, error) {
	p.pos++
	negate := false
	if p.pos < len(p.src) && p.src[p.pos] == '^' {
		negate = true
		p.pos++
	}
	var s byteSet
	first := true
	for {
		if p.pos >= len(p.src) {
			return nil, p.errf("missing ]")
		}
		c := p.src[p.pos]
		if c == ']' && !first {
			p.pos++
			break
		}
		first = false
		// One item: a byte (possibly escaped) or a class escape.
		lo, single, err := p.classItem(&s)
		if err != nil {
			return nil, err
		}
		if !single {
			continue
		}
		if p.pos+1 < len(p.src) && p.src[p.pos] == '-' && p.src[p.pos+1] != ']' {
			p.pos++
			var tmp byteSet
			hi, single2, err := p.classItem(&tmp)
			if err != nil {
				return nil, err
			}
			if !single2 {
				// e.g. [a-\w]: the '-' is a literal.
				s.add(lo)
				s.add('-')
				s.union(&tmp)
				continue
			}
			if hi < lo {
				return nil, p.errf("bad character range %q-%q", lo, hi)
			}
			s.addRange(lo, hi)
			continue
		}
		s.add(lo)
	}
	if p.nocase {
		s.foldCase()
	}
	if negate {
		s.invert()
	}
	return &reNode{kind: reClass, set: s}, nil
}

// classItem reads one class member. For a single byte it returns it with
// single true (not yet added); for a class escape it adds to s.
func (p *reParser) classItem(s *byteSet) (byte, bool, error) {
	c := p.src[p.pos]
	if c != '\\' {
		p.pos++
		return c, true, nil
	}
	p.pos++
	if p.pos >= len(p.src) {
		return 0, false, p.errf("trailing backslash")
	}
	switch p.src[p.pos] {
	case 'w', 'W', 's', 'S', 'd', 'D':
		return 0, false, p.escapeInto(s)
	}
	var one byteSet
	if err := p.escapeInto(&one); err != nil {
		return 0, false, err
	}
	m := one.members()
	return m[0], true, nil
}

// reverseNode returns n with every sequence reversed, for matching backward.
func reverseNode(n *reNode) *reNode {
	r := *n
	if len(n.subs) > 0 {
		r.subs = make([]*reNode, len(n.subs))
		for i, s := range n.subs {
			r.subs[i] = reverseNode(s)
		}
		if n.kind == reConcat {
			slices.Reverse(r.subs)
		}
	}
	return &r
}

// hasUnboundedAny reports whether n has .*, .+ or .{x,} in its top-level
// sequence (groups included, alternatives and repeats not), which YARA
// warns about.
func hasUnboundedAny(n *reNode) bool {
	switch n.kind {
	case reRepeat:
		return n.max < 0 && n.subs[0].kind == reClass && n.subs[0].dot
	case reConcat:
		for _, s := range n.subs {
			if hasUnboundedAny(s) {
				return true
			}
		}
	}
	return false
}

// reMatcher runs one match attempt of a node tree over data.
type reMatcher struct {
	data  []byte
	limit int // positions at or beyond limit are not read
	low   int // backward mode: positions below low are not read
	wide  bool
	rev   bool // match backward: classes consume the bytes before pos
	steps int
	// emptyStops makes an empty preferred match final (no match), as YARA
	// does for a pattern scanned without an atom.
	emptyStops bool

	// Failure memo. Within one attempt the continuation of a repeat node is
	// fully determined by the chain of repeat iterations it is nested in
	// (each iteration's node, count and start position), which cur names
	// (an id interned in ctxs; 0 is the top level). A repeat state
	// (node, pos, count, cur) that failed once fails again, so it is not
	// explored twice: backtracking is polynomial instead of exponential
	// (/(a|aa){1,30}c/, chained jumps). The memo is used only once an
	// attempt has taken memoAfter steps, so cheap attempts cost nothing;
	// cur is -1 inside an iteration begun before that (not memoized).
	cur   int32
	memo  map[memoKey]struct{}
	ctxs  map[ctxKey]int32
	memod bool // memo or ctxs hold entries of this attempt
}

// memoAfter is the number of steps after which an attempt memoizes
// failures (a variable so that tests can memoize always, or never).
var memoAfter = 256

type memoKey struct {
	n     *reNode
	pos   int
	count int
	ctx   int32
}

type ctxKey struct {
	n      *reNode
	count  int
	start  int
	parent int32
}

// enter returns the context id of an iteration of n (with count iterations
// done, starting at start) nested in the current context.
func (m *reMatcher) enter(n *reNode, count, start int) int32 {
	if m.ctxs == nil {
		m.ctxs = map[ctxKey]int32{}
	}
	m.memod = true
	k := ctxKey{n: n, count: count, start: start, parent: m.cur}
	id, ok := m.ctxs[k]
	if !ok {
		id = int32(len(m.ctxs) + 1)
		m.ctxs[k] = id
	}
	return id
}

// failed reports whether the repeat state is known to fail.
func (m *reMatcher) failed(k memoKey) bool {
	if k.ctx < 0 || m.steps < memoAfter || m.memo == nil {
		return false
	}
	_, ok := m.memo[k]
	return ok
}

// fail records a failed repeat state, unless the step budget ran out (then
// the failure says nothing about the state).
func (m *reMatcher) fail(k memoKey) {
	if k.ctx < 0 || m.steps < memoAfter || m.steps > reMaxSteps {
		return
	}
	if m.memo == nil {
		m.memo = map[memoKey]struct{}{}
	}
	m.memod = true
	m.memo[k] = struct{}{}
}

// matchAt returns the length of the preferred non-empty match of n starting
// at start, or -1. Like YARA, an empty match is not a match: the search goes
// on to the next alternative, unless emptyStops is set.
func (m *reMatcher) matchAt(n *reNode, start int) int {
	m.steps = 0
	m.cur = 0
	if m.memod {
		clear(m.memo)
		clear(m.ctxs)
		m.memod = false
	}
	end := -1
	m.match(n, start, func(p int) bool {
		if p == start {
			return m.emptyStops
		}
		end = p
		return true
	})
	if end <= start {
		return -1
	}
	return end - start
}

// hasGreedy reports whether n has a greedy quantifier (YARA then lets a
// later match at the same offset replace an earlier one).
func hasGreedy(n *reNode) bool {
	if n.kind == reRepeat && n.greedy {
		return true
	}
	for _, s := range n.subs {
		if hasGreedy(s) {
			return true
		}
	}
	return false
}

func (m *reMatcher) step() bool {
	m.steps++
	return m.steps <= reMaxSteps
}

// one reports whether the class set matches at pos, and the next position.
func (m *reMatcher) one(set *byteSet, pos int) (int, bool) {
	if m.rev {
		if m.wide {
			if pos-2 >= m.low && set.has(m.data[pos-2]) && m.data[pos-1] == 0 {
				return pos - 2, true
			}
			return pos, false
		}
		if pos-1 >= m.low && set.has(m.data[pos-1]) {
			return pos - 1, true
		}
		return pos, false
	}
	if m.wide {
		if pos+1 < m.limit && set.has(m.data[pos]) && m.data[pos+1] == 0 {
			return pos + 2, true
		}
		return pos, false
	}
	if pos < m.limit && set.has(m.data[pos]) {
		return pos + 1, true
	}
	return pos, false
}

func (m *reMatcher) wordAt(pos int) bool {
	if pos < 0 || pos >= len(m.data) {
		return false
	}
	return isWordByte(m.data[pos])
}

// wideWordAt reports whether a wide (UTF-16LE) word character starts at pos.
func (m *reMatcher) wideWordAt(pos int) bool {
	return pos >= 0 && pos+1 < len(m.data) && isWordByte(m.data[pos]) && m.data[pos+1] == 0
}

func (m *reMatcher) boundary(pos int) bool {
	if m.wide {
		return m.wideWordAt(pos-2) != m.wideWordAt(pos)
	}
	return m.wordAt(pos-1) != m.wordAt(pos)
}

func (m *reMatcher) match(n *reNode, pos int, k func(int) bool) bool {
	if !m.step() {
		return false
	}
	switch n.kind {
	case reClass:
		if p, ok := m.one(&n.set, pos); ok {
			return k(p)
		}
		return false
	case reEmpty:
		return k(pos)
	case reBOL:
		return pos == 0 && k(pos)
	case reEOL:
		return pos == len(m.data) && k(pos)
	case reWordB:
		return m.boundary(pos) && k(pos)
	case reNotWordB:
		return !m.boundary(pos) && k(pos)
	case reConcat:
		return m.concat(n.subs, pos, k)
	case reAlt:
		for _, s := range n.subs {
			if m.match(s, pos, k) {
				return true
			}
			if m.steps > reMaxSteps {
				return false
			}
		}
		return false
	case reRepeat:
		sub := n.subs[0]
		if sub.kind == reClass {
			return m.repeatClass(n, &sub.set, pos, k)
		}
		return m.repeat(n, pos, 0, k)
	}
	return false
}

func (m *reMatcher) concat(subs []*reNode, pos int, k func(int) bool) bool {
	// Fast path: leading single positions need no continuation.
	for len(subs) > 0 && subs[0].kind == reClass {
		p, ok := m.one(&subs[0].set, pos)
		if !ok {
			return false
		}
		pos = p
		subs = subs[1:]
	}
	if len(subs) == 0 {
		return k(pos)
	}
	if len(subs) == 1 {
		return m.match(subs[0], pos, k)
	}
	rest := subs[1:]
	return m.match(subs[0], pos, func(p int) bool { return m.concat(rest, p, k) })
}

func (m *reMatcher) repeatClass(n *reNode, set *byteSet, pos int, k func(int) bool) bool {
	key := memoKey{n: n, pos: pos, count: -1, ctx: m.cur}
	if m.failed(key) {
		return false
	}
	if m.repeatClass1(n, set, pos, k) {
		return true
	}
	m.fail(key)
	return false
}

func (m *reMatcher) repeatClass1(n *reNode, set *byteSet, pos int, k func(int) bool) bool {
	w := 1
	if m.wide {
		w = 2
	}
	if m.rev {
		w = -w
	}
	// Count how many consecutive positions match, up to max.
	cnt := 0
	p := pos
	for n.max < 0 || cnt < n.max {
		q, ok := m.one(set, p)
		if !ok {
			break
		}
		p = q
		cnt++
	}
	if cnt < n.min {
		return false
	}
	if n.greedy {
		for c := cnt; c >= n.min; c-- {
			if !m.step() {
				return false
			}
			if k(pos + c*w) {
				return true
			}
		}
		return false
	}
	for c := n.min; c <= cnt; c++ {
		if !m.step() {
			return false
		}
		if k(pos + c*w) {
			return true
		}
	}
	return false
}

func (m *reMatcher) repeat(n *reNode, pos, count int, k func(int) bool) bool {
	if !m.step() {
		return false
	}
	key := memoKey{n: n, pos: pos, count: count, ctx: m.cur}
	if m.failed(key) {
		return false
	}
	if m.repeat1(n, pos, count, k) {
		return true
	}
	m.fail(key)
	return false
}

// repeat1 is repeat without the memo. While sub is matched, m.cur names
// this iteration; the continuations restore the outer context while they
// run, and this iteration's context when they return into sub.
func (m *reMatcher) repeat1(n *reNode, pos, count int, k func(int) bool) bool {
	sub := n.subs[0]
	outer := m.cur
	// An iteration begun before the memo started has no id (-1): states
	// nested in it are not memoized, their continuations being unnamed.
	inner := int32(-1)
	if m.steps >= memoAfter && outer >= 0 {
		inner = m.enter(n, count, pos)
	}
	// in runs sub with the iteration's context set.
	in := func(f func(int) bool) bool {
		m.cur = inner
		ok := m.match(sub, pos, func(p int) bool {
			m.cur = outer
			ok := f(p)
			m.cur = inner
			return ok
		})
		m.cur = outer
		return ok
	}
	if count < n.min {
		return in(func(p int) bool {
			if p == pos && count+1 >= n.min {
				// An empty iteration satisfies the rest of the minimum.
				return k(p)
			}
			return m.repeat(n, p, count+1, k)
		})
	}
	if n.max >= 0 && count >= n.max {
		return k(pos)
	}
	next := func(p int) bool {
		if p == pos {
			return false // no progress: stop looping
		}
		return m.repeat(n, p, count+1, k)
	}
	if n.greedy {
		if in(next) {
			return true
		}
		return k(pos)
	}
	if k(pos) {
		return true
	}
	return in(next)
}
