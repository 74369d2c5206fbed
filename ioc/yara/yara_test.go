package yara

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func mustCompile(t testing.TB, src string, opts ...CompileOption) *Rules {
	t.Helper()
	r, err := Compile(src, opts...)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return r
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name     string
		src      string
		kind     error
		line     int
		col      int // 0: not checked
		contains string
	}{
		{"undefined identifier", "rule a {\n  condition:\n    true and foo\n}", ErrUndefined, 3, 14, `"foo"`},
		{"undefined string", "rule a {\n condition: $b\n}", ErrUndefined, 2, 0, "$b"},
		{"unreferenced string", "rule a {\n strings:\n  $x = \"abc\"\n condition: true\n}", ErrUnreferencedString, 3, 3, "$x"},
		{"duplicate rule", "rule a { condition: true }\nrule a { condition: true }", ErrDuplicate, 2, 0, "a"},
		{"unknown module", "import \"pe\"\nrule a { condition: true }", ErrUnknownModule, 1, 8, "pe"},
		{"bad regex", "rule a {\n strings: $r = /a[b-a]/\n condition: $r\n}", ErrInvalidString, 2, 11, "$r"},
		{"overflow", "rule a { condition: 0x7FFFFFFFFFFFFFFF + 1 > 0 }", ErrOverflow, 1, 0, "overflow"},
		{"type", "rule a { condition: \"x\" + 1 }", ErrType, 1, 0, "string"},
		{"xor nocase", "rule a { strings: $a = \"ab\" xor nocase condition: $a }", ErrInvalidString, 1, 0, "xor"},
		{"include disabled", "include \"x.yar\"\nrule a { condition: true }", ErrInclude, 1, 0, "WithIncludeDir"},
		{"bad percentage", "rule a { strings: $a = \"abc\" condition: 101% of them }", ErrType, 1, 0, "percentage"},
		{"syntax", "rule a { condition: ( }", ErrSyntax, 1, 0, ""},
		{"base64 alphabets differ", "rule a { strings: $a = \"abcd\" base64(\"" + defaultBase64Alphabet[1:] + "A\") base64wide(\"" + defaultBase64Alphabet[2:] + "AB\") condition: $a }", ErrInvalidString, 1, 19, "alphabet"},
		{"hex not is 4.3", "rule a { strings: $a = { 41 ~42 } condition: $a }", ErrInvalidString, 1, 19, "4.3"},
		{"mixed greedy", "rule a { strings: $a = /a+b*?/ condition: $a }", ErrInvalidString, 1, 19, "greedy"},
		{"constant zero divisor", "rule a { condition: filesize % 0 == 1 }", ErrType, 1, 0, "division by zero"},
		{"backreference", "rule a { strings: $a = /(a)\\1/ condition: $a }", ErrInvalidString, 1, 19, "backreference"},
		{"string loop items", "rule a { condition: for any s in (\"a\", \"b\") : (s == \"a\") }", ErrType, 1, 0, "integers"},
		{"of at is 4.3", "rule a { strings: $a = \"abc\" condition: any of them at 0 }", ErrSyntax, 1, 0, "4.3"},
		{"self reference", "rule a { condition: a }", ErrUndefined, 1, 0, "itself"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(tt.src)
			if err == nil {
				t.Fatal("Compile succeeded, want an error")
			}
			if !errors.Is(err, tt.kind) {
				t.Fatalf("error %v is not %v", err, tt.kind)
			}
			var ce *CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not a *CompileError", err)
			}
			if ce.Line != tt.line || (tt.col != 0 && ce.Column != tt.col) {
				t.Errorf("position = %d:%d, want %d:%d (%v)", ce.Line, ce.Column, tt.line, tt.col, err)
			}
			if !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("error %q does not mention %q", err, tt.contains)
			}
		})
	}
}

func TestScanMatchContents(t *testing.T) {
	src := `
rule first : tag1 tag2 {
  meta:
    author = "cordon \"team\""
    score = 80
    active = true
  strings:
    $t = "hello"
    $p = "world" private
    $h = { 77 6F ?? 6C }
  condition:
    $t and $p and $h
}
private rule hidden { condition: true }
rule second { condition: hidden and first }
rule never { condition: false }
`
	r := mustCompile(t, src)
	data := []byte("say hello world, hello")
	got, err := r.ScanBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	want := []Match{
		{Rule: "first", Namespace: DefaultNamespace, Tags: []string{"tag1", "tag2"},
			Meta: []Meta{{"author", `cordon "team"`}, {"score", int64(80)}, {"active", true}},
			Strings: []StringMatch{
				{ID: "$t", Offset: 4, Data: []byte("hello")},
				{ID: "$t", Offset: 17, Data: []byte("hello")},
				{ID: "$h", Offset: 10, Data: []byte("worl")},
			}},
		{Rule: "second", Namespace: DefaultNamespace, Tags: []string{}, Meta: nil},
	}
	if diff := cmp.Diff(want, got, cmp.Transformer("nilTags", func(s []string) []string {
		if s == nil {
			return []string{}
		}
		return s
	})); diff != "" {
		t.Errorf("matches (-want +got):\n%s", diff)
	}
}

func TestRawByteRegexAndModifiers(t *testing.T) {
	tests := []struct {
		name, rule string
		data       string
		want       bool
	}{
		{"regex byte E9", `rule a { strings: $a = /caf\xE9/ condition: $a }`, "caf\xe9", true},
		{"regex byte E9 not utf8", `rule a { strings: $a = /caf\xE9/ condition: $a }`, "caf\xc3\xa9", false},
		{"regex dot any byte", `rule a { strings: $a = /a.c/ condition: $a }`, "a\xffc", true},
		{"wide nocase", `rule a { strings: $a = "AbC" wide nocase condition: $a }`, "a\x00B\x00c\x00", true},
		{"fullword", `rule a { strings: $a = "abc" fullword condition: $a }`, "xabc", false},
		{"xor range", `rule a { strings: $a = "abc" xor(2-3) condition: #a == 1 }`, "\x63\x60\x61", true},
		{"base64", `rule a { strings: $a = "hello" base64 condition: $a }`, "xx aGVsbG8= yy", true},
		{"hex jump alt", `rule a { strings: $a = { 41 [1-3] (42 | 43 44) } condition: $a }`, "A..CD", true},
		{"regex repeat 32767", `rule a { strings: $a = /ab{1,32767}c/ condition: $a }`, "abbbc", true},
		{"equal range bounds", `rule a { strings: $a = "x" condition: $a in (0..0) and #a in (2..2) == 0 }`, "x", true},
		{"undefined propagation", `rule a { condition: not (uint32(100) == 1) }`, "x", false},
		{"defined", `rule a { condition: not defined uint32(100) }`, "x", true},
		{"for in", `rule a { strings: $a = "x" condition: for all i in (1..#a) : (@a[i] % 2 == 0) }`, "x.x.x", true},
		{"hash", `import "hash" rule a { condition: hash.md5(0, filesize) == "900150983cd24fb0d6963f7d28e17f72" }`, "abc", true},
		{"math", `import "math" rule a { condition: math.entropy(0, filesize) == 0.0 and math.mean(0, 2) == 97.0 }`, "aaaa", true},
		{"icontains matches", `rule a { condition: "Hello" icontains "ELL" and "Hello" matches /^h.l+o$/i }`, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustCompile(t, tt.rule)
			ms, err := r.ScanBytes([]byte(tt.data))
			if err != nil {
				t.Fatal(err)
			}
			if got := len(ms) > 0; got != tt.want {
				t.Errorf("matched = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestBase64CustomAlphabet(t *testing.T) {
	alpha := defaultBase64Alphabet[1:] + "A"
	enc := base64.NewEncoding(alpha).EncodeToString([]byte("hello world"))
	r := mustCompile(t, `rule a { strings: $a = "hello world" base64("`+alpha+`") base64wide("`+alpha+`") condition: $a }`)
	for _, data := range []string{"xx" + enc + "yy", string(widen([]byte(enc)))} {
		ms, err := r.ScanBytes([]byte(data))
		if err != nil || len(ms) != 1 {
			t.Errorf("scan %q = %v, %v; want a match", data, ms, err)
		}
	}
	std := base64.StdEncoding.EncodeToString([]byte("hello world"))
	if ms, _ := r.ScanBytes([]byte(std)); len(ms) != 0 {
		t.Errorf("standard base64 %q matched a custom-alphabet string", std)
	}
}

func TestVariables(t *testing.T) {
	r := mustCompile(t, `rule a { condition: env == "prod" and level > 2 and ratio < 1.5 and on }`,
		WithVariable("env", "prod"), WithVariable("level", int64(3)),
		WithVariable("ratio", 1.25), WithVariable("on", true))
	ms, err := r.ScanBytes(nil)
	if err != nil || len(ms) != 1 {
		t.Fatalf("ScanBytes = %v, %v; want one match", ms, err)
	}
	if _, err := Compile(`rule a { condition: true }`, WithVariable("x", []int{1})); !errors.Is(err, ErrVariable) {
		t.Errorf("bad variable type: err = %v, want ErrVariable", err)
	}
}

func TestInclude(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "sub", "b.yar"), "rule b { condition: true }\n")
	writeFile(t, filepath.Join(dir, "a.yar"), "include \"sub/b.yar\"\nrule a { condition: b }\n")
	r := mustCompile(t, "include \"a.yar\"\nrule c { condition: a and b }", WithIncludeDir(dir))
	ms, err := r.ScanBytes([]byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range ms {
		names = append(names, m.Rule)
	}
	if diff := cmp.Diff([]string{"b", "a", "c"}, names); diff != "" {
		t.Errorf("rules (-want +got):\n%s", diff)
	}
	// Escaping the include directory is refused.
	if _, err := Compile("include \"../x.yar\"", WithIncludeDir(dir)); !errors.Is(err, ErrInclude) {
		t.Errorf("include outside dir: err = %v, want ErrInclude", err)
	}
	// An error in an included file names that file and its line.
	writeFile(t, filepath.Join(dir, "bad.yar"), "\n\nrule bad { condition: nope }\n")
	_, err = Compile("rule ok { condition: true }\ninclude \"bad.yar\"", WithIncludeDir(dir))
	var ce *CompileError
	if !errors.As(err, &ce) || !strings.HasSuffix(ce.File, "bad.yar") || ce.Line != 3 {
		t.Errorf("error in include = %v, want bad.yar line 3", err)
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestScanCancelAndTimeout(t *testing.T) {
	r := mustCompile(t, `rule a { strings: $a = "needle" condition: $a }`)
	data := bytes.Repeat([]byte("haystack "), 1<<20)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Scan(ctx, data); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled scan: err = %v, want context.Canceled", err)
	}
	// A timeout that has passed before the first check stops the scan.
	if _, err := r.Scan(context.Background(), data, WithTimeout(time.Nanosecond)); !errors.Is(err, ErrScanTimeout) {
		t.Errorf("timed out scan: err = %v, want ErrScanTimeout", err)
	}
	if ms, err := r.Scan(context.Background(), append(data, "needle"...), WithTimeout(time.Hour)); err != nil || len(ms) != 1 {
		t.Errorf("scan with a long timeout = %v, %v; want one match", ms, err)
	}
}

func TestScanFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f.bin")
	writeFile(t, p, "MZ\x90\x00 this program")
	r := mustCompile(t, `rule mz { strings: $a = "program" condition: uint16(0) == 0x5A4D and $a }`)
	ms, err := r.ScanFile(context.Background(), p)
	if err != nil || len(ms) != 1 || ms[0].Rule != "mz" {
		t.Fatalf("ScanFile = %v, %v", ms, err)
	}
	if _, err := r.ScanFile(context.Background(), p+".missing"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err = %v", err)
	}
}

func TestConcurrentScans(t *testing.T) {
	// Rules of every shape the scanner treats apart (atoms, no-atom
	// strings, regexes, chained hex jumps, modules, counts and offsets),
	// scanned at once from several goroutines over different data; each
	// result must be the one a lone scan gives.
	src := benchRuleSet(300, 3) + `
import "hash"
import "math"
rule chained { strings: $c = { 61 62 [1-40] 63 64 [2-300] 65 } condition: $c }
rule noatom { strings: $n = /[a-z]{3}\d/ condition: #n > 3 and @n[#n] > 1000 }
rule modules { condition: math.entropy(0, filesize) > 5.0 and hash.md5(0, 16) != "" }
rule xorb64 { strings: $x = "fox jumps" xor(1-3) $b = "kernel32.dll" base64 condition: $x or $b }
`
	r := mustCompile(t, src)
	var inputs [][]byte
	for i := range 8 {
		d := benchData(128<<10, uint64(100+i))
		plantWords(d, src, uint64(i))
		d = append(d, "ab------cd--e abc1 abd2 abe3 xyz4 "...)
		for _, c := range []byte("fox jumps") {
			d = append(d, c^byte(1+i%3))
		}
		d = append(d, " "+base64.StdEncoding.EncodeToString([]byte("load kernel32.dll now"))...)
		inputs = append(inputs, d)
	}
	want := make([][]Match, len(inputs))
	matched := 0
	for i, d := range inputs {
		m, err := r.ScanBytes(d)
		if err != nil {
			t.Fatalf("ScanBytes(input %d): %v", i, err)
		}
		want[i], matched = m, matched+len(m)
	}
	if matched < 4*len(inputs) {
		t.Fatalf("only %d matches over %d inputs: the test would prove little", matched, len(inputs))
	}
	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range len(inputs) {
				i := (g + j) % len(inputs)
				got, err := r.Scan(context.Background(), inputs[i])
				if err != nil {
					errs <- err.Error()
					return
				}
				if d := cmp.Diff(want[i], got); d != "" {
					errs <- fmt.Sprintf("goroutine %d, input %d:\n%s", g, i, d)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestWarnings(t *testing.T) {
	r := mustCompile(t, `rule a { strings: $a = { 00 01 } $b = "long enough atom" condition: $a or $b }`)
	w := r.Warnings()
	if len(w) != 1 || w[0].Rule != "a" || !strings.Contains(w[0].Msg, "$a") {
		t.Errorf("Warnings = %v, want one for $a", w)
	}
}

func ExampleCompile() {
	rules, err := Compile(`
rule suspicious_powershell : windows {
  meta:
    severity = "high"
  strings:
    $enc = "-EncodedCommand" nocase
    $iex = /I(nvoke-)?EX/ nocase
  condition:
    any of them
}`)
	if err != nil {
		panic(err)
	}
	matches, err := rules.ScanBytes([]byte("powershell.exe -encodedcommand SQBFAFgA"))
	if err != nil {
		panic(err)
	}
	for _, m := range matches {
		fmt.Println(m.Rule, m.Tags)
		for _, s := range m.Strings {
			fmt.Printf("%s@%d %q\n", s.ID, s.Offset, s.Data)
		}
	}
	// Output:
	// suspicious_powershell [windows]
	// $enc@15 "-encodedcommand"
}

func TestScanCancelDuringCondition(t *testing.T) {
	r := mustCompile(t, `rule slow { condition: for all i in (0..0x7FFFFFFFFFFF) : (i >= 0) }`)
	ctx, cancel := context.WithCancel(context.Background())
	// The condition loop notices the cancellation within a few thousand
	// iterations instead of running for hours.
	go cancel()
	if _, err := r.Scan(ctx, []byte("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// TestConstantChecks checks which conditions with constant zero divisors or
// negative shift counts YARA 4.2.3 rejects (testdata/constcheck.txt holds
// "ok" or "err" and the condition, as the yara command decided).
func TestConstantChecks(t *testing.T) {
	b, err := os.ReadFile("testdata/constcheck.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		want, cond, _ := strings.Cut(line, " ")
		_, err := Compile("rule t { condition: " + cond + " }")
		if got := map[bool]string{true: "err", false: "ok"}[err != nil]; got != want {
			t.Errorf("%s: %s, want %s (%v)", cond, got, want, err)
		}
	}
}
