package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/cordonsec/cordon/bus"
	"github.com/cordonsec/cordon/examples/internal/pipeline"
	"github.com/cordonsec/cordon/ioc"
	"github.com/cordonsec/cordon/isolation"
	"github.com/cordonsec/cordon/isolation/isolationtest"
	"github.com/cordonsec/cordon/response"
	"github.com/cordonsec/cordon/response/responsebus"
)

// item is one event from a source, with the content the YARA rules scan
// (a file's bytes), when the source read it.
type item struct {
	source  string
	ev      ioc.Event
	content []byte
}

// agent is a running agent.
type agent struct {
	cfg     *Config
	log     *slog.Logger
	met     *metrics
	bus     *bus.Bus
	matcher *pipeline.Matcher
	engine  *response.Engine
	mgr     *isolation.Manager
	enf     isolation.Enforcer
	items   chan item
	host    ioc.Host

	kvDirty chan struct{}
	wg      sync.WaitGroup
	pending sync.Map // isolate request id -> time of its detection
	sink    isolationSink

	// ready is closed when the agent is running (tests).
	ready       chan struct{}
	metricsAddr string
}

type ctxKey int

const detectionTimeKey ctxKey = 0

// runAgent runs the agent until ctx ends.
func runAgent(ctx context.Context, cfg *Config, log *slog.Logger, ready chan<- *agent) (err error) {
	a := &agent{cfg: cfg, log: log, met: newMetrics(), items: make(chan item, 1024), kvDirty: make(chan struct{}, 1)}
	a.host = ioc.Host{ID: cfg.Host.ID, Name: cfg.Host.Name, Addresses: cfg.Host.Addresses, OS: hostOS}
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		a.wg.Wait()
		a.shutdown()
	}()
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return err
	}
	// The bus first: its endpoints are the management channel.
	bcfg := bus.Config{URLs: cfg.Bus.URLs, CredsFile: cfg.Bus.Creds, NKeySeedFile: cfg.Bus.NKeySeedFile,
		Name: "cordon-agent-" + cfg.Host.ID, Logger: log.With("component", "bus")}
	if len(cfg.Bus.URLs) == 0 {
		bcfg.DataDir, bcfg.Listen, bcfg.ListenAnyAddress = cfg.Bus.DataDir, cfg.Bus.Listen, cfg.Bus.ListenAny
	}
	octx, ocancel := context.WithTimeout(ctx, 30*time.Second)
	a.bus, err = bus.Open(octx, bcfg)
	ocancel()
	if err != nil {
		return fmt.Errorf("bus: %w", err)
	}
	if u := a.bus.ClientURL(); u != "" {
		log.Info("embedded bus listening", "url", u)
	}
	// Isolation.
	if a.enf, err = newEnforcer(cfg, log); err != nil {
		return fmt.Errorf("isolation: %w", err)
	}
	// Audit events are published from a queue: the bus is not waited for
	// while the firewall changes.
	a.sink = isolationSink{a: a, async: pipeline.NewAsyncSink(pipeline.EventSink{Bus: a.bus}, 4096, log.With("component", "audit"))}
	mgmt, err := managementEndpoints(cfg.Bus.URLs)
	if err != nil {
		return err
	}
	a.mgr, err = isolation.New(isolation.Config{
		Host: cfg.Host.ID, Enforcer: a.enf,
		Store:      isolation.FileStore{Path: cfg.StateDir + string(os.PathSeparator) + "isolation.json"},
		Sink:       a.sink,
		Management: mgmt,
		Automatic:  cfg.Isolation.automatic, Manual: cfg.Isolation.manual,
		DeadMan: cfg.Isolation.deadMan,
		Logger:  log.With("component", "isolation"),
	})
	if err != nil {
		return err
	}
	if err := a.mgr.Restore(ctx); err != nil {
		log.Error("restoring the isolation state", "err", err)
	}
	st := a.mgr.Status()
	a.met.setStatus(st)
	log.Info("isolation state", "state", st.State, "mode", st.Mode.String(), "deadline", st.Deadline)
	a.markDirty()
	a.wg.Add(1)
	go a.kvLoop(ctx)
	a.wg.Add(1)
	go a.busLoop(ctx)
	// Commands.
	if len(cfg.Isolation.TrustedKeys) > 0 {
		v, err := bus.NewVerifier(bus.VerifierConfig{TrustedKeys: cfg.Isolation.TrustedKeys, Host: cfg.Host.ID})
		if err != nil {
			return err
		}
		sub, err := a.bus.ConsumeCommands(ctx, cfg.Host.ID, v, bus.ConsumerConfig{}, a.handleCommand)
		if err != nil {
			return fmt.Errorf("commands: %w", err)
		}
		defer sub.Stop()
	} else {
		log.Warn("no isolation.trusted_keys: commands from the bus are refused")
	}
	// Control socket.
	if p := cfg.Isolation.ControlSocket; p != "off" {
		srv, err := isolation.ListenControl(isolation.ControlConfig{Path: p, Manager: a.mgr, PasswordHash: cfg.Isolation.PasswordHash,
			Logger: log.With("component", "control")})
		switch {
		case errors.Is(err, isolation.ErrUnsupported):
			log.Warn("no local control socket on this platform", "err", err)
		case err != nil:
			return fmt.Errorf("control socket: %w", err)
		default:
			defer srv.Close()
			a.wg.Add(1)
			go func() {
				defer a.wg.Done()
				srv.Serve(ctx)
			}()
			log.Info("control socket", "path", p)
		}
	}
	// Matching.
	a.matcher, err = pipeline.NewMatcher(pipeline.MatcherConfig{Logger: log.With("component", "feeds")})
	if err != nil {
		return err
	}
	if d := cfg.Feeds; d != "" {
		w, r, err := a.matcher.Feeds().Watch(ctx, d)
		if err != nil {
			return fmt.Errorf("feeds %s: %w", d, err)
		}
		defer w.Stop()
		if err := r.Err(); err != nil {
			log.Error("feed files rejected", "dir", d, "err", err)
		}
		log.Info("feeds loaded", "dir", d, "files", len(r.Loaded), "indicators", a.matcher.Indicators())
	}
	for _, d := range cfg.YARA {
		if err := a.matcher.LoadYARADir(d); err != nil {
			return fmt.Errorf("yara %s: %w", d, err)
		}
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			watchYARA(ctx, a.matcher, d, log)
		}()
	}
	log.Info("matchers ready", "indicators", a.matcher.Indicators(), "yara_rules", a.matcher.YARARules())
	// Rules.
	if cfg.Rules.Mode == "local" {
		if err := a.startEngine(ctx); err != nil {
			return err
		}
	}
	// Metrics.
	if cfg.Metrics.Listen != "" {
		if a.metricsAddr, err = a.met.serve(ctx, cfg.Metrics.Listen, log); err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		log.Info("metrics", "url", "http://"+a.metricsAddr+"/metrics")
	}
	// Sources, then the loop that matches their events.
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.matchLoop(ctx)
	}()
	if err := a.startSources(ctx); err != nil {
		return err
	}
	log.Info("agent running", "host", cfg.Host.ID, "enforce", cfg.Isolation.Enforce, "rules", cfg.Rules.Mode)
	if ready != nil {
		ready <- a
	}
	<-ctx.Done()
	log.Info("agent stopping")
	return nil
}

func (a *agent) shutdown() {
	if a.mgr != nil {
		a.mgr.Close() // the isolation stays in force: Restore picks it up
	}
	if a.enf != nil {
		a.enf.Close()
	}
	if a.sink.async != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		a.sink.async.Close(ctx)
		cancel()
	}
	if a.bus != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a.bus.Close(ctx)
	}
}

// managementEndpoints are the bus servers, allowed while isolated.
func managementEndpoints(urls []string) ([]isolation.ManagementEndpoint, error) {
	var out []isolation.ManagementEndpoint
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("bus.urls: %q is not a URL", raw)
		}
		host, port := u.Hostname(), u.Port()
		if port == "" {
			port = "4222"
		}
		out = append(out, isolation.ManagementEndpoint{Address: net.JoinHostPort(host, port)})
	}
	return out, nil
}

func (a *agent) startEngine(ctx context.Context) error {
	supp, err := responsebus.NewSuppressions(ctx, a.bus.JetStream(), responsebus.SuppressionsConfig{Replicas: a.bus.Replicas()})
	if err != nil {
		return err
	}
	a.engine, err = response.New(response.Config{
		Services: response.Services{Isolator: latencyIsolator{ManagerIsolator: pipeline.ManagerIsolator{Manager: a.mgr}, a: a},
			Publisher: responsebus.Publisher{Conn: a.bus.Conn()}},
		Sink:         response.SinkFunc(a.recordDecision),
		Suppressions: supp,
		DryRun:       a.cfg.Rules.DryRun,
		Logger:       a.log.With("component", "response"),
	})
	if err != nil {
		return err
	}
	for _, d := range a.cfg.Rules.Dirs {
		if err := a.engine.LoadDir(d); err != nil {
			return fmt.Errorf("rules: %w", err)
		}
	}
	a.log.Info("response rules loaded", "rules", a.engine.Rules().Len())
	subj, err := bus.DetectionSubject(a.cfg.Host.ID)
	if err != nil {
		return err
	}
	src := timedSource{responsebus.Detections{Bus: a.bus, Consumer: bus.ConsumerConfig{
		Durable: "cordon-agent-" + a.cfg.Host.ID, FilterSubjects: []string{subj}}}}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		for ctx.Err() == nil {
			err := a.engine.Run(ctx, src)
			if err == nil || ctx.Err() != nil {
				return
			}
			a.log.Error("response engine stopped; restarting", "err", err)
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
			}
		}
	}()
	return nil
}

func (a *agent) recordDecision(ctx context.Context, d *response.Decision) error {
	if err := (responsebus.Sink{Bus: a.bus}).Record(ctx, d); err != nil {
		return err
	}
	a.met.decision(d)
	for _, r := range d.Rules {
		a.log.Info("decision", "detection", d.DetectionID, "rule", r.Rule, "result", r.Result)
	}
	return nil
}

// timedSource passes each detection's time to the isolator through the
// context, for the detection-to-enforcement latency.
type timedSource struct{ src response.DetectionSource }

func (s timedSource) Consume(ctx context.Context, h func(ctx context.Context, d ioc.Detection) error) error {
	return s.src.Consume(ctx, func(ctx context.Context, d ioc.Detection) error {
		return h(context.WithValue(ctx, detectionTimeKey, d.Time), d)
	})
}

// latencyIsolator isolates through the Manager and remembers when the
// detection behind each request was made, so that the isolation event that
// puts it in force (rules applied and read back) gives the
// detection-to-enforcement latency.
type latencyIsolator struct {
	pipeline.ManagerIsolator
	a *agent
}

func (l latencyIsolator) Isolate(ctx context.Context, req response.IsolateRequest) (time.Time, error) {
	if t, ok := ctx.Value(detectionTimeKey).(time.Time); ok && !t.IsZero() {
		l.a.pending.Store(req.ID, t)
		defer l.a.pending.Delete(req.ID)
	}
	return l.ManagerIsolator.Isolate(ctx, req)
}

func (a *agent) handleCommand(ctx context.Context, c bus.Command, _ bus.Delivery) error {
	a.log.Info("command", "id", c.ID, "action", c.Action, "issuer", c.Issuer)
	res, err := pipeline.HandleCommand(ctx, a.mgr, c)
	// The answer, for the console, after the isolation events the
	// command caused (the same queue).
	if ev, perr := pipeline.CommandResultEvent(a.cfg.Host.ID, res, time.Now()); perr == nil {
		a.sink.async.Then(ctx, "command result", func(ctx context.Context) error {
			_, err := a.bus.PublishEvent(ctx, ev)
			return err
		})
	}
	if err != nil {
		a.log.Warn("command refused", "id", c.ID, "err", err)
		return fmt.Errorf("%w: %v", bus.ErrRejected, err)
	}
	if !res.OK {
		a.log.Warn("command failed", "id", c.ID, "err", res.Error)
	}
	return nil
}

// isolationSink logs and measures each Manager event at once, and queues
// it for the bus.
type isolationSink struct {
	a     *agent
	async *pipeline.AsyncSink
}

func (s isolationSink) Publish(ctx context.Context, e isolation.Event) error {
	s.a.onIsolationEvent(e)
	return s.async.Publish(ctx, e)
}

func (a *agent) onIsolationEvent(e isolation.Event) {
	a.log.Info("isolation", "event", e.Kind, "from", e.From, "to", e.To, "mode", e.Mode.String(), "deadline", e.Deadline,
		"requester", e.Requester, "reason", e.Reason, "error", e.Error)
	if e.Kind == isolation.EventEnabled || e.Kind == isolation.EventExtended {
		if t, ok := a.pending.Load(e.CommandID); ok {
			d := e.Time.Sub(t.(time.Time))
			a.met.latency.Observe(d.Seconds())
			a.log.Info("isolation enforced", "latency", d, "event", e.Kind, "deadline", e.Deadline)
		}
	}
	a.markDirty()
}

func (a *agent) markDirty() {
	select {
	case a.kvDirty <- struct{}{}:
	default:
	}
}

// kvLoop keeps the host's entry in the isolation bucket and the metrics
// current.
func (a *agent) kvLoop(ctx context.Context) {
	defer a.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.kvDirty:
		}
		st := a.mgr.Status()
		a.met.setStatus(st)
		b, err := json.Marshal(st)
		if err == nil {
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, err = a.bus.PutIsolationState(pctx, a.cfg.Host.ID, b)
			cancel()
		}
		if err != nil && ctx.Err() == nil {
			a.log.Warn("publishing the isolation state", "err", err)
		}
	}
}

// busLoop reports the bus connection to the metrics and the dead-man
// switch.
func (a *agent) busLoop(ctx context.Context) {
	defer a.wg.Done()
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	last := -1
	for {
		up := a.bus.Conn().IsConnected()
		v := 0
		if up {
			v = 1
		}
		a.met.busUp.Set(float64(v))
		a.mgr.ReportChannel(up)
		if v != last {
			if last != -1 {
				a.log.Info("bus connection", "up", up)
			}
			last = v
			if up {
				a.markDirty()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// matchLoop matches the sources' events and publishes the detections.
func (a *agent) matchLoop(ctx context.Context) {
	for {
		var it item
		select {
		case <-ctx.Done():
			return
		case it = <-a.items:
		}
		a.met.events.WithLabelValues(it.source).Inc()
		dets, err := a.matcher.Match(ctx, &it.ev, it.content)
		if err != nil {
			a.log.Warn("matching", "event", it.ev.ID, "err", err)
		}
		for _, d := range dets {
			a.met.detections.WithLabelValues(string(d.Engine)).Inc()
			a.log.Info("detection", "id", d.ID, "engine", d.Engine, "rule", d.Rule, "severity", d.Severity.String(), "event", it.ev.ID)
			if _, err := a.bus.PublishDetection(ctx, d); err != nil && ctx.Err() == nil {
				a.log.Error("publishing a detection", "id", d.ID, "err", err)
			}
		}
	}
}

// emit queues an event from a source; it fills in the host.
func (a *agent) emit(ctx context.Context, it item) {
	if it.ev.Host.ID == "" {
		it.ev.Host = a.host
	}
	select {
	case a.items <- it:
	case <-ctx.Done():
	}
}

// fakeEnforcer is the enforcer when isolation.enforce is false: it
// records plans and changes nothing on the host.
func fakeEnforcer(log *slog.Logger) isolation.Enforcer {
	log.Warn("isolation.enforce is false: isolation is recorded, not enforced")
	return isolationtest.NewFake()
}
