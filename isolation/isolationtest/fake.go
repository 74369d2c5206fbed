package isolationtest

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/cordonsec/cordon/isolation"
)

// Fake is an in-memory isolation.Enforcer that records every call and the
// text of every plan it applied. It implements isolation.Observer and
// isolation.Capable, and follows the whole Enforcer contract (it passes
// Run), so the Manager's tests exercise the same semantics as a real
// adapter. Failures can be injected.
//
// The "platform" state lives in a FakeHost shared by all Fakes made by
// Reopen, as firewall rules outlive the agent process. A Fake is safe for
// concurrent use.
type Fake struct {
	host *FakeHost

	mu     sync.Mutex
	closed bool
}

// FakeHost is the simulated platform firewall state behind one or more
// Fakes.
type FakeHost struct {
	mu           sync.Mutex
	active       bool
	plan         isolation.Plan
	plans        []string
	calls        []string
	applyErr     error
	applyErrN    int // remaining injected failures; -1 = until reset
	clearErr     error
	corruptNext  bool
	connsLeftN   int // remaining Applies that leave connections open; -1 = until reset
	applications bool
	onApply      func(ctx context.Context, p isolation.Plan) error
}

// NewFake returns a Fake over a new FakeHost that is not isolated.
func NewFake() *Fake { return &Fake{host: &FakeHost{}} }

// Reopen returns a new Fake over the same host state, as an agent that
// restarted would get.
func (f *Fake) Reopen() *Fake { return &Fake{host: f.host} }

// Host returns the shared host state.
func (f *Fake) Host() *FakeHost { return f.host }

// Apply implements isolation.Enforcer.
func (f *Fake) Apply(ctx context.Context, p isolation.Plan) error {
	f.mu.Lock()
	closed := f.closed
	f.mu.Unlock()
	if closed {
		return fmt.Errorf("fake enforcer: apply: %w", isolation.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("fake enforcer: apply: %w", err)
	}
	if err := p.Validate(); err != nil {
		return fmt.Errorf("fake enforcer: apply: %w", err)
	}
	h := f.host
	h.mu.Lock()
	hook := h.onApply
	h.mu.Unlock()
	if hook != nil {
		if err := hook(ctx, p); err != nil {
			h.record("apply-failed")
			return fmt.Errorf("fake enforcer: apply: %w", err)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if p.HasApplicationRules() && !h.applications {
		h.calls = append(h.calls, "apply-failed")
		return fmt.Errorf("fake enforcer: apply: application rules: %w", isolation.ErrUnsupported)
	}
	if h.applyErr != nil && h.applyErrN != 0 {
		if h.applyErrN > 0 {
			h.applyErrN--
		}
		h.calls = append(h.calls, "apply-failed")
		return fmt.Errorf("fake enforcer: apply: %w", h.applyErr)
	}
	n := p.Normalize()
	h.plans = append(h.plans, n.String())
	h.calls = append(h.calls, "apply")
	h.active = true
	h.plan = n
	if h.corruptNext {
		h.corruptNext = false
		// Simulate a platform that silently dropped a rule: the read-back
		// below notices.
		h.plan.Rules = nil
		h.plan.Management = nil
	}
	if !h.plan.Equal(n) {
		return fmt.Errorf("fake enforcer: apply: %w", isolation.ErrReadBack)
	}
	if h.connsLeftN != 0 {
		if h.connsLeftN > 0 {
			h.connsLeftN--
		}
		h.calls[len(h.calls)-1] = "apply-conns-left"
		return fmt.Errorf("fake enforcer: apply: rules in force, but %w", isolation.ErrConnectionsLeft)
	}
	return nil
}

// Clear implements isolation.Enforcer.
func (f *Fake) Clear(ctx context.Context) error {
	f.mu.Lock()
	closed := f.closed
	f.mu.Unlock()
	if closed {
		return fmt.Errorf("fake enforcer: clear: %w", isolation.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("fake enforcer: clear: %w", err)
	}
	h := f.host
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.clearErr != nil {
		h.calls = append(h.calls, "clear-failed")
		return fmt.Errorf("fake enforcer: clear: %w", h.clearErr)
	}
	h.calls = append(h.calls, "clear")
	h.active = false
	h.plan = isolation.Plan{}
	return nil
}

// Close implements isolation.Enforcer. It leaves the host state as it is.
func (f *Fake) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

// Observe implements isolation.Observer. After Close it returns an error
// wrapping isolation.ErrClosed, as the contract asks.
func (f *Fake) Observe(ctx context.Context) (isolation.Observation, error) {
	f.mu.Lock()
	closed := f.closed
	f.mu.Unlock()
	if closed {
		return isolation.Observation{}, fmt.Errorf("fake enforcer: observe: %w", isolation.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return isolation.Observation{}, fmt.Errorf("fake enforcer: observe: %w", err)
	}
	h := f.host
	h.mu.Lock()
	defer h.mu.Unlock()
	return isolation.Observation{Active: h.active, Plan: h.plan}, nil
}

// Capabilities implements isolation.Capable.
func (f *Fake) Capabilities() isolation.Capabilities {
	f.host.mu.Lock()
	defer f.host.mu.Unlock()
	return isolation.Capabilities{Applications: f.host.applications}
}

func (h *FakeHost) record(call string) {
	h.mu.Lock()
	h.calls = append(h.calls, call)
	h.mu.Unlock()
}

// SetApplications sets whether application rules are supported (default
// false).
func (h *FakeHost) SetApplications(ok bool) {
	h.mu.Lock()
	h.applications = ok
	h.mu.Unlock()
}

// FailApply makes the next n Apply calls fail with err (n < 0: every call
// until FailApply(nil, 0)). The state is left unchanged by a failed Apply.
func (h *FakeHost) FailApply(err error, n int) {
	h.mu.Lock()
	h.applyErr, h.applyErrN = err, n
	h.mu.Unlock()
}

// FailClear makes every Clear fail with err until FailClear(nil).
func (h *FakeHost) FailClear(err error) {
	h.mu.Lock()
	h.clearErr = err
	h.mu.Unlock()
}

// CorruptNextApply makes the next Apply install an empty rule set instead
// of the plan, so its read-back fails with isolation.ErrReadBack.
func (h *FakeHost) CorruptNextApply() {
	h.mu.Lock()
	h.corruptNext = true
	h.mu.Unlock()
}

// LeaveConnections makes the next n Apply calls install the plan (it is
// then in force and read back) but fail with an error wrapping
// isolation.ErrConnectionsLeft, as an adapter does when it cannot end the
// existing connections the plan does not allow (n < 0: every call until
// LeaveConnections(0)). Such a call is recorded as "apply-conns-left".
func (h *FakeHost) LeaveConnections(n int) {
	h.mu.Lock()
	h.connsLeftN = n
	h.mu.Unlock()
}

// OnApply installs a hook called at the start of every Apply (after
// validation); an error from it fails that Apply without changing the
// state. Tests use it to block an Apply or to simulate a crash during one.
func (h *FakeHost) OnApply(hook func(ctx context.Context, p isolation.Plan) error) {
	h.mu.Lock()
	h.onApply = hook
	h.mu.Unlock()
}

// Tamper changes the state behind the enforcer's back: it drops all rules
// but keeps the host marked active, as an administrator flushing the
// firewall would.
func (h *FakeHost) Tamper() {
	h.mu.Lock()
	h.plan = isolation.Plan{Management: h.plan.Management}
	h.mu.Unlock()
}

// Active reports whether the host is isolated, and the plan in force.
func (h *FakeHost) Active() (bool, isolation.Plan) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.active, h.plan
}

// Plans returns the canonical text of every plan installed, in order: the
// plans applied successfully and those of "apply-conns-left" calls.
func (h *FakeHost) Plans() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.plans...)
}

// Calls returns the calls made, in order: "apply", "apply-failed",
// "apply-conns-left", "clear", "clear-failed".
func (h *FakeHost) Calls() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.calls...)
}

// ErrInjected is a convenient error for FailApply and FailClear.
var ErrInjected = errors.New("injected failure")
