package yara

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// diffRules are rules of our own making for the differential test against
// the yara command; they cover the common string shapes and conditions.
const diffRules = `
rule text_plain { strings: $a = "malware" condition: $a }
rule text_nocase { strings: $a = "PowerShell" nocase condition: #a >= 1 }
rule text_wide { strings: $a = "kernel32" wide condition: $a }
rule text_wide_ascii { strings: $a = "cmd.exe" wide ascii nocase condition: any of them }
rule text_fullword { strings: $a = "run" fullword condition: $a }
rule text_xor { strings: $a = "secret" xor(1-31) condition: $a }
rule text_b64 { strings: $a = "http://" base64 condition: $a }
rule hex_plain { strings: $a = { 4D 5A 90 00 } condition: $a }
rule hex_wild { strings: $a = { E8 ?? ?? ?? ?? 5? 8B } condition: $a }
rule hex_jump { strings: $a = { 55 8B EC [2-12] C3 } condition: $a }
rule hex_alt { strings: $a = { 6A ( 00 | 01 | 0? 40 ) 68 } condition: #a > 0 }
rule hex_unbounded { strings: $a = { 50 4B [-] 03 04 } condition: $a }
rule re_simple { strings: $a = /evil[0-9]{2,4}\.com/ condition: $a }
rule re_lazy { strings: $a = /begin.{1,40}?end/s condition: $a }
rule re_class { strings: $a = /[a-f0-9]{8}-[a-f0-9]{4}/ condition: $a }
rule re_alt { strings: $a = /(GET|POST) \/[a-z]+/ condition: $a }
rule re_nocase_wide { strings: $a = /ad(min|mn)/ nocase wide ascii condition: $a }
rule re_bytes { strings: $a = /\xE9[\x00-\x10]\xC3/ condition: $a }
rule re_word { strings: $a = /\bpass\w*\b/ condition: $a }
rule cond_count { strings: $a = "ab" condition: #a > 3 and @a[2] > @a[1] }
rule cond_of { strings: $a = "xyz" $b = "uvw" $c = "rst" condition: 2 of them }
rule cond_for { strings: $a = "ab" condition: for any i in (1..#a) : (uint8(@a[i] + 2) == 0x63) }
rule cond_range { strings: $a = "MZ" condition: $a in (0..100) or filesize < 10 }
rule cond_int { condition: uint32be(0) != 0 and int16(2) < 1000 }
rule cond_ref { condition: text_plain or hex_plain }
rule infix_email { strings: $a = /\w+@evil\.com/ condition: $a }
rule infix_exe { strings: $a = /[a-z]{2,8}\.exe/ nocase condition: $a }
rule infix_alt { strings: $a = /(ab|b)cdef/ condition: $a }
rule infix_wide { strings: $a = /[a-z]+run/ wide condition: $a }
rule hex_lead_wild { strings: $a = { ?? ?? 8B 45 FC } condition: $a }
rule undef_or { condition: uint32(filesize) == 1 or filesize > 0 }
rule undef_not { condition: not (uint8(filesize) == 1) }
rule undef_defined { condition: not defined uint8(filesize) and defined filesize }
rule str_at { strings: $a = "ab" condition: $a at 0 or #a in (0..1000) > 2 }
rule of_pct { strings: $a = "xyz" $b = "uvw" $c = "abc" condition: 67% of them }
rule for_of_anon { strings: $a = "ab" $b = "evil" condition: for 2 of ($a, $b) : (# > 2 and @[1] < filesize \ 2) }
rule hex_lead_alt { strings: $a = { ( 31 | 33 ) C0 [1-4] 5D C3 } condition: $a }
`

// yaraHit is one string match as printed by yara -s.
type yaraHit struct {
	rule, id string
	off      int64
}

func runYara(t *testing.T, bin, rulesPath, dataPath string) (map[string]bool, []yaraHit) {
	t.Helper()
	out, err := exec.Command(bin, "-w", "-s", rulesPath, dataPath).CombinedOutput()
	if err != nil {
		t.Fatalf("yara: %v\n%s", err, out)
	}
	rules := map[string]bool{}
	var hits []yaraHit
	cur := ""
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "0x") {
			parts := strings.SplitN(line, ":", 3)
			if len(parts) < 2 {
				t.Fatalf("unexpected yara output %q", line)
			}
			off, err := strconv.ParseInt(parts[0][2:], 16, 64)
			if err != nil {
				t.Fatalf("unexpected yara output %q", line)
			}
			hits = append(hits, yaraHit{rule: cur, id: parts[1], off: off})
			continue
		}
		name, _, _ := strings.Cut(line, " ")
		cur = name
		rules[name] = true
	}
	return rules, hits
}

// diffData builds deterministic mixed data with the rules' strings planted.
func diffData(seed uint64, size int) []byte {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	plants := [][]byte{
		[]byte("malware"), []byte("POWERSHELL"), []byte("k\x00e\x00r\x00n\x00e\x00l\x003\x002\x00"),
		[]byte("CMD.EXE"), []byte("C\x00m\x00D\x00.\x00e\x00x\x00e\x00"), []byte(" run "), []byte("rerun"),
		[]byte("aHR0cDovL"), []byte("MZ\x90\x00"), []byte("\xE8\x01\x02\x03\x04\x55\x8B"),
		[]byte("\x55\x8B\xEC\x01\x02\x03\xC3"), []byte("\x6A\x00\x68"), []byte("\x6A\x140\x68"),
		[]byte("PK....\x03\x04"), []byte("evil123.com"), []byte("begin---\n---end"),
		[]byte("deadbeef-cafe"), []byte("GET /index"), []byte("POST /x"), []byte("A\x00d\x00M\x00i\x00n\x00"),
		[]byte("\xE9\x05\xC3"), []byte(" password1 "), []byte("ababab"), []byte("xyz uvw"), []byte("abc"),
		[]byte("joe@evil.com"), []byte(" x_1@evil.com"), []byte("NOTEPAD.EXE"), []byte("abcdef bcdef"),
		[]byte("r\x00e\x00r\x00u\x00n\x00"), []byte("\x01\x02\x8B\x45\xFC"), []byte("\x33\xC0\x90\x90\x5D\xC3"),
	}
	key := byte(rng.IntN(31) + 1)
	xs := []byte("secret")
	for i := range xs {
		xs[i] ^= key
	}
	plants = append(plants, xs)
	var b bytes.Buffer
	if seed%2 == 0 {
		b.WriteString("MZ\x01\x00\x02\x00")
	}
	for b.Len() < size {
		switch rng.IntN(4) {
		case 0:
			b.Write(plants[rng.IntN(len(plants))])
		case 1:
			n := rng.IntN(64)
			for i := 0; i < n; i++ {
				b.WriteByte(byte(rng.IntN(256)))
			}
		case 2:
			n := rng.IntN(64)
			for i := 0; i < n; i++ {
				b.WriteByte("abcdefghijklmnopqrstuvwxyz .\n"[rng.IntN(29)])
			}
		default:
			b.Write(make([]byte, rng.IntN(16)))
		}
	}
	return b.Bytes()[:size]
}

// TestDifferentialYara compares this engine with the yara command (YARA
// 4.2.3 in CI) on rules and data of our own making. It is skipped when the
// yara command is absent.
func TestDifferentialYara(t *testing.T) {
	bin, err := exec.LookPath("yara")
	if err != nil {
		t.Skip("yara command not installed")
	}
	dir := t.TempDir()
	rulesPath := filepath.Join(dir, "rules.yar")
	writeFile(t, rulesPath, diffRules)
	r := mustCompile(t, diffRules)
	seenRules := map[string]bool{}
	hits := 0
	for seed := uint64(1); seed <= 12; seed++ {
		data := diffData(seed, 4096+int(seed)*3000)
		dataPath := filepath.Join(dir, fmt.Sprintf("data%d.bin", seed))
		if err := os.WriteFile(dataPath, data, 0o644); err != nil {
			t.Fatal(err)
		}
		wantRules, wantHits := runYara(t, bin, rulesPath, dataPath)
		for name := range wantRules {
			seenRules[name] = true
		}
		hits += len(wantHits)
		ms, err := r.ScanBytes(data)
		if err != nil {
			t.Fatal(err)
		}
		gotRules := map[string]bool{}
		var gotHits []yaraHit
		for _, m := range ms {
			gotRules[m.Rule] = true
			for _, s := range m.Strings {
				gotHits = append(gotHits, yaraHit{rule: m.Rule, id: s.ID, off: s.Offset})
			}
		}
		for name := range wantRules {
			if !gotRules[name] {
				t.Errorf("seed %d: yara matched rule %s, we did not", seed, name)
			}
		}
		for name := range gotRules {
			if !wantRules[name] {
				t.Errorf("seed %d: we matched rule %s, yara did not", seed, name)
			}
		}
		key := func(h yaraHit) string { return fmt.Sprintf("%s %s %d", h.rule, h.id, h.off) }
		var w, g []string
		for _, h := range wantHits {
			w = append(w, key(h))
		}
		for _, h := range gotHits {
			g = append(g, key(h))
		}
		sort.Strings(w)
		sort.Strings(g)
		if strings.Join(w, "\n") != strings.Join(g, "\n") {
			t.Errorf("seed %d: string matches differ\nyara:\n%s\nours:\n%s", seed, strings.Join(w, "\n"), strings.Join(g, "\n"))
		}
	}
	t.Logf("yara matched %d of the rules and %d strings in all", len(seenRules), hits)
	for _, line := range strings.Split(diffRules, "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "rule" && !seenRules[f[1]] {
			t.Logf("rule %s never matched", f[1])
		}
	}
	// The comparison means something only if the data exercises the rules.
	if len(seenRules) < 35 {
		t.Errorf("yara matched only %d distinct rules; the generated data no longer exercises the rule set", len(seenRules))
	}
}

// TestDifferentialYaraBenchRules compares rule and string matches with the
// yara command on the benchmark's generated rule shapes, over mixed data in
// which some of the rules' strings are planted (ASCII, UTF-16, upper case).
func TestDifferentialYaraBenchRules(t *testing.T) {
	bin, err := exec.LookPath("yara")
	if err != nil {
		t.Skip("yara command not installed")
	}
	n := 600
	if testing.Short() {
		n = 150
	}
	src := benchRuleSet(n, 3)
	data := benchData(1<<20, 4)
	rng := rand.New(rand.NewPCG(5, 6))
	words := regexp.MustCompile(`\$[ab] = "([^"]+)"`).FindAllStringSubmatch(src, -1)
	for i, w := range words {
		if i%3 != 0 {
			continue
		}
		plant := []byte(w[1])
		switch i % 4 {
		case 1:
			plant = widen(plant)
		case 2:
			plant = bytes.ToUpper(plant)
		}
		pos := rng.IntN(len(data) - len(plant))
		copy(data[pos:], plant)
	}
	dir := t.TempDir()
	rulesPath := filepath.Join(dir, "rules.yar")
	dataPath := filepath.Join(dir, "data.bin")
	writeFile(t, rulesPath, src)
	if err := os.WriteFile(dataPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	wantRules, wantHits := runYara(t, bin, rulesPath, dataPath)
	ms, err := mustCompile(t, src).ScanBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	var w, g []string
	for _, h := range wantHits {
		w = append(w, fmt.Sprintf("%s %s %d", h.rule, h.id, h.off))
	}
	gotRules := 0
	for _, m := range ms {
		gotRules++
		if !wantRules[m.Rule] {
			t.Errorf("we matched rule %s, yara did not", m.Rule)
		}
		for _, s := range m.Strings {
			g = append(g, fmt.Sprintf("%s %s %d", m.Rule, s.ID, s.Offset))
		}
	}
	if gotRules != len(wantRules) {
		t.Errorf("we matched %d rules, yara %d", gotRules, len(wantRules))
	}
	sort.Strings(w)
	sort.Strings(g)
	if strings.Join(w, "\n") != strings.Join(g, "\n") {
		t.Errorf("string matches differ: yara %d, ours %d", len(w), len(g))
	}
	t.Logf("%d rules, yara matched %d rules and %d strings", n, len(wantRules), len(wantHits))
	if len(wantRules) < n/10 {
		t.Errorf("yara matched only %d rules: the planted strings no longer exercise the rules", len(wantRules))
	}
}

// TestDifferentialYaraEdges compares condition corner cases (empty loops,
// undefined values, integer and string arithmetic) with the yara command.
func TestDifferentialYaraEdges(t *testing.T) {
	bin, err := exec.LookPath("yara")
	if err != nil {
		t.Skip("yara command not installed")
	}
	src, err := os.ReadFile("testdata/edge.yar")
	if err != nil {
		t.Fatal(err)
	}
	dataPath := filepath.Join(t.TempDir(), "dummy")
	writeFile(t, dataPath, "dummy")
	want, _ := runYara(t, bin, "testdata/edge.yar", dataPath)
	ms, err := mustCompile(t, string(src)).ScanBytes([]byte("dummy"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, m := range ms {
		got[m.Rule] = true
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("matching rules (-yara +ours):\n%s", diff)
	}
	if len(want) == 0 {
		t.Error("yara matched no rule; the edge cases test nothing")
	}
}

// TestDifferentialYaraLimits compares matches around YARA's 4096-byte
// match limit: regexes are bound by it, hex strings with long jumps are
// chained and are not.
func TestDifferentialYaraLimits(t *testing.T) {
	bin, err := exec.LookPath("yara")
	if err != nil {
		t.Skip("yara command not installed")
	}
	src := `rule hex_unbounded { strings: $a = { 4D 5A [-] 50 45 } condition: $a }
rule hex_long { strings: $a = { 4D 5A [10-5000] 50 45 [0-300] 00 } condition: $a }
rule re_star { strings: $a = /MZ.*PE/s condition: $a }
rule re_bounded { strings: $a = /MZ.{0,5000}PE/s condition: $a }
rule re_back { strings: $a = /[a-z]+PE/ condition: $a }`
	dir := t.TempDir()
	rulesPath := filepath.Join(dir, "r.yar")
	writeFile(t, rulesPath, src)
	r := mustCompile(t, src)
	for _, gap := range []int{100, 4088, 4092, 4093, 4095, 4096, 4100, 6000} {
		data := []byte("xxMZ" + strings.Repeat("q", gap) + "PE\x00 MZ PE")
		dataPath := filepath.Join(dir, "d.bin")
		if err := os.WriteFile(dataPath, data, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(bin, "-w", "-s", "-L", rulesPath, dataPath).CombinedOutput()
		if err != nil {
			t.Fatalf("yara: %v\n%s", err, out)
		}
		want := parseYaraL(t, out)
		ms, err := r.ScanBytes(data)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string][]string{}
		for _, m := range ms {
			got[m.Rule] = []string{}
			for _, s := range m.Strings {
				got[m.Rule] = append(got[m.Rule], fmt.Sprintf("%d:%d", s.Offset, len(s.Data)))
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("gap %d (-yara +ours):\n%s", gap, diff)
		}
	}
}

// TestDifferentialYaraFixedOffset checks that a string used only as
// "$a at N" (N constant) reports only its match at N, as YARA does.
func TestDifferentialYaraFixedOffset(t *testing.T) {
	bin, err := exec.LookPath("yara")
	if err != nil {
		t.Skip("yara command not installed")
	}
	src, err := os.ReadFile("testdata/fixed.yar")
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("abxxabab")
	dataPath := filepath.Join(t.TempDir(), "d.bin")
	writeFile(t, dataPath, string(data))
	out, err := exec.Command(bin, "-w", "-s", "-L", "testdata/fixed.yar", dataPath).CombinedOutput()
	if err != nil {
		t.Fatalf("yara: %v\n%s", err, out)
	}
	want := parseYaraL(t, out)
	ms, err := mustCompile(t, string(src)).ScanBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, m := range ms {
		got[m.Rule] = []string{}
		for _, s := range m.Strings {
			got[m.Rule] = append(got[m.Rule], fmt.Sprintf("%d:%d", s.Offset, len(s.Data)))
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("matches (-yara +ours):\n%s", diff)
	}
}
