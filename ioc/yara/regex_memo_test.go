package yara

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// TestRegexMemoSound checks that the failure memo changes no result: random
// regexes (nested groups and repeats, greedy and lazy, anchors, alternation)
// give the same match at every offset of random data with the memo on from
// the first step and with it off.
func TestRegexMemoSound(t *testing.T) {
	defer func(v int) { memoAfter = v }(memoAfter)
	rng := rand.New(rand.NewPCG(3, 4))
	g := ruleGen{rng}
	data := make([]byte, 96)
	tried := 0
	for i := 0; i < 1500; i++ {
		src := g.regexAlt(0)
		if rng.IntN(2) == 0 {
			src = "(" + src + ")" + g.pick("*", "+", "{1,4}", "{0,3}?", "{2,}?", "+?")
			src += g.regexConcat(1)
		}
		re, err := parseRegex(src, rng.IntN(4) == 0, rng.IntN(2) == 0)
		if err != nil {
			continue
		}
		for j := range data {
			data[j] = "abc a\x00\n"[rng.IntN(7)]
		}
		wide := rng.IntN(5) == 0
		for start := range data {
			memoAfter = math.MaxInt
			off := reMatcher{data: data, limit: len(data), wide: wide}
			want := off.matchAt(re, start)
			wantSteps := off.steps
			memoAfter = 0
			on := reMatcher{data: data, limit: len(data), wide: wide}
			got := on.matchAt(re, start)
			if wantSteps > reMaxSteps {
				continue // abandoned without the memo: nothing to compare
			}
			tried++
			if got != want {
				t.Fatalf("/%s/ (wide %v) at %d of %q: memo gives %d, without %d", src, wide, start, data, got, want)
			}
		}
	}
	if tried < 50000 {
		t.Fatalf("only %d attempts compared", tried)
	}
}

// TestRegexBacktrackingPolynomial: patterns that backtrack exponentially
// without the memo find YARA's matches (the longest at the first offsets,
// which the step limit used to abandon) and stay within the step budget.
func TestRegexBacktrackingPolynomial(t *testing.T) {
	cases := []struct {
		rule string
		data string
		// the number of matches and the first one's offset and length,
		// as yara 4.2.3 reports them
		count int
		off   int64
		n     int
	}{
		{`rule r { strings: $a = /a(a|aa){1,30}c/ condition: $a }`, strings.Repeat("a", 100) + "c", 60, 39, 62},
		{`rule r { strings: $a = /a.{0,30}a.{0,30}a.{0,30}a.{0,30}a.{0,30}b/s condition: $a }`, strings.Repeat("a", 300) + "b", 151, 145, 156},
		{`rule r { strings: $a = { 61 [0-30] 61 [0-30] 61 [0-30] 61 [0-30] 61 [0-30] 62 } condition: $a }`, strings.Repeat("a", 300) + "b", 151, 145, 156},
		{`rule r { strings: $a = /x((a|b)*a){1,8}c/ condition: $a }`, "x" + strings.Repeat("ab", 40) + "ac", 1, 0, 83},
	}
	for _, c := range cases {
		r, err := Compile(c.rule)
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		ms, err := r.ScanBytes([]byte(c.data))
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != 1 || len(ms[0].Strings) == 0 {
			t.Fatalf("%s: no match", c.rule)
		}
		s := ms[0].Strings[0]
		if len(ms[0].Strings) != c.count || s.Offset != c.off || len(s.Data) != c.n {
			t.Errorf("%s: %d matches, the first %d+%d; want %d, %d+%d", c.rule,
				len(ms[0].Strings), s.Offset, len(s.Data), c.count, c.off, c.n)
		}
		t.Logf("%s: %d matches in %v", c.rule, len(ms[0].Strings), time.Since(t0))
	}
}
