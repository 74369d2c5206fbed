package response

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/expr-lang/expr/vm"

	"github.com/cordonsec/cordon/ioc"
)

// DecisionSchema is the schema of decision records.
const DecisionSchema = "cordon.decision/v1"

// Decision results.
const (
	// ResultNoMatch: no rule fired.
	ResultNoMatch = "no_match"
	// ResultDone: the rule fired and all its actions succeeded.
	ResultDone = "done"
	// ResultFailed: the rule fired and an action failed (or could not be
	// prepared).
	ResultFailed = "failed"
	// ResultSuppressed: the rule fired within its suppression window;
	// nothing was done.
	ResultSuppressed = "suppressed"
	// ResultDryRun: the rule fired in dry-run; the steps were prepared
	// and recorded, nothing was done.
	ResultDryRun = "dry_run"
)

// Decision is what the engine decided for one detection: the rules that
// fired and what became of their actions. It is published as the audit
// event cordon.events.<host>.decision.
type Decision struct {
	Schema string `json:"schema"`
	// ID is derived from the detection id: handling the same detection
	// again gives the same id (the bus stores it once; responsebus.Sink
	// stores a failed decision apart, so that the decision of a later
	// successful delivery is stored too).
	ID          string    `json:"id"`
	Time        time.Time `json:"time"`
	Host        string    `json:"host"`
	DetectionID string    `json:"detection_id"`
	// DryRun is true when the engine runs in dry-run: nothing was done.
	DryRun bool `json:"dry_run"`
	// Result is ResultNoMatch, or else ResultFailed when any rule failed,
	// ResultDone when any rule acted, ResultSuppressed or ResultDryRun.
	Result string         `json:"result"`
	Rules  []RuleDecision `json:"rules"`
	// Truncated is set by a Sink that had to shorten the record's text
	// (indicator values, action arguments, details, errors) to store it
	// within the bus's message size limit; rules, results and action
	// types are kept.
	Truncated bool `json:"truncated,omitempty"`
}

// RuleDecision is one fired rule in a Decision.
type RuleDecision struct {
	Rule string `json:"rule"`
	File string `json:"file"`
	// Indicator is the firing indicator's position (-1 for none), kind
	// and value.
	Indicator      int    `json:"indicator"`
	IndicatorKind  string `json:"indicator_kind,omitempty"`
	IndicatorValue string `json:"indicator_value,omitempty"`
	// Result is ResultDone, ResultFailed, ResultSuppressed or ResultDryRun.
	Result string `json:"result"`
	// DryRun is true when this rule (or the engine) is in dry-run.
	DryRun bool `json:"dry_run"`
	// SuppressKey and Suppression are set for a rule with suppress.
	SuppressKey string         `json:"suppress_key,omitempty"`
	Suppression *Suppression   `json:"suppression,omitempty"`
	Actions     []ActionRecord `json:"actions"`
	// Error says why the rule failed before its actions (suppression store
	// or key failure).
	Error string `json:"error,omitempty"`
}

// ActionRecord is one action of a fired rule.
type ActionRecord struct {
	Type string         `json:"type"`
	Args map[string]any `json:"args,omitempty"`
	// Result is "done", "failed", "planned" (dry-run) or "skipped"
	// (suppressed).
	Result string `json:"result"`
	Detail string `json:"detail,omitempty"`
	Error  string `json:"error,omitempty"`
}

// Sink records decisions (the audit trail). Record must be durable when
// it returns nil: the engine acknowledges a detection only after that.
type Sink interface {
	Record(ctx context.Context, d *Decision) error
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(ctx context.Context, d *Decision) error

// Record calls f.
func (f SinkFunc) Record(ctx context.Context, d *Decision) error { return f(ctx, d) }

// DetectionSource delivers detections, durably: a detection is
// acknowledged only when the handler returns nil, and is delivered again
// otherwise.
type DetectionSource interface {
	// Consume hands detections to h until ctx ends or the source fails,
	// and returns then (nil when ctx ended).
	Consume(ctx context.Context, h func(ctx context.Context, d ioc.Detection) error) error
}

// Config configures an Engine. The zero value is valid: every field has a
// documented default.
type Config struct {
	// Load configures rule compilation (limits, isolation maximum, the
	// action registry). Exclusion profiles are not here: an automatic
	// isolation takes them from the host's policy.
	Load LoadConfig
	// Services are what actions act through (Isolator, Publisher, Tagger;
	// Logger nil: the engine's Logger).
	Services Services
	// Sink records every decision. Nil: decisions are only logged.
	Sink Sink
	// Suppressions keeps suppression windows. Nil: a MemorySuppressions
	// (windows do not survive a restart).
	Suppressions SuppressionStore
	// DryRun makes every rule dry-run: decisions are recorded, nothing is
	// done, suppression windows are looked at but not changed.
	DryRun bool
	// NoIndex evaluates every rule for every detection, for comparison.
	// False: rules are indexed by their equality conditions.
	NoIndex bool
	// Logger receives the engine's logs. Nil: slog.Default().
	Logger *slog.Logger
	// Clock gives the time. Nil: time.Now.
	Clock func() time.Time
}

// Validate reports the first invalid field, wrapping ErrInvalidConfig.
func (c Config) Validate() error { return c.Load.Validate() }

// Engine evaluates response rules on detections and carries out their
// actions. It is safe for concurrent use; rules are swapped atomically.
type Engine struct {
	cfg  Config
	load LoadConfig
	log  *slog.Logger
	now  func() time.Time
	svc  Services
	supp SuppressionStore

	mu    sync.Mutex // serializes rule changes
	files map[string]*File
	rules atomic.Pointer[RuleSet]
}

// New returns an engine with no rules. It fails with ErrInvalidConfig.
func New(cfg Config) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, load: cfg.Load.withDefaults(), log: cfg.Logger, now: cfg.Clock, svc: cfg.Services,
		supp: cfg.Suppressions, files: map[string]*File{}}
	if e.log == nil {
		e.log = slog.Default()
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.svc.Logger == nil {
		e.svc.Logger = e.log
	}
	if e.supp == nil {
		e.supp = &MemorySuppressions{}
	}
	rs, _ := NewRuleSet()
	e.rules.Store(rs)
	return e, nil
}

// Rules returns the rule set in force.
func (e *Engine) Rules() *RuleSet { return e.rules.Load() }

// LoadBytes compiles data as the rule file name and puts it in force,
// replacing an earlier file of that name. Files are evaluated in the
// order of their names. When the file has any error (or a rule name
// clashes with another file's) nothing changes: the rules in force stay,
// and the LoadErrors say what is wrong.
func (e *Engine) LoadBytes(name string, data []byte) error {
	f, err := Compile(e.load, name, data)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	files := make(map[string]*File, len(e.files)+1)
	for k, v := range e.files {
		files[k] = v
	}
	files[name] = f
	return e.install(files)
}

// LoadFile reads path and loads it with LoadBytes under its path.
func (e *Engine) LoadFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("response: %w", err)
	}
	return e.LoadBytes(path, data)
}

// LoadDir loads every *.yaml and *.yml file of dir; a bad file is
// rejected whole and the others still load. It returns every file's
// errors joined.
func (e *Engine) LoadDir(dir string) error {
	var errs []error
	for _, pat := range []string{"*.yaml", "*.yml"} {
		paths, err := filepath.Glob(filepath.Join(dir, pat))
		if err != nil {
			return fmt.Errorf("response: %w", err)
		}
		sort.Strings(paths)
		for _, p := range paths {
			if err := e.LoadFile(p); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// RemoveFile takes the rules of the file name out of force. Removing a
// file that is not loaded does nothing.
func (e *Engine) RemoveFile(name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.files[name]; !ok {
		return
	}
	files := make(map[string]*File, len(e.files))
	for k, v := range e.files {
		if k != name {
			files[k] = v
		}
	}
	_ = e.install(files) // removing cannot create a clash
}

func (e *Engine) install(files map[string]*File) error {
	names := make([]string, 0, len(files))
	for k := range files {
		names = append(names, k)
	}
	sort.Strings(names)
	list := make([]*File, len(names))
	for i, n := range names {
		list[i] = files[n]
	}
	rs, err := NewRuleSet(list...)
	if err != nil {
		return err
	}
	e.files = files
	e.rules.Store(rs)
	return nil
}

// Evaluate returns the rules that fire for d, in order, honouring stop,
// without suppression or actions. It has no effect.
func (e *Engine) Evaluate(d *ioc.Detection) []Firing {
	fired, _ := e.rules.Load().evaluate(e.newEnv(d, e.now()), !e.cfg.NoIndex)
	return fired
}

// DecisionID is the id of the decision on detection id.
func DecisionID(detectionID string) string {
	h := sha256.Sum256([]byte("cordon.decision\x00" + detectionID))
	return "dec-" + hex.EncodeToString(h[:12])
}

// Handle decides on d: it evaluates the rules, applies suppression, runs
// (or in dry-run, prepares) the actions of each fired rule in order, and
// records the decision with the Sink. Action failures are recorded in the
// decision and are not errors of Handle (Run, which acknowledges
// detections, has one whose action may succeed later delivered again).
// It returns an error when d is nil or
// has no host id (ErrInvalidDetection) or when the decision could not be
// recorded: the detection must then be delivered again. Handling the same
// detection again is safe: the decision id and action ids are the same,
// suppression counts it once, and isolators are idempotent.
func (e *Engine) Handle(ctx context.Context, d *ioc.Detection) (*Decision, error) {
	dec, _, err := e.handle(ctx, d)
	return dec, err
}

// handle is Handle; retry, when not nil, names the first failure that a
// later attempt may not meet (an action's service or the suppression
// store failed), as opposed to one no attempt can fix (a template that
// does not render, a service not configured, a bad suppression key).
func (e *Engine) handle(ctx context.Context, d *ioc.Detection) (dec *Decision, retry error, err error) {
	if d == nil {
		return nil, nil, fmt.Errorf("%w: nil detection", ErrInvalidDetection)
	}
	if d.Host.ID == "" {
		return nil, nil, fmt.Errorf("%w: detection %q has no host id", ErrInvalidDetection, d.ID)
	}
	now := e.now()
	rs := e.rules.Load()
	env := e.newEnv(d, now)
	fired, evalErrs := rs.evaluate(env, !e.cfg.NoIndex)
	for _, ee := range evalErrs {
		e.log.Warn("response: rule failed to evaluate", "rule", ee.rule.Name, "detection", d.ID, "err", ee.err)
	}
	dec = &Decision{Schema: DecisionSchema, ID: DecisionID(d.ID), Time: now, Host: d.Host.ID, DetectionID: d.ID,
		DryRun: e.cfg.DryRun, Rules: make([]RuleDecision, 0, len(fired))}
	for _, f := range fired {
		env.Bind(f.Indicator)
		rd, rerr := e.act(ctx, dec, f, env, now)
		dec.Rules = append(dec.Rules, rd)
		if retry == nil && rerr != nil {
			retry = fmt.Errorf("%w: decision %s, rule %s (%s): %w", ErrActionFailed, dec.ID, f.Rule.Name, f.Rule.File, rerr)
		}
	}
	dec.Result = summarize(dec.Rules)
	if e.cfg.Sink != nil {
		if err := e.cfg.Sink.Record(ctx, dec); err != nil {
			return dec, retry, fmt.Errorf("response: record decision %s: %w", dec.ID, err)
		}
	}
	e.log.Debug("response: decision", "id", dec.ID, "detection", d.ID, "host", d.Host.ID, "result", dec.Result, "rules", len(dec.Rules))
	return dec, retry, nil
}

// newEnv is NewEnv with the host's tags when the Tagger can tell them.
func (e *Engine) newEnv(d *ioc.Detection, now time.Time) *Env {
	env := NewEnv(d, now)
	if tr, ok := e.svc.Tagger.(TagReader); ok {
		env.Host.Tags = tr.HostTags(d.Host.ID, now)
	}
	return env
}

func summarize(rules []RuleDecision) string {
	if len(rules) == 0 {
		return ResultNoMatch
	}
	seen := map[string]bool{}
	for _, r := range rules {
		seen[r.Result] = true
	}
	for _, r := range []string{ResultFailed, ResultDone, ResultSuppressed} {
		if seen[r] {
			return r
		}
	}
	return ResultDryRun
}

// act runs (or prepares) the actions of one fired rule. retry is the
// first failure that another attempt may not meet.
func (e *Engine) act(ctx context.Context, dec *Decision, f Firing, env *Env, now time.Time) (rd RuleDecision, retry error) {
	r := f.Rule
	dry := e.cfg.DryRun || r.DryRun
	rd = RuleDecision{Rule: r.Name, File: r.File, Indicator: f.Indicator, IndicatorKind: env.Indicator.Kind,
		IndicatorValue: env.Indicator.Value, DryRun: dry, Actions: make([]ActionRecord, 0, len(r.Actions))}
	suppressed := false
	if s := r.Suppress; s != nil {
		m := vmPool.Get().(*vm.VM)
		v, err := runAny(m, s.key, env)
		vmPool.Put(m)
		if err != nil {
			rd.Result, rd.Error = ResultFailed, "suppress.key: "+err.Error()
			return rd, nil
		}
		rd.SuppressKey = formatValue(v)
		var st Suppression
		if dry {
			st, err = e.supp.Peek(ctx, r.Name, rd.SuppressKey, now, s.Period)
		} else {
			st, err = e.supp.Hit(ctx, r.Name, rd.SuppressKey, dec.ID, now, s.Period)
		}
		if err != nil {
			// Without the store the rule cannot know whether it already
			// acted: record the failure rather than act twice or never.
			rd.Result, rd.Error = ResultFailed, "suppression store: "+err.Error()
			return rd, fmt.Errorf("suppression store: %w", err)
		}
		rd.Suppression = &st
		suppressed = st.Suppressed
	}
	failed := false
	for i, a := range r.Actions {
		inv := &Invocation{Env: env, Rule: r, ID: fmt.Sprintf("%s/%s/%d", dec.ID, r.Name, i), Now: now}
		rec := ActionRecord{Type: a.Type()}
		step, err := a.Prepare(inv)
		if err != nil {
			rec.Result, rec.Error = "failed", err.Error()
			failed = true
			rd.Actions = append(rd.Actions, rec)
			continue
		}
		rec.Args = step.Args()
		switch {
		case suppressed:
			rec.Result = "skipped"
		case dry:
			rec.Result = "planned"
		default:
			detail, err := step.Do(ctx, &e.svc)
			if err != nil {
				rec.Result, rec.Error = "failed", err.Error()
				failed = true
				e.log.Warn("response: action failed", "rule", r.Name, "action", a.Type(), "host", env.Host.ID, "err", err)
				if retry == nil && !errors.Is(err, ErrNoService) {
					retry = fmt.Errorf("actions[%d] %s: %w", i, a.Type(), err)
				}
			} else {
				rec.Result, rec.Detail = "done", detail
			}
		}
		rd.Actions = append(rd.Actions, rec)
	}
	switch {
	case failed:
		rd.Result = ResultFailed
	case suppressed:
		rd.Result = ResultSuppressed
	case dry:
		rd.Result = ResultDryRun
	default:
		rd.Result = ResultDone
	}
	return rd, retry
}

// Run consumes detections from src and handles each, until ctx ends or
// src fails. A detection is acknowledged (its handler returns nil) only
// after its decision and actions are recorded by the Sink; when the Sink
// fails the detection is delivered again. When an action failed in a way
// another attempt may not (its Isolator, Publisher or Tagger returned an
// error, or the suppression store did), the decision is recorded with the
// failure and the handler returns an error wrapping ErrActionFailed, so
// that the detection is delivered again (with the source's backoff, up to
// its delivery limit): actions are idempotent by id, the decision id is
// the same, and the rule is not suppressed by the window its own first
// attempt opened. An action that cannot succeed on any attempt (a service
// not configured, a template that does not render) is recorded as failed
// and the detection acknowledged. It returns nil when ctx ended.
func (e *Engine) Run(ctx context.Context, src DetectionSource) error {
	err := src.Consume(ctx, func(ctx context.Context, d ioc.Detection) error {
		_, retry, err := e.handle(ctx, &d)
		if err != nil {
			return err
		}
		return retry
	})
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return nil
	}
	return err
}
