package ioc

import (
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

// find returns the value stored for k.
func (t *keyTable) find(k []byte) (uint32, bool) {
	if i, ok := t.findIndex(k); ok {
		return t.vals[i], true
	}
	return 0, false
}

// findIndex returns the index of key k.
func (t *keyTable) findIndex(k []byte) (uint32, bool) {
	if len(t.slots) == 0 {
		return 0, false
	}
	for i := t.hash(k) & t.mask; ; i = (i + 1) & t.mask {
		s := t.slots[i]
		if s == 0 {
			return 0, false
		}
		if string(t.key(s-1)) == string(k) {
			return s - 1, true
		}
	}
}

// findString is find for a string key, without copying it.
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
