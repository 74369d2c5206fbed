package nftables

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/cordonsec/cordon/isolation"
)

// This file holds the platform-independent half of the adapter: how a Plan
// becomes "atoms" (one atom is one nftables rule of the input or output
// chain) and how atoms read back from the kernel become a Plan again.
//
// Every allow rule of the plan (management endpoints included) is, per IP
// family it covers and per direction it allows, two atoms:
//
//   - the initiating atom, in the chain of the initiating direction (output
//     for "out", input for "in"): it matches the packet headers (family,
//     protocol, remote address, remote and local ports, ICMP types) and
//     accepts, whatever the conntrack state;
//   - the reply atom, in the other chain: the same remote address and ports
//     seen from the other side, and "ct state established". It accepts the
//     replies of the flows the initiating atom let through, and nothing
//     else: a packet that opens a flow (ct state new) from the remote side
//     never matches a reply atom, so a remote cannot use an outbound rule's
//     port (say, source port 53) to reach the host.
//
// In both chains the "remote" side of a packet is the one that is not the
// host: the source address and port in the input chain, the destination in
// the output chain. So an atom's fields are the rule's fields, and only the
// chain decides which header offsets they load.

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

// atom is one nftables rule of the table (other than the loopback rule).
type atom struct {
	chain  chainID
	reply  bool // reply atom: "ct state established", no ICMP types
	family uint8
	proto  isolation.Protocol
	remote []span // nil: any address of the family
	rports []span // TCP and UDP only; nil: any
	lports []span // TCP and UDP only; nil: any
	types  []span // ICMP and ICMPv6 initiating atoms only; nil: any
	tag    string // the rule comment: "m<i>[ name]" or "r<i>[ name]"
}

func (a atom) equal(b atom) bool {
	return a.chain == b.chain && a.reply == b.reply && a.family == b.family && a.proto == b.proto &&
		spansEqual(a.remote, b.remote) && spansEqual(a.rports, b.rports) && spansEqual(a.lports, b.lports) &&
		spansEqual(a.types, b.types) && a.tag == b.tag
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
	fmt.Fprintf(&b, " tag=%q", a.tag)
	return b.String()
}

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

// layout is the expected content of the two chains, besides the loopback
// rule that heads each of them.
type layout struct {
	input, output []atom
}

func (l layout) equal(o layout) bool {
	return slices.EqualFunc(l.input, o.input, atom.equal) && slices.EqualFunc(l.output, o.output, atom.equal)
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

// planLayout returns the atoms that put plan p in force. p must be valid.
func planLayout(p isolation.Plan) layout {
	n := p.Normalize()
	var l layout
	for i, e := range n.Management {
		l.add(ruleAtoms(e.Rule(), ruleTag('m', i, e.Name)))
	}
	for i, r := range n.Rules {
		l.add(ruleAtoms(r, ruleTag('r', i, r.Name)))
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

// ruleAtoms encodes one normalized rule.
func ruleAtoms(r isolation.Rule, tag string) []atom {
	r = r.Normalize()
	var v4, v6 []netip.Prefix
	for _, p := range r.Remote {
		if p.Addr().Is4() {
			v4 = append(v4, p)
		} else {
			v6 = append(v6, p)
		}
	}
	var out []atom
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
			out = append(out, expand(ini, remote, rports, lports, types)...)
			out = append(out, expand(rep, remote, rports, lports, nil)...)
		}
	}
	return out
}

// expandLimit bounds how many nftables rules one atom may be split into.
// Reading back an anonymous set costs a netlink round trip of its own,
// while rules are read in one dump; so a few values per field become one
// rule per combination, and only larger lists become sets.
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

// layoutPlan rebuilds the Plan from atoms read back. Atoms are grouped by
// the index in their tag; each group must be exactly the encoding of the
// rule it decodes to, so any rule changed, added or removed behind the
// enforcer's back is reported as an error.
func layoutPlan(l layout) (isolation.Plan, error) {
	type group struct {
		kind  byte
		index int
		name  string
		atoms []atom
	}
	var groups []*group
	byTag := map[string]*group{}
	for _, a := range slices.Concat(l.input, l.output) {
		g := byTag[a.tag]
		if g == nil {
			kind, index, name, err := parseTag(a.tag)
			if err != nil {
				return isolation.Plan{}, fmt.Errorf("chain %s: %w", a.chain, err)
			}
			g = &group{kind: kind, index: index, name: name}
			byTag[a.tag] = g
			groups = append(groups, g)
		}
		g.atoms = append(g.atoms, a)
	}
	var p isolation.Plan
	for _, g := range groups {
		r, err := atomsRule(g.atoms)
		if err != nil {
			return isolation.Plan{}, fmt.Errorf("rule %q: %w", g.atoms[0].tag, err)
		}
		// The decoded rule must encode to exactly the atoms read: otherwise
		// the kernel holds something this adapter did not write.
		var want layout
		want.add(ruleAtoms(r, g.atoms[0].tag))
		if !slices.EqualFunc(slices.Concat(want.input, want.output), g.atoms, atom.equal) {
			return isolation.Plan{}, fmt.Errorf("rule %q: not in the canonical encoding of %s", g.atoms[0].tag, r)
		}
		if g.kind == 'r' {
			r.Name = g.name
			if r.Name != "" && r.Validate() != nil {
				return isolation.Plan{}, fmt.Errorf("rule %q: invalid name", g.atoms[0].tag)
			}
			p.Rules = append(p.Rules, r)
			continue
		}
		e, err := ruleEndpoint(r)
		if err != nil {
			return isolation.Plan{}, fmt.Errorf("rule %q: %w", g.atoms[0].tag, err)
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
