package isolation

import (
	"slices"
	"strings"
)

// DiffLines compares two multisets of lines, such as the canonical text
// of the rules a platform holds (got) and of those a plan generates
// (want). It returns "" when they hold the same lines the same number of
// times, and otherwise one line per difference, sorted: "- " and a line
// missing from got, "+ " and a line got has in excess. Adapters put it in
// their ErrReadBack errors so that all read-back failures read alike.
func DiffLines(got, want []string) string {
	count := make(map[string]int, len(want))
	for _, s := range want {
		count[s]++
	}
	for _, s := range got {
		count[s]--
	}
	var lines []string
	for s, n := range count {
		for ; n > 0; n-- {
			lines = append(lines, "- "+s)
		}
		for ; n < 0; n++ {
			lines = append(lines, "+ "+s)
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}
