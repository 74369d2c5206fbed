package ioc

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// FuzzNormalize checks that indicator parsing never panics, and that a
// normalized value is a fixed point of Normalize.
func FuzzNormalize(f *testing.F) {
	seeds := []struct {
		k Kind
		v string
	}{
		{KindMD5, md5Hex}, {KindSHA256, sha256Hex[:31]}, {KindIPv4, "10.0.0.300"}, {KindIPv6, "fe80::1%eth0"},
		{KindCIDR, "::ffff:1.2.3.4/100"}, {KindDomain, "*.Bücher.example."}, {KindHostname, "xn--"},
		{KindURL, "http://[::1]:80/%zz"}, {KindURL, "HTTPS://a@B.example:0443"}, {KindFilePath, `\\?\UNC\s\share\..\..\x`},
		{KindFilePath, "/a/**/b?.so"}, {KindFileName, ".."}, {KindRegistryKey, `\REGISTRY\MACHINE`},
		{KindMutex, `\Sessions\\BaseNamedObjects\`}, {KindProcessName, " a "},
	}
	for _, s := range seeds {
		f.Add(uint8(s.k), s.v)
	}
	f.Fuzz(func(t *testing.T, k uint8, v string) {
		kind := Kind(k%uint8(kindEnd-1)) + 1
		n, err := Normalize(kind, v)
		if err != nil {
			return
		}
		n2, err := Normalize(kind, n)
		if err != nil {
			t.Fatalf("%s %q normalized to %q, which is rejected: %v", kind, v, n, err)
		}
		if n2 != n {
			t.Fatalf("%s %q: normalized %q, then %q", kind, v, n, n2)
		}
		// An indicator that normalizes builds, and matches itself where the
		// kind has a single natural event field.
		set, err := Compile([]Indicator{{Kind: kind, Value: v}})
		if err != nil {
			t.Fatalf("Compile after Normalize accepted %q: %v", v, err)
		}
		if set.Len() != 1 {
			t.Fatal("set length")
		}
		var e *Event
		switch kind {
		case KindMD5:
			e = fileEv("linux", FileEvent{MD5: n})
		case KindSHA256:
			e = fileEv("linux", FileEvent{SHA256: n})
		case KindIPv4, KindIPv6:
			e = netEv(n)
		case KindHostname, KindDomain:
			e = dnsEv(n)
		case KindMutex:
			e = mutexEv(n)
		case KindRegistryKey:
			e = regEv(n, "")
		case KindURL:
			e = httpEv(n)
		}
		if e != nil && len(set.Match(e, t0)) == 0 {
			t.Fatalf("%s %q (normalized %q) does not match itself", kind, v, n)
		}
	})
}

// FuzzDecodeEvent checks that event decoding never panics and that an
// accepted event encodes to JSON that decodes to the same event.
func FuzzDecodeEvent(f *testing.F) {
	for _, l := range readEvents(f) {
		f.Add(l)
	}
	f.Add([]byte(`{"schema":"cordon.event/v1","kind":"dns","dns":{"query":"x","answers":[1]}}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"schema":"cordon.event/v1","id":"e\u00e9\ud800","time":"2026-11-25T10:00:00Z","host":{"id":"h"},"kind":"mutex","mutex":{"name":"Global\\M"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		// The decoder without reflection reads what encoding/json reads,
		// to the same value.
		r := jsonReader{b: data}
		var fast Event
		if r.event(&fast) && r.end() {
			type plain Event
			var slow plain
			if err := decodeStrict(data, &slow, ErrInvalidEvent); err != nil {
				t.Fatalf("the fast path read %s, encoding/json did not: %v", data, err)
			}
			if !reflect.DeepEqual(fast, Event(slow)) {
				t.Fatalf("%s: fast %+v, encoding/json %+v", data, fast, slow)
			}
		}
		ev, err := DecodeEvent(data)
		if err != nil {
			return
		}
		out, err := json.Marshal(ev)
		if err != nil {
			t.Fatalf("marshal accepted event: %v", err)
		}
		back, err := DecodeEvent(out)
		if err != nil {
			t.Fatalf("re-decode %s: %v", out, err)
		}
		out2, _ := json.Marshal(back)
		if string(out) != string(out2) {
			t.Fatalf("not stable:\n%s\n%s", out, out2)
		}
		// Matching any accepted event never panics.
		set, _ := Compile([]Indicator{{Kind: KindDomain, Value: "example"}, {Kind: KindFilePath, Value: "/**/x*"}, {Kind: KindCIDR, Value: "::/0"}, {Kind: KindCIDR, Value: "0.0.0.0/0"}})
		set.Match(&ev, t0)
	})
}

// FuzzDecodeDetection checks that detection decoding never panics.
func FuzzDecodeDetection(f *testing.F) {
	f.Add([]byte(`{"schema":"cordon.detection/v1","id":"d","fingerprint":"f","time":"2026-11-25T10:00:00Z","host":{"id":"h"},"engine":"yara","rule":"r","indicators":[],"severity":"high","event":{"schema":"cordon.event/v1","id":"e","time":"2026-11-25T10:00:00Z","host":{"id":"h"},"kind":"mutex","mutex":{"name":"m"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := DecodeDetection(data)
		if err != nil {
			return
		}
		out, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeDetection(out); err != nil {
			t.Fatalf("re-decode %s: %v", out, err)
		}
	})
}

// FuzzDecodeHash: decodeHash accepts exactly what encoding/hex decodes to
// a digest of the size, with the same bytes, and reports lower case
// exactly when v has no upper-case digit.
func FuzzDecodeHash(f *testing.F) {
	for _, s := range []string{md5Hex, strings.ToUpper(sha1Hex), sha256Hex[:63] + "g", sha256Hex[:63] + "G", sha512Hex, "0x" + md5Hex[2:], md5Hex[:31] + "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		for _, size := range []int{16, 20, 32, 64} {
			dst := make([]byte, size)
			ok, lower := decodeHash(dst, v)
			want, err := hex.DecodeString(v)
			if wantOK := err == nil && len(want) == size; ok != wantOK {
				t.Fatalf("decodeHash(%q) into %d bytes: ok %v, hex: %v", v, size, ok, err)
			}
			if ok && (!bytes.Equal(dst, want) || lower != (v == strings.ToLower(v))) {
				t.Fatalf("decodeHash(%q) = %x, lower %v", v, dst, lower)
			}
		}
	})
}
