package isolation_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cordonsec/cordon/isolation"
	"github.com/cordonsec/cordon/isolation/isolationtest"
)

// sink records audit events.
type sink struct {
	mu  sync.Mutex
	evs []isolation.Event
}

func (s *sink) Publish(_ context.Context, e isolation.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.evs = append(s.evs, e)
	return nil
}

func (s *sink) kinds() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, e := range s.evs {
		out = append(out, string(e.Kind))
	}
	return out
}

func (s *sink) last() isolation.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.evs) == 0 {
		return isolation.Event{}
	}
	return s.evs[len(s.evs)-1]
}

// resolver is a fake name service.
type resolver struct {
	mu     sync.Mutex
	addrs  map[string][]netip.Addr
	err    error
	calls  int
	onCall func()
}

func (r *resolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.onCall != nil {
		r.onCall()
	}
	if r.err != nil {
		return nil, r.err
	}
	a, ok := r.addrs[host]
	if !ok {
		return nil, fmt.Errorf("no such host %s", host)
	}
	return slices.Clone(a), nil
}

func (r *resolver) set(host string, addrs ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var as []netip.Addr
	for _, a := range addrs {
		as = append(as, netip.MustParseAddr(a))
	}
	r.addrs[host] = as
}

func (r *resolver) fail(err error) {
	r.mu.Lock()
	r.err = err
	r.mu.Unlock()
}

type env struct {
	t     *testing.T
	m     *isolation.Manager
	fake  *isolationtest.Fake
	sink  *sink
	res   *resolver
	store isolation.Store
	cfg   isolation.Config
}

var (
	autoWeb   = mustRule("out tcp remote=198.18.1.0/24 rport=443 name=auto-web")
	manualSSH = mustRule("in tcp remote=198.18.2.5 lport=22 name=manual-ssh")
)

func mustRule(s string) isolation.Rule {
	r, err := isolation.ParseRule(s)
	if err != nil {
		panic(err)
	}
	return r
}

func baseConfig() isolation.Config {
	return isolation.Config{
		Host:       "h-42",
		Management: []isolation.ManagementEndpoint{{Address: "bus.test:4222"}, {Address: "[2001:db8::10]:4222"}},
		Automatic: isolation.ModeConfig{Exclusions: isolation.Exclusions{
			Profiles: []isolation.Profile{isolation.ProfileDNSClient}, Rules: []isolation.Rule{autoWeb}}},
		Manual: isolation.ModeConfig{Duration: 2 * time.Hour, Exclusions: isolation.Exclusions{
			Profiles: []isolation.Profile{}, Rules: []isolation.Rule{manualSSH}}},
	}
}

// newEnv builds and restores a Manager over a fresh fake; call inside a
// synctest bubble. The manager is closed at the end of the bubble's test.
func newEnv(t *testing.T, tweak func(*isolation.Config)) *env {
	t.Helper()
	e := &env{t: t, fake: isolationtest.NewFake(), sink: &sink{}, res: &resolver{addrs: map[string][]netip.Addr{}}, store: &isolation.MemoryStore{}}
	e.res.set("bus.test", "198.18.0.10", "2001:db8::11")
	e.cfg = baseConfig()
	e.cfg.Enforcer, e.cfg.Sink, e.cfg.Resolver, e.cfg.Store = e.fake, e.sink, e.res, e.store
	if tweak != nil {
		tweak(&e.cfg)
	}
	e.start()
	return e
}

func (e *env) start() {
	e.t.Helper()
	m, err := isolation.New(e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.m = m
	e.t.Cleanup(func() { _ = m.Close() })
	if err := m.Restore(context.Background()); err != nil {
		e.t.Fatalf("Restore: %v", err)
	}
}

func (e *env) isolate(req isolation.Request) isolation.Status {
	e.t.Helper()
	st, err := e.m.Isolate(context.Background(), req)
	if err != nil {
		e.t.Fatalf("Isolate(%+v): %v", req, err)
	}
	return st
}

// plan returns the plan in force on the fake host, or fails.
func (e *env) plan() isolation.Plan {
	e.t.Helper()
	active, p := e.fake.Host().Active()
	if !active {
		e.t.Fatal("fake host is not isolated")
	}
	return p
}

func TestIsolateModes(t *testing.T) {
	cases := []struct {
		mode         isolation.Mode
		wantDeadline time.Duration
		want, absent []string
	}{
		{isolation.ModeAutomatic, 8 * time.Hour,
			[]string{"rule out tcp remote=198.18.1.0/24 rport=443 name=auto-web", "rule out udp rport=53 name=dns-client"},
			[]string{"manual-ssh"}},
		{isolation.ModeManual, 2 * time.Hour,
			[]string{"rule in tcp remote=198.18.2.5 lport=22 name=manual-ssh"},
			[]string{"auto-web", "dns-client", "dhcp"}},
	}
	for _, c := range cases {
		t.Run(c.mode.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, nil)
				start := time.Now()
				st := e.isolate(isolation.Request{Mode: c.mode, Reason: "test", Requester: "alice"})
				if st.State != isolation.StateOn || st.Mode != c.mode || !st.Deadline.Equal(start.Add(c.wantDeadline)) {
					t.Fatalf("status %+v, want on, %s, deadline +%v", st, c.mode, c.wantDeadline)
				}
				text := e.plan().String()
				for _, w := range append(c.want,
					"loopback allow",
					"mgmt tcp addr=198.18.0.10,2001:db8::11 port=4222 name=bus.test:4222",
					"mgmt tcp addr=2001:db8::10 port=4222",
					"rule both icmpv6 icmp=130,131,132,133,134,135,136,143 name=icmpv6-nd") {
					if !strings.Contains(text, w) {
						t.Errorf("plan lacks %q:\n%s", w, text)
					}
				}
				for _, a := range c.absent {
					if strings.Contains(text, a) {
						t.Errorf("plan holds %q of the other mode:\n%s", a, text)
					}
				}
				if got, want := e.sink.kinds(), []string{"isolating", "enabled"}; !slices.Equal(got, want) {
					t.Fatalf("events %v, want %v", got, want)
				}
				ev := e.sink.last()
				if ev.Requester != "alice" || ev.Reason != "test" || ev.Mode != c.mode || ev.Host != "h-42" ||
					ev.From != isolation.StateIsolating || ev.To != isolation.StateOn || len(ev.Exclusions) == 0 || len(ev.Management) != 2 {
					t.Fatalf("enabled event %+v", ev)
				}
			})
		})
	}
}

func TestDefaultDurationWhenModeUnset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, func(c *isolation.Config) { c.Manual.Duration = 0 })
		start := time.Now()
		st := e.isolate(isolation.Request{Mode: isolation.ModeManual})
		if !st.Deadline.Equal(start.Add(isolation.DefaultDuration)) {
			t.Fatalf("deadline %v, want start+8h", st.Deadline.Sub(start))
		}
	})
}

func TestRequestValidation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil)
		bad := []isolation.Request{
			{},
			{Mode: 9},
			{Mode: isolation.ModeAutomatic, UntilReleased: true},
			{Mode: isolation.ModeManual, UntilReleased: true, Duration: time.Hour},
			{Mode: isolation.ModeManual, Duration: -time.Second},
		}
		for _, r := range bad {
			if _, err := e.m.Isolate(context.Background(), r); !errors.Is(err, isolation.ErrInvalidConfig) {
				t.Errorf("Isolate(%+v) = %v, want ErrInvalidConfig", r, err)
			}
		}
		if st := e.m.Status(); st.State != isolation.StateOff || len(e.fake.Host().Calls()) != 0 {
			t.Fatalf("invalid requests changed something: %+v %v", st, e.fake.Host().Calls())
		}
	})
}

func TestCustomDurationAndUntilReleased(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil)
		start := time.Now()
		st := e.isolate(isolation.Request{Mode: isolation.ModeAutomatic, Duration: 30 * time.Minute})
		if !st.Deadline.Equal(start.Add(30 * time.Minute)) {
			t.Fatalf("deadline %v", st.Deadline.Sub(start))
		}
		time.Sleep(31 * time.Minute)
		synctest.Wait()
		if st := e.m.Status(); st.State != isolation.StateOff {
			t.Fatalf("after the custom deadline: %+v", st)
		}
		st = e.isolate(isolation.Request{Mode: isolation.ModeManual, UntilReleased: true})
		if !st.UntilReleased || !st.Deadline.IsZero() {
			t.Fatalf("until released: %+v", st)
		}
		time.Sleep(100 * time.Hour)
		synctest.Wait()
		if st := e.m.Status(); st.State != isolation.StateOn {
			t.Fatalf("until-released isolation ended by itself: %+v", st)
		}
		// An automatic isolation on top does not put a deadline back.
		st = e.isolate(isolation.Request{Mode: isolation.ModeAutomatic, Duration: time.Hour})
		if !st.UntilReleased {
			t.Fatalf("automatic re-isolation shortened an until-released one: %+v", st)
		}
		// Nor does it take the hold over: until released is manual only,
		// with the host's own exclusions.
		if st.Mode != isolation.ModeManual {
			t.Fatalf("automatic re-isolation made an until-released isolation automatic: %+v", st)
		}
	})
}

func TestExtendNeverShortens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil)
		t0 := time.Now()
		e.isolate(isolation.Request{Mode: isolation.ModeAutomatic, Duration: 4 * time.Hour})
		applies := len(e.fake.Host().Plans())

		time.Sleep(time.Hour)
		st := e.isolate(isolation.Request{Mode: isolation.ModeAutomatic, Duration: time.Hour, Reason: "second detection"})
		if !st.Deadline.Equal(t0.Add(4 * time.Hour)) {
			t.Fatalf("shorter request moved the deadline to %v", st.Deadline.Sub(t0))
		}
		t1 := time.Now()
		st = e.isolate(isolation.Request{Mode: isolation.ModeAutomatic, Duration: 10 * time.Hour})
		if !st.Deadline.Equal(t1.Add(10 * time.Hour)) {
			t.Fatalf("longer request: deadline %v after t1, want 10h", st.Deadline.Sub(t1))
		}
		if n := len(e.fake.Host().Plans()); n != applies {
			t.Fatalf("same mode re-applied the plan (%d applies, want %d)", n, applies)
		}
		if got := e.sink.kinds(); !slices.Equal(got, []string{"isolating", "enabled", "extended", "extended"}) {
			t.Fatalf("events %v", got)
		}
		// A manual request switches to the manual exclusions and re-applies,
		// keeping the later deadline.
		st = e.isolate(isolation.Request{Mode: isolation.ModeManual})
		if st.Mode != isolation.ModeManual || !st.Deadline.Equal(t1.Add(10*time.Hour)) {
			t.Fatalf("mode change: %+v", st)
		}
		text := e.plan().String()
		if !strings.Contains(text, "manual-ssh") || strings.Contains(text, "auto-web") {
			t.Fatalf("after the mode change the plan is\n%s", text)
		}
		if n := len(e.fake.Host().Plans()); n != applies+1 {
			t.Fatalf("mode change: %d applies, want %d", n, applies+1)
		}
		// Released at the extended deadline, not before.
		time.Sleep(t1.Add(10*time.Hour).Sub(time.Now()) - time.Second)
		synctest.Wait()
		if e.m.Status().State != isolation.StateOn {
			t.Fatal("released before the deadline")
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if st := e.m.Status(); st.State != isolation.StateOff {
			t.Fatalf("not released at the deadline: %+v", st)
		}
		if active, _ := e.fake.Host().Active(); active {
			t.Fatal("rules still in force after the deadline")
		}
		if ev := e.sink.last(); ev.Kind != isolation.EventReleased || ev.Requester != "timer" || ev.Mode != isolation.ModeManual {
			t.Fatalf("last event %+v", ev)
		}
	})
}

func TestReleaseByCommand(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil)
		ctx := context.Background()
		r := e.m.HandleCommand(ctx, isolation.Command{ID: "c1", Action: isolation.ActionIsolate, Mode: isolation.ModeManual,
			Duration: isolation.Duration(time.Hour), Requester: "console-key", Reason: "investigate"})
		if !r.OK || r.Status.State != isolation.StateOn || r.CommandID != "c1" {
			t.Fatalf("isolate command: %+v", r)
		}
		time.Sleep(10 * time.Minute)
		// Redelivered: not carried out again, so the deadline stays.
		r2 := e.m.HandleCommand(ctx, isolation.Command{ID: "c1", Action: isolation.ActionIsolate, Mode: isolation.ModeManual,
			Duration: isolation.Duration(time.Hour)})
		if !r2.OK || !r2.Duplicate || !r2.Status.Deadline.Equal(r.Status.Deadline) {
			t.Fatalf("duplicate: %+v", r2)
		}
		r = e.m.HandleCommand(ctx, isolation.Command{ID: "c2", Action: isolation.ActionStatus})
		if !r.OK || r.Status.State != isolation.StateOn || len(r.Status.Exclusions) != 1 {
			t.Fatalf("status command: %+v", r)
		}
		r = e.m.HandleCommand(ctx, isolation.Command{ID: "c3", Action: isolation.ActionRelease, Requester: "console-key", Reason: "clean"})
		if !r.OK || r.Status.State != isolation.StateOff {
			t.Fatalf("release command: %+v", r)
		}
		if ev := e.sink.last(); ev.Kind != isolation.EventReleased || ev.CommandID != "c3" || ev.Requester != "console-key" {
			t.Fatalf("released event %+v", ev)
		}
		for _, c := range []isolation.Command{
			{ID: "c4", Action: "reboot"},
			{Action: isolation.ActionRelease},
			{ID: "c5", Action: isolation.ActionIsolate, Mode: isolation.ModeAutomatic, UntilReleased: true},
		} {
			if r := e.m.HandleCommand(ctx, c); r.OK || r.Error == "" {
				t.Errorf("command %+v accepted: %+v", c, r)
			}
		}
		// A rejected command is not remembered as done.
		r = e.m.HandleCommand(ctx, isolation.Command{ID: "c5", Action: isolation.ActionIsolate, Mode: isolation.ModeAutomatic})
		if !r.OK || r.Duplicate || r.Status.State != isolation.StateOn {
			t.Fatalf("retry of a rejected id: %+v", r)
		}
	})
}

func TestReleaseWhenOffIsNoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil)
		st, err := e.m.Release(context.Background(), isolation.ReleaseRequest{Requester: "x"})
		if err != nil || st.State != isolation.StateOff || len(e.fake.Host().Calls()) != 0 || len(e.sink.kinds()) != 0 {
			t.Fatalf("release while off: %+v %v calls=%v events=%v", st, err, e.fake.Host().Calls(), e.sink.kinds())
		}
	})
}

func TestFailingEnforcer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil)
		e.fake.Host().FailApply(isolationtest.ErrInjected, 2)
		st, err := e.m.Isolate(context.Background(), isolation.Request{Mode: isolation.ModeAutomatic})
		var ae *isolation.ApplyError
		if !errors.As(err, &ae) || !errors.Is(err, isolationtest.ErrInjected) {
			t.Fatalf("Isolate = %v, want *ApplyError wrapping the injected error", err)
		}
		if st.State != isolation.StateFailed || st.Target != isolation.StateOn || !strings.Contains(st.LastError, "injected") || !st.Isolated() {
			t.Fatalf("status after failure %+v", st)
		}
		if ev := e.sink.last(); ev.Kind != isolation.EventFailed || !strings.Contains(ev.Error, "injected") {
			t.Fatalf("failed event %+v", ev)
		}
		time.Sleep(isolation.DefaultRetryInterval)
		synctest.Wait()
		if st := e.m.Status(); st.State != isolation.StateFailed {
			t.Fatalf("second attempt should fail too: %+v", st)
		}
		time.Sleep(isolation.DefaultRetryInterval)
		synctest.Wait()
		if st := e.m.Status(); st.State != isolation.StateOn || st.LastError != "" {
			t.Fatalf("third attempt should succeed: %+v", st)
		}
		want := []string{"apply-failed", "apply-failed", "apply"}
		if got := e.fake.Host().Calls(); !slices.Equal(got, want) {
			t.Fatalf("calls %v, want %v", got, want)
		}

		// A read-back mismatch is a failure too, never "on".
		e.fake.Host().CorruptNextApply()
		if err := e.m.SetExclusions(context.Background(), isolation.ModeAutomatic, isolation.Exclusions{}); !errors.Is(err, isolation.ErrReadBack) {
			t.Fatalf("SetExclusions with corrupt read-back = %v", err)
		}
		if st := e.m.Status(); st.State != isolation.StateFailed {
			t.Fatalf("after read-back failure: %+v", st)
		}
		time.Sleep(isolation.DefaultRetryInterval)
		synctest.Wait()
		if st := e.m.Status(); st.State != isolation.StateOn {
			t.Fatalf("retry after read-back failure: %+v", st)
		}

		// A failing Clear leaves failed with target off, retried.
		e.fake.Host().FailClear(isolationtest.ErrInjected)
		st, err = e.m.Release(context.Background(), isolation.ReleaseRequest{Requester: "bob"})
		if err == nil || st.State != isolation.StateFailed || st.Target != isolation.StateOff || st.Isolated() {
			t.Fatalf("Release with failing Clear: %+v %v", st, err)
		}
		time.Sleep(isolation.DefaultRetryInterval)
		synctest.Wait()
		if st := e.m.Status(); st.State != isolation.StateFailed {
			t.Fatalf("clear still failing: %+v", st)
		}
		e.fake.Host().FailClear(nil)
		time.Sleep(isolation.DefaultRetryInterval)
		synctest.Wait()
		if st := e.m.Status(); st.State != isolation.StateOff {
			t.Fatalf("release retried: %+v", st)
		}
	})
}

func TestManagementResolvedBeforeApplyAndRefreshed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil)
		resolvedBeforeApply := false
		e.fake.Host().OnApply(func(context.Context, isolation.Plan) error {
			e.res.mu.Lock()
			resolvedBeforeApply = e.res.calls > 0
			e.res.mu.Unlock()
			return nil
		})
		e.isolate(isolation.Request{Mode: isolation.ModeAutomatic})
		if !resolvedBeforeApply {
			t.Fatal("Apply ran before the management name was resolved")
		}
		applies := len(e.fake.Host().Plans())
		// Same answer: no re-apply.
		time.Sleep(isolation.DefaultRefreshInterval)
		synctest.Wait()
		if n := len(e.fake.Host().Plans()); n != applies {
			t.Fatalf("refresh with unchanged addresses re-applied")
		}
		// New address: re-applied within a minute, the previous answer
		// still allowed beside it (round-robin answers hold subsets; the
		// agent may still be connected to an old address).
		e.res.set("bus.test", "198.18.0.99")
		time.Sleep(isolation.DefaultRefreshInterval)
		synctest.Wait()
		if text := e.plan().String(); !strings.Contains(text, "mgmt tcp addr=198.18.0.10,198.18.0.99,2001:db8::11 port=4222") {
			t.Fatalf("refreshed plan:\n%s", text)
		}
		if ev := e.sink.last(); ev.Kind != isolation.EventUpdated {
			t.Fatalf("last event %+v", ev)
		}
		// Two answers in a row without the old addresses: they go.
		time.Sleep(isolation.DefaultRefreshInterval)
		synctest.Wait()
		if text := e.plan().String(); !strings.Contains(text, "mgmt tcp addr=198.18.0.99 port=4222") {
			t.Fatalf("plan after the second answer without the old addresses:\n%s", text)
		}
		// Resolution fails: the cached addresses stay in force.
		e.res.fail(errors.New("servfail"))
		time.Sleep(3 * isolation.DefaultRefreshInterval)
		synctest.Wait()
		if text := e.plan().String(); !strings.Contains(text, "198.18.0.99") || e.m.Status().State != isolation.StateOn {
			t.Fatalf("failed refresh dropped the endpoint:\n%s", text)
		}
	})
}

func TestResolutionFailureWithoutCache(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, func(c *isolation.Config) {
			c.Management = []isolation.ManagementEndpoint{{Address: "bus.test:4222"}}
		})
		e.res.fail(errors.New("servfail"))
		st, err := e.m.Isolate(context.Background(), isolation.Request{Mode: isolation.ModeAutomatic})
		if !errors.Is(err, isolation.ErrResolve) || st.State != isolation.StateFailed {
			t.Fatalf("Isolate without resolvable management = %v, %+v", err, st)
		}
		if len(e.fake.Host().Calls()) != 0 {
			t.Fatal("applied a plan without the management channel")
		}
		e.res.fail(nil)
		time.Sleep(isolation.DefaultRetryInterval)
		synctest.Wait()
		if st := e.m.Status(); st.State != isolation.StateOn {
			t.Fatalf("retry after resolution recovered: %+v", st)
		}
	})
}

func TestDeadManSwitch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, func(c *isolation.Config) { c.DeadMan = 10 * time.Minute })
		e.isolate(isolation.Request{Mode: isolation.ModeAutomatic})
		e.m.ReportChannel(false)
		time.Sleep(5 * time.Minute)
		e.m.ReportChannel(true) // came back: the clock restarts
		time.Sleep(9 * time.Minute)
		e.m.ReportChannel(false)
		time.Sleep(9 * time.Minute)
		synctest.Wait()
		if e.m.Status().State != isolation.StateOn {
			t.Fatal("dead-man fired early")
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if st := e.m.Status(); st.State != isolation.StateOff {
			t.Fatalf("dead-man did not release: %+v", st)
		}
		if ev := e.sink.last(); ev.Requester != "dead-man" {
			t.Fatalf("event %+v", ev)
		}
	})
}

func TestDeadManOffByDefault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil)
		e.isolate(isolation.Request{Mode: isolation.ModeAutomatic})
		e.m.ReportChannel(false)
		time.Sleep(7 * time.Hour)
		synctest.Wait()
		if e.m.Status().State != isolation.StateOn {
			t.Fatal("released without a dead-man switch configured")
		}
	})
}

func TestApplicationRules(t *testing.T) {
	appRule := mustRule("out tcp rport=443 app=/usr/bin/updater name=updater")
	for _, supported := range []bool{false, true} {
		t.Run(fmt.Sprint(supported), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newEnv(t, func(c *isolation.Config) { c.Manual.Exclusions.Rules = append(c.Manual.Exclusions.Rules, appRule) })
				e.fake.Host().SetApplications(supported)
				st := e.isolate(isolation.Request{Mode: isolation.ModeManual})
				inPlan := strings.Contains(e.plan().String(), "updater")
				if inPlan != supported {
					t.Fatalf("application rule in plan = %v, want %v", inPlan, supported)
				}
				if skipped := len(st.Skipped) == 1; skipped == supported {
					t.Fatalf("skipped %v with support %v", st.Skipped, supported)
				}
				// The audit trail lists what is in force: the application
				// rule only where the enforcer matches applications.
				ev := e.sink.last()
				if ev.Kind != isolation.EventEnabled {
					t.Fatalf("last event %+v, want enabled", ev)
				}
				if inEvent := slices.Contains(ev.Exclusions, appRule.String()); inEvent != supported {
					t.Fatalf("enabled event lists the application rule = %v, want %v: %v", inEvent, supported, ev.Exclusions)
				}
				if !slices.Equal(ev.Exclusions, st.Exclusions) {
					t.Fatalf("enabled event exclusions %v, Status in force %v", ev.Exclusions, st.Exclusions)
				}
			})
		})
	}
}

func TestSetExclusionsReapplies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil)
		e.isolate(isolation.Request{Mode: isolation.ModeAutomatic})
		// Another mode's list changes: nothing to do now.
		n := len(e.fake.Host().Plans())
		if err := e.m.SetExclusions(context.Background(), isolation.ModeManual, isolation.Exclusions{}); err != nil {
			t.Fatal(err)
		}
		if len(e.fake.Host().Plans()) != n {
			t.Fatal("changing the other mode's list re-applied")
		}
		x := isolation.Exclusions{Profiles: []isolation.Profile{isolation.ProfileDHCPClient}}
		if err := e.m.SetExclusions(context.Background(), isolation.ModeAutomatic, x); err != nil {
			t.Fatal(err)
		}
		text := e.plan().String()
		if !strings.Contains(text, "dhcp-client:v4") || strings.Contains(text, "auto-web") {
			t.Fatalf("plan after SetExclusions:\n%s", text)
		}
		bad := isolation.Exclusions{Profiles: []isolation.Profile{"ntp"}}
		if err := e.m.SetExclusions(context.Background(), isolation.ModeAutomatic, bad); !errors.Is(err, isolation.ErrInvalidConfig) {
			t.Fatalf("unknown profile accepted: %v", err)
		}
	})
}

func TestNotRestored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := baseConfig()
		cfg.Enforcer = isolationtest.NewFake()
		m, err := isolation.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if _, err := m.Isolate(context.Background(), isolation.Request{Mode: isolation.ModeManual}); !errors.Is(err, isolation.ErrNotRestored) {
			t.Fatalf("Isolate before Restore = %v", err)
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Release(context.Background(), isolation.ReleaseRequest{}); !errors.Is(err, isolation.ErrClosed) {
			t.Fatalf("Release after Close = %v", err)
		}
	})
}

func TestConfigValidation(t *testing.T) {
	fake := isolationtest.NewFake()
	cases := map[string]isolation.Config{
		"no enforcer":      {},
		"bad endpoint":     {Enforcer: fake, Management: []isolation.ManagementEndpoint{{Address: "nohostport"}}},
		"port zero":        {Enforcer: fake, Management: []isolation.ManagementEndpoint{{Address: "a:0"}}},
		"icmp endpoint":    {Enforcer: fake, Management: []isolation.ManagementEndpoint{{Address: "a:1", Protocol: isolation.ProtocolICMP}}},
		"negative":         {Enforcer: fake, Automatic: isolation.ModeConfig{Duration: -1}},
		"bad rule":         {Enforcer: fake, Manual: isolation.ModeConfig{Exclusions: isolation.Exclusions{Rules: []isolation.Rule{{Direction: 7}}}}},
		"negative deadman": {Enforcer: fake, DeadMan: -time.Second},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := isolation.New(c); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// TestConcurrentIsolateRelease hammers the Manager from many goroutines;
// run with -race. Whatever the interleaving, the reported state matches
// the enforcer's.
func TestConcurrentIsolateRelease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil)
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx := context.Background()
				for j := range 20 {
					switch (i + j) % 4 {
					case 0:
						_, _ = e.m.Isolate(ctx, isolation.Request{Mode: isolation.ModeAutomatic, Duration: time.Duration(j+1) * time.Minute})
					case 1:
						_, _ = e.m.Isolate(ctx, isolation.Request{Mode: isolation.ModeManual})
					case 2:
						_, _ = e.m.Release(ctx, isolation.ReleaseRequest{Requester: "r"})
					case 3:
						_ = e.m.Status()
						_ = e.m.HandleCommand(ctx, isolation.Command{ID: fmt.Sprint(i, "-", j), Action: isolation.ActionIsolate, Mode: isolation.ModeManual})
					}
				}
			}()
		}
		wg.Wait()
		synctest.Wait()
		st := e.m.Status()
		active, p := e.fake.Host().Active()
		if (st.State == isolation.StateOn) != active {
			t.Fatalf("status %s but enforcer active=%v", st.State, active)
		}
		if st.State != isolation.StateOn && st.State != isolation.StateOff {
			t.Fatalf("left in %s", st.State)
		}
		if active {
			want := "manual-ssh"
			if st.Mode == isolation.ModeAutomatic {
				want = "auto-web"
			}
			if !strings.Contains(p.String(), want) {
				t.Fatalf("mode %s but plan\n%s", st.Mode, p)
			}
		}
		// Every transition is a pair of events; kinds alternate sensibly.
		for _, k := range e.sink.kinds() {
			if k == string(isolation.EventFailed) {
				t.Fatalf("unexpected failure: %v", e.sink.kinds())
			}
		}
	})
}

// TestRestoreAfterCrash simulates the agent dying at each step of a
// transition: the persisted record and the enforcer's state are what they
// would be, and a new Manager with a reopened enforcer must converge.
func TestRestoreAfterCrash(t *testing.T) {
	cases := []struct {
		name string
		// crash runs a first Manager and returns the store snapshot the
		// crash leaves behind.
		crash      func(t *testing.T, e *env)
		elapse     time.Duration
		wantState  isolation.State
		wantActive bool
		wantEvent  isolation.EventKind
		wantManual bool
	}{
		{
			name: "before apply",
			crash: func(t *testing.T, e *env) {
				// Dies right after persisting "isolating", before Apply.
				e.fake.Host().OnApply(func(ctx context.Context, _ isolation.Plan) error {
					snapshot(t, e)
					return errCrash
				})
				_, _ = e.m.Isolate(context.Background(), isolation.Request{Mode: isolation.ModeManual})
			},
			wantState: isolation.StateOn, wantActive: true, wantEvent: isolation.EventRestored, wantManual: true,
		},
		{
			name: "during apply",
			crash: func(t *testing.T, e *env) {
				// The rules went in, the process died before persisting "on".
				e.fake.Host().OnApply(func(ctx context.Context, p isolation.Plan) error {
					e.fake.Host().OnApply(nil)
					if err := e.fake.Apply(ctx, p); err != nil {
						t.Fatal(err)
					}
					snapshot(t, e)
					return errCrash
				})
				_, _ = e.m.Isolate(context.Background(), isolation.Request{Mode: isolation.ModeManual})
			},
			wantState: isolation.StateOn, wantActive: true, wantEvent: isolation.EventRestored, wantManual: true,
		},
		{
			name: "after apply",
			crash: func(t *testing.T, e *env) {
				e.isolate(isolation.Request{Mode: isolation.ModeManual})
				snapshot(t, e)
			},
			wantState: isolation.StateOn, wantActive: true, wantEvent: isolation.EventRestored, wantManual: true,
		},
		{
			name: "after apply, deadline passed while down",
			crash: func(t *testing.T, e *env) {
				e.isolate(isolation.Request{Mode: isolation.ModeManual})
				snapshot(t, e)
			},
			elapse:    3 * time.Hour,
			wantState: isolation.StateOff, wantActive: false, wantEvent: isolation.EventReleased,
		},
		{
			name: "during release",
			crash: func(t *testing.T, e *env) {
				e.isolate(isolation.Request{Mode: isolation.ModeManual})
				e.fake.Host().FailClear(errCrash)
				_, _ = e.m.Release(context.Background(), isolation.ReleaseRequest{})
				e.fake.Host().FailClear(nil)
			},
			wantState: isolation.StateOff, wantActive: false, wantEvent: isolation.EventReleased,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				dir := t.TempDir()
				store := isolation.FileStore{Path: filepath.Join(dir, "state.json")}
				e := newEnv(t, func(cfg *isolation.Config) { cfg.Store = store })
				c.crash(t, e)
				// The crash: the first process is gone.
				_ = e.m.Close()
				if snap := snapshotPath(e); snap != "" {
					copyFile(t, snap, store.Path)
				}
				time.Sleep(c.elapse)

				e2 := &env{t: t, fake: e.fake.Reopen(), sink: &sink{}, res: e.res, store: store, cfg: e.cfg}
				e2.fake.Host().OnApply(nil)
				e2.cfg.Enforcer, e2.cfg.Sink = e2.fake, e2.sink
				e2.start()
				st := e2.m.Status()
				active, p := e2.fake.Host().Active()
				if st.State != c.wantState || active != c.wantActive {
					t.Fatalf("after restore: state %s active %v, want %s %v (%+v)", st.State, active, c.wantState, c.wantActive, st)
				}
				if c.wantManual && !strings.Contains(p.String(), "manual-ssh") {
					t.Fatalf("restored plan lacks the manual exclusions:\n%s", p)
				}
				if ev := e2.sink.last(); ev.Kind != c.wantEvent || ev.Requester != "restore" {
					t.Fatalf("last event %+v, want %s by restore", ev, c.wantEvent)
				}
				if c.wantState == isolation.StateOn {
					// The restored isolation still ends at the persisted deadline.
					time.Sleep(2 * time.Hour)
					synctest.Wait()
					if st := e2.m.Status(); st.State != isolation.StateOff {
						t.Fatalf("restored isolation outlived its deadline: %+v", st)
					}
				}
			})
		})
	}
}

var errCrash = errors.New("simulated crash")

var snapshots sync.Map // *env -> path of the state file copy taken at the crash

func snapshot(t *testing.T, e *env) {
	fs := e.cfg.Store.(isolation.FileStore)
	p := fs.Path + ".crash"
	copyFile(t, fs.Path, p)
	snapshots.Store(e, p)
}

func snapshotPath(e *env) string {
	if v, ok := snapshots.Load(e); ok {
		return v.(string)
	}
	return ""
}

func TestRestoreUsesCurrentExclusions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil)
		e.isolate(isolation.Request{Mode: isolation.ModeManual})
		_ = e.m.Close()
		// The host's own list changed while the agent was down.
		e2 := &env{t: t, fake: e.fake.Reopen(), sink: &sink{}, res: e.res, store: e.store, cfg: e.cfg}
		e2.cfg.Enforcer, e2.cfg.Sink = e2.fake, e2.sink
		e2.cfg.Manual.Exclusions = isolation.Exclusions{Rules: []isolation.Rule{mustRule("out udp rport=123 name=ntp")}}
		e2.start()
		text := e2.plan().String()
		if !strings.Contains(text, "name=ntp") || strings.Contains(text, "manual-ssh") {
			t.Fatalf("restored plan:\n%s", text)
		}
		if st := e2.m.Status(); st.State != isolation.StateOn || len(st.Exclusions) == 0 {
			t.Fatalf("status %+v", st)
		}
	})
}

// TestConnectionsLeft: an Apply that installs the rules but cannot end the
// connections the plan does not allow is never reported "on": it is tried
// once more at once, then the state is failed (with the exclusions whose
// rules are in force) and retried by the timer.
func TestConnectionsLeft(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil)
		h := e.fake.Host()

		// A transient failure: the immediate second Apply succeeds.
		h.LeaveConnections(1)
		st := e.isolate(isolation.Request{Mode: isolation.ModeAutomatic})
		if st.State != isolation.StateOn {
			t.Fatalf("after one transient failure: %+v", st)
		}
		if got, want := h.Calls(), []string{"apply-conns-left", "apply"}; !slices.Equal(got, want) {
			t.Fatalf("calls %v, want %v", got, want)
		}
		if _, err := e.m.Release(context.Background(), isolation.ReleaseRequest{}); err != nil {
			t.Fatal(err)
		}

		// A lasting failure: failed, not on; the new plan's rules listed.
		h.LeaveConnections(-1)
		st, err := e.m.Isolate(context.Background(), isolation.Request{Mode: isolation.ModeManual})
		if !errors.Is(err, isolation.ErrConnectionsLeft) || !errors.Is(err, isolation.ErrReadBack) {
			t.Fatalf("Isolate = %v, want ErrConnectionsLeft", err)
		}
		if st.State != isolation.StateFailed || st.Target != isolation.StateOn || !st.Isolated() ||
			!strings.Contains(st.LastError, "still open") {
			t.Fatalf("status %+v", st)
		}
		if !slices.Equal(st.Exclusions, []string{manualSSH.String()}) || len(st.Management) == 0 {
			t.Fatalf("exclusions in force %v, management %v; want the manual list and the endpoints", st.Exclusions, st.Management)
		}
		if ev := e.sink.last(); ev.Kind != isolation.EventFailed {
			t.Fatalf("last event %+v, want failed", ev)
		}
		if !strings.Contains(e.plan().String(), "manual-ssh") {
			t.Fatalf("plan in force %s", e.plan())
		}
		time.Sleep(isolation.DefaultRetryInterval)
		synctest.Wait()
		if st := e.m.Status(); st.State != isolation.StateFailed {
			t.Fatalf("still leaving connections: %+v", st)
		}
		h.LeaveConnections(0)
		time.Sleep(isolation.DefaultRetryInterval)
		synctest.Wait()
		if st := e.m.Status(); st.State != isolation.StateOn || st.LastError != "" {
			t.Fatalf("after the connections ended: %+v", st)
		}
		want := []string{"apply-conns-left", "apply", "clear", "apply-conns-left", "apply-conns-left", "apply-conns-left", "apply-conns-left", "apply"}
		if got := h.Calls(); !slices.Equal(got, want) {
			t.Fatalf("calls %v, want %v", got, want)
		}
	})
}

// TestCloseWaitsForTransition: Close returns only after an Isolate in
// progress has ended, so the caller can close the Enforcer and the Store
// after it; later calls get ErrClosed.
func TestCloseWaitsForTransition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, nil)
		entered, unblock := make(chan struct{}), make(chan struct{})
		e.fake.Host().OnApply(func(ctx context.Context, p isolation.Plan) error {
			close(entered)
			<-unblock
			return nil
		})
		isolated := make(chan error, 1)
		go func() {
			_, err := e.m.Isolate(context.Background(), isolation.Request{Mode: isolation.ModeAutomatic})
			isolated <- err
		}()
		<-entered
		closed := make(chan struct{})
		go func() {
			_ = e.m.Close()
			close(closed)
		}()
		synctest.Wait()
		select {
		case <-closed:
			t.Fatal("Close returned while an Isolate was applying")
		default:
		}
		savesBefore := e.store.(*isolation.MemoryStore).Saves()
		close(unblock)
		<-closed
		if err := <-isolated; err != nil {
			t.Fatalf("Isolate: %v", err)
		}
		if st := e.m.Status(); st.State != isolation.StateOn {
			t.Fatalf("state after Close %+v", st)
		}
		saves := e.store.(*isolation.MemoryStore).Saves()
		if saves <= savesBefore {
			t.Fatal("the transition's final state was not persisted before Close returned")
		}
		if rec, _, _ := e.store.Load(context.Background()); rec.State != isolation.StateOn {
			t.Fatalf("persisted %s, want on", rec.State)
		}
		if _, err := e.m.Release(context.Background(), isolation.ReleaseRequest{}); !errors.Is(err, isolation.ErrClosed) {
			t.Fatalf("Release after Close = %v, want ErrClosed", err)
		}
		if calls := e.fake.Host().Calls(); !slices.Equal(calls, []string{"apply"}) {
			t.Fatalf("calls %v", calls)
		}
	})
}

// sleepClock is the system clock of a machine that can be put to sleep:
// while it sleeps its wall clock moves on, its timers (monotonic) do not.
type sleepClock struct {
	mu    sync.Mutex
	slept time.Duration
}

func (c *sleepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.slept)
}

func (c *sleepClock) NewTimer(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}

func (c *sleepClock) sleep(d time.Duration) {
	c.mu.Lock()
	c.slept += d
	c.mu.Unlock()
}

// TestDeadlinePassedDuringSleep: a deadline that passed while the machine
// slept is acted on within a minute of waking, not a sleep's length late.
func TestDeadlinePassedDuringSleep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clock := &sleepClock{}
		e := newEnv(t, func(c *isolation.Config) { c.Clock = clock; c.Management = nil })
		st := e.isolate(isolation.Request{Mode: isolation.ModeAutomatic, Duration: 2 * time.Hour})
		if st.State != isolation.StateOn {
			t.Fatalf("%+v", st)
		}
		time.Sleep(30 * time.Minute)
		synctest.Wait()
		clock.sleep(3 * time.Hour) // the deadline passes while asleep
		time.Sleep(time.Minute)
		synctest.Wait()
		if st := e.m.Status(); st.State != isolation.StateOff {
			t.Fatalf("a minute after waking past the deadline: %+v", st)
		}
		if active, _ := e.fake.Host().Active(); active {
			t.Fatal("rules still in force after the deadline")
		}
	})
}
