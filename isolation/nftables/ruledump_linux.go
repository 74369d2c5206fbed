package nftables

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// This file reads the rules of a chain with one netlink dump over the
// enforcer's own nfnetlink socket, and decodes only the expressions this
// adapter writes (meta, cmp, payload, range, lookup, ct, bitwise and the
// immediate verdict) into the library's types. It replaces the library's
// generic decoder, which spends most of the read-back's time on a large
// table. Any other expression marks the rule foreign.

// dumpedRule is one rule as read from the kernel.
type dumpedRule struct {
	handle   uint64
	exprs    []expr.Any
	userData []byte
	foreign  string // the first expression this decoder does not know, if any
}

// nlAttr is one netlink attribute.
type nlAttr struct {
	typ  uint16
	data []byte
}

// parseAttrs splits b into attributes; it never panics.
func parseAttrs(b []byte) ([]nlAttr, error) {
	var out []nlAttr
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, errors.New("attribute header cut short")
		}
		l := int(binary.NativeEndian.Uint16(b[0:2]))
		if l < 4 || l > len(b) {
			return nil, fmt.Errorf("attribute length %d of %d bytes left", l, len(b))
		}
		out = append(out, nlAttr{typ: binary.NativeEndian.Uint16(b[2:4]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER), data: b[4:l]})
		al := (l + unix.NLA_ALIGNTO - 1) &^ (unix.NLA_ALIGNTO - 1)
		if al >= len(b) {
			break
		}
		b = b[al:]
	}
	return out, nil
}

func be32(b []byte) (uint32, error) {
	if len(b) != 4 {
		return 0, fmt.Errorf("want 4 bytes, have %d", len(b))
	}
	return binary.BigEndian.Uint32(b), nil
}

// dataValue reads a nested NFTA_DATA_VALUE.
func dataValue(b []byte) ([]byte, error) {
	as, err := parseAttrs(b)
	if err != nil {
		return nil, err
	}
	for _, a := range as {
		if a.typ == unix.NFTA_DATA_VALUE {
			return bytes.Clone(a.data), nil
		}
	}
	return nil, errors.New("no data value")
}

func cstring(b []byte) string { return string(bytes.TrimRight(b, "\x00")) }

// decodeExpr decodes the data of one expression named name. ok is false
// for an expression kind (or an attribute of it) this adapter never
// writes.
func decodeExpr(name string, data []byte) (e expr.Any, ok bool, err error) {
	as, err := parseAttrs(data)
	if err != nil {
		return nil, false, err
	}
	u32 := func(a nlAttr) uint32 {
		v, e := be32(a.data)
		if e != nil && err == nil {
			err = e
		}
		return v
	}
	val := func(a nlAttr) []byte {
		v, e := dataValue(a.data)
		if e != nil && err == nil {
			err = e
		}
		return v
	}
	ok = true
	switch name {
	case "meta":
		m := &expr.Meta{}
		for _, a := range as {
			switch a.typ {
			case unix.NFTA_META_DREG:
				m.Register = u32(a)
			case unix.NFTA_META_KEY:
				m.Key = expr.MetaKey(u32(a))
			case unix.NFTA_META_SREG:
				m.Register, m.SourceRegister = u32(a), true
			default:
				ok = false
			}
		}
		e = m
	case "cmp":
		c := &expr.Cmp{}
		for _, a := range as {
			switch a.typ {
			case unix.NFTA_CMP_SREG:
				c.Register = u32(a)
			case unix.NFTA_CMP_OP:
				c.Op = expr.CmpOp(u32(a))
			case unix.NFTA_CMP_DATA:
				c.Data = val(a)
			default:
				ok = false
			}
		}
		e = c
	case "payload":
		p := &expr.Payload{}
		for _, a := range as {
			switch a.typ {
			case unix.NFTA_PAYLOAD_DREG:
				p.DestRegister = u32(a)
			case unix.NFTA_PAYLOAD_BASE:
				p.Base = expr.PayloadBase(u32(a))
			case unix.NFTA_PAYLOAD_OFFSET:
				p.Offset = u32(a)
			case unix.NFTA_PAYLOAD_LEN:
				p.Len = u32(a)
			default:
				ok = false // writes, checksums
			}
		}
		e = p
	case "range":
		r := &expr.Range{}
		for _, a := range as {
			switch a.typ {
			case unix.NFTA_RANGE_SREG:
				r.Register = u32(a)
			case unix.NFTA_RANGE_OP:
				r.Op = expr.CmpOp(u32(a))
			case unix.NFTA_RANGE_FROM_DATA:
				r.FromData = val(a)
			case unix.NFTA_RANGE_TO_DATA:
				r.ToData = val(a)
			default:
				ok = false
			}
		}
		e = r
	case "lookup":
		l := &expr.Lookup{}
		for _, a := range as {
			switch a.typ {
			case unix.NFTA_LOOKUP_SET:
				l.SetName = cstring(a.data)
			case unix.NFTA_LOOKUP_SREG:
				l.SourceRegister = u32(a)
			case unix.NFTA_LOOKUP_DREG:
				l.DestRegister, l.IsDestRegSet = u32(a), true
			case unix.NFTA_LOOKUP_SET_ID:
				l.SetID = u32(a)
			case unix.NFTA_LOOKUP_FLAGS:
				l.Invert = u32(a)&unix.NFT_LOOKUP_F_INV != 0
			default:
				ok = false
			}
		}
		e = l
	case "ct":
		c := &expr.Ct{}
		for _, a := range as {
			switch a.typ {
			case unix.NFTA_CT_DREG:
				c.Register = u32(a)
			case unix.NFTA_CT_KEY:
				c.Key = expr.CtKey(u32(a))
			case unix.NFTA_CT_SREG:
				c.Register, c.SourceRegister = u32(a), true
			default:
				ok = false // direction: never written here
			}
		}
		e = c
	case "bitwise":
		b := &expr.Bitwise{}
		for _, a := range as {
			switch a.typ {
			case unix.NFTA_BITWISE_SREG:
				b.SourceRegister = u32(a)
			case unix.NFTA_BITWISE_DREG:
				b.DestRegister = u32(a)
			case unix.NFTA_BITWISE_LEN:
				b.Len = u32(a)
			case unix.NFTA_BITWISE_MASK:
				b.Mask = val(a)
			case unix.NFTA_BITWISE_XOR:
				b.Xor = val(a)
			case nftaBitwiseOp:
				if u32(a) != 0 { // only the mask-and-xor operation is written here
					ok = false
				}
			default:
				ok = false
			}
		}
		e = b
	case "immediate":
		v := &expr.Verdict{}
		verdict := false
		for _, a := range as {
			switch a.typ {
			case unix.NFTA_IMMEDIATE_DREG:
				if u32(a) != unix.NFT_REG_VERDICT {
					ok = false
				}
			case unix.NFTA_IMMEDIATE_DATA:
				inner, perr := parseAttrs(a.data)
				if perr != nil {
					return nil, false, perr
				}
				for _, d := range inner {
					if d.typ != unix.NFTA_DATA_VERDICT {
						ok = false
						continue
					}
					vs, perr := parseAttrs(d.data)
					if perr != nil {
						return nil, false, perr
					}
					for _, x := range vs {
						switch x.typ {
						case unix.NFTA_VERDICT_CODE:
							v.Kind = expr.VerdictKind(int32(u32(x)))
							verdict = true
						case unix.NFTA_VERDICT_CHAIN:
							v.Chain = cstring(x.data)
						}
					}
				}
			default:
				ok = false
			}
		}
		e = v
		ok = ok && verdict
	default:
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", name, err)
	}
	return e, ok, nil
}

// parseRuleMsg decodes the payload of one NEWRULE message (after the
// netlink header).
func parseRuleMsg(b []byte) (dumpedRule, error) {
	var r dumpedRule
	if len(b) < 4 {
		return r, errors.New("rule message cut short")
	}
	as, err := parseAttrs(b[4:]) // after struct nfgenmsg
	if err != nil {
		return r, err
	}
	for _, a := range as {
		switch a.typ {
		case unix.NFTA_RULE_HANDLE:
			if len(a.data) != 8 {
				return r, errors.New("rule handle of the wrong size")
			}
			r.handle = binary.BigEndian.Uint64(a.data)
		case unix.NFTA_RULE_USERDATA:
			r.userData = bytes.Clone(a.data)
		case unix.NFTA_RULE_EXPRESSIONS:
			elems, err := parseAttrs(a.data)
			if err != nil {
				return r, err
			}
			for _, el := range elems {
				parts, err := parseAttrs(el.data)
				if err != nil {
					return r, err
				}
				var name string
				var data []byte
				for _, p := range parts {
					switch p.typ {
					case unix.NFTA_EXPR_NAME:
						name = cstring(p.data)
					case unix.NFTA_EXPR_DATA:
						data = p.data
					}
				}
				e, ok, err := decodeExpr(name, data)
				if err != nil {
					return r, err
				}
				if !ok {
					if r.foreign == "" {
						r.foreign = name
					}
					continue
				}
				r.exprs = append(r.exprs, e)
			}
		}
	}
	return r, nil
}

// strAttrs encodes string attributes (NUL-terminated), as a dump request
// names the table, chain or set.
func strAttrs(as ...strAttr) []byte {
	var attrs []byte
	for _, a := range as {
		v := append([]byte(a.val), 0)
		attrs = binary.NativeEndian.AppendUint16(attrs, uint16(4+len(v)))
		attrs = binary.NativeEndian.AppendUint16(attrs, a.typ)
		attrs = append(attrs, v...)
		for len(attrs)%unix.NLA_ALIGNTO != 0 {
			attrs = append(attrs, 0)
		}
	}
	return attrs
}

type strAttr = struct {
	typ uint16
	val string
}

// dump sends an nftables dump request of message type msg (NFT_MSG_GET...)
// with attrs, and calls fn with the payload of every reply of type reply.
func (g *nfSocket) dump(msg, reply uint16, attrs []byte, fn func([]byte) error) error {
	g.seq++
	seq := g.seq
	req := nlHeader(unix.NFNL_SUBSYS_NFTABLES<<8|msg, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, seq, 4+len(attrs))
	req = append(req, unix.NFPROTO_INET, unix.NFNETLINK_V0, 0, 0)
	req = append(req, attrs...)
	if err := unix.Sendto(g.fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	for {
		n, _, flags, _, err := unix.Recvmsg(g.fd, g.buf, nil, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if flags&unix.MSG_TRUNC != 0 {
			return errors.New("message truncated")
		}
		msgs, err := parseNetlink(g.buf[:n])
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if m.seq != seq {
				continue
			}
			switch m.typ {
			case unix.NLMSG_DONE:
				return nil
			case unix.NLMSG_ERROR:
				if m.errno == 0 {
					continue
				}
				return syscall.Errno(-m.errno)
			case unix.NFNL_SUBSYS_NFTABLES<<8 | reply:
				if err := fn(m.data); err != nil {
					return err
				}
			}
		}
	}
}

// dumpRules lists the rules of chain c of the table, in order.
func (g *nfSocket) dumpRules(c chainID) ([]dumpedRule, error) {
	var out []dumpedRule
	attrs := strAttrs(strAttr{unix.NFTA_RULE_TABLE, tableName}, strAttr{unix.NFTA_RULE_CHAIN, c.String()})
	err := g.dump(unix.NFT_MSG_GETRULE, unix.NFT_MSG_NEWRULE, attrs, func(b []byte) error {
		r, err := parseRuleMsg(b)
		if err != nil {
			return fmt.Errorf("rules of %s: %w", c, err)
		}
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("dump rules: %w", err)
	}
	return out, nil
}

// dumpedSet is one set of the table as read from the kernel.
type dumpedSet struct {
	name      string
	flags     uint32
	keyType   uint32
	keyLen    uint32
	fieldLens []uint32 // the concatenation description, if any
	foreign   string   // the first attribute this adapter never writes
}

// NFTA_SET_* and NFTA_SET_ELEM_* numbers (linux/netfilter/nf_tables.h)
// that x/sys/unix does not define.
const (
	nftaSetDescConcat  = 2
	nftaSetHandle      = 16
	nftaSetExpr        = 17
	nftaSetExpressions = 18
	nftaSetType        = 19 // the backend the kernel chose
	nftaSetCount       = 20 // the number of elements
	nftaSetFieldLen    = 1
	nftaSetElemKeyEnd  = 10
	nftaSetElemObjref  = 9
	nftaSetElemExprs   = 11
	nftSetConcat       = 0x80
	nftSetElemCatchall = 0x2
)

// parseSetMsg decodes the payload of one NEWSET message.
func parseSetMsg(b []byte) (dumpedSet, error) {
	var s dumpedSet
	if len(b) < 4 {
		return s, errors.New("set message cut short")
	}
	as, err := parseAttrs(b[4:])
	if err != nil {
		return s, err
	}
	foreign := func(what string) {
		if s.foreign == "" {
			s.foreign = what
		}
	}
	for _, a := range as {
		var err error
		switch a.typ {
		case unix.NFTA_SET_NAME:
			s.name = cstring(a.data)
		case unix.NFTA_SET_FLAGS:
			s.flags, err = be32(a.data)
		case unix.NFTA_SET_KEY_TYPE:
			s.keyType, err = be32(a.data)
		case unix.NFTA_SET_KEY_LEN:
			s.keyLen, err = be32(a.data)
		case unix.NFTA_SET_DESC:
			var ds []nlAttr
			if ds, err = parseAttrs(a.data); err != nil {
				break
			}
			for _, d := range ds {
				if d.typ != nftaSetDescConcat {
					continue // the size
				}
				fs, perr := parseAttrs(d.data)
				if perr != nil {
					return s, perr
				}
				for _, f := range fs {
					inner, perr := parseAttrs(f.data)
					if perr != nil {
						return s, perr
					}
					for _, x := range inner {
						if x.typ == nftaSetFieldLen {
							n, perr := be32(x.data)
							if perr != nil {
								return s, perr
							}
							s.fieldLens = append(s.fieldLens, n)
						}
					}
				}
			}
		case unix.NFTA_SET_TABLE, unix.NFTA_SET_ID, unix.NFTA_SET_USERDATA, unix.NFTA_SET_POLICY, nftaSetHandle, unix.NFTA_SET_PAD,
			nftaSetType, nftaSetCount:
			// Identity, the backend the kernel chose, and what userspace
			// keeps for itself.
		case unix.NFTA_SET_DATA_TYPE, unix.NFTA_SET_DATA_LEN:
			foreign("a map")
		case unix.NFTA_SET_TIMEOUT, unix.NFTA_SET_GC_INTERVAL:
			foreign("timeouts")
		case nftaSetExpr, nftaSetExpressions:
			foreign("expressions")
		default:
			foreign(fmt.Sprintf("attribute %d", a.typ))
		}
		if err != nil {
			return s, fmt.Errorf("set %s: %w", s.name, err)
		}
	}
	return s, nil
}

// dumpSets lists the sets of the table.
func (g *nfSocket) dumpSets() ([]dumpedSet, error) {
	var out []dumpedSet
	err := g.dump(unix.NFT_MSG_GETSET, unix.NFT_MSG_NEWSET, strAttrs(strAttr{unix.NFTA_SET_TABLE, tableName}), func(b []byte) error {
		s, err := parseSetMsg(b)
		if err != nil {
			return err
		}
		out = append(out, s)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("dump sets: %w", err)
	}
	return out, nil
}

// dumpedElem is one set element as read from the kernel.
type dumpedElem struct {
	key, keyEnd []byte
	flags       uint32
	userData    []byte
	foreign     string // the first attribute this adapter never writes
}

// parseElemsMsg decodes the payload of one NEWSETELEM message.
func parseElemsMsg(b []byte) ([]dumpedElem, error) {
	if len(b) < 4 {
		return nil, errors.New("element message cut short")
	}
	as, err := parseAttrs(b[4:])
	if err != nil {
		return nil, err
	}
	var out []dumpedElem
	for _, a := range as {
		if a.typ != unix.NFTA_SET_ELEM_LIST_ELEMENTS {
			continue
		}
		list, err := parseAttrs(a.data)
		if err != nil {
			return nil, err
		}
		for _, l := range list {
			attrs, err := parseAttrs(l.data)
			if err != nil {
				return nil, err
			}
			var e dumpedElem
			for _, x := range attrs {
				switch x.typ {
				case unix.NFTA_SET_ELEM_KEY:
					e.key, err = dataValue(x.data)
				case nftaSetElemKeyEnd:
					e.keyEnd, err = dataValue(x.data)
				case unix.NFTA_SET_ELEM_FLAGS:
					e.flags, err = be32(x.data)
				case unix.NFTA_SET_ELEM_USERDATA:
					e.userData = bytes.Clone(x.data)
				default:
					if e.foreign == "" {
						e.foreign = fmt.Sprintf("element attribute %d", x.typ)
					}
				}
				if err != nil {
					return nil, err
				}
			}
			out = append(out, e)
		}
	}
	return out, nil
}

// dumpSetElems lists the elements of set name of the table.
func (g *nfSocket) dumpSetElems(name string) ([]dumpedElem, error) {
	var out []dumpedElem
	attrs := strAttrs(strAttr{unix.NFTA_SET_ELEM_LIST_TABLE, tableName}, strAttr{unix.NFTA_SET_ELEM_LIST_SET, name})
	err := g.dump(unix.NFT_MSG_GETSETELEM, unix.NFT_MSG_NEWSETELEM, attrs, func(b []byte) error {
		es, err := parseElemsMsg(b)
		if err != nil {
			return fmt.Errorf("set %s: %w", name, err)
		}
		out = append(out, es...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("dump elements: %w", err)
	}
	return out, nil
}

// nftaBitwiseOp is NFTA_BITWISE_OP (linux/netfilter/nf_tables.h), which
// x/sys/unix does not define.
const nftaBitwiseOp = 6
