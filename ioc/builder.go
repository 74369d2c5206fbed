package ioc

import (
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// A Builder collects indicators and compiles them into a Set. Each
// indicator is validated and normalized as it is added; the first invalid
// one makes Build fail, so a Set is never built from part of the input.
//
// A Builder is not safe for concurrent use, and cannot be used after Build.
type Builder struct {
	s      *Set
	hashes [KindSHA512 + 1]*keyTable // become Set.hashes
	addrs  *keyTable                 // becomes Set.addrs
	arena  strings.Builder           // becomes Set.arena: Build takes its string without a copy
	metas  map[string]uint32
	wins   map[windowKey]uint32
	added  int
	err    error
	done   bool
}

// NewBuilder returns a Builder sized for about sizeHint indicators (0 if
// unknown).
func NewBuilder(sizeHint int) *Builder {
	s := &Set{}
	if sizeHint > 0 {
		s.entries = make([]entry, 0, sizeHint)
	}
	return &Builder{s: s, metas: map[string]uint32{}, wins: map[windowKey]uint32{}}
}

// Compile builds a Set from inds. It returns the first invalid indicator's
// *IndicatorError, and no Set, when any is invalid.
func Compile(inds []Indicator) (*Set, error) {
	b := NewBuilder(len(inds))
	for _, ind := range inds {
		if err := b.Add(ind); err != nil {
			return nil, err
		}
	}
	return b.Build()
}

// Add validates, normalizes and adds ind. It returns an *IndicatorError
// naming the indicator (its position among those added, id, kind and
// value) and why it is invalid; the Builder then refuses to Build.
func (b *Builder) Add(ind Indicator) error {
	if b.done {
		return fmt.Errorf("%w: Add after Build", ErrInvalidIndicator)
	}
	index := b.added
	b.added++
	n, err := ind.normalized(index)
	if err != nil {
		if b.err == nil {
			b.err = err
		}
		return err
	}
	s := b.s
	if uint64(len(s.entries)) >= 1<<32-1 {
		return b.fail(&IndicatorError{Index: index, ID: ind.ID, Kind: ind.Kind, Value: ind.Value, Reason: "the set is full", Err: ErrInvalidIndicator})
	}
	i := uint32(len(s.entries))
	e := entry{kind: n.Kind, meta: b.meta(n)}
	if n.ID != "" && n.ID != n.Kind.String()+":"+n.Value {
		e.id = b.intern(n.ID)
	}
	if !n.ValidFrom.IsZero() || !n.ValidUntil.IsZero() {
		e.win = b.window(n.ValidFrom, n.ValidUntil)
	}

	var (
		prev    uint32
		existed bool
	)
	switch n.Kind {
	case KindMD5, KindSHA1, KindSHA256, KindSHA512:
		t := b.hashes[n.Kind]
		if t == nil {
			t = newKeyTable(hashSize(n.Kind))
			b.hashes[n.Kind] = t
		}
		var buf [64]byte
		key := buf[:hashSize(n.Kind)]
		decodeHash(key, n.Value) // valid: n is normalized
		e.key, prev, existed = t.upsert(key, i)
	case KindIPv4, KindIPv6:
		if b.addrs == nil {
			b.addrs = newKeyTable(16)
		}
		a, _ := parseAddr(n.Value)
		k := a.As16()
		e.key, prev, existed = b.addrs.upsert(k[:], i)
	case KindCIDR:
		p, _ := parsePrefix(n.Value)
		head, ok := s.cidrs.Get(p)
		if ok {
			e.key, e.orig, prev, existed = s.entries[head].key, s.entries[head].orig, head, true
		} else {
			e.key = uint32(len(s.prefixes))
			s.prefixes = append(s.prefixes, p)
			// Its text is stored (next to the id) so that a match need
			// not format it.
			e.orig = b.intern(p.String())
		}
		s.cidrs.Insert(p, i)
	case KindFilePath:
		if isGlob(n.Value) {
			e.glob = true
			var err error
			if e.key, prev, existed, err = s.globs.add(n.Value, i); err != nil {
				return b.fail(&IndicatorError{Index: index, ID: ind.ID, Kind: ind.Kind, Value: ind.Value,
					Reason: "the glob does not compile: " + err.Error(), Err: ErrInvalidValue})
			}
			break
		}
		e.key, prev, existed = b.strTable(n.Kind).upsert([]byte(n.Value), i)
	case KindFileName, KindProcessName:
		key := strings.ToLower(n.Value)
		if key != n.Value {
			e.orig = b.intern(n.Value)
		}
		e.key, prev, existed = b.strTable(n.Kind).upsert([]byte(key), i)
	default: // domain, hostname, URL, registry key, mutex
		e.key, prev, existed = b.strTable(n.Kind).upsert([]byte(n.Value), i)
	}
	if existed {
		e.next = prev + 1
	}
	s.entries = append(s.entries, e)
	return nil
}

func (b *Builder) fail(err error) error {
	if b.err == nil {
		b.err = err
	}
	return err
}

func (b *Builder) strTable(k Kind) *keyTable {
	t := b.s.strs[k]
	if t == nil {
		t = newKeyTable(0)
		b.s.strs[k] = t
	}
	return t
}

// intern appends str to the arena and returns its offset + 1.
func (b *Builder) intern(str string) uint32 {
	off := uint32(b.arena.Len()) + 1
	var n [binary.MaxVarintLen64]byte
	b.arena.Write(binary.AppendUvarint(n[:0], uint64(len(str))))
	b.arena.WriteString(str)
	return off
}

// meta returns the index of ind's shared fields, adding them when new.
func (b *Builder) meta(ind Indicator) uint32 {
	// Each string is length-prefixed, so that no choice of bytes in them
	// (a NUL in a feed's source or tag) makes two metas share a key.
	var k []byte
	k = strconv.AppendInt(k, int64(int(ind.Severity)<<16|ind.Score<<8|ind.Confidence), 10)
	for _, str := range append([]string{ind.Source, ind.Description}, ind.Tags...) {
		k = binary.AppendUvarint(k, uint64(len(str)))
		k = append(k, str...)
	}
	key := string(k)
	if i, ok := b.metas[key]; ok {
		return i
	}
	i := uint32(len(b.s.metas))
	b.s.metas = append(b.s.metas, meta{
		source: ind.Source, description: ind.Description, tags: ind.Tags,
		severity: ind.Severity, score: uint8(ind.Score), confidence: uint8(ind.Confidence),
	})
	b.metas[key] = i
	return i
}

// windowKey identifies a validity window by its instants.
type windowKey struct{ fromSec, untilSec, fromNsec, untilNsec int64 }

// window returns the index + 1 of the validity window [from, until) (a
// zero bound is unbounded), adding it when new.
func (b *Builder) window(from, until time.Time) uint32 {
	k := windowKey{fromSec: from.Unix(), fromNsec: int64(from.Nanosecond()), untilSec: until.Unix(), untilNsec: int64(until.Nanosecond())}
	if i, ok := b.wins[k]; ok {
		return i
	}
	w := window{from: math.MinInt64, until: math.MaxInt64}
	if !from.IsZero() {
		w.from, w.fromT = clampNanos(from), from.UTC()
	}
	if !until.IsZero() {
		w.until, w.untilT = clampNanos(until), until.UTC()
	}
	b.s.windows = append(b.s.windows, w)
	i := uint32(len(b.s.windows))
	b.wins[k] = i
	return i
}

// Build returns the compiled Set, or the first error Add returned. The
// Builder cannot be used afterwards.
func (b *Builder) Build() (*Set, error) {
	if b.done {
		return nil, fmt.Errorf("%w: Build called twice", ErrInvalidIndicator)
	}
	b.done = true
	if b.err != nil {
		return nil, b.err
	}
	s := b.s
	s.arena = b.arena.String()
	for k, t := range b.hashes {
		if t != nil {
			s.hashes[k] = t.freeze(false)
		}
	}
	if len(s.prefixes) > 0 {
		// The set is immutable: each prefix's next longest containing
		// prefix is found once here, so that a match walks from the
		// longest prefix of an address to the widest without lookups.
		s.cidrUp = make([]uint32, len(s.prefixes))
		for i, p := range s.prefixes {
			if p.Bits() == 0 {
				continue
			}
			if head, ok := s.cidrs.LookupPrefix(netip.PrefixFrom(p.Addr(), p.Bits()-1).Masked()); ok {
				s.cidrUp[i] = head + 1
			}
		}
	}
	if b.addrs != nil {
		s.addrs = b.addrs.freeze(true)
		if len(s.prefixes) > 0 {
			// The set is immutable: each exact address's longest prefix
			// is found once here rather than on every match.
			for i := range uint32(s.addrs.len()) {
				a := netip.AddrFrom16([16]byte(s.addrs.key(i))).Unmap()
				if head, ok := s.cidrs.Lookup(a); ok {
					s.addrs.setExtra(i, head+1)
				}
			}
		}
	}
	b.s, b.hashes, b.addrs, b.metas, b.wins, b.arena = nil, [KindSHA512 + 1]*keyTable{}, nil, nil, nil, strings.Builder{}
	return s, nil
}
