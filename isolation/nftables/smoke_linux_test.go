package nftables

import (
	"context"
	"testing"

	"github.com/cordonsec/cordon/isolation/isolationtest"
)

func TestSmokeApplyObserve(t *testing.T) {
	needRoot(t)
	h := newNS(t, "h")
	e := enforcerIn(t, h)
	ctx := context.Background()
	if err := e.Apply(ctx, isolationtest.PlanA()); err != nil {
		t.Fatal(err)
	}
	o, err := e.Observe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !o.Active || !o.Plan.Equivalent(isolationtest.PlanA()) {
		t.Fatalf("observed %v\n%s", o.Active, o.Plan)
	}
}
