package wfp

import (
	"context"
	"testing"
)

// BenchmarkBuildFilters measures turning a plan (the default profiles,
// custom rules) into its filter set, as every Apply and Observe does.
func BenchmarkBuildFilters(b *testing.B) {
	p := goldenPlans(b)["custom-rules"]
	s := testSpec()
	for b.Loop() {
		if _, err := buildFilters(p, s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApplyUnchanged measures an Apply that finds the plan already in
// force (the Manager's periodic reconcile): read, compare, read back.
func BenchmarkApplyUnchanged(b *testing.B) {
	p := goldenPlans(b)["default-profiles"]
	eng := newFakeEngine()
	e, err := New(Config{Open: eng.open, Conns: &fakeConns{}, AgentPath: testAgent})
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
	}
}
