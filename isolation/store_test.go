package isolation_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cordonsec/cordon/isolation"
	"github.com/cordonsec/cordon/isolation/isolationtest"
)

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestFileStoreRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := isolation.FileStore{Path: filepath.Join(t.TempDir(), "state.json")}
	if _, ok, err := s.Load(ctx); ok || err != nil {
		t.Fatalf("empty store: ok=%v err=%v", ok, err)
	}
	want := isolation.Record{State: isolation.StateOn, Target: isolation.StateOn, Mode: isolation.ModeManual,
		Since: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC), Deadline: time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC),
		Exclusions: isolation.Exclusions{Rules: []isolation.Rule{manualSSH}}, Commands: []string{"c1"}}
	if err := s.Save(ctx, want); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.Load(ctx)
	if err != nil || !ok {
		t.Fatalf("Load: %v %v", ok, err)
	}
	if got.State != want.State || got.Mode != want.Mode || !got.Deadline.Equal(want.Deadline) ||
		!got.Exclusions.Equal(want.Exclusions) || got.Exclusions.Profiles != nil || len(got.Commands) != 1 {
		t.Fatalf("round trip: %+v", got)
	}
	fi, err := os.Stat(s.Path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file mode %v %v", fi.Mode(), err)
	}
	entries, _ := os.ReadDir(filepath.Dir(s.Path))
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
}

func TestDecodeRecordRejects(t *testing.T) {
	cases := map[string]string{
		"not json":      `{`,
		"unknown field": `{"version":1,"state":"off","exclusions":{},"colour":1}`,
		"version":       `{"version":2,"state":"off","exclusions":{}}`,
		"state":         `{"version":1,"state":"dancing","exclusions":{}}`,
		"target":        `{"version":1,"state":"failed","target":"isolating","exclusions":{}}`,
		"bad rule":      `{"version":1,"state":"on","exclusions":{"rules":["out tcp rport=0"]}}`,
		"bad endpoint":  `{"version":1,"state":"on","exclusions":{},"management":[{"name":"x","protocol":"tcp","addrs":[],"port":1}]}`,
		"trailing":      `{"version":1,"state":"off","exclusions":{}} {}`,
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := isolation.DecodeRecord([]byte(in)); !errors.Is(err, isolation.ErrCorrupt) {
				t.Fatalf("DecodeRecord = %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestRestoreCorruptStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "state.json")
		if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := baseConfig()
		cfg.Enforcer, cfg.Store, cfg.Resolver = isolationtest.NewFake(), isolation.FileStore{Path: path}, &resolver{addrs: nil}
		m, err := isolation.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		err = m.Restore(context.Background())
		if !errors.Is(err, isolation.ErrCorrupt) {
			t.Fatalf("Restore = %v, want ErrCorrupt", err)
		}
		if st := m.Status(); st.State != isolation.StateOff || st.LastError == "" {
			t.Fatalf("status %+v", st)
		}
	})
}

func TestRestoreClearsStaleRules(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := isolationtest.NewFake()
		if err := fake.Apply(context.Background(), isolationtest.PlanA()); err != nil {
			t.Fatal(err)
		}
		s := &sink{}
		cfg := baseConfig()
		cfg.Enforcer, cfg.Sink, cfg.Resolver = fake, s, &resolver{}
		m, err := isolation.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if err := m.Restore(context.Background()); err != nil {
			t.Fatal(err)
		}
		if active, _ := fake.Host().Active(); active {
			t.Fatal("stale rules without a persisted isolation were kept")
		}
		if ev := s.last(); ev.Kind != isolation.EventReleased {
			t.Fatalf("event %+v", ev)
		}
	})
}

// unreadable is an enforcer whose Observe finds its rules in force but
// not readable as a plan (tampered, or foreign content in its table).
type unreadable struct{ *isolationtest.Fake }

func (u unreadable) Observe(ctx context.Context) (isolation.Observation, error) {
	obs, err := u.Fake.Observe(ctx)
	if err != nil || !obs.Active {
		return obs, err
	}
	return isolation.Observation{Active: true}, fmt.Errorf("unreadable: %w", isolation.ErrReadBack)
}

func TestRestoreClearsStaleRulesThatReadBackWrong(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := isolationtest.NewFake()
		if err := fake.Apply(context.Background(), isolationtest.PlanA()); err != nil {
			t.Fatal(err)
		}
		cfg := baseConfig()
		cfg.Enforcer, cfg.Resolver = unreadable{fake}, &resolver{}
		m, err := isolation.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if err := m.Restore(context.Background()); err != nil {
			t.Fatal(err)
		}
		if active, _ := fake.Host().Active(); active {
			t.Fatal("stale rules that read back wrong were kept while the state is off")
		}
		if st := m.Status(); st.State != isolation.StateOff {
			t.Fatalf("status %+v", st)
		}
	})
}

// TestReleaseWhileOffClearsRulesInForce: a state file that cannot be read
// on start leaves the Manager off while the previous process's rules are
// still in force; a release must end them (before, it did nothing, and
// the host stayed cut off with no deadline).
func TestReleaseWhileOffClearsRulesInForce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := isolationtest.NewFake()
		if err := fake.Apply(context.Background(), isolationtest.PlanA()); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "state.json")
		if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
			t.Fatal(err)
		}
		s := &sink{}
		cfg := baseConfig()
		cfg.Enforcer, cfg.Sink, cfg.Resolver, cfg.Store = fake, s, &resolver{}, isolation.FileStore{Path: path}
		m, err := isolation.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if err := m.Restore(context.Background()); !errors.Is(err, isolation.ErrCorrupt) {
			t.Fatalf("Restore = %v, want ErrCorrupt", err)
		}
		if active, _ := fake.Host().Active(); !active {
			t.Fatal("test setup: rules should still be in force")
		}
		st, err := m.Release(context.Background(), isolation.ReleaseRequest{Requester: "console", Reason: "unstick"})
		if err != nil || st.State != isolation.StateOff {
			t.Fatalf("Release = %+v, %v", st, err)
		}
		if active, _ := fake.Host().Active(); active {
			t.Fatal("release while off left the rules in force")
		}
		if ev := s.last(); ev.Kind != isolation.EventReleased || ev.Requester != "console" {
			t.Fatalf("last event %+v", ev)
		}
		// Off with nothing in force: a release does nothing at all.
		calls := len(fake.Host().Calls())
		if _, err := m.Release(context.Background(), isolation.ReleaseRequest{}); err != nil {
			t.Fatal(err)
		}
		if got := fake.Host().Calls(); len(got) != calls {
			t.Fatalf("second release called the enforcer: %v", got)
		}
	})
}
