package yara

import (
	"errors"
	"testing"
)

// TestCompileErrorsNameTheRule: every compile-time check, those gyp makes
// included, names the rule the error is in. The first rule is valid and
// mentions "rule decoy" in a comment, a string and a regex, which must not
// be taken for a rule declaration.
func TestCompileErrorsNameTheRule(t *testing.T) {
	const head = "rule first { // rule decoy1\n strings: $s = \"rule decoy2\" $r = /rule decoy3/ /* rule decoy4 */\n condition: $s or $r }\n"
	tests := []struct {
		name, body string
		kind       error
	}{
		{"undefined identifier", "condition: nope", ErrUndefined},
		{"undefined string", "strings: $a = \"x\" condition: $a and $b", ErrUndefined},
		{"undefined count", "strings: $a = \"x\" condition: $a and #b > 0", ErrUndefined},
		{"unreferenced string", "strings: $a = \"x\" $b = \"y\" condition: $a", ErrUnreferencedString},
		{"duplicate string", "strings: $a = \"x\" $a = \"y\" condition: all of them", ErrDuplicate},
		{"duplicate modifier", "strings: $a = \"x\" wide wide condition: $a", ErrDuplicate},
		{"duplicate tag", "condition: true } rule dup : t t { condition: true", ErrDuplicate},
		{"invalid regex", "strings: $a = /a(/ condition: $a", ErrInvalidString},
		{"invalid hex", "strings: $a = { 6 } condition: $a", ErrInvalidString},
		{"invalid jump", "strings: $a = { 61 [5-2] 62 } condition: $a", ErrInvalidString},
		{"literal overflow", "condition: 99999999999999999999 > 0", ErrOverflow},
		{"constant overflow", "condition: 0x7fffffffffffffff * 2 > 0", ErrOverflow},
		{"modifiers", "strings: $a = \"x\" xor nocase condition: $a", ErrInvalidString},
		{"xor range", "strings: $a = \"x\" xor(5-3) condition: $a", ErrInvalidString},
		{"base64 alphabet", "strings: $a = \"x\" base64(\"abc\") condition: $a", ErrInvalidString},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := "second"
			if tt.name == "duplicate tag" {
				want = "dup"
			}
			_, err := Compile(head + "rule second {\n " + tt.body + "\n}\n")
			var ce *CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a *CompileError", err)
			}
			if ce.Rule != want || ce.Line < 4 {
				t.Errorf("rule %q line %d, want rule %q line >= 4 (%v)", ce.Rule, ce.Line, want, err)
			}
			if !errors.Is(err, tt.kind) {
				t.Errorf("%v is not %v", err, tt.kind)
			}
		})
	}
}
