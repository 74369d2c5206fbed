package yara

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"
)

// Match is a rule that matched, with its non-private string matches.
type Match struct {
	Rule      string
	Namespace string
	Tags      []string
	Meta      []Meta
	Strings   []StringMatch
}

// StringMatch is one match of a string: its identifier (with '$'), the offset
// in the data, and the matched bytes (at most MaxMatchData of them).
type StringMatch struct {
	ID     string
	Offset int64
	Data   []byte
}

// MaxMatchData is the largest number of bytes StringMatch.Data holds, as in
// YARA; longer matches are truncated (the length used by !a is not).
const MaxMatchData = 512

// maxStringMatches is the most matches recorded per string, as in YARA.
const maxStringMatches = 1000000

// ScanOption configures one Scan or ScanFile call.
type ScanOption func(*scanConfig)

type scanConfig struct {
	timeout time.Duration
}

// WithTimeout bounds the scan's duration; when it expires the scan stops
// with an error wrapping ErrScanTimeout. Zero or negative means no timeout.
func WithTimeout(d time.Duration) ScanOption {
	return func(c *scanConfig) { c.timeout = d }
}

type smatch struct {
	off int64
	seq int64 // where the atom that found it ended: YARA's discovery order
	n   int32
	pat int32
}

type scanCtx struct {
	r       *Rules
	data    []byte
	matches [][]smatch
	ruleRes []bool
	vars    []val
	cur     int
	ep      val
	epDone  bool
	m       reMatcher
	done    <-chan struct{} // the scan's cancellation; checked in long loops
	stopped bool            // set when done was closed during the scan
	nverify int             // verifications so far, to pace cancellation checks
	seq     int64           // discovery position of the current verification
}

// cancelled reports, every few thousand calls, whether the scan was
// cancelled; long condition loops stop early when it returns true.
func (x *scanCtx) cancelled(i int64) bool {
	if x.stopped {
		return true
	}
	if i&0xFFF != 0 || x.done == nil {
		return false
	}
	select {
	case <-x.done:
		x.stopped = true
	default:
	}
	return x.stopped
}

// atomIndex finds the atoms of all patterns in one pass per atom length.
// Each length has a bit filter (exact for lengths 1 and 2, hashed for 3 and
// 4, small enough to stay in cache) in front of an exact table, which is
// consulted only when the filter bit is set.
type atomIndex struct {
	tables []*atomTable // one per atom length present, shortest first
}

type atomTable struct {
	n      int      // atom length, 1..4
	shift  uint     // hash shift for n >= 3
	filter []uint64 // one bit per filter slot
	outs   map[uint32][]atomOut
	// An open-addressing copy of outs for the scan loop: slot i holds key
	// keys[i] whose outputs are flat[start[i]:start[i]+cnt[i]]; cnt 0 is an
	// empty slot.
	keys      []uint32
	start     []int32
	cnt       []int32
	flat      []atomOut
	slotShift uint
	slotMask  uint32
}

func (t *atomTable) buildSlots() {
	bits := uint(1)
	for 1<<bits < 2*len(t.outs) {
		bits++
	}
	size := 1 << bits
	t.slotShift = 32 - bits
	t.slotMask = uint32(size - 1)
	t.keys = make([]uint32, size)
	t.start = make([]int32, size)
	t.cnt = make([]int32, size)
	keys := make([]uint32, 0, len(t.outs))
	for w := range t.outs {
		keys = append(keys, w)
	}
	slices.Sort(keys)
	for _, w := range keys {
		h := (w * 2654435761) >> t.slotShift
		for t.cnt[h] != 0 {
			h = (h + 1) & t.slotMask
		}
		t.keys[h] = w
		t.start[h] = int32(len(t.flat))
		t.cnt[h] = int32(len(t.outs[w]))
		t.flat = append(t.flat, t.outs[w]...)
	}
}

// lookup returns the outputs of atom key w.
func (t *atomTable) lookup(w uint32) []atomOut {
	h := (w * 2654435761) >> t.slotShift
	for t.cnt[h] != 0 {
		if t.keys[h] == w {
			return t.flat[t.start[h] : t.start[h]+t.cnt[h]]
		}
		h = (h + 1) & t.slotMask
	}
	return nil
}

type atomOut struct {
	pat int32
	off int32 // atom offset from the match start
}

// hashFilterBits is log2 of the filter size for 3- and 4-byte atoms.
const hashFilterBits = 20

func atomKey(a []byte) uint32 {
	var w uint32
	for i, b := range a {
		w |= uint32(b) << (8 * uint(i))
	}
	return w
}

func (t *atomTable) slot(w uint32) uint32 {
	if t.n <= 2 {
		return w
	}
	return (w * 2654435761) >> t.shift
}

func (r *Rules) buildScanner() error {
	byLen := map[int]*atomTable{}
	for pi, p := range r.pats {
		if len(p.atoms) == 0 || p.bol {
			r.noAtom = append(r.noAtom, int32(pi))
			continue
		}
		for _, a := range p.atoms {
			t := byLen[len(a)]
			if t == nil {
				bits := 8 * len(a)
				if len(a) > 2 {
					bits = hashFilterBits
				}
				t = &atomTable{n: len(a), shift: uint(32 - bits), filter: make([]uint64, (1<<bits+63)/64),
					outs: map[uint32][]atomOut{}}
				byLen[len(a)] = t
			}
			w := atomKey(a)
			h := t.slot(w)
			t.filter[h>>6] |= 1 << (h & 63)
			t.outs[w] = append(t.outs[w], atomOut{pat: int32(pi), off: int32(p.atomOff)})
		}
	}
	r.atoms = &atomIndex{}
	for n := 1; n <= maxAtomLen; n++ {
		if t := byLen[n]; t != nil {
			t.buildSlots()
			r.atoms.tables = append(r.atoms.tables, t)
		}
	}
	return nil
}

// scanRange finds the atoms of t that start in data[from:to] and verifies
// their patterns.
func (r *Rules) scanRange(x *scanCtx, t *atomTable, from, to int) {
	data := x.data
	filter := t.filter
	last := len(data) - t.n // last start position
	if to > last+1 {
		to = last + 1
	}
	hit := func(i int, w uint32) {
		x.seq = int64(i + t.n)
		for _, o := range t.lookup(w) {
			if start := i - int(o.off); start >= 0 {
				r.verify(x, int(o.pat), start)
			}
		}
	}
	switch t.n {
	case 4:
		shift := t.shift
		for i := from; i < to; i++ {
			w := binary.LittleEndian.Uint32(data[i : i+4 : i+4])
			h := (w * 2654435761) >> shift
			if filter[h>>6]&(1<<(h&63)) != 0 {
				hit(i, w)
			}
		}
	case 3:
		shift := t.shift
		for i := from; i < to; i++ {
			b := data[i : i+3 : i+3]
			w := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16
			h := (w * 2654435761) >> shift
			if filter[h>>6]&(1<<(h&63)) != 0 {
				hit(i, w)
			}
		}
	case 2:
		for i := from; i < to; i++ {
			w := uint32(binary.LittleEndian.Uint16(data[i : i+2 : i+2]))
			if filter[w>>6]&(1<<(w&63)) != 0 {
				hit(i, w)
			}
		}
	default:
		for i := from; i < to; i++ {
			w := uint32(data[i])
			if filter[w>>6]&(1<<(w&63)) != 0 {
				hit(i, w)
			}
		}
	}
}

// ScanBytes scans data with every rule and returns the matching rules in
// rule order. It is Scan without cancellation or timeout.
func (r *Rules) ScanBytes(data []byte) ([]Match, error) {
	return r.Scan(context.Background(), data)
}

// ScanFile reads the file at path and scans it like Scan.
func (r *Rules) ScanFile(ctx context.Context, path string, opts ...ScanOption) ([]Match, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("yara: scan file: %w", err)
	}
	return r.Scan(ctx, b, opts...)
}

// Scan scans data and returns the matching rules in rule order. It stops
// with ctx's error when ctx is done, and with an error wrapping
// ErrScanTimeout when the WithTimeout duration passes.
func (r *Rules) Scan(ctx context.Context, data []byte, opts ...ScanOption) ([]Match, error) {
	var cfg scanConfig
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, cfg.timeout, ErrScanTimeout)
		defer cancel()
	}
	x, err := r.scan(ctx, data)
	var ms []Match
	if err == nil {
		ms, err = r.evaluate(ctx, x)
	}
	if err != nil {
		if errors.Is(context.Cause(ctx), ErrScanTimeout) {
			return nil, fmt.Errorf("yara: scan: %w after %v", ErrScanTimeout, cfg.timeout)
		}
		if errors.Is(err, ctx.Err()) && ctx.Err() != nil {
			return nil, fmt.Errorf("yara: scan: %w", ctx.Err())
		}
		return nil, err
	}
	return ms, nil
}

const ctxCheckEvery = 1 << 20

func (r *Rules) scan(ctx context.Context, data []byte) (*scanCtx, error) {
	x := &scanCtx{r: r, data: data, matches: make([][]smatch, len(r.strs)), done: ctx.Done()}
	x.m.data = data
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for base := 0; base < len(data); base += ctxCheckEvery {
		end := min(base+ctxCheckEvery, len(data))
		for _, t := range r.atoms.tables {
			r.scanRange(x, t, base, end)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if x.stopped {
			return nil, ctx.Err()
		}
	}
	for _, pi := range r.noAtom {
		p := r.pats[pi]
		if p.bol {
			x.seq = 0
			r.verify(x, int(pi), 0)
			continue
		}
		for base := 0; base < len(data); base += ctxCheckEvery / 16 {
			end := min(base+ctxCheckEvery/16, len(data))
			for i := base; i < end; i++ {
				if p.first != nil && !p.first.has(data[i]) {
					continue
				}
				x.seq = int64(i)
				r.verify(x, int(pi), i)
			}
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if x.stopped {
				return nil, ctx.Err()
			}
		}
	}
	for i, ms := range x.matches {
		if len(ms) < 2 {
			continue
		}
		slices.SortStableFunc(ms, func(a, b smatch) int {
			// Of matches at one offset YARA keeps the first found or, for a
			// greedy regex, the last found (found = where the atom ended).
			if a.off != b.off {
				return cmpOrdered(a.off, b.off)
			}
			if r.pats[a.pat].greedy {
				if a.seq != b.seq {
					return cmpOrdered(b.seq, a.seq)
				}
				return int(b.n - a.n)
			}
			if a.seq != b.seq {
				return cmpOrdered(a.seq, b.seq)
			}
			if a.pat != b.pat {
				return int(a.pat - b.pat)
			}
			return int(a.n - b.n)
		})
		out := ms[:1]
		for _, m := range ms[1:] {
			if m.off != out[len(out)-1].off {
				out = append(out, m)
			}
		}
		x.matches[i] = out
	}
	for _, si := range r.chained {
		x.matches[si] = linkChain(x, r.strs[si].chain)
	}
	return x, nil
}

// linkChain builds the matches of a chained hex string from its parts'
// matches: each match of the first part, followed by the first match of
// each next part that starts within the jump's bounds (jumps are lazy).
func linkChain(x *scanCtx, chain []chainLink) []smatch {
	var out []smatch
	for _, first := range x.matches[chain[0].str] {
		end := first.off + int64(first.n)
		ok := true
		for _, l := range chain[1:] {
			ms := x.matches[l.str]
			lo := end + int64(l.min)
			i, _ := slices.BinarySearchFunc(ms, lo, func(m smatch, t int64) int { return cmpOrdered(m.off, t) })
			if i >= len(ms) || (l.max >= 0 && ms[i].off > end+int64(l.max)) {
				ok = false
				break
			}
			end = ms[i].off + int64(ms[i].n)
		}
		if ok && len(out) < maxStringMatches {
			n := end - first.off
			if n > 1<<31-1 {
				n = 1<<31 - 1
			}
			out = append(out, smatch{off: first.off, seq: first.seq, n: int32(n), pat: first.pat})
		}
	}
	return out
}

func fullwordOK(data []byte, start, end int, wide bool) bool {
	if wide {
		if start >= 2 && data[start-1] == 0 && isAlnum(data[start-2]) {
			return false
		}
		if end+1 < len(data) && data[end+1] == 0 && isAlnum(data[end]) {
			return false
		}
		return true
	}
	if start > 0 && isAlnum(data[start-1]) {
		return false
	}
	if end < len(data) && isAlnum(data[end]) {
		return false
	}
	return true
}

func (r *Rules) verify(x *scanCtx, pi, start int) {
	x.nverify++
	if x.nverify&0xFF == 0 && x.cancelled(0) {
		return
	}
	if x.stopped {
		return
	}
	p := r.pats[pi]
	data := x.data
	var n int
	if p.re == nil {
		n = len(p.lit)
		if start+n > len(data) {
			return
		}
		seg := data[start : start+n]
		if p.nocase {
			for i, b := range seg {
				if foldByte(b) != foldByte(p.lit[i]) {
					return
				}
			}
		} else if string(seg) != string(p.lit) {
			return
		}
	} else if p.bwd != nil {
		r.verifySplit(x, p, pi, start)
		return
	} else {
		m := &x.m
		m.rev = false
		m.limit = min(len(data), start+reScanLimit)
		// Like YARA, a regex that is both ascii and wide is tried in ascii
		// mode first, and in wide mode only when that fails.
		m.wide = p.wide && !p.dual
		m.emptyStops = len(p.atoms) == 0
		n = m.matchAt(p.re, start)
		if n < 0 && p.dual {
			m.wide = true
			n = m.matchAt(p.re, start)
		}
		if n <= 0 {
			return
		}
	}
	// Like YARA, fullword is checked on the preferred match only.
	if p.fullword && !fullwordOK(data, start, start+n, p.re != nil && x.m.wide || p.re == nil && p.wide) {
		return
	}
	if s := r.strs[p.str]; s.fixed && int64(start) != s.fixedOff {
		return
	}
	ms := x.matches[p.str]
	if len(ms) >= maxStringMatches {
		return
	}
	x.matches[p.str] = append(ms, smatch{off: int64(start), seq: x.seq, n: int32(n), pat: int32(pi)})
}

// verifySplit verifies a pattern whose atom starts at 'at' in the middle of
// the pattern: the rest is matched forward once, then every start that the
// part before the atom can have is a match ending there.
func (r *Rules) verifySplit(x *scanCtx, p *pattern, pi, at int) {
	data := x.data
	m := &x.m
	m.rev = false
	m.emptyStops = false
	m.limit = min(len(data), at+reScanLimit)
	m.wide = p.wide
	if p.dual {
		m.wide = false
	}
	n := m.matchAt(p.fwd, at)
	if n < 0 && p.dual {
		m.wide = true
		n = m.matchAt(p.fwd, at)
	}
	if n < 0 {
		return
	}
	end := at + n
	m.rev = true
	m.low = max(0, at-reScanLimit)
	in := newPosSet(at - m.low)
	in.add(at - m.low)
	reach := m.reachBack(p.bwd, in)
	m.rev = false
	defer func() { m.wide = p.wide }()
	var starts []int
	for wi, word := range reach {
		for word != 0 {
			b := trailingZeros(word)
			word &= word - 1
			starts = append(starts, m.low+wi*64+b)
		}
	}
	for _, s := range starts {
		if end-s <= 0 { // forward and backward are each limited to reScanLimit, as in YARA
			continue
		}
		if p.fullword && !fullwordOK(data, s, end, m.wide) {
			continue
		}
		if cs := r.strs[p.str]; cs.fixed && int64(s) != cs.fixedOff {
			continue
		}
		ms := x.matches[p.str]
		if len(ms) >= maxStringMatches {
			return
		}
		x.matches[p.str] = append(ms, smatch{off: int64(s), seq: x.seq, n: int32(end - s), pat: int32(pi)})
	}
}

func foldByte(b byte) byte {
	if b >= 'A' && b <= 'Z' {
		return b + 32
	}
	return b
}

func (x *scanCtx) matchAt(si int, off int64) bool {
	ms := x.matches[si]
	i, found := slices.BinarySearchFunc(ms, off, func(m smatch, t int64) int { return cmpOrdered(m.off, t) })
	_ = i
	return found
}

func (x *scanCtx) countIn(si int, lo, hi int64) int {
	ms := x.matches[si]
	i, _ := slices.BinarySearchFunc(ms, lo, func(m smatch, t int64) int { return cmpOrdered(m.off, t) })
	n := 0
	for ; i < len(ms) && ms[i].off <= hi; i++ {
		n++
	}
	return n
}

func (r *Rules) evaluate(ctx context.Context, x *scanCtx) ([]Match, error) {
	x.ruleRes = make([]bool, len(r.rules))
	maxSlots := 0
	for _, ru := range r.rules {
		maxSlots = max(maxSlots, ru.nslots)
	}
	x.vars = make([]val, maxSlots)
	globalFail := false
	for i, ru := range r.rules {
		if i%64 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		v := ru.cond.ev(x)
		if x.stopped {
			return nil, ctx.Err()
		}
		x.ruleRes[i] = v.ok && v.i != 0
		if ru.global && !x.ruleRes[i] {
			globalFail = true
		}
	}
	if globalFail {
		return nil, nil
	}
	var out []Match
	for i, ru := range r.rules {
		if !x.ruleRes[i] || ru.private {
			continue
		}
		m := Match{Rule: ru.name, Namespace: DefaultNamespace,
			Tags: append([]string(nil), ru.tags...), Meta: append([]Meta(nil), ru.meta...)}
		for _, si := range ru.strings {
			s := r.strs[si]
			if s.private {
				continue
			}
			for _, sm := range x.matches[si] {
				end := sm.off + int64(min(sm.n, MaxMatchData))
				m.Strings = append(m.Strings, StringMatch{ID: s.id, Offset: sm.off,
					Data: append([]byte(nil), x.data[sm.off:end]...)})
			}
		}
		out = append(out, m)
	}
	return out, nil
}

// entrypoint returns the file offset of the entry point of a PE or ELF file,
// or undefined.
func (x *scanCtx) entrypoint() val {
	if !x.epDone {
		x.epDone = true
		x.ep = entryPoint(x.data)
	}
	return x.ep
}

func entryPoint(d []byte) val {
	if len(d) >= 0x40 && d[0] == 'M' && d[1] == 'Z' {
		pe := int64(binary.LittleEndian.Uint32(d[0x3c:]))
		if pe < 0 || pe+24 > int64(len(d)) || string(d[pe:pe+4]) != "PE\x00\x00" {
			return undef
		}
		nsec := int64(binary.LittleEndian.Uint16(d[pe+6:]))
		optSize := int64(binary.LittleEndian.Uint16(d[pe+20:]))
		opt := pe + 24
		if opt+20 > int64(len(d)) {
			return undef
		}
		rva := int64(binary.LittleEndian.Uint32(d[opt+16:]))
		sec := opt + optSize
		for i := int64(0); i < nsec && i < 96; i++ {
			h := sec + i*40
			if h+40 > int64(len(d)) {
				break
			}
			vsize := int64(binary.LittleEndian.Uint32(d[h+8:]))
			vaddr := int64(binary.LittleEndian.Uint32(d[h+12:]))
			rawSize := int64(binary.LittleEndian.Uint32(d[h+16:]))
			raw := int64(binary.LittleEndian.Uint32(d[h+20:]))
			size := max(vsize, rawSize)
			if rva >= vaddr && rva < vaddr+size {
				return vInt(raw + rva - vaddr)
			}
		}
		return vInt(rva)
	}
	if len(d) >= 0x34 && string(d[:4]) == "\x7fELF" {
		var bo binary.ByteOrder = binary.LittleEndian
		if d[5] == 2 {
			bo = binary.BigEndian
		}
		// Header fields are unsigned and attacker-controlled: all bounds
		// are checked in uint64 so that no sum can wrap.
		var entry, phoff, phentsize, phnum uint64
		is64 := d[4] == 2
		if is64 {
			if len(d) < 0x40 {
				return undef
			}
			entry = bo.Uint64(d[0x18:])
			phoff = bo.Uint64(d[0x20:])
			phentsize = uint64(bo.Uint16(d[0x36:]))
			phnum = uint64(bo.Uint16(d[0x38:]))
		} else {
			entry = uint64(bo.Uint32(d[0x18:]))
			phoff = uint64(bo.Uint32(d[0x1c:]))
			phentsize = uint64(bo.Uint16(d[0x2a:]))
			phnum = uint64(bo.Uint16(d[0x2c:]))
		}
		n := uint64(len(d))
		if phoff > n || phentsize < 32 || (is64 && phentsize < 56) {
			return undef
		}
		for i := uint64(0); i < phnum && i < 256; i++ {
			h := phoff + i*phentsize // phoff <= n, i*phentsize < 2^24: no wrap
			if h+phentsize > n {
				break
			}
			var typ uint32
			var off, vaddr, fsz uint64
			typ = bo.Uint32(d[h:])
			if is64 {
				off = bo.Uint64(d[h+8:])
				vaddr = bo.Uint64(d[h+16:])
				fsz = bo.Uint64(d[h+32:])
			} else {
				off = uint64(bo.Uint32(d[h+4:]))
				vaddr = uint64(bo.Uint32(d[h+8:]))
				fsz = uint64(bo.Uint32(d[h+16:]))
			}
			if typ == 1 && entry >= vaddr && entry-vaddr < fsz {
				return vInt(int64(off + (entry - vaddr)))
			}
		}
		return undef
	}
	return undef
}
