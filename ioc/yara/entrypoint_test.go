package yara

import (
	"encoding/binary"
	"testing"
)

// TestEntrypointHostileELF: ELF headers whose offsets wrap int64 or point
// past the data make entrypoint undefined, never a panic.
func TestEntrypointHostileELF(t *testing.T) {
	r, err := Compile(`rule a { condition: entrypoint >= 0 } rule b { condition: not defined entrypoint }`)
	if err != nil {
		t.Fatal(err)
	}
	for _, phoff := range []uint64{1<<63 - 1, 1 << 63, 1<<64 - 1, 1<<64 - 8, 65, 64 - 8} {
		d := make([]byte, 128)
		copy(d, "\x7fELF\x02\x01")
		binary.LittleEndian.PutUint64(d[0x18:], 0x1000)
		binary.LittleEndian.PutUint64(d[0x20:], phoff)
		binary.LittleEndian.PutUint16(d[0x36:], 56)
		binary.LittleEndian.PutUint16(d[0x38:], 3)
		if _, err := r.ScanBytes(d); err != nil {
			t.Fatalf("phoff %#x: %v", phoff, err)
		}
	}
	// A program header whose vaddr+size wraps still resolves entry points
	// inside it without overflow.
	d := make([]byte, 0x40+56)
	copy(d, "\x7fELF\x02\x01")
	binary.LittleEndian.PutUint64(d[0x18:], 1<<64-0x10)
	binary.LittleEndian.PutUint64(d[0x20:], 0x40)
	binary.LittleEndian.PutUint16(d[0x36:], 56)
	binary.LittleEndian.PutUint16(d[0x38:], 1)
	binary.LittleEndian.PutUint32(d[0x40:], 1)              // PT_LOAD
	binary.LittleEndian.PutUint64(d[0x40+8:], 0x20)         // offset
	binary.LittleEndian.PutUint64(d[0x40+16:], 1<<64-0x100) // vaddr
	binary.LittleEndian.PutUint64(d[0x40+32:], 0x1000)      // size: wraps
	if got := entryPoint(d); !got.ok || got.i != 0x20+0xF0 {
		t.Fatalf("entry point %+v, want 0x110", got)
	}
}
