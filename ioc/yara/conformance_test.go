package yara

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// conformanceMinPass is the number of in-scope cases of YARA 4.2.3's test
// suite that must pass. Raise it when the engine improves; never lower it to
// make a change pass.
const conformanceMinPass = 684

// conformanceDir is where CI clones the shared corpus, beside this repository.
const conformanceDir = "../../../shared/conformance/yara"

const expectedFailuresFile = "testdata/conformance_expected_failures.txt"

var updateExpected = flag.Bool("update-conformance", false, "rewrite "+expectedFailuresFile+" from this run")

type confCase struct {
	ID               string   `json:"id"`
	Kind             string   `json:"kind"`
	Rule             string   `json:"rule"`
	DataHex          *string  `json:"data_hex"`
	DataFile         string   `json:"data_file"`
	ExpectedHex      string   `json:"expected_hex"`
	ExpectedError    string   `json:"expected_error"`
	ExpectedMatches  int      `json:"expected_matches"`
	ExpectedWarnings int      `json:"expected_warnings"`
	Modules          []string `json:"modules"`
	Externals        bool     `json:"externals"`
	Include          bool     `json:"include"`
}

// runConfCase judges one case; it returns "" on success or the reason.
func runConfCase(c confCase, dataDir string) string {
	src := strings.ReplaceAll(c.Rule, "DATADIR", dataDir)
	rules, err := Compile(src,
		WithVariable("var_zero", int64(0)), WithVariable("var_one", int64(1)),
		WithVariable("var_true", true), WithVariable("var_false", false),
		WithIncludeDir(dataDir))
	if c.Kind == "error" {
		if err == nil {
			return "compiled, want error " + c.ExpectedError
		}
		return ""
	}
	if err != nil {
		return "compile error: " + err.Error()
	}
	if c.Kind == "warnings" {
		got := len(rules.Warnings())
		if (got > 0) != (c.ExpectedWarnings > 0) {
			return fmt.Sprintf("%d warnings, want %d", got, c.ExpectedWarnings)
		}
		return ""
	}
	data := []byte("dummy")
	switch {
	case c.DataFile != "":
		if data, err = os.ReadFile(filepath.Join(dataDir, c.DataFile)); err != nil {
			return "reading data: " + err.Error()
		}
	case c.DataHex != nil:
		if data, err = hex.DecodeString(*c.DataHex); err != nil {
			return "bad data_hex: " + err.Error()
		}
	}
	ms, err := rules.ScanBytes(data)
	if err != nil {
		return "scan error: " + err.Error()
	}
	switch c.Kind {
	case "true":
		if len(ms) == 0 {
			return "no rule matched, want a match"
		}
	case "false":
		if len(ms) != 0 {
			return fmt.Sprintf("rule %s matched, want no match", ms[0].Rule)
		}
	case "match_count":
		if len(ms) != c.ExpectedMatches {
			return fmt.Sprintf("%d rules matched, want %d", len(ms), c.ExpectedMatches)
		}
	case "capture":
		want, err := hex.DecodeString(c.ExpectedHex)
		if err != nil {
			return "bad expected_hex: " + err.Error()
		}
		var got []string
		for _, m := range ms {
			for _, s := range m.Strings {
				if s.ID != "$a" {
					continue
				}
				if bytes.Equal(s.Data, want) {
					return ""
				}
				got = append(got, fmt.Sprintf("%q", s.Data))
			}
		}
		return fmt.Sprintf("no match of $a is %q (got %s)", want, strings.Join(got, ", "))
	default:
		return "unknown kind " + c.Kind
	}
	return ""
}

func loadConformance(t testing.TB) ([]confCase, string) {
	dir, err := filepath.Abs(conformanceDir)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, "cases.jsonl"))
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("conformance corpus missing in CI: %v", err)
		}
		t.Skipf("conformance corpus not present: %v", err)
	}
	defer f.Close()
	var cases []confCase
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var c confCase
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("cases.jsonl: %v", err)
		}
		cases = append(cases, c)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return cases, filepath.Join(dir, "data")
}

func readExpectedFailures(t *testing.T) map[string]string {
	out := map[string]string{}
	b, err := os.ReadFile(expectedFailuresFile)
	if err != nil {
		if os.IsNotExist(err) {
			return out
		}
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, reason, _ := strings.Cut(line, "\t")
		out[id] = reason
	}
	return out
}

// TestConformance runs YARA 4.2.3's own rule tests (see the corpus README).
// Run with -update-conformance to rewrite the expected-failure list.
func TestConformance(t *testing.T) {
	cases, dataDir := loadConformance(t)
	expected := readExpectedFailures(t)
	var passed, inScope, outScope int
	failures := map[string]string{}
	for _, c := range cases {
		scope := true
		for _, m := range c.Modules {
			if !implementedModules[m] {
				scope = false
			}
		}
		if !scope {
			outScope++
			continue
		}
		inScope++
		if reason := runConfCase(c, dataDir); reason != "" {
			failures[c.ID] = reason
			continue
		}
		passed++
	}
	t.Logf("conformance: %d passed / %d in scope (%.1f%%), %d out of scope, %d total",
		passed, inScope, 100*float64(passed)/float64(max(inScope, 1)), outScope, len(cases))
	ids := make([]string, 0, len(failures))
	for id := range failures {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		t.Logf("FAIL %s: %s", id, failures[id])
	}
	if *updateExpected {
		var b strings.Builder
		b.WriteString("# Conformance cases expected to fail: id<TAB>reason. Generated by\n")
		b.WriteString("# go test ./ioc/yara -run TestConformance -update-conformance\n")
		for _, id := range ids {
			fmt.Fprintf(&b, "%s\t%s\n", id, strings.ReplaceAll(failures[id], "\n", " "))
		}
		if err := os.WriteFile(expectedFailuresFile, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	for _, id := range ids {
		if _, ok := expected[id]; !ok {
			t.Errorf("newly failing conformance case %s: %s", id, failures[id])
		}
	}
	for id := range expected {
		if _, ok := failures[id]; !ok {
			t.Errorf("conformance case %s now passes: remove it from %s", id, expectedFailuresFile)
		}
	}
	if passed < conformanceMinPass {
		t.Errorf("conformance: %d cases passed, fewer than the recorded %d", passed, conformanceMinPass)
	}
}
