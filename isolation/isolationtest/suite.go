package isolationtest

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"

	"github.com/cordonsec/cordon/isolation"
)

// Host is what an adapter hands the conformance suite for one subtest.
// Only Enforcer is required; every optional hook lets the suite check more
// of the contract instead of only the return values.
type Host struct {
	// Enforcer under test, fresh, on a host (or network namespace) that is
	// not isolated. The suite closes it.
	Enforcer isolation.Enforcer

	// Observe reads the platform state back independently of Apply. When
	// nil and Enforcer implements isolation.Observer, that is used; when
	// neither exists the suite checks only return values.
	Observe func(ctx context.Context) (isolation.Observation, error)

	// Reopen returns a second Enforcer over the same host state, as a
	// restarted agent gets (optional). The suite closes it.
	Reopen func(t *testing.T) isolation.Enforcer

	// Tamper changes the platform state behind the enforcer's back, e.g.
	// flushing its rules (optional). The suite checks that Apply repairs it.
	Tamper func(ctx context.Context) error

	// Probe reports whether flow f would pass now, by the platform's own
	// decision (for instance by sending real packets inside a test network
	// namespace). Optional. The flows the suite probes use loopback,
	// 198.18.0.0/15 and 2001:db8::/32 remotes.
	Probe func(ctx context.Context, f isolation.Flow) (bool, error)

	// Applications: the platform matches rules by application path.
	Applications bool

	// observeFromEnforcer: Observe was taken from Enforcer's Observer, so
	// a reopened enforcer must be observed through its own.
	observeFromEnforcer bool
}

// Run runs the conformance suite with enforcers from newEnforcer, each on
// a fresh host state. If an enforcer implements isolation.Observer the
// suite also checks the state it reads back.
func Run(t *testing.T, newEnforcer func(t *testing.T) isolation.Enforcer) {
	t.Helper()
	RunHost(t, func(t *testing.T) Host {
		e := newEnforcer(t)
		return Host{Enforcer: e, Applications: isolation.EnforcerCapabilities(e).Applications}
	})
}

// RunHost runs the conformance suite with hosts from newHost, one per
// subtest.
func RunHost(t *testing.T, newHost func(t *testing.T) Host) {
	t.Helper()
	cases := []struct {
		name string
		fn   func(t *testing.T, h Host)
	}{
		{"ApplyThenObserve", testApply},
		{"ApplyIdempotent", testIdempotent},
		{"ApplyReplaces", testReplace},
		{"Clear", testClear},
		{"InvalidPlanKeepsState", testInvalid},
		{"CanceledContextKeepsState", testCanceled},
		{"ApplicationRules", testApplications},
		{"CloseKeepsRules", testClose},
		{"RepairsTamperedState", testTamper},
		{"ProbeFlows", testProbe},
		{"ConcurrentApply", testConcurrent},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHost(t)
			if h.Enforcer == nil {
				t.Fatal("isolationtest: Host.Enforcer is nil")
			}
			if h.Observe == nil {
				if o, ok := h.Enforcer.(isolation.Observer); ok {
					h.Observe = o.Observe
					h.observeFromEnforcer = true
				}
			}
			t.Cleanup(func() {
				_ = h.Enforcer.Clear(context.Background())
				if err := h.Enforcer.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			c.fn(t, h)
		})
	}
}

// Management endpoint and rules used by the suite's plans.
var (
	mgmt = isolation.Endpoint{
		Name:     "bus.test:4222",
		Protocol: isolation.ProtocolTCP,
		Addrs:    []netip.Addr{netip.MustParseAddr("198.18.0.10"), netip.MustParseAddr("2001:db8::10")},
		Port:     4222,
	}
	customWeb = isolation.Rule{
		Name:        "web",
		Direction:   isolation.DirectionOut,
		Protocol:    isolation.ProtocolTCP,
		Remote:      []netip.Prefix{netip.MustParsePrefix("198.18.1.0/24"), netip.MustParsePrefix("2001:db8:1::/48")},
		RemotePorts: []isolation.PortRange{isolation.Port(443), {First: 8000, Last: 8080}},
	}
	customSSH = isolation.Rule{
		Name:       "ssh-in",
		Direction:  isolation.DirectionIn,
		Protocol:   isolation.ProtocolTCP,
		Remote:     []netip.Prefix{netip.MustParsePrefix("198.18.2.5/32")},
		LocalPorts: []isolation.PortRange{isolation.Port(22)},
	}
	customPing = isolation.Rule{
		Name:      "ping",
		Direction: isolation.DirectionBoth,
		Protocol:  isolation.ProtocolICMP,
		Remote:    []netip.Prefix{netip.MustParsePrefix("198.18.3.0/24")},
		ICMPTypes: []uint8{0, 8},
	}
)

// PlanA returns the first plan the suite applies: management, ND, the
// default profiles and two custom rules.
func PlanA() isolation.Plan {
	rules := []isolation.Rule{isolation.NeighborDiscoveryRule(), customWeb, customPing}
	for _, p := range isolation.DefaultProfiles {
		rs, _ := p.Rules()
		rules = append(rules, rs...)
	}
	return isolation.Plan{Management: []isolation.Endpoint{mgmt}, Rules: rules}
}

// PlanB returns a plan that differs from PlanA by rules removed and added.
func PlanB() isolation.Plan {
	dns, _ := isolation.ProfileDNSClient.Rules()
	rules := append([]isolation.Rule{isolation.NeighborDiscoveryRule(), customSSH}, dns...)
	return isolation.Plan{Management: []isolation.Endpoint{mgmt}, Rules: rules}
}

func observe(t *testing.T, h Host) (isolation.Observation, bool) {
	t.Helper()
	if h.Observe == nil {
		return isolation.Observation{}, false
	}
	o, err := h.Observe(context.Background())
	if err != nil {
		t.Fatalf("Observe: %v", err)
	}
	return o, true
}

func wantActive(t *testing.T, h Host, want isolation.Plan) {
	t.Helper()
	o, ok := observe(t, h)
	if !ok {
		return
	}
	if !o.Active {
		t.Fatalf("observed: not isolated; want plan\n%s", want)
	}
	if !o.Plan.Equivalent(want) {
		t.Fatalf("observed plan\n%s\nwant (names aside)\n%s", o.Plan, want)
	}
}

func wantInactive(t *testing.T, h Host) {
	t.Helper()
	o, ok := observe(t, h)
	if !ok {
		return
	}
	if o.Active {
		t.Fatalf("observed: isolated with\n%s\nwant not isolated", o.Plan)
	}
}

func mustApply(t *testing.T, e isolation.Enforcer, p isolation.Plan) {
	t.Helper()
	if err := e.Apply(context.Background(), p); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

func testApply(t *testing.T, h Host) {
	wantInactive(t, h)
	mustApply(t, h.Enforcer, PlanA())
	wantActive(t, h, PlanA())
}

func testIdempotent(t *testing.T, h Host) {
	mustApply(t, h.Enforcer, PlanA())
	mustApply(t, h.Enforcer, PlanA())
	wantActive(t, h, PlanA())
	// The same plan in another order and with duplicates is the same plan.
	p := PlanA()
	p.Rules = append(p.Rules, p.Rules[0])
	p.Rules[0], p.Rules[len(p.Rules)-2] = p.Rules[len(p.Rules)-2], p.Rules[0]
	mustApply(t, h.Enforcer, p)
	wantActive(t, h, PlanA())
}

func testReplace(t *testing.T, h Host) {
	mustApply(t, h.Enforcer, PlanA())
	mustApply(t, h.Enforcer, PlanB())
	wantActive(t, h, PlanB())
	mustApply(t, h.Enforcer, PlanA())
	wantActive(t, h, PlanA())
}

func testClear(t *testing.T, h Host) {
	ctx := context.Background()
	if err := h.Enforcer.Clear(ctx); err != nil {
		t.Fatalf("Clear on a host that is not isolated: %v", err)
	}
	wantInactive(t, h)
	mustApply(t, h.Enforcer, PlanA())
	if err := h.Enforcer.Clear(ctx); err != nil {
		t.Fatalf("Clear: %v", err)
	}
	wantInactive(t, h)
	if err := h.Enforcer.Clear(ctx); err != nil {
		t.Fatalf("second Clear: %v", err)
	}
	wantInactive(t, h)
	mustApply(t, h.Enforcer, PlanB())
	wantActive(t, h, PlanB())
}

func testInvalid(t *testing.T, h Host) {
	mustApply(t, h.Enforcer, PlanA())
	bad := PlanB()
	bad.Rules = append(bad.Rules, isolation.Rule{Direction: isolation.DirectionOut, Protocol: isolation.ProtocolICMP, RemotePorts: []isolation.PortRange{isolation.Port(1)}})
	err := h.Enforcer.Apply(context.Background(), bad)
	if !errors.Is(err, isolation.ErrInvalidRule) {
		t.Fatalf("Apply(invalid plan) = %v, want an error wrapping ErrInvalidRule", err)
	}
	wantActive(t, h, PlanA())
	noAddr := PlanB()
	noAddr.Management = []isolation.Endpoint{{Name: "x", Protocol: isolation.ProtocolTCP, Port: 1}}
	if err := h.Enforcer.Apply(context.Background(), noAddr); !errors.Is(err, isolation.ErrInvalidRule) {
		t.Fatalf("Apply(endpoint without address) = %v, want ErrInvalidRule", err)
	}
	wantActive(t, h, PlanA())
}

func testCanceled(t *testing.T, h Host) {
	mustApply(t, h.Enforcer, PlanA())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.Enforcer.Apply(ctx, PlanB()); !errors.Is(err, context.Canceled) {
		t.Fatalf("Apply(canceled ctx) = %v, want an error wrapping context.Canceled", err)
	}
	wantActive(t, h, PlanA())
}

func testApplications(t *testing.T, h Host) {
	mustApply(t, h.Enforcer, PlanA())
	p := PlanB()
	p.Rules = append(p.Rules, isolation.Rule{Name: "app", Direction: isolation.DirectionOut, Protocol: isolation.ProtocolTCP,
		RemotePorts: []isolation.PortRange{isolation.Port(443)}, Application: "/usr/bin/cordon-test-app"})
	err := h.Enforcer.Apply(context.Background(), p)
	if !h.Applications {
		if !errors.Is(err, isolation.ErrUnsupported) {
			t.Fatalf("Apply(application rule) without application support = %v, want ErrUnsupported", err)
		}
		wantActive(t, h, PlanA())
		return
	}
	if err != nil {
		t.Fatalf("Apply(application rule): %v", err)
	}
	wantActive(t, h, p)
}

func testClose(t *testing.T, h Host) {
	mustApply(t, h.Enforcer, PlanA())
	if err := h.Enforcer.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := h.Enforcer.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := h.Enforcer.Apply(context.Background(), PlanB()); !errors.Is(err, isolation.ErrClosed) {
		t.Fatalf("Apply after Close = %v, want ErrClosed", err)
	}
	if err := h.Enforcer.Clear(context.Background()); !errors.Is(err, isolation.ErrClosed) {
		t.Fatalf("Clear after Close = %v, want ErrClosed", err)
	}
	if o, ok := h.Enforcer.(isolation.Observer); ok {
		if _, err := o.Observe(context.Background()); !errors.Is(err, isolation.ErrClosed) {
			t.Fatalf("Observe after Close = %v, want ErrClosed", err)
		}
	}
	if h.Reopen == nil {
		return
	}
	e2 := h.Reopen(t)
	defer func() {
		if err := e2.Close(); err != nil {
			t.Errorf("Close reopened: %v", err)
		}
	}()
	h2 := h
	h2.Enforcer = e2
	if h.observeFromEnforcer {
		h2.Observe = nil
		if o, ok := e2.(isolation.Observer); ok {
			h2.Observe = o.Observe
		}
	}
	// The rules outlived the closed enforcer.
	wantActive(t, h2, PlanA())
	mustApply(t, e2, PlanB())
	wantActive(t, h2, PlanB())
	if err := e2.Clear(context.Background()); err != nil {
		t.Fatalf("Clear by reopened enforcer: %v", err)
	}
	wantInactive(t, h2)
}

func testTamper(t *testing.T, h Host) {
	if h.Tamper == nil {
		t.Skip("no Tamper hook")
	}
	mustApply(t, h.Enforcer, PlanA())
	if err := h.Tamper(context.Background()); err != nil {
		t.Fatalf("Tamper: %v", err)
	}
	if o, ok := observe(t, h); ok && o.Active && o.Plan.Equivalent(PlanA()) {
		t.Fatal("Tamper did not change the observed state; the hook or Observe is broken")
	}
	mustApply(t, h.Enforcer, PlanA())
	wantActive(t, h, PlanA())
}

// ProbeFlows returns flows the suite probes, each for both PlanA and PlanB.
func ProbeFlows() []isolation.Flow {
	a := netip.MustParseAddr
	return []isolation.Flow{
		{Initiator: isolation.DirectionOut, Protocol: isolation.ProtocolTCP, Remote: a("198.18.0.10"), RemotePort: 4222, LocalPort: 40000},
		{Initiator: isolation.DirectionOut, Protocol: isolation.ProtocolTCP, Remote: a("2001:db8::10"), RemotePort: 4222, LocalPort: 40000},
		{Initiator: isolation.DirectionOut, Protocol: isolation.ProtocolTCP, Remote: a("198.18.0.10"), RemotePort: 4223, LocalPort: 40000},
		{Initiator: isolation.DirectionIn, Protocol: isolation.ProtocolTCP, Remote: a("198.18.0.10"), LocalPort: 4222, RemotePort: 40000},
		{Initiator: isolation.DirectionOut, Protocol: isolation.ProtocolTCP, Remote: a("198.18.1.7"), RemotePort: 443, LocalPort: 40001},
		{Initiator: isolation.DirectionOut, Protocol: isolation.ProtocolTCP, Remote: a("2001:db8:1::7"), RemotePort: 8080, LocalPort: 40001},
		{Initiator: isolation.DirectionOut, Protocol: isolation.ProtocolTCP, Remote: a("198.18.9.9"), RemotePort: 443, LocalPort: 40001},
		{Initiator: isolation.DirectionIn, Protocol: isolation.ProtocolTCP, Remote: a("198.18.2.5"), LocalPort: 22, RemotePort: 40002},
		{Initiator: isolation.DirectionIn, Protocol: isolation.ProtocolTCP, Remote: a("198.18.2.6"), LocalPort: 22, RemotePort: 40002},
		{Initiator: isolation.DirectionOut, Protocol: isolation.ProtocolUDP, Remote: a("198.18.4.4"), RemotePort: 53, LocalPort: 40003},
		{Initiator: isolation.DirectionOut, Protocol: isolation.ProtocolUDP, Remote: a("2001:db8:4::4"), RemotePort: 53, LocalPort: 40003},
		{Initiator: isolation.DirectionIn, Protocol: isolation.ProtocolUDP, Remote: a("198.18.4.4"), LocalPort: 53, RemotePort: 40003},
		{Initiator: isolation.DirectionOut, Protocol: isolation.ProtocolUDP, Remote: a("198.18.4.4"), RemotePort: 123, LocalPort: 40003},
		{Initiator: isolation.DirectionOut, Protocol: isolation.ProtocolICMP, Remote: a("198.18.3.3"), ICMPType: 8},
		{Initiator: isolation.DirectionOut, Protocol: isolation.ProtocolICMP, Remote: a("198.18.5.5"), ICMPType: 8},
		{Initiator: isolation.DirectionIn, Protocol: isolation.ProtocolTCP, Remote: a("127.0.0.1"), LocalPort: 8080, RemotePort: 40004},
		{Initiator: isolation.DirectionOut, Protocol: isolation.ProtocolTCP, Remote: a("::1"), RemotePort: 8080, LocalPort: 40004},
	}
}

func testProbe(t *testing.T, h Host) {
	if h.Probe == nil {
		t.Skip("no Probe hook")
	}
	ctx := context.Background()
	for _, p := range []isolation.Plan{PlanA(), PlanB()} {
		mustApply(t, h.Enforcer, p)
		for _, f := range ProbeFlows() {
			got, err := h.Probe(ctx, f)
			if err != nil {
				t.Fatalf("Probe(%+v): %v", f, err)
			}
			if want := p.Allows(f); got != want {
				t.Errorf("flow %+v: passes=%v, want %v under\n%s", f, got, want, p)
			}
		}
	}
	if err := h.Enforcer.Clear(ctx); err != nil {
		t.Fatalf("Clear: %v", err)
	}
	for _, f := range ProbeFlows() {
		got, err := h.Probe(ctx, f)
		if err != nil {
			t.Fatalf("Probe(%+v): %v", f, err)
		}
		if !got {
			t.Errorf("flow %+v blocked after Clear", f)
		}
	}
}

func testConcurrent(t *testing.T, h Host) {
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := PlanA()
			if i%2 == 1 {
				p = PlanB()
			}
			if err := h.Enforcer.Apply(context.Background(), p); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Apply: %v", err)
	}
	// Whatever won, the state is one of the two plans, whole.
	if o, ok := observe(t, h); ok {
		if !o.Active || !(o.Plan.Equivalent(PlanA()) || o.Plan.Equivalent(PlanB())) {
			t.Fatalf("after concurrent Apply the state is neither plan A nor B:\n%s", o.Plan)
		}
	}
	mustApply(t, h.Enforcer, PlanB())
	wantActive(t, h, PlanB())
}
