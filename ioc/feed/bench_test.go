package feed

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"testing"
)

// genCSV writes an n-row CSV feed: sha256 40%, ipv4 20%, domain 20%, url
// 10%, md5 10%, with severity and tags.
func genCSV(n int) []byte {
	var b bytes.Buffer
	b.Grow(n * 90)
	b.WriteString("type,value,severity,tags\n")
	var buf [8]byte
	for i := range n {
		binary.LittleEndian.PutUint64(buf[:], uint64(i))
		sum := sha256.Sum256(buf[:])
		switch i % 10 {
		case 0, 1, 2, 3:
			fmt.Fprintf(&b, "sha256,%s,high,loader\n", hex.EncodeToString(sum[:]))
		case 4, 5:
			fmt.Fprintf(&b, "ipv4,%d.%d.%d.%d,medium,c2\n", 10+sum[0]%200, sum[1], sum[2], sum[3])
		case 6, 7:
			fmt.Fprintf(&b, "domain,d%x.example,medium,c2;phishing\n", sum[:6])
		case 8:
			fmt.Fprintf(&b, "url,https://u%x.example/p/%d,low,\n", sum[:4], i)
		case 9:
			fmt.Fprintf(&b, "md5,%s,high,\n", hex.EncodeToString(sum[:16]))
		}
	}
	return b.Bytes()
}

// BenchmarkLoadCSV1M parses a 1,000,000-indicator CSV feed and compiles
// the snapshot.
func BenchmarkLoadCSV1M(b *testing.B) {
	data := genCSV(1_000_000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		f, err := Parse("big.csv", data, Options{})
		if err != nil {
			b.Fatal(err)
		}
		s, err := Build([]*File{f})
		if err != nil {
			b.Fatal(err)
		}
		if s.Atomic().Len() != 1_000_000 {
			b.Fatalf("%d indicators", s.Atomic().Len())
		}
	}
}

// genSTIX writes a bundle of n indicators: 90% single equalities (SHA-256
// digests, which stay trees, and addresses, domains, URLs, which are
// atomic), 10% compound patterns (trees).
func genSTIX(n int) []byte {
	var b bytes.Buffer
	b.Grow(n * 400)
	b.WriteString(`{"type": "bundle", "id": "bundle--00000000-0000-4000-8000-000000000000", "objects": [`)
	var buf [8]byte
	for i := range n {
		if i > 0 {
			b.WriteString(",\n")
		}
		binary.LittleEndian.PutUint64(buf[:], uint64(i))
		sum := sha256.Sum256(buf[:])
		var pattern string
		switch i % 10 {
		case 0, 1, 2, 3, 4:
			pattern = fmt.Sprintf("[file:hashes.'SHA-256' = '%s']", hex.EncodeToString(sum[:]))
		case 5, 6:
			pattern = fmt.Sprintf("[ipv4-addr:value = '%d.%d.%d.%d']", 10+sum[0]%200, sum[1], sum[2], sum[3])
		case 7:
			pattern = fmt.Sprintf("[domain-name:value = 'd%x.example']", sum[:6])
		case 8:
			pattern = fmt.Sprintf("[url:value = 'https://u%x.example/p']", sum[:4])
		case 9:
			pattern = fmt.Sprintf("[process:name = 'p%x.exe' AND process:command_line LIKE '%%-k %x%%'] OR [network-traffic:dst_port = %d AND network-traffic:dst_ref.value ISSUBSET '198.18.%d.0/24']",
				sum[:3], sum[3:5], 1024+int(sum[5])*200, sum[6])
		}
		fmt.Fprintf(&b, `{"type": "indicator", "spec_version": "2.1", "id": "indicator--%x-0000-4000-8000-%012d", "created": "2026-11-01T00:00:00Z", "modified": "2026-11-01T00:00:00Z", "valid_from": "2026-11-01T00:00:00Z", "pattern_type": "stix", "name": "generated %d", "pattern": %q}`,
			sum[:4], i, i, pattern)
	}
	b.WriteString("]}")
	return b.Bytes()
}

// BenchmarkLoadSTIX100k parses a 100,000-indicator STIX bundle and compiles
// the snapshot.
func BenchmarkLoadSTIX100k(b *testing.B) {
	data := genSTIX(100_000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		f, err := Parse("big.stix.json", data, Options{})
		if err != nil {
			b.Fatal(err)
		}
		s, err := Build([]*File{f})
		if err != nil {
			b.Fatal(err)
		}
		if s.Atomic().Len()+s.Trees().Len() != 100_000 {
			b.Fatalf("%d + %d", s.Atomic().Len(), s.Trees().Len())
		}
	}
}

func TestGeneratedFeedsLoad(t *testing.T) {
	f, err := Parse("g.csv", genCSV(1000), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Indicators) != 1000 {
		t.Fatalf("%d indicators", len(f.Indicators))
	}
	f, err = Parse("g.json", genSTIX(1000), Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Atomic: the addresses, domains and URLs; trees: the SHA-256
	// equalities (their atomic set also matches process.sha256) and the
	// compound patterns.
	if len(f.Indicators) != 400 || len(f.Trees) != 600 {
		t.Fatalf("%d indicators, %d trees", len(f.Indicators), len(f.Trees))
	}
}
