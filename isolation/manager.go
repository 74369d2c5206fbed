package isolation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"
)

// Defaults for the zero values of Config.
const (
	DefaultDuration        = 8 * time.Hour
	DefaultRefreshInterval = time.Minute
	DefaultRetryInterval   = 30 * time.Second
	DefaultOpTimeout       = time.Minute
	DefaultResolveTimeout  = 10 * time.Second
	maxDuration            = 100 * 365 * 24 * time.Hour
	maxRecentCommands      = 64
	maxTimerWait           = time.Minute // the scheduler's longest sleep
)

// ErrNotRestored is returned by Isolate, Release, SetExclusions and
// HandleCommand before Restore was called.
var ErrNotRestored = errors.New("manager not restored yet; call Restore first")

// ModeConfig configures one isolation mode.
type ModeConfig struct {
	// Duration is how long an isolation of this mode lasts when the request
	// does not say; zero means DefaultDuration (8h).
	Duration time.Duration `json:"duration,omitzero"`
	// Exclusions is this mode's exclusion list; its zero value is the
	// default profiles (DNS and DHCP, client and server) and no custom
	// rule.
	Exclusions Exclusions `json:"exclusions"`
}

// Config configures a Manager. Zero values are the documented defaults;
// only Enforcer is required.
type Config struct {
	// Host is the host id put in audit events and Status.
	Host string
	// Enforcer applies plans; required. The Manager does not close it.
	Enforcer Enforcer
	// Store persists the state; nil means a MemoryStore, which does not
	// survive a restart (use a FileStore in an agent).
	Store Store
	// Sink receives audit events; nil discards them.
	Sink Sink
	// Resolver resolves management host names; nil means net.DefaultResolver.
	Resolver Resolver
	// Management lists the management endpoints (bus servers), always
	// allowed while isolated. Empty: none (an embedded bus).
	Management []ManagementEndpoint
	// Automatic and Manual configure the two modes.
	Automatic ModeConfig
	Manual    ModeConfig
	// RefreshInterval is how often the management endpoints are resolved
	// again while isolated; zero means DefaultRefreshInterval (1 minute).
	RefreshInterval time.Duration
	// RetryInterval is how long the Manager waits in state failed before
	// it tries again; zero means DefaultRetryInterval (30s).
	RetryInterval time.Duration
	// DeadMan, when positive, enables the dead-man switch: an isolation is
	// released when the management channel has been reported unreachable
	// (ReportChannel(false)) for this long. Zero: off (the default).
	DeadMan time.Duration
	// OpTimeout bounds the enforcer calls the Manager makes by itself
	// (deadline, refresh, retry); zero means DefaultOpTimeout (1 minute).
	OpTimeout time.Duration
	// ResolveTimeout bounds each name lookup; zero means
	// DefaultResolveTimeout (10s).
	ResolveTimeout time.Duration
	// Logger receives operational logs; nil discards them.
	Logger *slog.Logger
	// Clock is the source of time for deadlines, refreshes, retries and
	// the times in Status and events; nil means SystemClock.
	Clock Clock
}

// Validate checks the configuration; errors wrap ErrInvalidConfig.
func (c Config) Validate() error {
	if c.Enforcer == nil {
		return fmt.Errorf("isolation: %w: Enforcer is required", ErrInvalidConfig)
	}
	for i, e := range c.Management {
		if _, _, _, err := e.split(); err != nil {
			return fmt.Errorf("management[%d]: %w", i, err)
		}
	}
	for _, mc := range []struct {
		name string
		m    ModeConfig
	}{{"automatic", c.Automatic}, {"manual", c.Manual}} {
		if mc.m.Duration < 0 || mc.m.Duration > maxDuration {
			return fmt.Errorf("isolation: %w: %s duration %v out of range", ErrInvalidConfig, mc.name, mc.m.Duration)
		}
		if err := mc.m.Exclusions.Validate(); err != nil {
			return fmt.Errorf("%s exclusions: %w", mc.name, err)
		}
	}
	for name, d := range map[string]time.Duration{"RefreshInterval": c.RefreshInterval, "RetryInterval": c.RetryInterval,
		"DeadMan": c.DeadMan, "OpTimeout": c.OpTimeout, "ResolveTimeout": c.ResolveTimeout} {
		if d < 0 {
			return fmt.Errorf("isolation: %w: %s is negative", ErrInvalidConfig, name)
		}
	}
	return nil
}

// Request asks the Manager to isolate the host.
type Request struct {
	Mode Mode // ModeAutomatic or ModeManual; required
	// Duration of the isolation from now; zero means the mode's default,
	// never "forever".
	Duration time.Duration
	// UntilReleased: no deadline; the isolation lasts until released.
	// Manual mode only; Duration must then be zero.
	UntilReleased bool
	Reason        string // why, for the audit trail
	Requester     string // who (a verified signer, a rule name, "local")
	CommandID     string // the bus command id, if any
}

// Validate checks the request; errors wrap ErrInvalidConfig.
func (r Request) Validate() error {
	if r.Mode != ModeAutomatic && r.Mode != ModeManual {
		return fmt.Errorf("isolation: %w: request mode %q (want automatic or manual)", ErrInvalidConfig, r.Mode)
	}
	if r.Duration < 0 || r.Duration > maxDuration {
		return fmt.Errorf("isolation: %w: request duration %v out of range", ErrInvalidConfig, r.Duration)
	}
	if r.UntilReleased && r.Mode != ModeManual {
		return fmt.Errorf("isolation: %w: until-released is for manual isolation only", ErrInvalidConfig)
	}
	if r.UntilReleased && r.Duration != 0 {
		return fmt.Errorf("isolation: %w: until-released with a duration", ErrInvalidConfig)
	}
	return nil
}

// ReleaseRequest asks the Manager to end the isolation.
type ReleaseRequest struct {
	Reason    string
	Requester string
	CommandID string
}

// Status is a snapshot of the Manager's state.
type Status struct {
	Host          string    `json:"host,omitempty"`
	State         State     `json:"state"`
	Target        State     `json:"target,omitempty"`         // on or off while isolating, releasing or failed
	Mode          Mode      `json:"mode,omitzero"`            // when isolated
	Since         time.Time `json:"since,omitzero"`           // when the isolation began
	Deadline      time.Time `json:"deadline,omitzero"`        // when it ends by itself; zero if until released
	UntilReleased bool      `json:"until_released,omitempty"` // manual, no deadline
	ChangedAt     time.Time `json:"changed_at,omitzero"`      // the last transition
	Reason        string    `json:"reason,omitempty"`
	Requester     string    `json:"requester,omitempty"`
	CommandID     string    `json:"command_id,omitempty"`
	Exclusions    []string  `json:"exclusions,omitempty"` // exclusion rules in force, rule text form
	Skipped       []string  `json:"skipped,omitempty"`    // configured rules the enforcer cannot match (application rules), not in force
	Management    []string  `json:"management,omitempty"` // management endpoints allowed, plan text form
	LastError     string    `json:"last_error,omitempty"`
	PersistError  string    `json:"persist_error,omitempty"` // the last failure to persist the state, if any
}

// Isolated reports whether the host is meant to be isolated (on, or on its
// way to on).
func (s Status) Isolated() bool {
	return s.State == StateOn || s.State == StateIsolating || (s.State == StateFailed && s.Target == StateOn)
}

// Manager is the isolation state machine. Create it with New, call Restore
// once, then Isolate, Release, Status, HandleCommand. It is safe for
// concurrent use: transitions are serialized, Status never waits for one.
type Manager struct {
	cfg   Config
	log   *slog.Logger
	res   Resolver
	clock Clock

	sem  chan struct{} // held during a transition
	kick chan struct{} // wakes the scheduler
	done chan struct{}
	wg   sync.WaitGroup
	ctx  context.Context // cancelled by Close; for self-initiated work
	stop context.CancelFunc

	mu          sync.Mutex
	closed      bool
	restored    bool
	rec         Record
	rules       []Rule // exclusion rules in force
	skipped     []Rule
	changedAt   time.Time
	lastRefresh time.Time
	// lastAnswer is the previous refresh's resolution, unmerged, for the
	// isolation that began at lastAnswerSince.
	lastAnswer      []Endpoint
	lastAnswerSince time.Time
	failedAt        time.Time
	downSince       time.Time
	cmds            []string
	persistErr      string
	modes           [3]ModeConfig
}

// New validates cfg and returns a Manager in state off with its scheduler
// running. Call Restore before anything else. Errors wrap ErrInvalidConfig.
func New(cfg Config) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Store == nil {
		cfg.Store = &MemoryStore{}
	}
	if cfg.RefreshInterval == 0 {
		cfg.RefreshInterval = DefaultRefreshInterval
	}
	if cfg.RetryInterval == 0 {
		cfg.RetryInterval = DefaultRetryInterval
	}
	if cfg.OpTimeout == 0 {
		cfg.OpTimeout = DefaultOpTimeout
	}
	if cfg.ResolveTimeout == 0 {
		cfg.ResolveTimeout = DefaultResolveTimeout
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	m := &Manager{
		clock: cfg.Clock,
		cfg:   cfg,
		log:   cfg.Logger,
		res:   cfg.Resolver,
		sem:   make(chan struct{}, 1),
		kick:  make(chan struct{}, 1),
		done:  make(chan struct{}),
		rec:   Record{Version: RecordVersion, State: StateOff},
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.res == nil {
		m.res = net.DefaultResolver
	}
	m.modes[ModeAutomatic] = cfg.Automatic
	m.modes[ModeManual] = cfg.Manual
	m.ctx, m.stop = context.WithCancel(context.Background())
	m.changedAt = m.now()
	m.wg.Add(1)
	go m.run()
	return m, nil
}

// Close stops the Manager's timers, cancels the work the Manager started
// by itself, and waits for a transition in progress (an Isolate, Release,
// SetExclusions or Restore call ends when its own ctx lets it) and for its
// background work: once Close returns, the Manager calls neither the
// Enforcer nor the Store nor the Sink, so the caller may close them. It
// does not release the isolation (rules outlive the agent; Restore on the
// next start reconciles) and does not close the Enforcer. It must not be
// called from the Enforcer, Store or Sink while the Manager is calling
// them (it would wait for itself). Later calls return ErrClosed; Close
// again returns nil.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.mu.Unlock()
	m.stop()
	close(m.done)
	// Take the transition lock for good: it is free once the transition
	// in progress, if any, has ended, and no other can start (acquire sees
	// done or closed).
	m.sem <- struct{}{}
	m.wg.Wait()
	return nil
}

// acquire takes the transition lock, honouring ctx.
func (m *Manager) acquire(ctx context.Context, needRestored bool) error {
	select {
	case m.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("isolation: %w", ctx.Err())
	case <-m.done:
		return fmt.Errorf("isolation: %w", ErrClosed)
	}
	m.mu.Lock()
	closed, restored := m.closed, m.restored
	m.mu.Unlock()
	if closed {
		<-m.sem
		return fmt.Errorf("isolation: %w", ErrClosed)
	}
	if needRestored && !restored {
		<-m.sem
		return fmt.Errorf("isolation: %w", ErrNotRestored)
	}
	return nil
}

func (m *Manager) releaseSem() { <-m.sem }

func (m *Manager) wake() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// Status returns a snapshot of the state. It never blocks on a transition.
func (m *Manager) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.statusLocked()
}

func (m *Manager) statusLocked() Status {
	r := m.rec
	s := Status{
		Host:         m.cfg.Host,
		State:        r.State,
		ChangedAt:    m.changedAt,
		LastError:    r.LastError,
		PersistError: m.persistErr,
	}
	if r.State != StateOff {
		s.Target = r.Target
	}
	if r.State == StateOff {
		return s
	}
	s.Mode, s.Since, s.Deadline, s.UntilReleased = r.Mode, r.Since, r.Deadline, r.UntilReleased
	s.Reason, s.Requester, s.CommandID = r.Reason, r.Requester, r.CommandID
	for _, x := range m.rules {
		s.Exclusions = append(s.Exclusions, x.String())
	}
	for _, x := range m.skipped {
		s.Skipped = append(s.Skipped, x.String())
	}
	for _, e := range r.Management {
		s.Management = append(s.Management, e.String())
	}
	return s
}

// Isolate isolates the host, or, if it is isolated already, extends the
// deadline to the later of the current and the requested one (never
// shortening it) and, if the mode (and so the exclusion list) changes,
// re-applies. It returns the resulting Status. The host is reported "on"
// only after the Enforcer applied and read back the plan and ended the
// connections it does not allow; on failure the state is failed, the error
// (an *ApplyError, or wrapping ErrResolve) is returned, and the Manager
// retries every RetryInterval. An Apply that fails with ErrConnectionsLeft
// is tried once more at once; if it fails again, the state is failed with
// the new exclusions listed in Status (their rules are in force).
func (m *Manager) Isolate(ctx context.Context, req Request) (Status, error) {
	if err := req.Validate(); err != nil {
		return m.Status(), err
	}
	if err := m.acquire(ctx, true); err != nil {
		return m.Status(), err
	}
	defer m.releaseSem()
	err := m.isolateLocked(ctx, req)
	m.wake()
	return m.Status(), err
}

func (m *Manager) deadlineFor(req Request, now time.Time) (time.Time, bool) {
	if req.UntilReleased {
		return time.Time{}, true
	}
	d := req.Duration
	if d == 0 {
		m.mu.Lock()
		d = m.modes[req.Mode].Duration
		m.mu.Unlock()
	}
	if d == 0 {
		d = DefaultDuration
	}
	return now.Add(d), false
}

func (m *Manager) isolateLocked(ctx context.Context, req Request) error {
	now := m.now()
	deadline, until := m.deadlineFor(req, now)
	m.mu.Lock()
	cur := m.rec
	excl := m.modes[req.Mode].Exclusions.Clone()
	m.mu.Unlock()

	if cur.Target != StateOn || cur.State == StateOff {
		rec := Record{
			Version: RecordVersion, State: StateIsolating, Target: StateOn, Mode: req.Mode,
			Since: now, Deadline: deadline, UntilReleased: until,
			Reason: req.Reason, Requester: req.Requester, CommandID: req.CommandID,
			Exclusions: excl, Management: cur.Management,
		}
		m.transition(ctx, rec, EventIsolating, req.Requester, req.Reason, req.CommandID, "")
		return m.bringUp(ctx, EventEnabled, req.Requester, req.Reason, req.CommandID)
	}

	// Already isolated (or failed on the way): extend, never shorten.
	rec := cur
	switch {
	case cur.UntilReleased || until:
		rec.UntilReleased, rec.Deadline = true, time.Time{}
	case deadline.After(cur.Deadline):
		rec.Deadline = deadline
	}
	// An operator's hold "until released" is manual only: an automatic
	// request on top of it neither ends the hold nor takes it over with
	// the policy's exclusions; it is recorded as an extension.
	if !cur.UntilReleased || req.Mode == ModeManual {
		rec.Mode, rec.Exclusions = req.Mode, excl
	}
	changed := cur.Mode != rec.Mode || !cur.Exclusions.Equal(rec.Exclusions)
	rec.Reason, rec.Requester, rec.CommandID = req.Reason, req.Requester, req.CommandID
	if !changed && cur.State == StateOn {
		m.transition(ctx, rec, EventExtended, req.Requester, req.Reason, req.CommandID, "")
		return nil
	}
	kind := EventExtended
	if cur.State != StateOn {
		kind = EventEnabled
	}
	m.mu.Lock()
	m.rec = rec
	m.mu.Unlock()
	m.persist(ctx)
	return m.bringUp(ctx, kind, req.Requester, req.Reason, req.CommandID)
}

// transition installs rec, persists it and publishes an event of kind.
func (m *Manager) transition(ctx context.Context, rec Record, kind EventKind, who, why, cmd, errText string) {
	m.mu.Lock()
	from := m.rec.State
	if rec.State != from {
		m.changedAt = m.now()
	}
	if rec.State == StateFailed {
		m.failedAt = m.now()
	}
	m.rec = rec
	m.mu.Unlock()
	m.persist(ctx)
	m.emit(ctx, kind, from, rec, who, why, cmd, errText)
}

func (m *Manager) persist(ctx context.Context) {
	m.mu.Lock()
	rec := m.rec
	rec.Version = RecordVersion
	rec.Commands = slices.Clone(m.cmds)
	m.mu.Unlock()
	// Persist even when the caller's ctx is done: the state must not be
	// lost because a request was cancelled.
	err := m.cfg.Store.Save(context.WithoutCancel(ctx), rec)
	m.mu.Lock()
	if err != nil {
		m.persistErr = err.Error()
	} else {
		m.persistErr = ""
	}
	m.mu.Unlock()
	if err != nil {
		m.log.Error("isolation: persisting state failed", "err", err, "state", rec.State)
	}
}

func (m *Manager) emit(ctx context.Context, kind EventKind, from State, rec Record, who, why, cmd, errText string) {
	if m.cfg.Sink == nil {
		return
	}
	ev := Event{
		Schema: EventSchema, ID: newEventID(), Time: m.now(), Host: m.cfg.Host, Kind: kind,
		From: from, To: rec.State, Requester: who, Reason: why, CommandID: cmd, Error: errText,
	}
	if rec.Target == StateOn || rec.State == StateOn || kind == EventReleased || kind == EventReleasing {
		ev.Mode, ev.Deadline, ev.UntilReleased = rec.Mode, rec.Deadline, rec.UntilReleased
		// The rules the enforcer can put in force: an application rule
		// an enforcer cannot match is left out of the plan, so out of
		// the audit trail too (Status lists it under Skipped).
		if all, err := rec.Exclusions.AllRules(); err == nil {
			rules, _ := m.enforceable(all)
			for _, r := range rules {
				ev.Exclusions = append(ev.Exclusions, r.String())
			}
		}
		for _, e := range rec.Management {
			ev.Management = append(ev.Management, e.String())
		}
	}
	if err := m.cfg.Sink.Publish(context.WithoutCancel(ctx), ev); err != nil {
		m.log.Warn("isolation: audit event not published", "kind", kind, "err", err)
	}
}

// buildPlan makes the plan for exclusions x and endpoints eps.
func (m *Manager) buildPlan(x Exclusions, eps []Endpoint) (Plan, []Rule, []Rule, error) {
	all, err := x.AllRules()
	if err != nil {
		return Plan{}, nil, nil, err
	}
	rules, skipped := m.enforceable(all)
	p := Plan{Management: eps, Rules: append(slices.Clone(rules), NeighborDiscoveryRule())}
	if err := p.Validate(); err != nil {
		return Plan{}, nil, nil, err
	}
	return p.Normalize(), rules, skipped, nil
}

// enforceable splits rules into those the enforcer can match and those it
// cannot (application rules, for an enforcer without Applications).
func (m *Manager) enforceable(all []Rule) (rules, skipped []Rule) {
	apps := EnforcerCapabilities(m.cfg.Enforcer).Applications
	for _, r := range all {
		if r.Application != "" && !apps {
			skipped = append(skipped, r)
			continue
		}
		rules = append(rules, r)
	}
	return rules, skipped
}

// bringUp resolves, builds and applies the plan for the current record,
// then moves to on (publishing kind) or to failed.
func (m *Manager) bringUp(ctx context.Context, kind EventKind, who, why, cmd string) error {
	m.mu.Lock()
	rec := m.rec
	m.mu.Unlock()
	eps, rerrs, err := resolveEndpoints(ctx, m.res, m.cfg.Management, rec.Management, m.cfg.ResolveTimeout)
	for _, e := range rerrs {
		m.log.Warn("isolation: management endpoint not resolved; using cached addresses if any", "err", e)
	}
	if err != nil {
		return m.fail(ctx, err, who, why, cmd)
	}
	return m.bringUpWith(ctx, eps, kind, who, why, cmd)
}

// bringUpWith is bringUp with the management endpoints already resolved.
func (m *Manager) bringUpWith(ctx context.Context, eps []Endpoint, kind EventKind, who, why, cmd string) error {
	m.mu.Lock()
	rec := m.rec
	m.mu.Unlock()
	plan, rules, skipped, err := m.buildPlan(rec.Exclusions, eps)
	if err != nil {
		return m.fail(ctx, fmt.Errorf("isolation: build plan: %w", err), who, why, cmd)
	}
	if len(skipped) > 0 {
		m.log.Warn("isolation: the enforcer cannot match applications; application rules not in force", "rules", len(skipped))
	}
	err = m.cfg.Enforcer.Apply(ctx, plan)
	if errors.Is(err, ErrConnectionsLeft) && ctx.Err() == nil {
		// The plan's rules are in force; only ending the connections it
		// does not allow failed. Try again at once: a connection that
		// closed under the sweep, or a busy table, is usually gone by now.
		m.log.Warn("isolation: connections the plan does not allow are still open; applying again", "err", err)
		err = m.cfg.Enforcer.Apply(ctx, plan)
	}
	if errors.Is(err, ErrConnectionsLeft) {
		// The new rules are in force (and read back): Status lists them,
		// but the state is failed, never "on", until an Apply has ended
		// every connection the plan does not allow. The retry timer
		// applies again.
		m.mu.Lock()
		m.rules, m.skipped = rules, skipped
		m.rec.Management = eps
		m.mu.Unlock()
	}
	if err != nil {
		return m.fail(ctx, &ApplyError{Op: "apply", Err: err}, who, why, cmd)
	}
	now := m.now()
	m.mu.Lock()
	m.rules, m.skipped, m.lastRefresh = rules, skipped, now
	rec = m.rec
	m.mu.Unlock()
	rec.State, rec.Target, rec.Management, rec.LastError = StateOn, StateOn, eps, ""
	m.transition(ctx, rec, kind, who, why, cmd, "")
	return nil
}

func (m *Manager) fail(ctx context.Context, err error, who, why, cmd string) error {
	m.mu.Lock()
	rec := m.rec
	m.mu.Unlock()
	rec.State, rec.LastError = StateFailed, err.Error()
	m.log.Error("isolation: transition failed", "target", rec.Target, "err", err)
	m.transition(ctx, rec, EventFailed, who, why, cmd, err.Error())
	return err
}

// Release ends the isolation: the rules are cleared and the state becomes
// off. Releasing a host that is not isolated does nothing and returns its
// status, unless the Enforcer (an Observer) reads back rules of its own in
// force: those are cleared as for an isolation. A failure of the Enforcer leaves the state failed (target off),
// returns an *ApplyError, and is retried every RetryInterval.
func (m *Manager) Release(ctx context.Context, req ReleaseRequest) (Status, error) {
	if err := m.acquire(ctx, true); err != nil {
		return m.Status(), err
	}
	defer m.releaseSem()
	err := m.releaseLocked(ctx, req.Requester, req.Reason, req.CommandID)
	m.wake()
	return m.Status(), err
}

func (m *Manager) releaseLocked(ctx context.Context, who, why, cmd string) error {
	m.mu.Lock()
	cur := m.rec
	m.mu.Unlock()
	if cur.State == StateOff {
		// Off, but the enforcer's rules may still be in force (a state
		// file that could not be read on start, rules put back by hand):
		// a release must still end them, or nothing could.
		if !m.enforcerActive(ctx) {
			return nil
		}
		m.log.Warn("isolation: release while off, but the enforcer's rules are in force; clearing them")
	}
	rec := cur
	rec.State, rec.Target = StateReleasing, StateOff
	m.transition(ctx, rec, EventReleasing, who, why, cmd, "")
	if err := m.cfg.Enforcer.Clear(ctx); err != nil {
		return m.fail(ctx, &ApplyError{Op: "clear", Err: err}, who, why, cmd)
	}
	m.mu.Lock()
	m.rules, m.skipped = nil, nil
	m.mu.Unlock()
	off := Record{Version: RecordVersion, State: StateOff, Management: cur.Management}
	// The event describes the isolation that ended.
	m.mu.Lock()
	from := m.rec.State
	m.rec = off
	m.changedAt = m.now()
	m.mu.Unlock()
	m.persist(ctx)
	ended := cur
	ended.State = StateOff
	m.emit(ctx, EventReleased, from, ended, who, why, cmd, "")
	return nil
}

// enforcerActive reports whether the enforcer reads back rules of its own
// in force (also rules that read back wrong). An enforcer that is not an
// Observer cannot tell: false.
func (m *Manager) enforcerActive(ctx context.Context) bool {
	o, ok := m.cfg.Enforcer.(Observer)
	if !ok {
		return false
	}
	obs, err := o.Observe(ctx)
	if err != nil {
		m.log.Warn("isolation: cannot read back the enforcer's state", "err", err, "active", obs.Active)
	}
	return obs.Active || errors.Is(err, ErrReadBack)
}

// SetExclusions replaces the exclusion list of mode (a policy or host
// settings update). If the host is isolated in that mode, the plan is
// re-applied; an apply failure is returned and leaves the state failed.
func (m *Manager) SetExclusions(ctx context.Context, mode Mode, x Exclusions) error {
	if mode != ModeAutomatic && mode != ModeManual {
		return fmt.Errorf("isolation: %w: mode %q", ErrInvalidConfig, mode)
	}
	if err := x.Validate(); err != nil {
		return err
	}
	if err := m.acquire(ctx, true); err != nil {
		return err
	}
	defer m.releaseSem()
	m.mu.Lock()
	m.modes[mode].Exclusions = x.Clone()
	cur := m.rec
	m.mu.Unlock()
	if cur.Target != StateOn || cur.State == StateOff || cur.Mode != mode || cur.Exclusions.Equal(x) {
		return nil
	}
	m.mu.Lock()
	m.rec.Exclusions = x.Clone()
	m.mu.Unlock()
	m.persist(ctx)
	err := m.bringUp(ctx, EventUpdated, "config", "exclusions changed", "")
	m.wake()
	return err
}

// ReportChannel tells the dead-man switch whether the management channel
// is reachable now. The bus connection's handlers call it. Without
// Config.DeadMan it has no effect.
func (m *Manager) ReportChannel(up bool) {
	m.mu.Lock()
	switch {
	case up:
		m.downSince = time.Time{}
	case m.downSince.IsZero():
		m.downSince = m.now()
	}
	m.mu.Unlock()
	m.wake()
}

// Restore loads the persisted state and reconciles the host to it: an
// isolation whose deadline has not passed is applied again (whatever step
// the previous process crashed in), with the mode's exclusion list from
// the current Config; one whose deadline passed is released,
// an interrupted release is completed. With no persisted isolation, rules
// an Observer enforcer still reports are cleared. It must be called once,
// before any other operation; a failure leaves the state failed (and
// retried) or, for an unreadable store, off with the error in LastError,
// and is returned.
func (m *Manager) Restore(ctx context.Context) error {
	if err := m.acquire(ctx, false); err != nil {
		return err
	}
	defer m.releaseSem()
	defer m.wake()
	m.mu.Lock()
	if m.restored {
		m.mu.Unlock()
		return nil
	}
	m.restored = true
	m.mu.Unlock()

	rec, ok, err := m.cfg.Store.Load(ctx)
	if err != nil {
		m.mu.Lock()
		m.rec.LastError = err.Error()
		m.mu.Unlock()
		m.log.Error("isolation: cannot load persisted state", "err", err)
		return fmt.Errorf("isolation: restore: %w", err)
	}
	if !ok {
		rec = Record{Version: RecordVersion, State: StateOff}
	}
	if rec.Target == "" {
		rec.Target = StateOff
		if rec.State == StateIsolating || rec.State == StateOn || rec.State == StateFailed {
			rec.Target = StateOn
		}
	}
	m.mu.Lock()
	m.cmds = slices.Clone(rec.Commands)
	if len(m.cmds) > maxRecentCommands {
		m.cmds = m.cmds[len(m.cmds)-maxRecentCommands:]
	}
	m.mu.Unlock()
	const who = "restore"
	if rec.State == StateOff {
		m.mu.Lock()
		m.rec = rec
		m.mu.Unlock()
		// Rules that read back wrong (tampered, or foreign content in the
		// enforcer's table) are still the enforcer's: clear them too, or
		// the host stays cut off with the state "off".
		if m.enforcerActive(ctx) {
			m.log.Warn("isolation: rules in force without a persisted isolation; clearing them")
			if err := m.cfg.Enforcer.Clear(ctx); err != nil {
				rec.State, rec.Target = StateReleasing, StateOff
				m.mu.Lock()
				m.rec = rec
				m.mu.Unlock()
				return m.fail(ctx, &ApplyError{Op: "clear", Err: err}, who, "stale rules without persisted isolation", "")
			}
			m.emit(ctx, EventReleased, StateOff, rec, who, "stale rules without persisted isolation", "", "")
		}
		return nil
	}
	if rec.Target == StateOn && (rec.Mode == ModeAutomatic || rec.Mode == ModeManual) {
		// The configuration is authoritative: a policy or host list that
		// changed while the agent was down applies now.
		m.mu.Lock()
		rec.Exclusions = m.modes[rec.Mode].Exclusions.Clone()
		m.mu.Unlock()
	}
	m.mu.Lock()
	m.rec = rec
	m.mu.Unlock()
	if rec.Target == StateOff {
		return m.releaseLocked(ctx, who, "completing an interrupted release", "")
	}
	if !rec.UntilReleased && !m.now().Before(rec.Deadline) {
		return m.releaseLocked(ctx, who, "deadline passed while the agent was down", "")
	}
	return m.bringUp(ctx, EventRestored, who, "re-applying the persisted isolation", rec.CommandID)
}

// now returns the clock's time without its monotonic reading, so that
// every comparison with a deadline is by wall clock, as for a deadline
// read back from the Store: time the machine spent asleep counts.
func (m *Manager) now() time.Time { return m.clock.Now().Round(0) }

// run is the scheduler: it sleeps until the next deadline, refresh, retry
// or dead-man time and acts.
func (m *Manager) run() {
	defer m.wg.Done()
	for {
		var c <-chan time.Time
		var stop func() bool
		if at, ok := m.nextWake(); ok {
			// Timers run on the monotonic clock, which stops while the
			// machine sleeps; deadlines are wall-clock times. Waking at
			// least every maxTimerWait acts on a deadline that passed
			// during a sleep soon after the machine wakes.
			c, stop = m.clock.NewTimer(min(max(at.Sub(m.now()), 0), maxTimerWait))
		}
		select {
		case <-c:
			m.tick()
		case <-m.kick:
		case <-m.done:
			if stop != nil {
				stop()
			}
			return
		}
		if stop != nil {
			stop()
		}
	}
}

func (m *Manager) nextWake() (time.Time, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.restored {
		return time.Time{}, false
	}
	r := m.rec
	var at time.Time
	add := func(t time.Time) {
		if at.IsZero() || t.Before(at) {
			at = t
		}
	}
	if r.State != StateOff && r.Target == StateOn {
		if !r.UntilReleased {
			add(r.Deadline)
		}
		if m.cfg.DeadMan > 0 && !m.downSince.IsZero() {
			add(laterOf(m.downSince, r.Since).Add(m.cfg.DeadMan))
		}
		if r.State == StateOn && len(m.cfg.Management) > 0 {
			add(m.lastRefresh.Add(m.cfg.RefreshInterval))
		}
	}
	if r.State == StateFailed {
		add(m.failedAt.Add(m.cfg.RetryInterval))
	}
	return at, !at.IsZero()
}

func laterOf(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// tick does whatever is due now.
func (m *Manager) tick() {
	ctx, cancel := context.WithTimeout(m.ctx, m.cfg.OpTimeout)
	defer cancel()
	if err := m.acquire(ctx, true); err != nil {
		return
	}
	defer m.releaseSem()
	now := m.now()
	m.mu.Lock()
	r := m.rec
	down := m.downSince
	lastRefresh := m.lastRefresh
	failedAt := m.failedAt
	m.mu.Unlock()
	if r.State == StateOff {
		return
	}
	if r.Target == StateOn {
		switch {
		case !r.UntilReleased && !now.Before(r.Deadline):
			_ = m.releaseLocked(ctx, "timer", "deadline reached", "")
			return
		case m.cfg.DeadMan > 0 && !down.IsZero() && !now.Before(laterOf(down, r.Since).Add(m.cfg.DeadMan)):
			_ = m.releaseLocked(ctx, "dead-man", fmt.Sprintf("management channel unreachable since %s", down.UTC().Format(time.RFC3339)), "")
			return
		}
	}
	if r.State == StateFailed && !now.Before(failedAt.Add(m.cfg.RetryInterval)) {
		if r.Target == StateOff {
			_ = m.releaseLocked(ctx, "timer", "retrying release", "")
		} else {
			_ = m.bringUp(ctx, EventEnabled, "timer", "retrying isolation", "")
		}
		return
	}
	if r.State == StateOn && len(m.cfg.Management) > 0 && !now.Before(lastRefresh.Add(m.cfg.RefreshInterval)) {
		m.refresh(ctx, r)
	}
}

// refresh resolves the management endpoints again and re-applies the plan
// if their addresses changed.
func (m *Manager) refresh(ctx context.Context, r Record) {
	eps, rerrs, err := resolveEndpoints(ctx, m.res, m.cfg.Management, r.Management, m.cfg.ResolveTimeout)
	m.mu.Lock()
	m.lastRefresh = m.now()
	m.mu.Unlock()
	for _, e := range rerrs {
		m.log.Warn("isolation: refreshing management endpoint failed; keeping cached addresses", "err", e)
	}
	if err != nil {
		return
	}
	// Allow the union of this answer and the previous one: a name that
	// resolves round-robin to a subset of its addresses must not make the
	// sweep end the agent's own bus connection, nor leave the agent's next
	// lookup pointing at an address the rules just dropped. An address
	// goes once two answers in a row leave it out.
	m.mu.Lock()
	prev := m.lastAnswer
	if !m.lastAnswerSince.Equal(r.Since) {
		prev = r.Management // the first refresh of this isolation
	}
	m.lastAnswer, m.lastAnswerSince = eps, r.Since
	m.mu.Unlock()
	merged := mergeEndpoints(eps, prev)
	if (Plan{Management: merged}).Equal(Plan{Management: r.Management}) {
		return
	}
	_ = m.bringUpWith(ctx, merged, EventUpdated, "timer", "management endpoint addresses changed", "")
}

// mergeEndpoints returns eps with each endpoint's addresses joined by
// those of the endpoint of prev with the same name, protocol and port.
func mergeEndpoints(eps, prev []Endpoint) []Endpoint {
	out := make([]Endpoint, len(eps))
	for i, e := range eps {
		e.Addrs = slices.Clone(e.Addrs)
		for _, p := range prev {
			if p.Name == e.Name && p.Protocol == e.Protocol && p.Port == e.Port {
				e.Addrs = append(e.Addrs, p.Addrs...)
			}
		}
		out[i] = e.normalize()
	}
	return out
}

// MemoryStore is a Store in memory, for tests and for hosts where the
// caller persists elsewhere. It is safe for concurrent use.
type MemoryStore struct {
	mu  sync.Mutex
	rec *Record
	n   int
}

// Load implements Store.
func (s *MemoryStore) Load(ctx context.Context) (Record, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rec == nil {
		return Record{}, false, nil
	}
	r := *s.rec
	r.Exclusions = r.Exclusions.Clone()
	r.Management = slices.Clone(r.Management)
	r.Commands = slices.Clone(r.Commands)
	return r, true, nil
}

// Save implements Store.
func (s *MemoryStore) Save(ctx context.Context, r Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r.Version = RecordVersion
	r.Exclusions = r.Exclusions.Clone()
	r.Management = slices.Clone(r.Management)
	s.rec = &r
	s.n++
	return nil
}

// Saves returns how many times Save was called.
func (s *MemoryStore) Saves() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}
