package ioc

import (
	"encoding/binary"
	"hash/maphash"
	"math/bits"
)

// keyTable is an open-addressing hash table from byte-string keys to uint32
// values (the index of the first indicator with that key). Keys are stored
// once, back to back: fixed-size keys (digests, addresses) at i*size,
// variable ones (names, URLs) between offs[i] and offs[i+1]. It is built
// once and then only read, so readers need no lock.
type keyTable struct {
	seed  maphash.Seed
	size  int      // fixed key size in bytes; 0 for variable-size keys
	keys  []byte   // all keys, back to back
	offs  []uint32 // variable size: key i is keys[offs[i]:offs[i+1]]
	vals  []uint32 // value of key i
	slots []uint32 // 0: empty; else key index + 1
	mask  uint64
}

func newKeyTable(size int) *keyTable {
	t := &keyTable{seed: maphash.MakeSeed(), size: size}
	if size == 0 {
		t.offs = []uint32{0}
	}
	return t
}

func (t *keyTable) len() int { return len(t.vals) }

func (t *keyTable) key(i uint32) []byte {
	if t.size > 0 {
		return t.keys[int(i)*t.size : int(i+1)*t.size]
	}
	return t.keys[t.offs[i]:t.offs[i+1]]
}

func (t *keyTable) hash(k []byte) uint64 { return maphash.Bytes(t.seed, k) }

// findString returns the value stored for the key k.
func (t *keyTable) findString(k string) (uint32, bool) {
	if len(t.slots) == 0 {
		return 0, false
	}
	for i := maphash.String(t.seed, k) & t.mask; ; i = (i + 1) & t.mask {
		s := t.slots[i]
		if s == 0 {
			return 0, false
		}
		if string(t.key(s-1)) == k {
			return t.vals[s-1], true
		}
	}
}

// upsert stores k with value v when k is new, and returns the key's index
// and its previous value (ok false when new). The table grows as needed.
func (t *keyTable) upsert(k []byte, v uint32) (idx uint32, prev uint32, existed bool) {
	if (t.len()+1)*2 > len(t.slots) {
		t.grow()
	}
	for i := t.hash(k) & t.mask; ; i = (i + 1) & t.mask {
		s := t.slots[i]
		if s == 0 {
			idx = uint32(t.len())
			t.keys = append(t.keys, k...)
			if t.size == 0 {
				t.offs = append(t.offs, uint32(len(t.keys)))
			}
			t.vals = append(t.vals, v)
			t.slots[i] = idx + 1
			return idx, 0, false
		}
		if string(t.key(s-1)) == string(k) {
			prev = t.vals[s-1]
			t.vals[s-1] = v
			return s - 1, prev, true
		}
	}
}

// reserve sizes the table for n keys of about keyBytes bytes in all.
func (t *keyTable) reserve(n, keyBytes int) {
	if n <= 0 {
		return
	}
	if cap(t.vals) < n {
		t.vals = append(make([]uint32, 0, n), t.vals...)
	}
	if cap(t.keys) < keyBytes {
		t.keys = append(make([]byte, 0, keyBytes), t.keys...)
	}
	if t.size == 0 && cap(t.offs) < n+1 {
		t.offs = append(make([]uint32, 0, n+1), t.offs...)
	}
	for len(t.slots) < 2*n {
		t.grow()
	}
}

func (t *keyTable) grow() {
	n := max(16, 2*len(t.slots))
	n = 1 << bits.Len(uint(n-1)) // a power of two
	t.slots = make([]uint32, n)
	t.mask = uint64(n - 1)
	for idx := range t.vals {
		k := t.key(uint32(idx))
		i := t.hash(k) & t.mask
		for t.slots[i] != 0 {
			i = (i + 1) & t.mask
		}
		t.slots[i] = uint32(idx) + 1
	}
}

// bytes reports the memory the table holds.
func (t *keyTable) bytes() int {
	return cap(t.keys) + 4*cap(t.offs) + 4*cap(t.vals) + 4*cap(t.slots)
}

// fixedTable is the frozen form of a keyTable of fixed-size keys (digests,
// addresses), made by freeze: each key is stored next to its value, so
// that a probe reads a slot and then one record rather than a key and a
// value in two arrays. The records stay in the order the keys were added,
// and a key's index is its record's. A record is the key, its value and,
// with extra, one more uint32, little endian.
type fixedTable struct {
	seed   maphash.Seed
	size   int // key size in bytes
	stride int // record size in bytes
	recs   []byte
	slots  []uint32 // 0: empty; else record index + 1
	mask   uint64
}

// freeze returns t as a fixedTable, with room for one more uint32 per key
// when extra is set.
func (t *keyTable) freeze(extra bool) *fixedTable {
	f := &fixedTable{seed: t.seed, size: t.size, stride: t.size + 4, slots: t.slots, mask: t.mask}
	if extra {
		f.stride += 4
	}
	f.recs = make([]byte, t.len()*f.stride)
	for i, v := range t.vals {
		r := f.rec(uint32(i))
		copy(r, t.key(uint32(i)))
		binary.LittleEndian.PutUint32(r[f.size:], v)
	}
	return f
}

func (f *fixedTable) rec(i uint32) []byte {
	off := int(i) * f.stride
	return f.recs[off : off+f.stride : off+f.stride]
}

// find returns the index of key k.
func (f *fixedTable) find(k []byte) (uint32, bool) {
	if f == nil || len(f.slots) == 0 {
		return 0, false
	}
	for i := maphash.Bytes(f.seed, k) & f.mask; ; i = (i + 1) & f.mask {
		s := f.slots[i]
		if s == 0 {
			return 0, false
		}
		if r := f.rec(s - 1); string(r[:f.size]) == string(k) {
			return s - 1, true
		}
	}
}

func (f *fixedTable) len() int { return len(f.recs) / f.stride }

// key returns key i.
func (f *fixedTable) key(i uint32) []byte { return f.rec(i)[:f.size] }

// value returns the value of key i.
func (f *fixedTable) value(i uint32) uint32 {
	return binary.LittleEndian.Uint32(f.rec(i)[f.size:])
}

// extra returns the extra uint32 of key i.
func (f *fixedTable) extra(i uint32) uint32 {
	return binary.LittleEndian.Uint32(f.rec(i)[f.size+4:])
}

func (f *fixedTable) setExtra(i, v uint32) {
	binary.LittleEndian.PutUint32(f.rec(i)[f.size+4:], v)
}

// bytes reports the memory the table holds.
func (f *fixedTable) bytes() int {
	if f == nil {
		return 0
	}
	return cap(f.recs) + 4*cap(f.slots)
}
