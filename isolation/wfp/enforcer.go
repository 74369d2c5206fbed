package wfp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/cordonsec/cordon/isolation"
)

// DefaultProvider and DefaultSublayer are the GUIDs of cordon's WFP
// provider and sublayer when Config leaves them zero. They are fixed so
// that a restarted agent (or an uninstaller) finds the objects an earlier
// process installed.
var (
	DefaultProvider = GUID{0x6f1c2a4e, 0x93d7, 0x4b0a, [8]byte{0x8e, 0x51, 0x2c, 0x7d, 0x1a, 0x60, 0xc3, 0x9f}}
	DefaultSublayer = GUID{0x0b9e5d27, 0x4c83, 0x4f6e, [8]byte{0xa1, 0x3d, 0x5e, 0x92, 0x07, 0xbb, 0x48, 0x16}}
)

// DefaultSublayerWeight is the weight of cordon's sublayer when
// Config.SublayerWeight is zero: the highest, so that cordon's hard block
// is evaluated first and cannot be overridden by another sublayer's permit.
const DefaultSublayerWeight uint16 = 0xffff

// Config configures an Enforcer. The zero value is valid on Windows.
type Config struct {
	// Open opens the WFP engine session. Nil: OpenSession, a persistent
	// (not dynamic) session over github.com/tailscale/wf, on Windows; on
	// other platforms New then fails with an error wrapping
	// isolation.ErrUnsupported.
	Open func() (Session, error)

	// Conns is the host's TCP table, used to end the connections a plan
	// does not allow. Nil: the iphlpapi table on Windows; on other
	// platforms New then fails with an error wrapping
	// isolation.ErrUnsupported.
	Conns ConnTable

	// Provider and Sublayer are the GUIDs of cordon's provider and
	// sublayer. Zero: DefaultProvider and DefaultSublayer.
	Provider GUID
	Sublayer GUID

	// SublayerWeight is the sublayer's weight. Zero: DefaultSublayerWeight.
	SublayerWeight uint16

	// AgentPath is the agent's executable. Its app id gets outbound permit
	// filters to the protocols and ports of the plan's management endpoints
	// at any address, so that the agent reaches the bus even after the bus
	// name resolves to a new address. Empty: the running executable
	// (os.Executable).
	AgentPath string

	// NoAgentPermit leaves out the agent's permit filters: only the
	// management endpoints' resolved addresses are allowed.
	NoAgentPermit bool

	// Logger receives the enforcer's log records. Nil: discarded.
	Logger *slog.Logger
}

// Validate checks the configuration: the provider and sublayer GUIDs must
// differ. It returns an error wrapping isolation.ErrInvalidConfig.
func (c Config) Validate() error {
	if !c.Provider.IsZero() && c.Provider == c.Sublayer {
		return fmt.Errorf("wfp: %w: Provider and Sublayer are the same GUID %s", isolation.ErrInvalidConfig, c.Provider)
	}
	return nil
}

// Enforcer is the Windows isolation.Enforcer: it puts a Plan into effect
// as persistent WFP filters in cordon's own sublayer. It also implements
// isolation.Observer and isolation.Capable (application rules are
// supported). It is safe for concurrent use; calls are serialized.
type Enforcer struct {
	provider   Provider
	sublayer   Sublayer
	log        *slog.Logger
	agentAppID string

	mu     sync.Mutex
	sess   Session
	conns  ConnTable
	closed bool
}

var _ interface {
	isolation.Enforcer
	isolation.Observer
	isolation.Capable
} = (*Enforcer)(nil)

// New opens a WFP session and returns an Enforcer. It changes nothing on
// the host: filters that an earlier process installed stay until Apply
// replaces them or Clear removes them. Errors: cfg.Validate's; an error
// wrapping isolation.ErrUnsupported off Windows when cfg.Open or cfg.Conns
// is nil; the session's error; the agent's app id error.
func New(cfg Config) (*Enforcer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Provider.IsZero() {
		cfg.Provider = DefaultProvider
	}
	if cfg.Sublayer.IsZero() {
		cfg.Sublayer = DefaultSublayer
	}
	if cfg.Provider == cfg.Sublayer {
		return nil, fmt.Errorf("wfp: %w: Provider and Sublayer are the same GUID %s", isolation.ErrInvalidConfig, cfg.Provider)
	}
	if cfg.SublayerWeight == 0 {
		cfg.SublayerWeight = DefaultSublayerWeight
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	open := cfg.Open
	if open == nil {
		open = platformOpen
	}
	conns := cfg.Conns
	if conns == nil {
		c, err := platformConns()
		if err != nil {
			return nil, fmt.Errorf("wfp: new: %w", err)
		}
		conns = c
	}
	sess, err := open()
	if err != nil {
		return nil, fmt.Errorf("wfp: new: open session: %w", err)
	}
	e := &Enforcer{
		provider: Provider{ID: cfg.Provider, Name: "cordon", Description: "cordon network isolation", Persistent: true},
		sublayer: Sublayer{ID: cfg.Sublayer, Provider: cfg.Provider, Name: "cordon isolation",
			Description: "cordon network isolation filters", Persistent: true, Weight: cfg.SublayerWeight},
		log:   log,
		sess:  sess,
		conns: conns,
	}
	if !cfg.NoAgentPermit {
		path := cfg.AgentPath
		if path == "" {
			if path, err = os.Executable(); err != nil {
				_ = sess.Close()
				return nil, fmt.Errorf("wfp: new: agent executable: %w", err)
			}
		}
		if e.agentAppID, err = sess.AppID(path); err != nil {
			_ = sess.Close()
			return nil, fmt.Errorf("wfp: new: app id of agent %q: %w", path, err)
		}
	}
	return e, nil
}

// Capabilities implements isolation.Capable: WFP matches applications.
func (e *Enforcer) Capabilities() isolation.Capabilities {
	return isolation.Capabilities{Applications: true}
}

func (e *Enforcer) spec() setSpec {
	return setSpec{Provider: e.provider.ID, Sublayer: e.sublayer.ID, AgentAppID: e.agentAppID, AppID: e.sess.AppID}
}

// state is what the engine holds of cordon's objects.
type state struct {
	provider *Provider
	sublayer *Sublayer
	filters  []Filter
}

func (s state) empty() bool { return s.provider == nil && s.sublayer == nil && len(s.filters) == 0 }

// read lists cordon's provider, sublayer and filters. Call with e.mu held.
func (e *Enforcer) read() (state, error) {
	var st state
	provs, err := e.sess.Providers()
	if err != nil {
		return st, fmt.Errorf("list providers: %w", err)
	}
	for _, p := range provs {
		if p.ID == e.provider.ID {
			st.provider = &p
		}
	}
	subs, err := e.sess.Sublayers(GUID{})
	if err != nil {
		return st, fmt.Errorf("list sublayers: %w", err)
	}
	for _, s := range subs {
		if s.ID == e.sublayer.ID {
			st.sublayer = &s
		}
	}
	if st.sublayer != nil {
		if st.filters, err = e.sess.Filters(e.sublayer.ID); err != nil {
			return st, fmt.Errorf("list filters: %w", err)
		}
	}
	return st, nil
}

// Apply implements isolation.Enforcer. It replaces the filters of cordon's
// sublayer with the plan's in one WFP transaction (nothing is written when
// they are already the plan's), reads them back, and ends the IPv4 TCP
// connections the filters do not permit.
func (e *Enforcer) Apply(ctx context.Context, p isolation.Plan) error {
	if err := p.Validate(); err != nil {
		return fmt.Errorf("wfp: apply: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return fmt.Errorf("wfp: apply: %w", isolation.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("wfp: apply: %w", err)
	}
	want, err := buildFilters(p, e.spec())
	if err != nil {
		return fmt.Errorf("wfp: apply: %w", err)
	}
	st, err := e.read()
	if err != nil {
		return fmt.Errorf("wfp: apply: %w", err)
	}
	if e.objectsMatch(st) && diffFilters(st.filters, want) == "" {
		e.log.DebugContext(ctx, "wfp: filters already in force", "filters", len(want))
	} else if err := e.replace(ctx, st, want); err != nil {
		return fmt.Errorf("wfp: apply: %w", err)
	}

	got, err := e.read()
	if err != nil {
		return fmt.Errorf("wfp: apply: %w: %w", isolation.ErrReadBack, err)
	}
	if !e.objectsMatch(got) {
		return fmt.Errorf("wfp: apply: %w: provider or sublayer missing or changed", isolation.ErrReadBack)
	}
	if d := diffFilters(got.filters, want); d != "" {
		return fmt.Errorf("wfp: apply: %w:\n%s", isolation.ErrReadBack, d)
	}
	e.log.InfoContext(ctx, "wfp: isolation filters in force", "filters", len(want), "rules", len(p.Rules), "endpoints", len(p.Management))
	if err := e.endConnections(ctx, got.filters); err != nil {
		return fmt.Errorf("wfp: apply: %w", err)
	}
	return nil
}

func (e *Enforcer) objectsMatch(st state) bool {
	return st.provider != nil && *st.provider == e.provider && st.sublayer != nil && *st.sublayer == e.sublayer
}

// replace installs want in one transaction, recreating the provider and
// sublayer when they are missing or differ. Call with e.mu held. On error
// the transaction is aborted and the engine keeps its previous state.
func (e *Enforcer) replace(ctx context.Context, st state, want []Filter) (err error) {
	if err := e.sess.Begin(); err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer func() {
		if err != nil {
			if aerr := e.sess.Abort(); aerr != nil {
				err = errors.Join(err, fmt.Errorf("abort transaction: %w", aerr))
			}
		}
	}()
	for _, f := range st.filters {
		if err := e.sess.DeleteFilter(f.ID); err != nil {
			return fmt.Errorf("delete filter %s: %w", f.ID, err)
		}
	}
	provOK := st.provider != nil && *st.provider == e.provider
	subOK := provOK && st.sublayer != nil && *st.sublayer == e.sublayer
	if st.sublayer != nil && !subOK {
		if err := e.sess.DeleteSublayer(st.sublayer.ID); err != nil {
			return fmt.Errorf("delete sublayer: %w", err)
		}
	}
	if st.provider != nil && !provOK {
		if err := e.sess.DeleteProvider(st.provider.ID); err != nil {
			return fmt.Errorf("delete provider: %w", err)
		}
	}
	if !provOK {
		if err := e.sess.AddProvider(e.provider); err != nil {
			return fmt.Errorf("add provider: %w", err)
		}
	}
	if !subOK {
		if err := e.sess.AddSublayer(e.sublayer); err != nil {
			return fmt.Errorf("add sublayer: %w", err)
		}
	}
	for _, f := range want {
		if err := e.sess.AddFilter(f); err != nil {
			return fmt.Errorf("add filter %q at %s: %w", f.Description, f.Layer, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := e.sess.Commit(); err != nil {
		return fmt.Errorf("commit transaction: %w", err)
	}
	return nil
}

// diffFilters returns "" when got and want hold the same filters, and
// otherwise the lines missing ("-") and unexpected ("+").
func diffFilters(got, want []Filter) string {
	return isolation.DiffLines(filterTexts(got), filterTexts(want))
}

func filterTexts(fs []Filter) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.String()
	}
	return out
}

// endConnections ends the live TCP connections the filters fs do not
// permit. IPv6 connections cannot be ended (see the package doc); they are
// logged. Call with e.mu held.
func (e *Enforcer) endConnections(ctx context.Context, fs []Filter) error {
	table, err := e.conns.TCP()
	if err != nil {
		return fmt.Errorf("%w: list TCP connections: %w", isolation.ErrConnectionsLeft, err)
	}
	ids := map[string]string{}
	appID := func(path string) string {
		id, ok := ids[path]
		if !ok {
			var err error
			if id, err = e.sess.AppID(path); err != nil {
				e.log.WarnContext(ctx, "wfp: no app id for a connection's program", "path", path, "err", err)
				id = ""
			}
			ids[path] = id
		}
		return id
	}
	var errs []error
	for _, c := range connsToEnd(fs, table, appID) {
		err := e.conns.EndTCP(c)
		switch {
		case err == nil:
			e.log.InfoContext(ctx, "wfp: ended connection", "local", c.Local, "remote", c.Remote, "pid", c.PID)
		case errors.Is(err, isolation.ErrUnsupported):
			e.log.WarnContext(ctx, "wfp: cannot end IPv6 connection; its packets are blocked", "local", c.Local, "remote", c.Remote, "pid", c.PID)
		default:
			errs = append(errs, fmt.Errorf("%s -> %s: %w", c.Local, c.Remote, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", isolation.ErrConnectionsLeft, errors.Join(errs...))
	}
	return nil
}

// Clear implements isolation.Enforcer: it deletes cordon's filters,
// sublayer and provider in one transaction and checks that none is left.
func (e *Enforcer) Clear(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return fmt.Errorf("wfp: clear: %w", isolation.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("wfp: clear: %w", err)
	}
	st, err := e.read()
	if err != nil {
		return fmt.Errorf("wfp: clear: %w", err)
	}
	if st.empty() {
		return nil
	}
	if err := e.remove(st); err != nil {
		return fmt.Errorf("wfp: clear: %w", err)
	}
	got, err := e.read()
	if err != nil {
		return fmt.Errorf("wfp: clear: %w: %w", isolation.ErrReadBack, err)
	}
	if !got.empty() {
		return fmt.Errorf("wfp: clear: %w: %d filters left", isolation.ErrReadBack, len(got.filters))
	}
	e.log.InfoContext(ctx, "wfp: isolation filters removed", "filters", len(st.filters))
	return nil
}

func (e *Enforcer) remove(st state) (err error) {
	if err := e.sess.Begin(); err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer func() {
		if err != nil {
			if aerr := e.sess.Abort(); aerr != nil {
				err = errors.Join(err, fmt.Errorf("abort transaction: %w", aerr))
			}
		}
	}()
	for _, f := range st.filters {
		if err := e.sess.DeleteFilter(f.ID); err != nil {
			return fmt.Errorf("delete filter %s: %w", f.ID, err)
		}
	}
	if st.sublayer != nil {
		if err := e.sess.DeleteSublayer(st.sublayer.ID); err != nil {
			return fmt.Errorf("delete sublayer: %w", err)
		}
	}
	if st.provider != nil {
		if err := e.sess.DeleteProvider(st.provider.ID); err != nil {
			return fmt.Errorf("delete provider: %w", err)
		}
	}
	if err := e.sess.Commit(); err != nil {
		return fmt.Errorf("commit transaction: %w", err)
	}
	return nil
}

// Observe implements isolation.Observer by reading the filters back. The
// host is Active when the block-all filters are all present; the Plan
// holds the management endpoints and rules whose filters (named by their
// source in the filter description) are all present exactly as the plan
// item generates them. Apply's own read-back is stricter: it compares the
// whole filter set.
func (e *Enforcer) Observe(ctx context.Context) (isolation.Observation, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return isolation.Observation{}, fmt.Errorf("wfp: observe: %w", isolation.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return isolation.Observation{}, fmt.Errorf("wfp: observe: %w", err)
	}
	st, err := e.read()
	if err != nil {
		return isolation.Observation{}, fmt.Errorf("wfp: observe: %w", err)
	}
	bySource := map[string][]Filter{}
	for _, f := range st.filters {
		bySource[f.Description] = append(bySource[f.Description], f)
	}
	base, err := buildItems(isolation.Plan{}, e.spec())
	if err != nil {
		return isolation.Observation{}, fmt.Errorf("wfp: observe: %w", err)
	}
	block := base[len(base)-1]
	var obs isolation.Observation
	if !e.objectsMatch(st) || diffFilters(bySource[block.source], block.filters) != "" {
		return obs, nil
	}
	obs.Active = true
	var plan isolation.Plan
	for source, fs := range bySource {
		if !strings.HasPrefix(source, "rule ") && !strings.HasPrefix(source, "mgmt ") {
			continue
		}
		one, err := isolation.ParsePlan(isolation.PlanHeader + "\n" + source + "\n")
		if err != nil {
			e.log.WarnContext(ctx, "wfp: unreadable filter source", "source", source, "err", err)
			continue
		}
		items, err := buildItems(one, e.spec())
		if err != nil {
			e.log.WarnContext(ctx, "wfp: cannot rebuild filters of source", "source", source, "err", err)
			continue
		}
		i := slices.IndexFunc(items, func(it item) bool { return it.source == source })
		if i < 0 || diffFilters(fs, items[i].filters) != "" {
			continue
		}
		plan.Management = append(plan.Management, one.Management...)
		plan.Rules = append(plan.Rules, one.Rules...)
	}
	obs.Plan = plan.Normalize()
	return obs, nil
}

// Close implements isolation.Enforcer: it closes the WFP session. The
// persistent filters stay in force.
func (e *Enforcer) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	if err := e.sess.Close(); err != nil {
		return fmt.Errorf("wfp: close: %w", err)
	}
	return nil
}
