package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/cordonsec/cordon/bus"
	"github.com/cordonsec/cordon/examples/internal/pipeline"
	"github.com/cordonsec/cordon/ioc"
	"github.com/cordonsec/cordon/isolation"
	"github.com/cordonsec/cordon/isolation/isolationtest"
	"github.com/cordonsec/cordon/response"
	"github.com/cordonsec/cordon/response/responsebus"
)

// harness is one case's pipeline: the embedded bus, the matchers, the
// response engine consuming detections from the bus and sending signed
// commands, and the isolation Manager (fake enforcer) consuming them.
type harness struct {
	c        *Case
	clock    *pipeline.Clock
	bus      *bus.Bus
	matcher  *pipeline.Matcher
	engine   *response.Engine
	operator nkeys.KeyPair
	store    *shiftStore
	fake     *isolationtest.Fake
	auto     isolation.ModeConfig
	manual   isolation.ModeConfig

	cancel  context.CancelFunc
	runDone chan struct{}
	cmdSub  *bus.Subscription

	mu        sync.Mutex
	changed   chan struct{}
	mgr       *isolation.Manager
	decisions map[string]*response.Decision
	isoEvents []isolation.Event
	virtual   map[int64]time.Time // Manager-frame deadline (UnixNano) -> virtual deadline
	published int
	handled   int
	results   []isolation.Result
	runErr    error
}

// stepTimeout bounds the wait for the pipeline to settle after a step.
const stepTimeout = 20 * time.Second

func newHarness(ctx context.Context, c *Case, dataDir string) (_ *harness, err error) {
	h := &harness{
		c: c, clock: pipeline.NewClock(c.start),
		changed:   make(chan struct{}),
		decisions: map[string]*response.Decision{},
		virtual:   map[int64]time.Time{},
		fake:      isolationtest.NewFake(),
		store:     &shiftStore{},
	}
	defer func() {
		if err != nil {
			h.close()
		}
	}()
	if h.auto, err = c.Policy.modeConfig(); err != nil {
		return nil, err
	}
	if h.manual, err = c.HostSettings.modeConfig(); err != nil {
		return nil, err
	}
	h.bus, err = bus.Open(ctx, bus.Config{DataDir: dataDir, Clock: h.clock.Now, Name: "cordon-runner"})
	if err != nil {
		return nil, fmt.Errorf("bus: %w", err)
	}
	h.matcher, err = pipeline.NewMatcher(pipeline.MatcherConfig{Now: h.clock.Now})
	if err != nil {
		return nil, err
	}
	for _, p := range c.Feeds {
		if err := h.matcher.LoadFeedFile(c.path(p)); err != nil {
			return nil, err
		}
	}
	for _, p := range c.YARA {
		if err := h.matcher.LoadYARAFile(c.path(p)); err != nil {
			return nil, err
		}
	}
	engineKey, err := nkeys.CreateAccount()
	if err != nil {
		return nil, err
	}
	if h.operator, err = nkeys.CreateAccount(); err != nil {
		return nil, err
	}
	cmds, err := responsebus.NewCommands(responsebus.CommandsConfig{Bus: countingPublisher{h}, Key: engineKey, Clock: h.clock.Now})
	if err != nil {
		return nil, err
	}
	supp, err := responsebus.NewSuppressions(ctx, h.bus.JetStream(), responsebus.SuppressionsConfig{})
	if err != nil {
		return nil, err
	}
	h.engine, err = response.New(response.Config{
		Services:     response.Services{Isolator: cmds, Publisher: responsebus.Publisher{Conn: h.bus.Conn()}},
		Sink:         recordSink{next: responsebus.Sink{Bus: h.bus}, h: h},
		Suppressions: supp,
		DryRun:       c.DryRun,
		Clock:        h.clock.Now,
		Logger:       slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return nil, err
	}
	for _, p := range c.Rules {
		if err := h.engine.LoadFile(c.path(p)); err != nil {
			return nil, err
		}
	}
	if err := h.startManager(ctx); err != nil {
		return nil, err
	}
	enginePub, err := engineKey.PublicKey()
	if err != nil {
		return nil, err
	}
	operatorPub, err := h.operator.PublicKey()
	if err != nil {
		return nil, err
	}
	v, err := bus.NewVerifier(bus.VerifierConfig{TrustedKeys: []string{enginePub, operatorPub}, Host: c.Host.ID, Clock: h.clock.Now})
	if err != nil {
		return nil, err
	}
	h.cmdSub, err = h.bus.ConsumeCommands(ctx, c.Host.ID, v, bus.ConsumerConfig{MaxDeliver: 1}, h.handleCommand)
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	h.cancel = cancel
	h.runDone = make(chan struct{})
	go func() {
		defer close(h.runDone)
		err := h.engine.Run(runCtx, responsebus.Detections{Bus: h.bus})
		if err != nil {
			h.update(func() { h.runErr = err })
		}
	}()
	return h, nil
}

// close stops everything the harness started.
func (h *harness) close() {
	if h.cancel != nil {
		h.cancel()
		<-h.runDone
	}
	if h.cmdSub != nil {
		h.cmdSub.Stop()
	}
	h.mu.Lock()
	m := h.mgr
	h.mgr = nil
	h.mu.Unlock()
	if m != nil {
		m.Close()
	}
	if h.bus != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		h.bus.Close(ctx)
	}
}

// update runs f under the lock and wakes the waiters.
func (h *harness) update(f func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f()
	close(h.changed)
	h.changed = make(chan struct{})
}

// waitFor waits until cond (called under the lock) holds.
func (h *harness) waitFor(ctx context.Context, what string, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	for {
		h.mu.Lock()
		if h.runErr != nil {
			err := h.runErr
			h.mu.Unlock()
			return fmt.Errorf("response engine stopped: %w", err)
		}
		ok := cond()
		ch := h.changed
		h.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("pipeline did not settle (%s) within %v", what, stepTimeout)
		}
	}
}

// startManager makes a Manager over the same fake host and store (as an
// agent that starts again) and restores the persisted state.
func (h *harness) startManager(ctx context.Context) error {
	enf := h.fake
	if h.mgr != nil {
		enf = h.fake.Reopen()
	}
	m, err := isolation.New(isolation.Config{
		Host: h.c.Host.ID, Enforcer: enf, Store: h.store,
		Sink:      pipeline.EventSink{Bus: h.bus, Next: h.onIsolationEvent},
		Automatic: h.auto, Manual: h.manual,
	})
	if err != nil {
		return err
	}
	h.mu.Lock()
	h.mgr = m
	h.mu.Unlock()
	return m.Restore(ctx)
}

// advance moves the virtual clock by d. The Manager reads the wall clock
// (see /work/notes/needs-isolation.md), so it is restarted over a store
// whose persisted times are moved back by d: Restore then releases an
// isolation whose deadline passed, or re-applies one still in force with
// the same deadline.
func (h *harness) advance(ctx context.Context, d time.Duration) error {
	h.clock.Advance(d)
	h.mu.Lock()
	m := h.mgr
	h.mu.Unlock()
	if err := m.Close(); err != nil {
		return err
	}
	h.store.shiftBy(d)
	return h.startManager(ctx)
}

func (h *harness) manager() *isolation.Manager {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.mgr
}

func (h *harness) onIsolationEvent(e isolation.Event) {
	h.update(func() {
		h.isoEvents = append(h.isoEvents, e)
		if !e.Deadline.IsZero() {
			h.virtual[e.Deadline.UnixNano()] = h.clock.Now().Add(e.Deadline.Sub(e.Time)).Round(time.Second)
		}
	})
}

// virtualTime converts a deadline in the Manager's frame to the virtual
// clock's, using the audit event that set it.
func (h *harness) virtualTime(t time.Time, changedAt time.Time) time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	if v, ok := h.virtual[t.UnixNano()]; ok {
		return v
	}
	return h.clock.Now().Add(t.Sub(changedAt)).Round(time.Second)
}

func (h *harness) handleCommand(ctx context.Context, c bus.Command, _ bus.Delivery) error {
	res, err := pipeline.HandleCommand(ctx, h.manager(), c)
	h.update(func() {
		h.handled++
		h.results = append(h.results, res)
	})
	if err != nil {
		return fmt.Errorf("%w: %v", bus.ErrRejected, err)
	}
	return nil
}

// countingPublisher publishes commands on the bus and counts those
// stored, so that a step waits until the Manager handled them all.
type countingPublisher struct{ h *harness }

func (p countingPublisher) PublishCommand(ctx context.Context, sc bus.SignedCommand) (bus.PubAck, error) {
	ack, err := p.h.bus.PublishCommand(ctx, sc)
	if err == nil && !ack.Duplicate {
		p.h.update(func() { p.h.published++ })
	}
	return ack, err
}

// recordSink records decisions on the bus and keeps them for the step.
type recordSink struct {
	next response.Sink
	h    *harness
}

func (s recordSink) Record(ctx context.Context, d *response.Decision) error {
	if err := s.next.Record(ctx, d); err != nil {
		return err
	}
	s.h.update(func() { s.h.decisions[d.DetectionID] = d })
	return nil
}

// shiftStore is an isolation.Store in memory whose next Load returns the
// record with its times moved back by the pending shift: the Manager's
// wall-clock view of a record after the virtual clock moved on.
type shiftStore struct {
	mu    sync.Mutex
	rec   isolation.Record
	ok    bool
	shift time.Duration
}

func (s *shiftStore) shiftBy(d time.Duration) {
	s.mu.Lock()
	s.shift += d
	s.mu.Unlock()
}

func (s *shiftStore) Load(context.Context) (isolation.Record, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ok && s.shift != 0 {
		if !s.rec.Since.IsZero() {
			s.rec.Since = s.rec.Since.Add(-s.shift)
		}
		if !s.rec.Deadline.IsZero() {
			s.rec.Deadline = s.rec.Deadline.Add(-s.shift)
		}
	}
	s.shift = 0
	return s.rec, s.ok, nil
}

func (s *shiftStore) Save(_ context.Context, r isolation.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rec, s.ok = r, true
	return nil
}

var _ = errors.New
var _ ioc.Event
