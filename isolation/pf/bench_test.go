package pf

import (
	"context"
	"testing"
)

// BenchmarkRulesetParse measures generating a plan's ruleset and parsing
// it into the rules read-back compares.
func BenchmarkRulesetParse(b *testing.B) {
	p := goldenPlans(b)["custom-rules"]
	for b.Loop() {
		if _, err := parseRules(Ruleset(p)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApplyUnchanged measures an Apply that finds the plan already in
// force, against the fake pfctl (so without process start-up costs).
func BenchmarkApplyUnchanged(b *testing.B) {
	p := goldenPlans(b)["default-profiles"]
	pfctl := newFakePfctl()
	e, err := New(Config{Runner: pfctl, StateDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()
	if err := e.Apply(ctx, p); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := e.Apply(ctx, p); err != nil {
			b.Fatal(err)
		}
		pfctl.mu.Lock()
		pfctl.calls = pfctl.calls[:0]
		pfctl.mu.Unlock()
	}
}
