package yara

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// benchRuleSet generates n rules of the common shapes: plain text, wide and
// nocase text, hex strings with wildcards and jumps, and regular expressions.
func benchRuleSet(n int, seed uint64) string {
	rng := rand.New(rand.NewPCG(seed, 7))
	word := func(lo, hi int) string {
		const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"
		l := lo + rng.IntN(hi-lo+1)
		b := make([]byte, l)
		for i := range b {
			b[i] = letters[rng.IntN(len(letters))]
		}
		return string(b)
	}
	hexBytes := func(k int) string {
		var parts []string
		for i := 0; i < k; i++ {
			parts = append(parts, fmt.Sprintf("%02X", rng.IntN(256)))
		}
		return strings.Join(parts, " ")
	}
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "rule r%d : bench {\n  meta:\n    id = %d\n  strings:\n", i, i)
		switch i % 5 {
		case 0:
			fmt.Fprintf(&b, "    $a = \"%s\"\n    $b = \"%s\"\n  condition:\n    $a or $b\n", word(8, 16), word(8, 16))
		case 1:
			fmt.Fprintf(&b, "    $a = \"%s\" wide ascii\n    $b = \"%s\" nocase\n  condition:\n    any of them\n", word(8, 14), word(8, 14))
		case 2:
			fmt.Fprintf(&b, "    $a = { %s ?? %s [4-16] %s }\n  condition:\n    $a\n", hexBytes(3), hexBytes(2), hexBytes(3))
		case 3:
			fmt.Fprintf(&b, "    $a = /%s[0-9a-f]{4,12}\\.(exe|dll)/\n  condition:\n    $a\n", word(5, 9))
		default:
			fmt.Fprintf(&b, "    $a = \"%s\"\n    $h = { %s }\n  condition:\n    #a > 1 or $h at 0 or uint16(0) == 0x%04x\n",
				word(6, 12), hexBytes(4), rng.IntN(65536))
		}
		b.WriteString("}\n")
	}
	return b.String()
}

// benchData generates size bytes of mixed data: random bytes, ASCII and
// UTF-16 text, zero runs, and a few strings of the rule set.
func benchData(size int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 11))
	var b bytes.Buffer
	b.Grow(size + 4096)
	text := []byte("The quick brown fox jumps over the lazy dog. Lorem ipsum dolor sit amet, kernel32.dll GetProcAddress LoadLibraryA ")
	for b.Len() < size {
		switch rng.IntN(5) {
		case 0:
			n := 256 + rng.IntN(4096)
			for i := 0; i < n; i++ {
				b.WriteByte(byte(rng.Uint32()))
			}
		case 1:
			n := 1 + rng.IntN(20)
			for i := 0; i < n; i++ {
				b.Write(text)
			}
		case 2:
			for i := 0; i < 8; i++ {
				for _, c := range text {
					b.WriteByte(c)
					b.WriteByte(0)
				}
			}
		case 3:
			b.Write(make([]byte, 512+rng.IntN(2048)))
		default:
			n := 256 + rng.IntN(2048)
			for i := 0; i < n; i++ {
				b.WriteByte("\x8b\x45\xfc\x89\x55\xe8\xc3\x90\x48\x83\xec\x28\xff\x15"[rng.IntN(14)])
			}
		}
	}
	return b.Bytes()[:size]
}

// plantWords copies text strings of the rule set into data, one every
// 64 KiB on average (ASCII, UTF-16 or upper case), so that the scan also
// verifies and reports matches.
func plantWords(data []byte, src string, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 13))
	words := regexp.MustCompile(`\$[ab] = "([^"]+)"`).FindAllStringSubmatch(src, -1)
	for n := len(data) >> 16; n > 0 && len(words) > 0; n-- {
		w := []byte(words[rng.IntN(len(words))][1])
		switch rng.IntN(3) {
		case 1:
			w = widen(w)
		case 2:
			w = bytes.ToUpper(w)
		}
		if len(w) < len(data) {
			copy(data[rng.IntN(len(data)-len(w)):], w)
		}
	}
}

func benchSizeMiB() int {
	if s := os.Getenv("YARA_BENCH_MIB"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			return n
		}
	}
	return 32
}

// BenchmarkCompile5000 compiles 5,000 generated rules.
func BenchmarkCompile5000(b *testing.B) {
	src := benchRuleSet(5000, 1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(src); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScanVsYara scans the same data with the same 5,000 rules with this
// engine and, when installed, with the yara command (precompiled with yarac,
// one thread), side by side. YARA_BENCH_MIB sets the data size (default 32).
//
//	YARA_BENCH_MIB=256 go test ./ioc/yara -run '^$' -bench ScanVsYara -benchtime 3x
func BenchmarkScanVsYara(b *testing.B) {
	src := benchRuleSet(5000, 1)
	size := benchSizeMiB() << 20
	data := benchData(size, 2)
	plantWords(data, src, 3)
	rules, err := Compile(src)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("cordon", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := rules.Scan(context.Background(), data); err != nil {
				b.Fatal(err)
			}
		}
	})
	yaraBin, err1 := exec.LookPath("yara")
	yaracBin, err2 := exec.LookPath("yarac")
	if err1 != nil || err2 != nil {
		b.Log("yara/yarac not installed: skipping the yara side")
		return
	}
	dir := b.TempDir()
	rulesPath := filepath.Join(dir, "rules.yar")
	compiled := filepath.Join(dir, "rules.yarc")
	dataPath := filepath.Join(dir, "data.bin")
	emptyPath := filepath.Join(dir, "empty.bin")
	if err := os.WriteFile(rulesPath, []byte(src), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(dataPath, data, 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(emptyPath, nil, 0o644); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if out, err := exec.Command(yaracBin, "-w", rulesPath, compiled).CombinedOutput(); err != nil {
		b.Fatalf("yarac: %v\n%s", err, out)
	}
	b.Logf("yarac compile of 5000 rules: %v", time.Since(start))
	run := func(path string) time.Duration {
		t0 := time.Now()
		if out, err := exec.Command(yaraBin, "-w", "-p", "1", "-C", compiled, path).CombinedOutput(); err != nil {
			b.Fatalf("yara: %v\n%s", err, out)
		}
		return time.Since(t0)
	}
	b.Run("yara", func(b *testing.B) {
		// MB/s includes starting yara and loading the compiled rules;
		// scan-MB/s subtracts that (the time to scan an empty file).
		overhead := run(emptyPath)
		b.SetBytes(int64(len(data)))
		var scan time.Duration
		n := 0
		for b.Loop() {
			scan += run(dataPath) - overhead
			n++
		}
		b.ReportMetric(float64(overhead.Microseconds())/1000, "load-ms")
		if scan > 0 {
			b.ReportMetric(float64(len(data))*float64(n)/scan.Seconds()/1e6, "scan-MB/s")
		}
	})
}
