package isolation_test

import (
	"testing"

	"github.com/cordonsec/cordon/isolation"
)

func TestDiffLines(t *testing.T) {
	cases := []struct {
		name      string
		got, want []string
		diff      string
	}{
		{"both empty", nil, nil, ""},
		{"same, other order", []string{"b", "a"}, []string{"a", "b"}, ""},
		{"missing", []string{"a"}, []string{"a", "b"}, "- b"},
		{"excess", []string{"a", "c"}, []string{"a"}, "+ c"},
		{"counts matter", []string{"a", "a"}, []string{"a"}, "+ a"},
		{"both ways, sorted", []string{"z", "a", "a"}, []string{"a", "b", "b"}, "+ a\n+ z\n- b\n- b"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if d := isolation.DiffLines(c.got, c.want); d != c.diff {
				t.Fatalf("DiffLines(%q, %q) = %q, want %q", c.got, c.want, d, c.diff)
			}
		})
	}
}
