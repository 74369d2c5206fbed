package yara

import (
	"errors"
	"strings"
	"testing"
)

// TestConditionNestingBounded: a condition nested deeper than YARA's parser
// allows is a compile error (it used to overflow the goroutine stack, a
// fatal error, at a million levels); long flat chains still compile, as in
// YARA.
func TestConditionNestingBounded(t *testing.T) {
	for _, src := range []string{
		"rule a { condition: " + strings.Repeat("(", 200000) + "1" + strings.Repeat(")", 200000) + " }",
		"rule a { condition: " + strings.Repeat("not ", 20000) + "true }",
		"rule a { condition: " + strings.Repeat("-", 20000) + "1 }",
	} {
		_, err := Compile(src)
		if !errors.Is(err, ErrSyntax) {
			t.Errorf("%.40q...: err %v, want ErrSyntax", src, err)
		}
	}
	ok := []string{
		"rule a { condition: " + strings.Repeat("(", 5000) + "1" + strings.Repeat(")", 5000) + " }",
		"rule a { condition: 1" + strings.Repeat(" + 1", 100000) + " > 0 }",
		"rule a { condition: " + strings.Repeat("(true and false) or ", 30000) + "true }",
	}
	for _, src := range ok {
		r, err := Compile(src)
		if err != nil {
			t.Fatalf("%.40q...: %v", src, err)
		}
		ms, err := r.ScanBytes([]byte("x"))
		if err != nil || len(ms) != 1 {
			t.Errorf("%.40q...: %d matches, %v; want 1", src, len(ms), err)
		}
	}
}
