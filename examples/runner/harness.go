package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/cordonsec/cordon/bus"
	"github.com/cordonsec/cordon/examples/internal/pipeline"
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
	clock    *isolationtest.Clock
	bus      *bus.Bus
	matcher  *pipeline.Matcher
	engine   *response.Engine
	operator nkeys.KeyPair
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
	published int
	handled   int
	results   []isolation.Result
	runErr    error
}

// stepTimeout bounds the wait for the pipeline to settle after a step.
const stepTimeout = 20 * time.Second

func newHarness(ctx context.Context, c *Case, dataDir string) (_ *harness, err error) {
	h := &harness{
		c: c, clock: isolationtest.NewClock(c.start),
		changed:   make(chan struct{}),
		decisions: map[string]*response.Decision{},
		fake:      isolationtest.NewFake(),
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

// startManager makes the Manager, on the virtual clock, and restores
// its (empty) state.
func (h *harness) startManager(ctx context.Context) error {
	m, err := isolation.New(isolation.Config{
		Host: h.c.Host.ID, Enforcer: h.fake, Store: &isolation.MemoryStore{}, Clock: h.clock,
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

// advance moves the virtual clock by d. The Manager's timers fire; when
// its deadline falls due, advance waits until the Manager has released
// the host (its scheduler acts on its own goroutine).
func (h *harness) advance(ctx context.Context, d time.Duration) error {
	m := h.manager()
	st := m.Status()
	due := st.State != isolation.StateOff && !st.UntilReleased && !st.Deadline.IsZero() &&
		!st.Deadline.After(h.clock.Now().Add(d))
	h.mu.Lock()
	first := len(h.isoEvents)
	h.mu.Unlock()
	h.clock.Advance(d)
	if !due {
		return nil
	}
	return h.waitFor(ctx, "release at the deadline", func() bool {
		for _, e := range h.isoEvents[first:] {
			if e.Kind == isolation.EventReleased || e.Kind == isolation.EventFailed {
				return true
			}
		}
		return false
	})
}

func (h *harness) manager() *isolation.Manager {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.mgr
}

func (h *harness) onIsolationEvent(e isolation.Event) {
	h.update(func() { h.isoEvents = append(h.isoEvents, e) })
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
