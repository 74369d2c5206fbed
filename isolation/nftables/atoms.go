package nftables

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/cordonsec/cordon/isolation"
)

// This file holds the platform-independent half of the adapter: how a Plan
// becomes the content of the table, and how that content read back from
// the kernel becomes a Plan again.
//
// Every allow rule of the plan (management endpoints included) is, per IP
// family it covers and per direction it allows, an initiating part and a
// reply part:
//
//   - the initiating part, in the chain of the initiating direction (output
//     for "out", input for "in"): it matches the packet headers (family,
//     protocol, remote address, remote and local ports, ICMP types) and
//     accepts, whatever the conntrack state;
//   - the reply part, in the other chain: the same remote address and ports
//     seen from the other side, and "ct state established". It accepts the
//     replies of the flows the initiating part let through, and nothing
//     else: a packet that opens a flow (ct state new) from the remote side
//     never matches a reply part, so a remote cannot use an outbound rule's
//     port (say, source port 53) to reach the host.
//
// In both chains the "remote" side of a packet is the one that is not the
// host: the source address and port in the input chain, the destination in
// the output chain. So the fields are the rule's fields, and only the
// chain decides which header offsets they load.
//
// A part with a protocol (TCP, UDP, ICMP, ICMPv6) and at least one field
// (remote, ports, ICMP types) is not a rule of its own: it is an element
// of a named set with concatenated, interval keys (l4proto . remote .
// remote port . local port . ICMP type, the fields it has), one element
// per combination of its ranges, carrying the plan item in its comment.
// All elements of one shape (family, chain, role, fields) share the set
// and one lookup rule per chain ("flow" sets hold both parts of a rule
// without ICMP types: the initiating rule and the reply rule look the same
// key up). Elements of one set never overlap; elements that would go to
// the next set of the shape. Every other part (any protocol, or a
// protocol without any field) is an "atom": one nftables rule with the
// plan item in its comment.

// chainID names one of the two base chains of the table.
type chainID uint8

const (
	chainInput chainID = iota
	chainOutput
)

func (c chainID) String() string {
	if c == chainInput {
		return chainInputName
	}
	return chainOutputName
}

// Names of the table and its chains, as they appear in `nft list ruleset`.
const (
	tableName       = "cordon"
	chainInputName  = "input"
	chainOutputName = "output"
)

// span is an inclusive range of big-endian values of one width (4 or 16
// bytes for addresses, 2 for ports, 1 for ICMP types). lo <= hi.
type span struct {
	lo, hi []byte
}

// atom is one nftables rule of the table (other than the fixed rules that
// head each chain): either a plan part of its own (set == ""), or the
// lookup rule of a named set (set != "": family, chain, reply and the
// fields it loads; proto is ProtocolAny, the protocol is in the key).
type atom struct {
	chain  chainID
	reply  bool // reply atom: "ct state established", no ICMP types
	family uint8
	proto  isolation.Protocol
	remote []span // nil: any address of the family
	rports []span // TCP and UDP only; nil: any
	lports []span // TCP and UDP only; nil: any
	types  []span // ICMP and ICMPv6 initiating atoms only; nil: any
	set    string // the named set a lookup rule looks its key up in
	fields uint8  // the key fields of a lookup rule (fieldRemote...)
	tag    string // the rule comment: "m<i>[ name]", "r<i>[ name]", or "set <name>"
}

func (a atom) equal(b atom) bool {
	return a.chain == b.chain && a.reply == b.reply && a.family == b.family && a.proto == b.proto &&
		spansEqual(a.remote, b.remote) && spansEqual(a.rports, b.rports) && spansEqual(a.lports, b.lports) &&
		spansEqual(a.types, b.types) && a.set == b.set && a.fields == b.fields && a.tag == b.tag
}

func (a atom) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s ip%d %s", a.chain, a.family, a.proto)
	if a.reply {
		b.WriteString(" reply")
	}
	for _, f := range []struct {
		k string
		v []span
	}{{"remote", a.remote}, {"rport", a.rports}, {"lport", a.lports}, {"type", a.types}} {
		if f.v != nil {
			fmt.Fprintf(&b, " %s=%s", f.k, spansText(f.v))
		}
	}
	if a.set != "" {
		fmt.Fprintf(&b, " %s @%s", fieldsText(a.fields), a.set)
	}
	fmt.Fprintf(&b, " tag=%q", a.tag)
	return b.String()
}

// Key fields of a named set, after the protocol that starts every key, in
// key order.
const (
	fieldRemote uint8 = 1 << iota
	fieldRPort
	fieldLPort
	fieldType
	fieldAll = fieldRemote | fieldRPort | fieldLPort | fieldType
)

var fieldNames = []string{"addr", "rport", "lport", "type"}

func fieldsText(fs uint8) string {
	parts := []string{"proto"}
	for i, n := range fieldNames {
		if fs&(1<<i) != 0 {
			parts = append(parts, n)
		}
	}
	return strings.Join(parts, "_")
}

// setRole says which rules look a named set up.
type setRole uint8

const (
	// roleFlow: the initiating rule in shape.chain and the reply rule
	// ("ct state established") in the other chain; the parts of a rule
	// without ICMP types, whose key is the same both ways.
	roleFlow setRole = iota
	// roleInit: the initiating rule in shape.chain only (ICMP types).
	roleInit
	// roleReply: the reply rule in shape.chain only (replies of ICMP
	// rules with types and a remote).
	roleReply
)

var roleNames = []string{"flow", "init", "reply"}

// shape is what the elements of one named set have in common.
type shape struct {
	family uint8
	chain  chainID
	role   setRole
	fields uint8
}

// String is the name of the shape's sets, without the trailing "_<n>".
func (s shape) String() string {
	return fmt.Sprintf("%s%d_%s_%s", s.chain, s.family, roleNames[s.role], fieldsText(s.fields))
}

func (s shape) compare(o shape) int {
	return cmp.Or(cmp.Compare(s.family, o.family), cmp.Compare(s.chain, o.chain), cmp.Compare(s.role, o.role), cmp.Compare(s.fields, o.fields))
}

// fieldWidth is the width in bytes of key field f (one bit) in family fam.
func fieldWidth(f uint8, fam uint8) int {
	switch f {
	case fieldRemote:
		if fam == 4 {
			return 4
		}
		return 16
	case fieldRPort, fieldLPort:
		return 2
	}
	return 1
}

// entry is one element of a named set: the protocol, one span per key
// field of its shape, and the plan item it comes from.
type entry struct {
	shape shape
	proto isolation.Protocol
	key   []span
	tag   string
}

func (e entry) compare(o entry) int {
	if c := e.shape.compare(o.shape); c != 0 {
		return c
	}
	if c := cmp.Compare(e.proto, o.proto); c != 0 {
		return c
	}
	for i := range min(len(e.key), len(o.key)) {
		if c := cmp.Or(bytes.Compare(e.key[i].lo, o.key[i].lo), bytes.Compare(e.key[i].hi, o.key[i].hi)); c != 0 {
			return c
		}
	}
	return cmp.Or(cmp.Compare(len(e.key), len(o.key)), strings.Compare(e.tag, o.tag))
}

func (e entry) equal(o entry) bool { return e.compare(o) == 0 }

// overlaps reports whether e and o (of one shape) match a packet in common.
func (e entry) overlaps(o entry) bool {
	if e.proto != o.proto {
		return false
	}
	for i := range e.key {
		if bytes.Compare(e.key[i].hi, o.key[i].lo) < 0 || bytes.Compare(o.key[i].hi, e.key[i].lo) < 0 {
			return false
		}
	}
	return true
}

func (e entry) String() string {
	parts := []string{e.proto.String()}
	i := 0
	for b := range fieldNames {
		if e.shape.fields&(1<<b) != 0 && i < len(e.key) {
			parts = append(parts, spansText(e.key[i:i+1]))
			i++
		}
	}
	return fmt.Sprintf("%s comment %q", strings.Join(parts, " . "), e.tag)
}

// atoms returns the parts e stands for, as atoms of one span per field.
func (e entry) atoms() []atom {
	a := atom{family: e.shape.family, proto: e.proto, tag: e.tag, chain: e.shape.chain}
	i := 0
	for b, dst := range []*[]span{&a.remote, &a.rports, &a.lports, &a.types} {
		if e.shape.fields&(1<<b) != 0 && i < len(e.key) {
			*dst = e.key[i : i+1 : i+1]
			i++
		}
	}
	return e.shape.role.atoms(a)
}

// atoms returns the rules that a set of role r needs, given the first: a
// itself (init), a as a reply (reply), or a and its reply in the other
// chain (flow).
func (r setRole) atoms(a atom) []atom {
	switch r {
	case roleInit:
		return []atom{a}
	case roleReply:
		a.reply = true
		return []atom{a}
	}
	rep := a
	rep.chain, rep.reply = otherChain(a.chain), true
	return []atom{a, rep}
}

func otherChain(c chainID) chainID {
	if c == chainInput {
		return chainOutput
	}
	return chainInput
}

// keySet is one named set of the table: its name, shape and elements
// (sorted by entry.compare, none overlapping another).
type keySet struct {
	name  string
	shape shape
	elems []entry
}

func (s keySet) equal(o keySet) bool {
	return s.name == o.name && s.shape == o.shape && slices.EqualFunc(s.elems, o.elems, entry.equal)
}

// setTag is the comment of the lookup rules of set name.
func setTag(name string) string { return "set " + name }

func spansText(ss []span) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = valueText(s.lo)
		if !bytes.Equal(s.lo, s.hi) {
			parts[i] += "-" + valueText(s.hi)
		}
	}
	return strings.Join(parts, ",")
}

func valueText(v []byte) string {
	switch len(v) {
	case 4, 16:
		a, _ := netip.AddrFromSlice(v)
		return a.String()
	case 2:
		return strconv.Itoa(int(v[0])<<8 | int(v[1]))
	case 1:
		return strconv.Itoa(int(v[0]))
	}
	return fmt.Sprintf("%x", v)
}

func spansEqual(a, b []span) bool {
	if (a == nil) != (b == nil) || len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i].lo, b[i].lo) || !bytes.Equal(a[i].hi, b[i].hi) {
			return false
		}
	}
	return true
}

// layout is the content of the table, besides the fixed rules that head
// each chain: the rules of the two chains, in order, and the named sets
// (in name order).
type layout struct {
	input, output []atom
	sets          []keySet
}

func (l layout) equal(o layout) bool {
	return slices.EqualFunc(l.input, o.input, atom.equal) && slices.EqualFunc(l.output, o.output, atom.equal) &&
		slices.EqualFunc(l.sets, o.sets, keySet.equal)
}

// rules counts the nftables rules and set elements of l.
func (l layout) size() (rules, elems int) {
	for _, s := range l.sets {
		elems += len(s.elems)
	}
	return len(l.input) + len(l.output), elems
}

// diff describes the first difference between l (wanted) and o (found).
func (l layout) diff(o layout) string {
	for _, c := range []struct {
		name      string
		want, got []atom
	}{{chainInputName, l.input, o.input}, {chainOutputName, l.output, o.output}} {
		for i := 0; i < len(c.want) || i < len(c.got); i++ {
			switch {
			case i >= len(c.got):
				return fmt.Sprintf("chain %s: rule %d missing: want %s", c.name, i+1, c.want[i])
			case i >= len(c.want):
				return fmt.Sprintf("chain %s: rule %d unexpected: %s", c.name, i+1, c.got[i])
			case !c.want[i].equal(c.got[i]):
				return fmt.Sprintf("chain %s: rule %d is %s, want %s", c.name, i+1, c.got[i], c.want[i])
			}
		}
	}
	for i := 0; i < len(l.sets) || i < len(o.sets); i++ {
		switch {
		case i >= len(o.sets):
			return fmt.Sprintf("set %s missing", l.sets[i].name)
		case i >= len(l.sets):
			return fmt.Sprintf("set %s unexpected", o.sets[i].name)
		case l.sets[i].name != o.sets[i].name || l.sets[i].shape != o.sets[i].shape:
			return fmt.Sprintf("set %s (%s) found where set %s (%s) belongs", o.sets[i].name, o.sets[i].shape, l.sets[i].name, l.sets[i].shape)
		}
		w, g := l.sets[i].elems, o.sets[i].elems
		for j := 0; j < len(w) || j < len(g); j++ {
			switch {
			case j >= len(g):
				return fmt.Sprintf("set %s: element %s missing", l.sets[i].name, w[j])
			case j >= len(w):
				return fmt.Sprintf("set %s: element %s unexpected", l.sets[i].name, g[j])
			case !w[j].equal(g[j]):
				return fmt.Sprintf("set %s: element %s, want %s", l.sets[i].name, g[j], w[j])
			}
		}
	}
	return ""
}

// maxTagLen bounds a rule comment: nftables keeps at most 256 bytes of
// rule user data (the comment TLV takes 3 more bytes).
const maxTagLen = 240

func ruleTag(kind byte, i int, name string) string {
	t := string(kind) + strconv.Itoa(i)
	if name != "" && len(t)+1+len(name) <= maxTagLen {
		t += " " + name
	}
	return t
}

// planLayout returns the table content that puts plan p in force. p must
// be valid.
func planLayout(p isolation.Plan) layout {
	n := p.Normalize()
	var l layout
	var entries []entry
	for i, e := range n.Management {
		as, es := ruleItems(e.Rule(), ruleTag('m', i, e.Name))
		l.add(as)
		entries = append(entries, es...)
	}
	for i, r := range n.Rules {
		as, es := ruleItems(r, ruleTag('r', i, r.Name))
		l.add(as)
		entries = append(entries, es...)
	}
	l.sets = packSets(entries)
	for _, s := range l.sets {
		l.add(lookupAtoms(s.name, s.shape))
	}
	return l
}

func (l *layout) add(as []atom) {
	for _, a := range as {
		if a.chain == chainInput {
			l.input = append(l.input, a)
		} else {
			l.output = append(l.output, a)
		}
	}
}

// lookupAtoms returns the rules that look set name, of shape s, up.
func lookupAtoms(name string, s shape) []atom {
	return s.role.atoms(atom{chain: s.chain, family: s.family, proto: isolation.ProtocolAny, set: name, fields: s.fields, tag: setTag(name)})
}

// packSets sorts entries into named sets: per shape, in entry order, each
// entry goes to the first set of its shape that holds no entry it
// overlaps (the kernel refuses overlapping elements), so that a plan
// without overlapping rules of one shape has one set per shape. Sets are
// named "<shape>_<n>" and returned in name order.
func packSets(entries []entry) []keySet {
	entries = slices.Clone(entries)
	slices.SortFunc(entries, entry.compare)
	entries = slices.CompactFunc(entries, entry.equal)
	var out []keySet
	for i := 0; i < len(entries); {
		j := i + 1
		for j < len(entries) && entries[j].shape == entries[i].shape {
			j++
		}
		out = append(out, packShape(entries[i:j])...)
		i = j
	}
	slices.SortFunc(out, func(a, b keySet) int { return strings.Compare(a.name, b.name) })
	return out
}

// packShape colours the sorted entries of one shape. Entries are sorted by
// protocol, then by the first key field: an entry of a set whose first
// span ends before the current entry's starts overlaps no later entry and
// leaves that set's active list.
func packShape(es []entry) []keySet {
	type bin struct {
		set    keySet
		active []entry
	}
	var bins []*bin
	for _, e := range es {
		placed := false
		for _, b := range bins {
			live := b.active[:0]
			clash := false
			for _, o := range b.active {
				if o.proto != e.proto || bytes.Compare(o.key[0].hi, e.key[0].lo) < 0 {
					continue
				}
				live = append(live, o)
				if !clash && o.overlaps(e) {
					clash = true
				}
			}
			b.active = live
			if !clash {
				b.set.elems = append(b.set.elems, e)
				b.active = append(b.active, e)
				placed = true
				break
			}
		}
		if !placed {
			b := &bin{set: keySet{name: e.shape.String() + "_" + strconv.Itoa(len(bins)), shape: e.shape}}
			b.set.elems = append(b.set.elems, e)
			b.active = append(b.active, e)
			bins = append(bins, b)
		}
	}
	out := make([]keySet, len(bins))
	for i, b := range bins {
		out[i] = b.set
	}
	return out
}

// ruleItems encodes one normalized rule: the atoms it needs (rules of
// their own) and the entries it puts in named sets.
func ruleItems(r isolation.Rule, tag string) ([]atom, []entry) {
	r = r.Normalize()
	var v4, v6 []netip.Prefix
	for _, p := range r.Remote {
		if p.Addr().Is4() {
			v4 = append(v4, p)
		} else {
			v6 = append(v6, p)
		}
	}
	var atoms []atom
	var entries []entry
	for _, fam := range []uint8{4, 6} {
		prefixes := v4
		if fam == 6 {
			prefixes = v6
		}
		if fam == 4 && r.Protocol == isolation.ProtocolICMPv6 || fam == 6 && r.Protocol == isolation.ProtocolICMP {
			continue
		}
		if len(r.Remote) > 0 && len(prefixes) == 0 {
			continue
		}
		var remote []span
		if len(r.Remote) > 0 {
			remote = prefixSpans(prefixes)
		}
		var rports, lports, types []span
		if r.Protocol.HasPorts() {
			rports, lports = portSpans(r.RemotePorts), portSpans(r.LocalPorts)
		}
		if r.Protocol.IsICMP() {
			types = typeSpans(r.ICMPTypes)
		}
		for _, dir := range []isolation.Direction{isolation.DirectionOut, isolation.DirectionIn} {
			if !r.Direction.Includes(dir) {
				continue
			}
			initChain, replyChain := chainOutput, chainInput
			if dir == isolation.DirectionIn {
				initChain, replyChain = chainInput, chainOutput
			}
			base := atom{family: fam, proto: r.Protocol, tag: tag}
			ini := base
			ini.chain = initChain
			rep := base
			rep.chain, rep.reply = replyChain, true
			if r.Protocol == isolation.ProtocolAny {
				// No protocol to start a key: rules of their own.
				atoms = append(atoms, expand(ini, remote, rports, lports, types)...)
				atoms = append(atoms, expand(rep, remote, rports, lports, nil)...)
				continue
			}
			mk := func(chain chainID, role setRole, fields [4][]span) {
				s := shape{family: fam, chain: chain, role: role}
				var lists [][]span
				for b, f := range fields {
					if f != nil {
						s.fields |= 1 << b
						lists = append(lists, f)
					}
				}
				if s.fields == 0 {
					a := ini
					if role == roleReply {
						a = rep
					}
					atoms = append(atoms, a)
					return
				}
				for _, key := range product(lists) {
					entries = append(entries, entry{shape: s, proto: r.Protocol, key: key, tag: tag})
				}
			}
			if types == nil {
				if remote == nil && rports == nil && lports == nil {
					atoms = append(atoms, ini, rep)
					continue
				}
				mk(initChain, roleFlow, [4][]span{remote, rports, lports, nil})
				continue
			}
			mk(initChain, roleInit, [4][]span{remote, nil, nil, types})
			mk(replyChain, roleReply, [4][]span{remote, nil, nil, nil})
		}
	}
	return atoms, entries
}

// product returns every combination of one span from each list.
func product(lists [][]span) [][]span {
	out := [][]span{nil}
	for _, l := range lists {
		next := make([][]span, 0, len(out)*len(l))
		for _, prefix := range out {
			for _, s := range l {
				k := make([]span, len(prefix), len(lists))
				copy(k, prefix)
				next = append(next, append(k, s))
			}
		}
		out = next
	}
	return out
}

// expandLimit bounds how many nftables rules one atom of any protocol (no
// set key) may be split into. Reading back an anonymous set costs a
// netlink round trip of its own, while rules are read in one dump; so a
// few remotes become one rule each, and only larger lists become sets.
const expandLimit = 16

// expand returns base with the given fields: one atom per combination of
// their spans when there are at most expandLimit, else one atom whose
// lists become sets. A nil field stays nil (any value).
func expand(base atom, remote, rports, lports, types []span) []atom {
	n := 1
	for _, f := range [][]span{remote, rports, lports, types} {
		n *= max(len(f), 1)
	}
	if n == 1 || n > expandLimit {
		base.remote, base.rports, base.lports, base.types = remote, rports, lports, types
		return []atom{base}
	}
	// each yields the single-span lists of a field, or one nil for "any".
	each := func(f []span) [][]span {
		if f == nil {
			return [][]span{nil}
		}
		out := make([][]span, len(f))
		for i := range f {
			out[i] = f[i : i+1 : i+1]
		}
		return out
	}
	out := make([]atom, 0, n)
	for _, a := range each(remote) {
		for _, rp := range each(rports) {
			for _, lp := range each(lports) {
				for _, t := range each(types) {
					x := base
					x.remote, x.rports, x.lports, x.types = a, rp, lp, t
					out = append(out, x)
				}
			}
		}
	}
	return out
}

// prefixSpans returns the address ranges covered by ps (all of one
// family), merged where they overlap or touch, in ascending order.
func prefixSpans(ps []netip.Prefix) []span {
	ss := make([]span, 0, len(ps))
	for _, p := range ps {
		p = p.Masked()
		lo := p.Addr().AsSlice()
		ss = append(ss, span{lo, lastAddr(lo, p.Bits())})
	}
	return mergeSpans(ss)
}

func lastAddr(lo []byte, bits int) []byte {
	hi := slices.Clone(lo)
	for i := range hi {
		for b := 0; b < 8; b++ {
			if i*8+b >= bits {
				hi[i] |= 0x80 >> b
			}
		}
	}
	return hi
}

func portSpans(ps []isolation.PortRange) []span {
	if len(ps) == 0 {
		return nil
	}
	ss := make([]span, 0, len(ps))
	for _, p := range ps {
		ss = append(ss, span{[]byte{byte(p.First >> 8), byte(p.First)}, []byte{byte(p.Last >> 8), byte(p.Last)}})
	}
	return mergeSpans(ss)
}

func typeSpans(ts []uint8) []span {
	if len(ts) == 0 {
		return nil
	}
	ss := make([]span, 0, len(ts))
	for _, t := range ts {
		ss = append(ss, span{[]byte{t}, []byte{t}})
	}
	return mergeSpans(ss)
}

// mergeSpans sorts spans of one width and merges those that overlap or
// are adjacent, so that an interval set never holds touching intervals.
func mergeSpans(ss []span) []span {
	if len(ss) == 0 {
		return nil
	}
	ss = slices.Clone(ss)
	slices.SortFunc(ss, func(a, b span) int {
		if c := bytes.Compare(a.lo, b.lo); c != 0 {
			return c
		}
		return bytes.Compare(a.hi, b.hi)
	})
	out := []span{ss[0]}
	for _, s := range ss[1:] {
		last := &out[len(out)-1]
		next, overflow := increment(last.hi)
		if overflow || bytes.Compare(s.lo, next) <= 0 {
			if bytes.Compare(s.hi, last.hi) > 0 {
				last.hi = s.hi
			}
			continue
		}
		out = append(out, s)
	}
	return out
}

// increment returns v+1 and whether it overflowed (v was all ones).
func increment(v []byte) ([]byte, bool) {
	out := slices.Clone(v)
	for i := len(out) - 1; i >= 0; i-- {
		out[i]++
		if out[i] != 0 {
			return out, false
		}
	}
	return out, true
}

// decrement returns v-1 and whether it underflowed (v was zero).
func decrement(v []byte) ([]byte, bool) {
	out := slices.Clone(v)
	for i := len(out) - 1; i >= 0; i-- {
		out[i]--
		if out[i] != 0xff {
			return out, false
		}
	}
	return out, true
}

// spanPrefixes splits an address range into the fewest prefixes.
func spanPrefixes(s span) ([]netip.Prefix, error) {
	if len(s.lo) != len(s.hi) || (len(s.lo) != 4 && len(s.lo) != 16) || bytes.Compare(s.lo, s.hi) > 0 {
		return nil, fmt.Errorf("bad address range %x-%x", s.lo, s.hi)
	}
	var out []netip.Prefix
	lo := slices.Clone(s.lo)
	width := len(lo) * 8
	for {
		// The largest aligned block that starts at lo and ends at or
		// before hi.
		bits := width
		for bits > 0 {
			cand := bits - 1
			if !aligned(lo, cand) || bytes.Compare(lastAddr(lo, cand), s.hi) > 0 {
				break
			}
			bits = cand
		}
		a, _ := netip.AddrFromSlice(lo)
		out = append(out, netip.PrefixFrom(a, bits))
		end := lastAddr(lo, bits)
		if bytes.Equal(end, s.hi) {
			return out, nil
		}
		lo, _ = increment(end)
	}
}

// aligned reports whether all bits of v after the first bits are zero.
func aligned(v []byte, bits int) bool {
	for i := range v {
		for b := 0; b < 8; b++ {
			if i*8+b >= bits && v[i]&(0x80>>b) != 0 {
				return false
			}
		}
	}
	return true
}

// layoutPlan rebuilds the Plan from the table content read back. Atoms
// and set elements are grouped by the plan item in their comment; each
// group must be exactly the encoding of the rule it decodes to, so any
// rule or element changed, added or removed behind the enforcer's back is
// reported as an error. The lookup rules of each set must be the ones of
// its shape.
func layoutPlan(l layout) (isolation.Plan, error) {
	type group struct {
		kind    byte
		index   int
		name    string
		tag     string
		atoms   []atom // rules of their own, in chain order
		entries []entry
	}
	var groups []*group
	byTag := map[string]*group{}
	get := func(tag string) (*group, error) {
		g := byTag[tag]
		if g == nil {
			kind, index, name, err := parseTag(tag)
			if err != nil {
				return nil, err
			}
			g = &group{kind: kind, index: index, name: name, tag: tag}
			byTag[tag] = g
			groups = append(groups, g)
		}
		return g, nil
	}
	lookups := map[string][]atom{}
	for _, a := range slices.Concat(l.input, l.output) {
		if a.set != "" {
			lookups[a.set] = append(lookups[a.set], a)
			continue
		}
		g, err := get(a.tag)
		if err != nil {
			return isolation.Plan{}, fmt.Errorf("chain %s: %w", a.chain, err)
		}
		g.atoms = append(g.atoms, a)
	}
	for _, s := range l.sets {
		refs := lookups[s.name]
		delete(lookups, s.name)
		want := lookupAtoms(s.name, s.shape)
		byChain := func(a, b atom) int { return cmp.Compare(a.chain, b.chain) }
		slices.SortFunc(want, byChain)
		slices.SortFunc(refs, byChain)
		if !slices.EqualFunc(refs, want, atom.equal) {
			return isolation.Plan{}, fmt.Errorf("set %s: not looked up by the rules of its shape %s", s.name, s.shape)
		}
		for _, e := range s.elems {
			if e.shape != s.shape {
				return isolation.Plan{}, fmt.Errorf("set %s: element %s of another shape", s.name, e)
			}
			g, err := get(e.tag)
			if err != nil {
				return isolation.Plan{}, fmt.Errorf("set %s: %w", s.name, err)
			}
			g.entries = append(g.entries, e)
		}
	}
	for name := range lookups {
		return isolation.Plan{}, fmt.Errorf("rules look up set %s, which is not in the table", name)
	}
	slices.SortFunc(groups, func(a, b *group) int { return cmp.Or(cmp.Compare(a.kind, b.kind), cmp.Compare(a.index, b.index)) })
	var p isolation.Plan
	for _, g := range groups {
		all := slices.Clone(g.atoms)
		for _, e := range g.entries {
			all = append(all, e.atoms()...)
		}
		r, err := atomsRule(all)
		if err != nil {
			return isolation.Plan{}, fmt.Errorf("rule %q: %w", g.tag, err)
		}
		// The decoded rule must encode to exactly the atoms and elements
		// read: otherwise the kernel holds something this adapter did not
		// write.
		wantAtoms, wantEntries := ruleItems(r, g.tag)
		var want, got layout
		want.add(wantAtoms)
		got.add(g.atoms)
		slices.SortFunc(wantEntries, entry.compare)
		slices.SortFunc(g.entries, entry.compare)
		if !want.equal(got) || !slices.EqualFunc(wantEntries, g.entries, entry.equal) {
			return isolation.Plan{}, fmt.Errorf("rule %q: not in the canonical encoding of %s", g.tag, r)
		}
		if g.kind == 'r' {
			r.Name = g.name
			if r.Name != "" && r.Validate() != nil {
				return isolation.Plan{}, fmt.Errorf("rule %q: invalid name", g.tag)
			}
			p.Rules = append(p.Rules, r)
			continue
		}
		e, err := ruleEndpoint(r)
		if err != nil {
			return isolation.Plan{}, fmt.Errorf("rule %q: %w", g.tag, err)
		}
		e.Name = g.name
		p.Management = append(p.Management, e)
	}
	if err := p.Validate(); err != nil {
		return isolation.Plan{}, err
	}
	return p, nil
}

// parseTag parses a rule comment "m<i>[ name]" or "r<i>[ name]".
func parseTag(t string) (kind byte, index int, name string, err error) {
	head, name, _ := strings.Cut(t, " ")
	if len(head) < 2 || (head[0] != 'm' && head[0] != 'r') {
		return 0, 0, "", fmt.Errorf("rule comment %q is not one of cordon's", t)
	}
	index, err = strconv.Atoi(head[1:])
	if err != nil || index < 0 || strconv.Itoa(index) != head[1:] {
		return 0, 0, "", fmt.Errorf("rule comment %q is not one of cordon's", t)
	}
	return head[0], index, name, nil
}

// atomsRule rebuilds the rule whose atoms are as.
func atomsRule(as []atom) (isolation.Rule, error) {
	var r isolation.Rule
	r.Protocol = as[0].proto
	var remote []netip.Prefix
	anyRemote := false
	for _, a := range as {
		if a.proto != r.Protocol {
			return r, fmt.Errorf("atoms disagree on the protocol")
		}
		if !a.reply {
			if a.chain == chainOutput {
				r.Direction |= isolation.DirectionOut
			} else {
				r.Direction |= isolation.DirectionIn
			}
			if a.types != nil {
				ts, err := spanTypes(a.types)
				if err != nil {
					return r, err
				}
				r.ICMPTypes = append(r.ICMPTypes, ts...)
			}
			if a.rports != nil {
				ps, err := spanPorts(a.rports)
				if err != nil {
					return r, err
				}
				r.RemotePorts = append(r.RemotePorts, ps...)
			}
			if a.lports != nil {
				ps, err := spanPorts(a.lports)
				if err != nil {
					return r, err
				}
				r.LocalPorts = append(r.LocalPorts, ps...)
			}
		}
		if a.remote == nil {
			anyRemote = true
		}
		for _, s := range a.remote {
			if len(s.lo) != map[uint8]int{4: 4, 6: 16}[a.family] {
				return r, fmt.Errorf("address of the wrong family")
			}
			ps, err := spanPrefixes(s)
			if err != nil {
				return r, err
			}
			remote = append(remote, ps...)
		}
	}
	if r.Direction == 0 {
		return r, fmt.Errorf("reply rules without an initiating rule")
	}
	if !anyRemote {
		r.Remote = remote
	} else if len(remote) > 0 {
		return r, fmt.Errorf("atoms disagree on the remote addresses")
	}
	r = r.Normalize()
	if err := r.Validate(); err != nil {
		return r, err
	}
	return r, nil
}

func spanPorts(ss []span) ([]isolation.PortRange, error) {
	out := make([]isolation.PortRange, 0, len(ss))
	for _, s := range ss {
		if len(s.lo) != 2 || len(s.hi) != 2 {
			return nil, fmt.Errorf("port of %d bytes", len(s.lo))
		}
		pr := isolation.PortRange{First: uint16(s.lo[0])<<8 | uint16(s.lo[1]), Last: uint16(s.hi[0])<<8 | uint16(s.hi[1])}
		if pr.First == 0 || pr.First > pr.Last {
			return nil, fmt.Errorf("bad port range %s", pr)
		}
		out = append(out, pr)
	}
	return out, nil
}

func spanTypes(ss []span) ([]uint8, error) {
	var out []uint8
	for _, s := range ss {
		if len(s.lo) != 1 || len(s.hi) != 1 || s.lo[0] > s.hi[0] {
			return nil, fmt.Errorf("bad icmp type range %x-%x", s.lo, s.hi)
		}
		for t := int(s.lo[0]); t <= int(s.hi[0]); t++ {
			out = append(out, uint8(t))
		}
	}
	return out, nil
}

// ruleEndpoint turns the rule of a management endpoint back into the
// endpoint.
func ruleEndpoint(r isolation.Rule) (isolation.Endpoint, error) {
	e := isolation.Endpoint{Protocol: r.Protocol}
	if r.Direction != isolation.DirectionOut || !r.Protocol.HasPorts() || len(r.LocalPorts) != 0 ||
		len(r.RemotePorts) != 1 || r.RemotePorts[0].First != r.RemotePorts[0].Last || len(r.Remote) == 0 {
		return e, fmt.Errorf("not the shape of a management endpoint: %s", r)
	}
	e.Port = r.RemotePorts[0].First
	for _, p := range r.Remote {
		if !p.IsSingleIP() {
			return e, fmt.Errorf("management endpoint with a prefix %s", p)
		}
		e.Addrs = append(e.Addrs, p.Addr())
	}
	return e, e.Validate()
}

// keyLen is the length of the keys of shape s: the protocol and each field,
// each padded to a multiple of 4 bytes (the registers the lookup reads).
func keyLen(s shape) int {
	n := 4
	for b := range fieldNames {
		if f := uint8(1) << b; s.fields&f != 0 {
			n += (fieldWidth(f, s.family) + 3) &^ 3
		}
	}
	return n
}

// entryKey returns the element key and key end of e: the first and the
// last value of its box.
func entryKey(e entry) (key, end []byte) {
	n := keyLen(e.shape)
	key, end = make([]byte, 0, n), make([]byte, 0, n)
	key = append(key, protoNumber(e.proto), 0, 0, 0)
	end = append(end, protoNumber(e.proto), 0, 0, 0)
	for _, s := range e.key {
		key = append(key, s.lo...)
		end = append(end, s.hi...)
		for len(key)%4 != 0 {
			key, end = append(key, 0), append(end, 0)
		}
	}
	return key, end
}

// keyEntry decodes an element of a set of shape s; anything entryKey does
// not write is an error.
func keyEntry(s shape, key, end []byte, tag string) (entry, error) {
	e := entry{shape: s, tag: tag}
	if len(key) != keyLen(s) || len(end) != len(key) {
		return e, fmt.Errorf("element key of %d and %d bytes, want %d", len(key), len(end), keyLen(s))
	}
	zero := func(b []byte) bool { return !slices.ContainsFunc(b, func(x byte) bool { return x != 0 }) }
	if key[0] != end[0] || !zero(key[1:4]) || !zero(end[1:4]) {
		return e, errors.New("element with a protocol range or padding")
	}
	p, ok := protoFromNumber(key[0])
	if !ok {
		return e, fmt.Errorf("element of protocol %d", key[0])
	}
	e.proto = p
	off := 4
	for b := range fieldNames {
		f := uint8(1) << b
		if s.fields&f == 0 {
			continue
		}
		w := fieldWidth(f, s.family)
		pad := (w + 3) &^ 3
		lo, hi := key[off:off+w], end[off:off+w]
		if !zero(key[off+w:off+pad]) || !zero(end[off+w:off+pad]) || bytes.Compare(lo, hi) > 0 {
			return e, errors.New("element with a bad range or padding")
		}
		e.key = append(e.key, span{slices.Clone(lo), slices.Clone(hi)})
		off += pad
	}
	return e, nil
}

// protoNumber is the IP protocol number of p (0 for ProtocolAny).
func protoNumber(p isolation.Protocol) byte {
	switch p {
	case isolation.ProtocolTCP:
		return 6
	case isolation.ProtocolUDP:
		return 17
	case isolation.ProtocolICMP:
		return 1
	case isolation.ProtocolICMPv6:
		return 58
	}
	return 0
}

func protoFromNumber(n byte) (isolation.Protocol, bool) {
	for _, p := range []isolation.Protocol{isolation.ProtocolTCP, isolation.ProtocolUDP, isolation.ProtocolICMP, isolation.ProtocolICMPv6} {
		if protoNumber(p) == n {
			return p, true
		}
	}
	return 0, false
}
