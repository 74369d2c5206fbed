package wfp

import (
	"context"
	"errors"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/cordonsec/cordon/isolation"
	"github.com/cordonsec/cordon/isolation/isolationtest"
)

const testAgent = `C:\Program Files\cordon\cordon-agent.exe`

func newTestEnforcer(t *testing.T, eng *fakeEngine, conns *fakeConns) *Enforcer {
	t.Helper()
	if conns == nil {
		conns = &fakeConns{}
	}
	e, err := New(Config{Open: eng.open, Conns: conns, AgentPath: testAgent})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

func TestConformance(t *testing.T) {
	isolationtest.RunHost(t, func(t *testing.T) isolationtest.Host {
		eng := newFakeEngine()
		e := newTestEnforcer(t, eng, nil)
		return isolationtest.Host{
			Enforcer: e,
			// Observe through a separate enforcer and session, as another
			// process would: independent of the enforcer under test, and
			// usable after it is closed.
			Observe: func(ctx context.Context) (isolation.Observation, error) {
				o := newTestEnforcer(t, eng, nil)
				defer o.Close()
				return o.Observe(ctx)
			},
			Reopen: func(t *testing.T) isolation.Enforcer { return newTestEnforcer(t, eng, nil) },
			Tamper: func(ctx context.Context) error {
				// An administrator deletes cordon's permit filters of one rule
				// and one block filter.
				n := eng.deleteFilters(DefaultSublayer, func(f Filter) bool {
					return strings.Contains(f.Description, "name=web") || f.Description == sourceBlock && f.Layer == LayerConnectV6
				})
				if n == 0 {
					return errors.New("tamper: nothing deleted")
				}
				return nil
			},
			Probe: func(ctx context.Context, f isolation.Flow) (bool, error) {
				return eng.probe(DefaultSublayer, f), nil
			},
			Applications: true,
		}
	})
}

func TestNewUnsupportedOffWindows(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the default session exists on Windows")
	}
	_, err := New(Config{})
	if !errors.Is(err, isolation.ErrUnsupported) {
		t.Fatalf("New(Config{}) = %v, want ErrUnsupported", err)
	}
	_, err = New(Config{Conns: &fakeConns{}})
	if !errors.Is(err, isolation.ErrUnsupported) {
		t.Fatalf("New without Open = %v, want ErrUnsupported", err)
	}
	if _, err := New(Config{Provider: DefaultProvider, Sublayer: DefaultProvider}); !errors.Is(err, isolation.ErrInvalidConfig) {
		t.Fatalf("same provider and sublayer: %v, want ErrInvalidConfig", err)
	}
}

func TestNewAgentAppIDError(t *testing.T) {
	eng := newFakeEngine()
	eng.missing[testAgent] = true
	if _, err := New(Config{Open: eng.open, Conns: &fakeConns{}, AgentPath: testAgent}); err == nil || !strings.Contains(err.Error(), "app id") {
		t.Fatalf("New with an agent without app id = %v", err)
	}
	if _, err := New(Config{Open: eng.open, Conns: &fakeConns{}, AgentPath: testAgent, NoAgentPermit: true}); err != nil {
		t.Fatalf("NoAgentPermit: %v", err)
	}
}

// A failure at any step of the transaction aborts it: the filters of the
// previous plan stay exactly as they were, and no transaction stays open.
func TestApplyFailureKeepsPreviousFilters(t *testing.T) {
	ctx := context.Background()
	for _, op := range []string{"Begin", "DeleteFilter", "AddFilter", "Commit"} {
		for _, n := range []int{1, 5} {
			if (op == "Begin" || op == "Commit") && n > 1 {
				continue
			}
			t.Run(op, func(t *testing.T) {
				eng := newFakeEngine()
				e := newTestEnforcer(t, eng, nil)
				defer e.Close()
				if err := e.Apply(ctx, isolationtest.PlanA()); err != nil {
					t.Fatal(err)
				}
				before := eng.snapshot(DefaultSublayer)
				eng.failNext(op, n)
				err := e.Apply(ctx, isolationtest.PlanB())
				if err == nil || !strings.Contains(err.Error(), "injected failure") {
					t.Fatalf("Apply = %v, want the injected %s failure", err, op)
				}
				if errors.Is(err, isolation.ErrReadBack) {
					t.Fatalf("Apply = %v: a failed transaction must not be reported as a read-back error", err)
				}
				if after := eng.snapshot(DefaultSublayer); !slices.Equal(before, after) {
					t.Fatalf("filters changed by a failed Apply:\nbefore %d\nafter %d", len(before), len(after))
				}
				ops := eng.opsLog()
				if op != "Begin" && ops[len(ops)-1] != "Abort" {
					t.Fatalf("last engine call %q, want Abort; calls %v", ops[len(ops)-1], ops[len(ops)-5:])
				}
				// The next Apply works: no transaction was left open.
				if err := e.Apply(ctx, isolationtest.PlanB()); err != nil {
					t.Fatalf("Apply after failure: %v", err)
				}
			})
		}
	}
}

func TestApplyCanceledBeforeCommit(t *testing.T) {
	eng := newFakeEngine()
	e := newTestEnforcer(t, eng, nil)
	defer e.Close()
	if err := e.Apply(context.Background(), isolationtest.PlanA()); err != nil {
		t.Fatal(err)
	}
	before := eng.snapshot(DefaultSublayer)
	ctx, cancel := context.WithCancel(context.Background())
	// Cancel while the transaction is being filled.
	calls := 0
	e.sess = &hookSession{Session: e.sess, onAdd: func() {
		if calls++; calls == 3 {
			cancel()
		}
	}}
	err := e.Apply(ctx, isolationtest.PlanB())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Apply = %v, want context.Canceled", err)
	}
	if after := eng.snapshot(DefaultSublayer); !slices.Equal(before, after) {
		t.Fatal("filters changed by a canceled Apply")
	}
}

type hookSession struct {
	Session
	onAdd func()
}

func (h *hookSession) AddFilter(f Filter) error {
	h.onAdd()
	return h.Session.AddFilter(f)
}

func TestApplyUnchangedWritesNothing(t *testing.T) {
	eng := newFakeEngine()
	e := newTestEnforcer(t, eng, nil)
	defer e.Close()
	ctx := context.Background()
	if err := e.Apply(ctx, isolationtest.PlanA()); err != nil {
		t.Fatal(err)
	}
	n := len(eng.opsLog())
	if err := e.Apply(ctx, isolationtest.PlanA()); err != nil {
		t.Fatal(err)
	}
	for _, op := range eng.opsLog()[n:] {
		if op != "Providers" && op != "Sublayers" && op != "Filters" {
			t.Fatalf("second Apply of the same plan made engine call %s", op)
		}
	}
}

func TestApplyReadBackDetectsDroppedFilter(t *testing.T) {
	eng := newFakeEngine()
	e := newTestEnforcer(t, eng, nil)
	defer e.Close()
	eng.dropOnAdd = true
	err := e.Apply(context.Background(), isolationtest.PlanA())
	if !errors.Is(err, isolation.ErrReadBack) {
		t.Fatalf("Apply = %v, want ErrReadBack", err)
	}
	if !strings.Contains(err.Error(), "\n- ") {
		t.Fatalf("read-back error does not name the missing filter: %v", err)
	}
	// Retrying repairs.
	if err := e.Apply(context.Background(), isolationtest.PlanA()); err != nil {
		t.Fatalf("retry: %v", err)
	}
}

func TestApplyRepairsChangedSublayer(t *testing.T) {
	eng := newFakeEngine()
	e := newTestEnforcer(t, eng, nil)
	defer e.Close()
	ctx := context.Background()
	if err := e.Apply(ctx, isolationtest.PlanA()); err != nil {
		t.Fatal(err)
	}
	eng.mu.Lock()
	sl := eng.committed.sublayers[DefaultSublayer]
	sl.Weight = 1
	sl.Persistent = false
	eng.committed.sublayers[DefaultSublayer] = sl
	eng.mu.Unlock()
	if err := e.Apply(ctx, isolationtest.PlanA()); err != nil {
		t.Fatal(err)
	}
	eng.mu.Lock()
	sl = eng.committed.sublayers[DefaultSublayer]
	eng.mu.Unlock()
	if sl.Weight != DefaultSublayerWeight || !sl.Persistent {
		t.Fatalf("sublayer not repaired: %+v", sl)
	}
}

func TestClearRemovesProviderAndSublayerOnly(t *testing.T) {
	eng := newFakeEngine()
	// Another product's objects, which cordon must leave alone.
	other := GUID{Data1: 0xabc}
	otherSub := GUID{Data1: 0xdef}
	s, _ := eng.open()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.AddProvider(Provider{ID: other, Name: "other"}))
	must(s.AddSublayer(Sublayer{ID: otherSub, Provider: other}))
	must(s.AddFilter(Filter{ID: GUID{Data1: 1}, Provider: other, Sublayer: otherSub, Layer: LayerConnectV4, Action: ActionBlock}))

	e := newTestEnforcer(t, eng, nil)
	defer e.Close()
	ctx := context.Background()
	if err := e.Apply(ctx, isolationtest.PlanA()); err != nil {
		t.Fatal(err)
	}
	if err := e.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	eng.mu.Lock()
	defer eng.mu.Unlock()
	if _, ok := eng.committed.providers[DefaultProvider]; ok {
		t.Error("cordon's provider left after Clear")
	}
	if _, ok := eng.committed.sublayers[DefaultSublayer]; ok {
		t.Error("cordon's sublayer left after Clear")
	}
	if len(eng.committed.filters) != 1 || len(eng.committed.sublayers) != 1 || len(eng.committed.providers) != 1 {
		t.Errorf("other product's objects touched: %d filters, %d sublayers, %d providers",
			len(eng.committed.filters), len(eng.committed.sublayers), len(eng.committed.providers))
	}
}

func TestFiltersArePersistentAndHardBlock(t *testing.T) {
	fs, err := buildFilters(isolationtest.PlanA(), testSpec())
	if err != nil {
		t.Fatal(err)
	}
	blocks := 0
	for _, f := range fs {
		if !f.Persistent {
			t.Errorf("filter %q is not persistent", f.Description)
		}
		if f.Action == ActionBlock {
			blocks++
			if !f.Hard || len(f.Conditions) != 0 || f.Weight != WeightBlock {
				t.Errorf("block filter %s", f)
			}
		} else if f.Weight <= WeightBlock {
			t.Errorf("permit %q not weighted above the block", f.Description)
		}
	}
	if blocks != len(Layers) {
		t.Errorf("%d block filters, want one per layer (%d)", blocks, len(Layers))
	}
	seen := map[GUID]bool{}
	for _, f := range fs {
		if seen[f.ID] {
			t.Errorf("duplicate filter key %s", f.ID)
		}
		seen[f.ID] = true
	}
}

func TestEndConnections(t *testing.T) {
	ap := netip.MustParseAddrPort
	app := `C:\Tools\sync.exe`
	conns := &fakeConns{conns: []TCPConn{
		{Local: ap("0.0.0.0:22"), State: TCPListen},
		{Local: ap("192.0.2.10:22"), Remote: ap("198.18.2.5:40002"), State: TCPEstab},    // ssh from the allowed host
		{Local: ap("192.0.2.10:22"), Remote: ap("198.18.2.6:40002"), State: TCPEstab},    // ssh from another host: end
		{Local: ap("192.0.2.10:40000"), Remote: ap("198.18.0.10:4222"), State: TCPEstab}, // management: keep
		{Local: ap("192.0.2.10:40001"), Remote: ap("198.18.9.9:443"), State: TCPEstab},   // not allowed: end
		{Local: ap("192.0.2.10:40005"), Remote: ap("198.18.9.9:443"), State: TCPTimeWait},
		{Local: ap("192.0.2.10:40006"), Remote: ap("198.18.7.7:4222"), State: TCPEstab, App: testAgent}, // agent permit: keep
		{Local: ap("192.0.2.10:40007"), Remote: ap("198.18.7.7:4222"), State: TCPEstab, App: app},       // other program: end
		{Local: ap("192.0.2.10:40008"), Remote: ap("198.18.7.8:443"), State: TCPEstab, App: app},        // app rule: keep
		{Local: ap("127.0.0.1:5000"), Remote: ap("127.0.0.1:40009"), State: TCPEstab},
		{Local: ap("[2001:db8::2]:40010"), Remote: ap("[2001:db8:9::9]:443"), State: TCPEstab}, // IPv6: cannot end
	}}
	eng := newFakeEngine()
	e := newTestEnforcer(t, eng, conns)
	defer e.Close()
	p := isolationtest.PlanB()
	p.Rules = append(p.Rules, isolation.Rule{Direction: isolation.DirectionOut, Protocol: isolation.ProtocolTCP,
		RemotePorts: []isolation.PortRange{isolation.Port(443)}, Application: app})
	if err := e.Apply(context.Background(), p); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	got := conns.endedRemotes()
	want := []netip.AddrPort{ap("198.18.2.6:40002"), ap("198.18.9.9:443"), ap("198.18.7.7:4222")}
	if !slices.Equal(got, want) {
		t.Fatalf("ended %v, want %v", got, want)
	}
}

// TestEndConnectionsDualStackListener: an IPv4 connection accepted by a
// dual-stack socket listening on [::] (listed in the IPv4 table, its
// listener in the IPv6 table) is inbound, and kept when an inbound rule
// allows it.
func TestEndConnectionsDualStackListener(t *testing.T) {
	ap := netip.MustParseAddrPort
	conns := &fakeConns{conns: []TCPConn{
		{Local: ap("[::]:22"), State: TCPListen},
		{Local: ap("192.0.2.10:22"), Remote: ap("198.18.2.5:40002"), State: TCPEstab}, // allowed ssh-in: keep
		{Local: ap("192.0.2.10:22"), Remote: ap("198.18.2.6:40003"), State: TCPEstab}, // other host: end
	}}
	e := newTestEnforcer(t, newFakeEngine(), conns)
	defer e.Close()
	if err := e.Apply(context.Background(), isolationtest.PlanB()); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if got, want := conns.endedRemotes(), []netip.AddrPort{ap("198.18.2.6:40003")}; !slices.Equal(got, want) {
		t.Fatalf("ended %v, want %v", got, want)
	}
}

func TestEndConnectionsFailure(t *testing.T) {
	conns := &fakeConns{
		conns:  []TCPConn{{Local: netip.MustParseAddrPort("192.0.2.10:40001"), Remote: netip.MustParseAddrPort("198.18.9.9:443"), State: TCPEstab}},
		endErr: errors.New("access denied"),
	}
	e := newTestEnforcer(t, newFakeEngine(), conns)
	defer e.Close()
	err := e.Apply(context.Background(), isolationtest.PlanB())
	if !errors.Is(err, ErrConnectionsLeft) || !errors.Is(err, isolation.ErrReadBack) || !strings.Contains(err.Error(), "access denied") {
		t.Fatalf("Apply = %v, want ErrConnectionsLeft and ErrReadBack", err)
	}
}

func TestObserveReportsOnlyCompleteItems(t *testing.T) {
	eng := newFakeEngine()
	e := newTestEnforcer(t, eng, nil)
	defer e.Close()
	ctx := context.Background()
	if err := e.Apply(ctx, isolationtest.PlanA()); err != nil {
		t.Fatal(err)
	}
	// Delete one of the two filters of the web rule (IPv6 connect).
	if n := eng.deleteFilters(DefaultSublayer, func(f Filter) bool {
		return strings.Contains(f.Description, "name=web") && f.Layer == LayerConnectV6
	}); n != 1 {
		t.Fatalf("deleted %d filters", n)
	}
	o, err := e.Observe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !o.Active {
		t.Fatal("not active")
	}
	for _, r := range o.Plan.Rules {
		if r.Name == "web" {
			t.Fatal("partly deleted rule observed as in force")
		}
	}
	if len(o.Plan.Rules) != len(isolationtest.PlanA().Normalize().Rules)-1 {
		t.Fatalf("observed %d rules", len(o.Plan.Rules))
	}
}

func TestApplyApplicationWithoutAppIDChangesNothing(t *testing.T) {
	eng := newFakeEngine()
	e := newTestEnforcer(t, eng, nil)
	defer e.Close()
	ctx := context.Background()
	if err := e.Apply(ctx, isolationtest.PlanA()); err != nil {
		t.Fatal(err)
	}
	before := eng.snapshot(DefaultSublayer)
	const missing = `C:\Gone\gone.exe`
	eng.missing[missing] = true
	p := isolationtest.PlanB()
	p.Rules = append(p.Rules, isolation.Rule{Direction: isolation.DirectionOut, Protocol: isolation.ProtocolTCP, Application: missing})
	if err := e.Apply(ctx, p); err == nil || !strings.Contains(err.Error(), "gone.exe") {
		t.Fatalf("Apply = %v, want an app id error naming the program", err)
	}
	if after := eng.snapshot(DefaultSublayer); !slices.Equal(before, after) {
		t.Fatal("filters changed")
	}
}
