package nftables

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"syscall"

	gnft "github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/cordonsec/cordon/isolation"
)

var table = &gnft.Table{Name: tableName, Family: gnft.TableFamilyINet}

func baseChain(c chainID) *gnft.Chain {
	hook := gnft.ChainHookInput
	if c == chainOutput {
		hook = gnft.ChainHookOutput
	}
	policy := gnft.ChainPolicyDrop
	return &gnft.Chain{
		Name:     c.String(),
		Table:    table,
		Type:     gnft.ChainTypeFilter,
		Hooknum:  hook,
		Priority: gnft.ChainPriorityFilter,
		Policy:   &policy,
	}
}

// ctEstablished is the ct state bit mask, in host byte order as the kernel
// keeps it.
var ctEstablished = binary.NativeEndian.AppendUint32(nil, expr.CtStateBitESTABLISHED)

// ctRelated is the ct state bit mask of "related".
var ctRelated = binary.NativeEndian.AppendUint32(nil, expr.CtStateBitRELATED)

// headExprs returns the fixed rules that start chain c, before the plan's:
//
//   - everything on the loopback interface;
//   - ICMP and ICMPv6 packets that conntrack relates to a tracked flow
//     (destination unreachable, packet too big, time exceeded about a
//     packet of that flow). Only flows the plan allows are tracked while
//     the host is isolated: a packet the rules drop never gets a confirmed
//     conntrack entry, and Apply deletes the entries of flows the plan
//     does not allow. Without this rule, path MTU discovery of an allowed
//     flow (the management channel over IPv6, say) breaks.
func headExprs(c chainID) [][]expr.Any {
	key := expr.MetaKeyIIFNAME
	if c == chainOutput {
		key = expr.MetaKeyOIFNAME
	}
	related := func(proto byte) []expr.Any {
		return []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
			&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: ctRelated, Xor: make([]byte, 4)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
			&expr.Verdict{Kind: expr.VerdictAccept},
		}
	}
	return [][]expr.Any{
		{
			&expr.Meta{Key: key, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte("lo\x00")},
			&expr.Verdict{Kind: expr.VerdictAccept},
		},
		related(unix.IPPROTO_ICMP),
		related(unix.IPPROTO_ICMPV6),
	}
}

// field is one header field an atom can test.
type field struct {
	base   expr.PayloadBase
	offset uint32
	len    uint32
	kind   gnft.SetDatatype
}

func addrField(c chainID, fam uint8) field {
	// The remote address: source in the input chain, destination in the
	// output chain.
	if fam == 4 {
		off := uint32(16)
		if c == chainInput {
			off = 12
		}
		return field{expr.PayloadBaseNetworkHeader, off, 4, gnft.TypeIPAddr}
	}
	off := uint32(24)
	if c == chainInput {
		off = 8
	}
	return field{expr.PayloadBaseNetworkHeader, off, 16, gnft.TypeIP6Addr}
}

func portField(c chainID, remote bool) field {
	// Source port at offset 0, destination port at 2. The remote port is
	// the source port in the input chain.
	src := remote == (c == chainInput)
	off := uint32(2)
	if src {
		off = 0
	}
	return field{expr.PayloadBaseTransportHeader, off, 2, gnft.TypeInetService}
}

func typeField(fam uint8) field {
	k := gnft.TypeICMPType
	if fam == 6 {
		k = gnft.TypeICMP6Type
	}
	return field{expr.PayloadBaseTransportHeader, 0, 1, k}
}

// batch accumulates the messages of one transaction; it allocates the ids
// of sets itself (the library's allocator is a global without
// synchronization across connections).
type batch struct {
	conn   *gnft.Conn
	nextID uint32
	setIDs map[string]uint32 // named sets of this batch
	err    error
	// addSet queues a set with its elements; nil means conn.AddSet.
	addSet func(*gnft.Set, []gnft.SetElement) error
	// addElems queues elements of a named set; nil means
	// conn.SetAddElements.
	addElems func(*gnft.Set, []gnft.SetElement) error
}

// addAtom queues the rule (and its anonymous sets) for atom a.
func (b *batch) addAtom(a atom) {
	b.conn.AddRule(&gnft.Rule{Table: table, Chain: baseChain(a.chain), Exprs: b.atomExprs(a), UserData: commentData(a.tag)})
}

// keyReg is the register that holds the 32-bit word k of a concatenated
// key, numbered as the kernel reports it: NFT_REG_1 + k/4 where k is a
// multiple of 4 (the start of a 128-bit register), NFT_REG32_00 + k
// otherwise.
func keyReg(k uint32) uint32 {
	if k%4 == 0 {
		return unix.NFT_REG_1 + k/4
	}
	return unix.NFT_REG32_00 + k
}

// regKey is the register a key starts in.
const regKey = unix.NFT_REG_1

// setKeyType returns the key type of the sets of shape s.
func setKeyType(s shape) gnft.SetDatatype {
	types := []gnft.SetDatatype{gnft.TypeInetProto}
	for b := range fieldNames {
		switch f := uint8(1) << b; {
		case s.fields&f == 0:
		case f == fieldRemote:
			types = append(types, addrField(s.chain, s.family).kind)
		case f == fieldType:
			types = append(types, typeField(s.family).kind)
		default:
			types = append(types, gnft.TypeInetService)
		}
	}
	t, err := gnft.ConcatSetType(types...)
	if err != nil {
		panic(err) // at most five types
	}
	return t
}

// keyTypeMagic is the key type the sets of shape s have: nft's datatype
// numbers of the fields (setKeyType), 6 bits each.
func keyTypeMagic(s shape) uint32 {
	magic := uint32(12) // inet_proto
	for b := range fieldNames {
		switch f := uint8(1) << b; {
		case s.fields&f == 0:
			continue
		case f == fieldRemote && s.family == 4:
			magic = magic<<6 | 7 // ipv4_addr
		case f == fieldRemote:
			magic = magic<<6 | 8 // ipv6_addr
		case f == fieldType && s.family == 4:
			magic = magic<<6 | 14 // icmp_type
		case f == fieldType:
			magic = magic<<6 | 29 // icmpv6_type
		default:
			magic = magic<<6 | 13 // inet_service
		}
	}
	return magic
}

// setFieldLens returns the lengths of the key fields of shape s, as the
// set's concatenation description gives them.
func setFieldLens(s shape) []uint32 {
	out := []uint32{1}
	for b := range fieldNames {
		if f := uint8(1) << b; s.fields&f != 0 {
			out = append(out, uint32(fieldWidth(f, s.family)))
		}
	}
	return out
}

// elemChunk bounds the encoded size of the elements of one message: the
// element list is one netlink attribute, whose length is 16 bits.
const elemChunk = 32 << 10

// addKeySet queues named set s and its elements.
func (b *batch) addKeySet(s keySet) {
	b.nextID++
	if b.setIDs == nil {
		b.setIDs = map[string]uint32{}
	}
	b.setIDs[s.name] = b.nextID
	set := &gnft.Set{
		Table:         table,
		ID:            b.nextID,
		Name:          s.name,
		Interval:      true,
		Concatenation: true,
		KeyType:       setKeyType(s.shape),
	}
	add, addElems := b.addSet, b.addElems
	if add == nil {
		add = b.conn.AddSet
	}
	if addElems == nil {
		addElems = b.conn.SetAddElements
	}
	if err := add(set, nil); err != nil && b.err == nil {
		b.err = err
	}
	var chunk []gnft.SetElement
	size := 0
	for _, e := range s.elems {
		key, end := entryKey(e)
		chunk = append(chunk, gnft.SetElement{Key: key, KeyEnd: end, Comment: e.tag})
		size += 2*len(key) + len(e.tag) + 32
		if size >= elemChunk {
			if err := addElems(set, chunk); err != nil && b.err == nil {
				b.err = err
			}
			chunk, size = nil, 0
		}
	}
	if len(chunk) > 0 {
		if err := addElems(set, chunk); err != nil && b.err == nil {
			b.err = err
		}
	}
}

// lookupExprs returns the expressions of lookup rule a: the family, the
// key (protocol and fields) loaded into consecutive registers, the lookup
// in set a.set, "ct state established" for a reply rule, and accept.
func (b *batch) lookupExprs(a atom) []expr.Any {
	exprs := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{nfproto(a.family)}},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: regKey},
	}
	k := uint32(1)
	for _, f := range lookupFields(a.chain, a.family, a.fields) {
		exprs = append(exprs, &expr.Payload{DestRegister: keyReg(k), Base: f.base, Offset: f.offset, Len: f.len})
		k += (f.len + 3) / 4
	}
	exprs = append(exprs, &expr.Lookup{SourceRegister: regKey, SetName: a.set, SetID: b.setIDs[a.set]})
	if a.reply {
		exprs = append(exprs, ctEstablishedExprs()...)
	}
	return append(exprs, &expr.Verdict{Kind: expr.VerdictAccept})
}

// lookupFields returns the header fields of the key fields fs, in key
// order, as chain c of family fam loads them.
func lookupFields(c chainID, fam uint8, fs uint8) []field {
	var out []field
	for b := range fieldNames {
		switch f := uint8(1) << b; {
		case fs&f == 0:
		case f == fieldRemote:
			out = append(out, addrField(c, fam))
		case f == fieldRPort:
			out = append(out, portField(c, true))
		case f == fieldLPort:
			out = append(out, portField(c, false))
		default:
			out = append(out, typeField(fam))
		}
	}
	return out
}

func ctEstablishedExprs() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: ctEstablished, Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

// atomExprs returns the expressions of atom a, queueing its sets.
func (b *batch) atomExprs(a atom) []expr.Any {
	if a.set != "" {
		return b.lookupExprs(a)
	}
	exprs := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{nfproto(a.family)}},
	}
	if a.proto != isolation.ProtocolAny {
		exprs = append(exprs,
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{protoNumber(a.proto)}})
	}
	for _, t := range atomTests(a) {
		exprs = append(exprs, &expr.Payload{DestRegister: 1, Base: t.f.base, Offset: t.f.offset, Len: t.f.len})
		exprs = append(exprs, b.test(t.f, t.spans)...)
	}
	if a.reply {
		exprs = append(exprs, ctEstablishedExprs()...)
	}
	return append(exprs, &expr.Verdict{Kind: expr.VerdictAccept})
}

type fieldTest struct {
	f     field
	spans []span
}

// atomTests lists the header tests of a, in the fixed order the decoder
// expects: remote address, remote port, local port, ICMP type.
func atomTests(a atom) []fieldTest {
	var ts []fieldTest
	if a.remote != nil {
		ts = append(ts, fieldTest{addrField(a.chain, a.family), a.remote})
	}
	if a.rports != nil {
		ts = append(ts, fieldTest{portField(a.chain, true), a.rports})
	}
	if a.lports != nil {
		ts = append(ts, fieldTest{portField(a.chain, false), a.lports})
	}
	if a.types != nil {
		ts = append(ts, fieldTest{typeField(a.family), a.types})
	}
	return ts
}

func nfproto(fam uint8) byte {
	if fam == 4 {
		return unix.NFPROTO_IPV4
	}
	return unix.NFPROTO_IPV6
}

// test returns the expressions that accept register 1 when it is in one
// of spans: a comparison, a range, or a lookup in an anonymous interval
// set.
func (b *batch) test(f field, ss []span) []expr.Any {
	if len(ss) == 1 {
		if bytes.Equal(ss[0].lo, ss[0].hi) {
			return []expr.Any{&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ss[0].lo}}
		}
		return []expr.Any{&expr.Range{Op: expr.CmpOpEq, Register: 1, FromData: ss[0].lo, ToData: ss[0].hi}}
	}
	b.nextID++
	set := &gnft.Set{
		Table:     table,
		ID:        b.nextID,
		Name:      "__set%d",
		Anonymous: true,
		Constant:  true,
		Interval:  true,
		KeyType:   f.kind,
	}
	var elems []gnft.SetElement
	for _, s := range ss {
		elems = append(elems, gnft.SetElement{Key: s.lo})
		if end, overflow := increment(s.hi); !overflow {
			elems = append(elems, gnft.SetElement{Key: end, IntervalEnd: true})
		}
	}
	add := b.addSet
	if add == nil {
		add = b.conn.AddSet
	}
	if err := add(set, elems); err != nil && b.err == nil {
		b.err = err
	}
	return []expr.Any{&expr.Lookup{SourceRegister: 1, SetID: set.ID, SetName: set.Name}}
}

// commentData encodes a rule comment as nft does (TLV type 0, with the
// terminating NUL), so `nft list ruleset` shows it.
func commentData(s string) []byte {
	b := []byte{0, byte(len(s) + 1)}
	b = append(b, s...)
	return append(b, 0)
}

// parseComment returns the comment of rule user data, and false when
// there is none or the data is malformed.
func parseComment(ud []byte) (string, bool) {
	for len(ud) >= 2 {
		typ, n := ud[0], int(ud[1])
		if len(ud) < 2+n {
			return "", false
		}
		if typ == 0 {
			v := ud[2 : 2+n]
			if len(v) == 0 || v[len(v)-1] != 0 || bytes.IndexByte(v[:len(v)-1], 0) >= 0 {
				return "", false
			}
			return string(v[:len(v)-1]), true
		}
		ud = ud[2+n:]
	}
	return "", false
}

// setReader fetches the elements of the anonymous sets rules refer to.
type setReader func(name string) ([]span, error)

// decodeRule turns the expressions of one rule of chain c back into an
// atom. Anything this adapter does not write is an error.
func decodeRule(c chainID, exprs []expr.Any, userData []byte, sets setReader) (a atom, err error) {
	a.chain = c
	tag, ok := parseComment(userData)
	if !ok {
		return a, errors.New("rule without a cordon comment")
	}
	a.tag = tag
	d := &exprCursor{exprs: exprs}
	fam, err := d.metaCmp(expr.MetaKeyNFPROTO)
	if err != nil {
		return a, err
	}
	switch fam {
	case unix.NFPROTO_IPV4:
		a.family = 4
	case unix.NFPROTO_IPV6:
		a.family = 6
	default:
		return a, fmt.Errorf("unknown nfproto %d", fam)
	}
	a.proto = isolation.ProtocolAny
	if d.lookupNext() {
		if err := d.lookup(&a); err != nil {
			return a, err
		}
		if a.tag != setTag(a.set) {
			return a, fmt.Errorf("lookup rule of set %s with the comment %q", a.set, a.tag)
		}
		return a, d.tail(&a)
	}
	if m, ok := d.peek().(*expr.Meta); ok && m.Key == expr.MetaKeyL4PROTO {
		n, err := d.metaCmp(expr.MetaKeyL4PROTO)
		if err != nil {
			return a, err
		}
		p, ok := protoFromNumber(n)
		if !ok {
			return a, fmt.Errorf("unknown l4proto %d", n)
		}
		a.proto = p
	}
	// Header tests, in the encoder's order; each is optional.
	slots := []struct {
		f   field
		dst *[]span
		ok  bool
	}{
		{addrField(c, a.family), &a.remote, true},
		{portField(c, true), &a.rports, a.proto.HasPorts()},
		{portField(c, false), &a.lports, a.proto.HasPorts()},
		{typeField(a.family), &a.types, a.proto.IsICMP()},
	}
	for _, s := range slots {
		p, ok := d.peek().(*expr.Payload)
		if !ok || !s.ok || p.Base != s.f.base || p.Offset != s.f.offset || p.Len != s.f.len {
			continue
		}
		if p.OperationType != expr.PayloadLoad || p.DestRegister != 1 {
			return a, errors.New("unexpected payload expression")
		}
		d.next()
		ss, err := d.test(int(s.f.len), sets)
		if err != nil {
			return a, err
		}
		*s.dst = ss
	}
	if err := d.tail(&a); err != nil {
		return a, err
	}
	if a.reply && a.types != nil {
		return a, errors.New("reply rule with icmp types")
	}
	return a, nil
}

// lookupNext reports whether the protocol loaded next starts a key (a
// payload load follows) rather than being compared.
func (d *exprCursor) lookupNext() bool {
	m, ok := d.peek().(*expr.Meta)
	if !ok || m.Key != expr.MetaKeyL4PROTO || m.Register != regKey || d.i+1 >= len(d.exprs) {
		return false
	}
	_, ok = d.exprs[d.i+1].(*expr.Payload)
	return ok
}

// lookup reads the key loads and the set lookup of a lookup rule, after
// the family test.
func (d *exprCursor) lookup(a *atom) error {
	if m, ok := d.next().(*expr.Meta); !ok || m.SourceRegister {
		return errors.New("unexpected meta expression")
	}
	k := uint32(1)
	for b := range fieldNames {
		f := uint8(1) << b
		hf := lookupFields(a.chain, a.family, f)[0]
		p, ok := d.peek().(*expr.Payload)
		if !ok || p.Base != hf.base || p.Offset != hf.offset || p.Len != hf.len {
			continue
		}
		if p.OperationType != expr.PayloadLoad || p.DestRegister != keyReg(k) {
			return errors.New("unexpected payload expression in a key")
		}
		d.next()
		a.fields |= f
		k += (hf.len + 3) / 4
	}
	l, ok := d.next().(*expr.Lookup)
	if !ok || l.SourceRegister != regKey || l.IsDestRegSet || l.Invert || l.SetName == "" {
		return errors.New("want a set lookup of the key")
	}
	if a.fields == 0 {
		return errors.New("set lookup of the protocol alone")
	}
	if a.fields&fieldType != 0 && a.fields&(fieldRPort|fieldLPort) != 0 {
		return errors.New("set lookup of ports and icmp types")
	}
	a.set = l.SetName
	return nil
}

// tail reads the optional "ct state established" test and the accept
// verdict that end a rule.
func (d *exprCursor) tail(a *atom) error {
	if ct, ok := d.peek().(*expr.Ct); ok {
		if ct.Key != expr.CtKeySTATE || ct.Register != 1 || ct.SourceRegister {
			return errors.New("unexpected ct expression")
		}
		d.next()
		bw, ok := d.next().(*expr.Bitwise)
		if !ok || bw.SourceRegister != 1 || bw.DestRegister != 1 || bw.Len != 4 || !bytes.Equal(bw.Mask, ctEstablished) || !bytes.Equal(bw.Xor, make([]byte, 4)) {
			return errors.New("unexpected ct state mask")
		}
		cmp, ok := d.next().(*expr.Cmp)
		if !ok || cmp.Op != expr.CmpOpNeq || cmp.Register != 1 || !bytes.Equal(cmp.Data, make([]byte, 4)) {
			return errors.New("unexpected ct state test")
		}
		a.reply = true
	}
	v, ok := d.next().(*expr.Verdict)
	if !ok || v.Kind != expr.VerdictAccept || v.Chain != "" {
		return errors.New("rule does not end with accept")
	}
	if d.i != len(d.exprs) {
		return errors.New("expressions after the verdict")
	}
	return nil
}

type exprCursor struct {
	exprs []expr.Any
	i     int
}

func (d *exprCursor) peek() expr.Any {
	if d.i < len(d.exprs) {
		return d.exprs[d.i]
	}
	return nil
}

func (d *exprCursor) next() expr.Any {
	e := d.peek()
	if e != nil {
		d.i++
	}
	return e
}

// metaCmp reads "meta <key> == <one byte>".
func (d *exprCursor) metaCmp(key expr.MetaKey) (byte, error) {
	m, ok := d.next().(*expr.Meta)
	if !ok || m.Key != key || m.Register != 1 || m.SourceRegister {
		return 0, fmt.Errorf("want meta key %d", key)
	}
	c, ok := d.next().(*expr.Cmp)
	if !ok || c.Op != expr.CmpOpEq || c.Register != 1 || len(c.Data) != 1 {
		return 0, fmt.Errorf("want a one-byte comparison after meta key %d", key)
	}
	return c.Data[0], nil
}

// test reads the comparison, range or set lookup after a payload load.
func (d *exprCursor) test(width int, sets setReader) ([]span, error) {
	switch e := d.next().(type) {
	case *expr.Cmp:
		if e.Op != expr.CmpOpEq || e.Register != 1 || len(e.Data) != width {
			return nil, errors.New("unexpected comparison")
		}
		return []span{{slices.Clone(e.Data), slices.Clone(e.Data)}}, nil
	case *expr.Range:
		if e.Op != expr.CmpOpEq || e.Register != 1 || len(e.FromData) != width || len(e.ToData) != width || bytes.Compare(e.FromData, e.ToData) >= 0 {
			return nil, errors.New("unexpected range")
		}
		return []span{{slices.Clone(e.FromData), slices.Clone(e.ToData)}}, nil
	case *expr.Lookup:
		if e.SourceRegister != 1 || e.IsDestRegSet || e.Invert {
			return nil, errors.New("unexpected set lookup")
		}
		ss, err := sets(e.SetName)
		if err != nil {
			return nil, err
		}
		for _, s := range ss {
			if len(s.lo) != width {
				return nil, fmt.Errorf("set %s: elements of %d bytes, want %d", e.SetName, len(s.lo), width)
			}
		}
		if len(ss) < 2 || !spansEqual(mergeSpans(ss), ss) {
			return nil, fmt.Errorf("set %s is not in canonical form", e.SetName)
		}
		return ss, nil
	}
	return nil, errors.New("want a comparison, range or set lookup")
}

// elementSpans turns the elements of an interval set into spans: each
// start element runs to the element after it when that one is an interval
// end (exclusive), else to the largest value.
func elementSpans(elems []gnft.SetElement, width int) ([]span, error) {
	elems = slices.Clone(elems)
	for _, e := range elems {
		if len(e.Key) != width {
			return nil, fmt.Errorf("set element of %d bytes, want %d", len(e.Key), width)
		}
	}
	sort.SliceStable(elems, func(i, j int) bool { return bytes.Compare(elems[i].Key, elems[j].Key) < 0 })
	var out []span
	for i := 0; i < len(elems); i++ {
		e := elems[i]
		if e.IntervalEnd {
			// nft writes a leading "0 interval end" element; tolerate only
			// that one.
			if i == 0 && !slices.ContainsFunc(e.Key, func(b byte) bool { return b != 0 }) {
				continue
			}
			return nil, errors.New("interval end without a start")
		}
		hi := bytes.Repeat([]byte{0xff}, width)
		if i+1 < len(elems) && elems[i+1].IntervalEnd {
			var under bool
			hi, under = decrement(elems[i+1].Key)
			if under || bytes.Compare(hi, e.Key) < 0 {
				return nil, errors.New("empty interval")
			}
			i++
		} else if i+1 < len(elems) {
			return nil, errors.New("open interval before another start")
		}
		out = append(out, span{slices.Clone(e.Key), hi})
	}
	return out, nil
}

func exprEqual(a, b expr.Any) bool {
	switch x := a.(type) {
	case *expr.Meta:
		y, ok := b.(*expr.Meta)
		return ok && *x == *y
	case *expr.Cmp:
		y, ok := b.(*expr.Cmp)
		return ok && x.Op == y.Op && x.Register == y.Register && bytes.Equal(x.Data, y.Data)
	case *expr.Verdict:
		y, ok := b.(*expr.Verdict)
		return ok && *x == *y
	case *expr.Ct:
		y, ok := b.(*expr.Ct)
		return ok && *x == *y
	case *expr.Bitwise:
		y, ok := b.(*expr.Bitwise)
		return ok && x.SourceRegister == y.SourceRegister && x.DestRegister == y.DestRegister && x.Len == y.Len &&
			bytes.Equal(x.Mask, y.Mask) && bytes.Equal(x.Xor, y.Xor)
	}
	return false
}

// isNotFound reports a netlink ENOENT (no such table, chain or set).
func isNotFound(err error) bool {
	return errors.Is(err, syscall.ENOENT)
}
