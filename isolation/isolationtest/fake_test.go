package isolationtest_test

import (
	"context"
	"errors"
	"testing"

	"github.com/cordonsec/cordon/isolation"
	"github.com/cordonsec/cordon/isolation/isolationtest"
)

func TestFakeConformance(t *testing.T) {
	for _, apps := range []bool{false, true} {
		name := "NoApplications"
		if apps {
			name = "Applications"
		}
		t.Run(name, func(t *testing.T) {
			isolationtest.RunHost(t, func(t *testing.T) isolationtest.Host {
				f := isolationtest.NewFake()
				f.Host().SetApplications(apps)
				return isolationtest.Host{
					Enforcer:     f,
					Reopen:       func(*testing.T) isolation.Enforcer { return f.Reopen() },
					Tamper:       func(context.Context) error { f.Host().Tamper(); return nil },
					Probe:        probeFake(f),
					Applications: apps,
				}
			})
		})
	}
}

func TestFakeShortForm(t *testing.T) {
	isolationtest.Run(t, func(*testing.T) isolation.Enforcer { return isolationtest.NewFake() })
}

// probeFake decides flows by the fake's state: what a real adapter would
// measure with packets.
func probeFake(f *isolationtest.Fake) func(context.Context, isolation.Flow) (bool, error) {
	return func(ctx context.Context, fl isolation.Flow) (bool, error) {
		active, p := f.Host().Active()
		return !active || p.Allows(fl), nil
	}
}

func TestFakeFailures(t *testing.T) {
	ctx := context.Background()
	f := isolationtest.NewFake()
	h := f.Host()

	h.FailApply(isolationtest.ErrInjected, 1)
	if err := f.Apply(ctx, isolationtest.PlanA()); !errors.Is(err, isolationtest.ErrInjected) {
		t.Fatalf("Apply = %v, want injected", err)
	}
	if active, _ := h.Active(); active {
		t.Fatal("failed Apply changed the state")
	}
	if err := f.Apply(ctx, isolationtest.PlanA()); err != nil {
		t.Fatalf("Apply after the one failure: %v", err)
	}

	h.CorruptNextApply()
	if err := f.Apply(ctx, isolationtest.PlanB()); !errors.Is(err, isolation.ErrReadBack) {
		t.Fatalf("Apply with corrupted read-back = %v, want ErrReadBack", err)
	}
	if err := f.Apply(ctx, isolationtest.PlanB()); err != nil {
		t.Fatalf("Apply repairing: %v", err)
	}

	h.FailClear(isolationtest.ErrInjected)
	if err := f.Clear(ctx); !errors.Is(err, isolationtest.ErrInjected) {
		t.Fatalf("Clear = %v, want injected", err)
	}
	h.FailClear(nil)
	if err := f.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{"apply-failed", "apply", "apply", "apply", "clear-failed", "clear"}
	if got := h.Calls(); len(got) != len(want) {
		t.Fatalf("calls %v, want %v", got, want)
	} else {
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("calls %v, want %v", got, want)
			}
		}
	}
	plans := h.Plans()
	if len(plans) != 3 || plans[0] != isolationtest.PlanA().String() || plans[2] != isolationtest.PlanB().String() {
		t.Fatalf("recorded plans:\n%q", plans)
	}
}
