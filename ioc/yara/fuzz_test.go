package yara

import (
	"bytes"
	"testing"
)

var fuzzRuleSeeds = []string{
	`rule a { strings: $a = "abc" nocase wide ascii fullword condition: $a }`,
	`rule a { strings: $a = { 4D 5A [2-8] (50 45 | 4E 45) ?? 00 } condition: $a at 0 }`,
	`rule a { strings: $a = /ab[^c]{2,5}?d\b/is condition: #a > 1 and @a[2] < 100 and !a[1] == 4 }`,
	`rule a { strings: $a = "xyz" xor(1-200) $b = "hello" base64 base64wide condition: any of them }`,
	`rule a { condition: for all i in (0..filesize \ 2) : (uint8(i) != 0xFF) }`,
	`import "hash" import "math" rule a { condition: hash.sha256(0, filesize) != "" and math.entropy(0, filesize) > 1 }`,
	`global private rule g { condition: filesize > 0 } rule b : t { meta: a = 1 condition: g and 50% of (g*) }`,
	`rule a { strings: $a = "a" condition: $a in (1..1) and #a in (0x1..1) < 2 }`,
	`rule a { strings: $ = "q" $ = "r" condition: for any of ($*) : ($ in (0..10)) }`,
	"rule a { condition: \"\\xE9\" matches /\\xE9+$/ }",
	`rule a { strings: $a = { 4D 5A [-] 50 45 [0-300] 00 } $b = { 61 [300-] 62 } condition: $a or #b > 1 }`,
	`rule a { strings: $a = /\w+@x\.com/ wide ascii $b = { ( 01 | 02 03 ) 04 05 [1-3] 06 } $c = /(a|bc)+def\b/ fullword condition: any of them }`,
}

// FuzzCompile feeds arbitrary source to Compile: it must return rules or an
// error, never panic, and compiled rules must scan without panicking.
func FuzzCompile(f *testing.F) {
	for _, s := range fuzzRuleSeeds {
		f.Add(s)
	}
	f.Add("rule")
	f.Add("rule a { strings: $a = /(((a*)*)*)*b/ condition: $a }")
	f.Fuzz(func(t *testing.T, src string) {
		old := catchPanics
		catchPanics = false
		defer func() { catchPanics = old }()
		r, err := Compile(src)
		if err != nil {
			if _, ok := err.(*CompileError); !ok {
				t.Fatalf("error %T is not a *CompileError: %v", err, err)
			}
			return
		}
		if _, err := r.ScanBytes([]byte("MZ\x90\x00abc xyz hello \xE9\xE9 aGVsbG8")); err != nil {
			t.Fatalf("ScanBytes: %v", err)
		}
	})
}

// FuzzScanBytes scans arbitrary data with rules that use every kind of
// string and checks the invariants of the result.
func FuzzScanBytes(f *testing.F) {
	var rs []*Rules
	for _, s := range fuzzRuleSeeds {
		r, err := Compile(s)
		if err != nil {
			f.Fatalf("seed %q: %v", s, err)
		}
		rs = append(rs, r)
	}
	f.Add([]byte("MZ\x00\x00PE\x00\x00abcABC a\x00b\x00c\x00"))
	f.Add([]byte("abXXXXd abxd abyyd aGVsbG8gd29ybGQ= xyz"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, r := range rs {
			ms, err := r.ScanBytes(data)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range ms {
				last := map[string]int64{}
				for _, s := range m.Strings {
					if s.Offset < 0 || s.Offset+int64(len(s.Data)) > int64(len(data)) {
						t.Fatalf("match %s@%d out of range", s.ID, s.Offset)
					}
					if !bytes.Equal(s.Data, data[s.Offset:s.Offset+int64(len(s.Data))]) {
						t.Fatalf("match %s@%d data differs from the input", s.ID, s.Offset)
					}
					if p, ok := last[s.ID]; ok && s.ID != "$" && p >= s.Offset {
						t.Fatalf("matches of %s not in increasing offset order", s.ID)
					}
					last[s.ID] = s.Offset
				}
			}
		}
	})
}
