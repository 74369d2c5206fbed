package response

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"sync"
	"time"
)

// Action is one compiled action of a rule: a small type made at load by
// the ActionFactory registered under its Type. Implementations are
// immutable and safe for concurrent use.
type Action interface {
	// Type is the name the action is registered under ("isolate").
	Type() string
	// Prepare renders the action's arguments for one firing. It has no
	// effect: a dry run prepares and records steps, and never does them.
	Prepare(inv *Invocation) (Step, error)
}

// Step is an action prepared for one firing.
type Step interface {
	// Args are the rendered arguments, for the decision record.
	Args() map[string]any
	// Do carries the step out with the engine's services and returns a
	// short account of what was done ("isolated until …"). It fails with
	// ErrNoService when the service it needs is missing.
	Do(ctx context.Context, svc *Services) (string, error)
}

// Invocation is what an action is prepared for.
type Invocation struct {
	// Env is the detection's environment with the firing indicator bound.
	Env *Env
	// Rule is the firing rule.
	Rule *Rule
	// ID is unique per decision, rule and action, and the same when the
	// same detection is handled again: the idempotency key of the step.
	ID string
	// Now is the engine clock's time.
	Now time.Time
}

// Services are what the built-in actions act through. A nil field makes
// the actions that need it fail with ErrNoService (and be recorded as
// failed); the others still run.
type Services struct {
	Isolator  Isolator
	Publisher Publisher
	Tagger    Tagger
	Logger    *slog.Logger
}

// ModeAutomatic is the isolation mode of the isolate action: isolation
// decided by a response rule. The host applies its automatic mode's
// exclusions, which come from the policy, never from the rule.
const ModeAutomatic = "automatic"

// IsolateRequest asks for a host's isolation until an absolute deadline.
type IsolateRequest struct {
	// ID is the idempotency key: repeating a request with the same ID
	// changes nothing more.
	ID string `json:"id"`
	// Host is the host id.
	Host string `json:"host"`
	// Until is the absolute deadline asked for. An isolator keeps the
	// later of Until and the deadline already in force: a request extends
	// isolation, never shortens it.
	Until time.Time `json:"until"`
	// Duration is the rule's duration (Until minus the decision's time).
	Duration time.Duration `json:"duration"`
	// Reason is free text for the audit trail and the host's user.
	Reason string `json:"reason"`
	// Mode is ModeAutomatic.
	Mode string `json:"mode"`
}

// ReleaseRequest asks for the end of a host's isolation.
type ReleaseRequest struct {
	ID     string `json:"id"`
	Host   string `json:"host"`
	Reason string `json:"reason"`
}

// Isolator isolates and releases hosts. The engine does not know how:
// one implementation sends a signed command on cordon.commands.<host>,
// another calls the local isolation.Manager. Both are idempotent and
// extend, never shorten (see responsetest.TestIsolator).
type Isolator interface {
	// Isolate isolates req.Host until the later of req.Until and the
	// deadline in force, and returns the deadline it asked for or that
	// is in force.
	Isolate(ctx context.Context, req IsolateRequest) (time.Time, error)
	// Release ends req.Host's isolation; releasing a host that is not
	// isolated is not an error.
	Release(ctx context.Context, req ReleaseRequest) error
}

// Publisher publishes a message on a subject (the notify action). A
// detection delivered again after a failure publishes its notification
// again, with the same Notification.ID: receivers deduplicate by it.
type Publisher interface {
	Publish(ctx context.Context, subject string, data []byte) error
}

// Tagger tags hosts for a period (the tag action). Tagging again with a
// later until extends the tag; an earlier one leaves it.
type Tagger interface {
	Tag(ctx context.Context, host, tag string, until time.Time) error
}

// ActionFactory makes an action from its arguments in a rule file. It
// decodes them with args.Decode (strict), compiles templates with
// args.Template and reports bad values with args.Errorf, returning the
// error these give.
type ActionFactory func(args *ActionArgs) (Action, error)

// Registry maps action types to factories. It is safe for concurrent use.
type Registry struct {
	mu sync.RWMutex
	m  map[string]ActionFactory
}

var actionNameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,63}$`)

// NewRegistry returns a registry with no actions.
func NewRegistry() *Registry { return &Registry{m: map[string]ActionFactory{}} }

// DefaultRegistry returns a new registry with the built-in actions:
// isolate, release, notify, tag and log.
func DefaultRegistry() *Registry {
	r := NewRegistry()
	for name, f := range map[string]ActionFactory{
		"isolate": newIsolate, "release": newRelease, "notify": newNotify, "tag": newTag, "log": newLog,
	} {
		if err := r.Register(name, f); err != nil {
			panic(err) // the built-in names are valid and distinct
		}
	}
	return r
}

// Register adds a factory under name (lower case letters, digits, _ and
// -). It fails with ErrDuplicateAction when name is taken, and with
// ErrInvalidConfig for a bad name or a nil factory.
func (r *Registry) Register(name string, f ActionFactory) error {
	if !actionNameRE.MatchString(name) || f == nil {
		return fmt.Errorf("%w: action %q: bad name or nil factory", ErrInvalidConfig, name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.m[name]; ok {
		return fmt.Errorf("%w: %q", ErrDuplicateAction, name)
	}
	r.m[name] = f
	return nil
}

// Names returns the registered action types, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.m))
	for n := range r.m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (r *Registry) lookup(name string) (ActionFactory, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	f, ok := r.m[name]
	return f, ok
}

// --- isolate ---

type isolateAction struct {
	duration time.Duration
	reason   *Template
}

func newIsolate(a *ActionArgs) (Action, error) {
	var y struct {
		Duration string `yaml:"duration"`
		Reason   string `yaml:"reason"`
	}
	if err := a.Decode(&y); err != nil {
		return nil, err
	}
	d, err := a.Duration("duration", y.Duration, DefaultIsolation)
	if err != nil {
		return nil, err
	}
	if d <= 0 || d > a.Config.MaxIsolation {
		return nil, a.Errorf("duration", "%v is not in (0, %v]", d, a.Config.MaxIsolation)
	}
	if y.Reason == "" {
		y.Reason = "response rule " + a.Rule
	}
	reason, err := a.Template("reason", y.Reason)
	if err != nil {
		return nil, err
	}
	return &isolateAction{duration: d, reason: reason}, nil
}

func (x *isolateAction) Type() string { return "isolate" }

func (x *isolateAction) Prepare(inv *Invocation) (Step, error) {
	reason, err := x.reason.Render(inv.Env)
	if err != nil {
		return nil, fmt.Errorf("reason: %w", err)
	}
	return &isolateStep{req: IsolateRequest{
		ID: inv.ID, Host: inv.Env.Host.ID, Until: inv.Now.Add(x.duration), Duration: x.duration,
		Reason: reason, Mode: ModeAutomatic,
	}}, nil
}

type isolateStep struct{ req IsolateRequest }

func (s *isolateStep) Args() map[string]any {
	return map[string]any{"host": s.req.Host, "until": s.req.Until, "duration": s.req.Duration.String(),
		"reason": s.req.Reason, "mode": s.req.Mode}
}

func (s *isolateStep) Do(ctx context.Context, svc *Services) (string, error) {
	if svc.Isolator == nil {
		return "", fmt.Errorf("%w: isolate needs an Isolator", ErrNoService)
	}
	until, err := svc.Isolator.Isolate(ctx, s.req)
	if err != nil {
		return "", err
	}
	return "isolated until " + until.UTC().Format(time.RFC3339), nil
}

// --- release ---

type releaseAction struct{ reason *Template }

func newRelease(a *ActionArgs) (Action, error) {
	var y struct {
		Reason string `yaml:"reason"`
	}
	if err := a.Decode(&y); err != nil {
		return nil, err
	}
	if y.Reason == "" {
		y.Reason = "response rule " + a.Rule
	}
	t, err := a.Template("reason", y.Reason)
	if err != nil {
		return nil, err
	}
	return &releaseAction{reason: t}, nil
}

func (x *releaseAction) Type() string { return "release" }

func (x *releaseAction) Prepare(inv *Invocation) (Step, error) {
	reason, err := x.reason.Render(inv.Env)
	if err != nil {
		return nil, fmt.Errorf("reason: %w", err)
	}
	return &releaseStep{req: ReleaseRequest{ID: inv.ID, Host: inv.Env.Host.ID, Reason: reason}}, nil
}

type releaseStep struct{ req ReleaseRequest }

func (s *releaseStep) Args() map[string]any {
	return map[string]any{"host": s.req.Host, "reason": s.req.Reason}
}

func (s *releaseStep) Do(ctx context.Context, svc *Services) (string, error) {
	if svc.Isolator == nil {
		return "", fmt.Errorf("%w: release needs an Isolator", ErrNoService)
	}
	if err := svc.Isolator.Release(ctx, s.req); err != nil {
		return "", err
	}
	return "released", nil
}

// --- notify ---

// NotificationSchema is the schema of the notify action's messages.
const NotificationSchema = "cordon.notification/v1"

// Notification is the JSON message the notify action publishes.
type Notification struct {
	Schema      string    `json:"schema"`
	ID          string    `json:"id"`
	Time        time.Time `json:"time"`
	Rule        string    `json:"rule"`
	Host        string    `json:"host"`
	DetectionID string    `json:"detection_id"`
	Severity    string    `json:"severity"`
	// IndicatorKind and IndicatorValue are the firing indicator's, "" when
	// the detection has none.
	IndicatorKind  string `json:"indicator_kind,omitempty"`
	IndicatorValue string `json:"indicator_value,omitempty"`
	Message        string `json:"message,omitempty"`
}

var subjectRE = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)

type notifyAction struct {
	subject string
	message *Template
}

func newNotify(a *ActionArgs) (Action, error) {
	var y struct {
		Subject string `yaml:"subject"`
		Message string `yaml:"message"`
	}
	if err := a.Decode(&y); err != nil {
		return nil, err
	}
	if y.Subject == "" {
		return nil, a.Errorf("subject", "is required")
	}
	if len(y.Subject) > 255 || !subjectRE.MatchString(y.Subject) {
		return nil, a.Errorf("subject", "%q is not a subject (dot-separated tokens of letters, digits, _ and -; no wildcards)", y.Subject)
	}
	t, err := a.Template("message", y.Message)
	if err != nil {
		return nil, err
	}
	return &notifyAction{subject: y.Subject, message: t}, nil
}

func (x *notifyAction) Type() string { return "notify" }

func (x *notifyAction) Prepare(inv *Invocation) (Step, error) {
	msg, err := x.message.Render(inv.Env)
	if err != nil {
		return nil, fmt.Errorf("message: %w", err)
	}
	e := inv.Env
	n := Notification{Schema: NotificationSchema, ID: inv.ID, Time: inv.Now, Rule: inv.Rule.Name, Host: e.Host.ID,
		DetectionID: e.Detection.ID, Severity: e.Detection.Severity.String(),
		IndicatorKind: e.Indicator.Kind, IndicatorValue: e.Indicator.Value, Message: msg}
	return &notifyStep{subject: x.subject, n: n}, nil
}

type notifyStep struct {
	subject string
	n       Notification
}

func (s *notifyStep) Args() map[string]any {
	return map[string]any{"subject": s.subject, "message": s.n.Message}
}

func (s *notifyStep) Do(ctx context.Context, svc *Services) (string, error) {
	if svc.Publisher == nil {
		return "", fmt.Errorf("%w: notify needs a Publisher", ErrNoService)
	}
	data, err := json.Marshal(s.n)
	if err != nil {
		return "", err
	}
	if err := svc.Publisher.Publish(ctx, s.subject, data); err != nil {
		return "", err
	}
	return "published on " + s.subject, nil
}

// --- tag ---

type tagAction struct {
	name   *Template
	period time.Duration
}

func newTag(a *ActionArgs) (Action, error) {
	var y struct {
		Name   string `yaml:"name"`
		Period string `yaml:"period"`
	}
	if err := a.Decode(&y); err != nil {
		return nil, err
	}
	if y.Name == "" {
		return nil, a.Errorf("name", "is required")
	}
	d, err := a.Duration("period", y.Period, DefaultTagPeriod)
	if err != nil {
		return nil, err
	}
	if d <= 0 || d > a.Config.MaxSuppressPeriod {
		return nil, a.Errorf("period", "%v is not in (0, %v]", d, a.Config.MaxSuppressPeriod)
	}
	t, err := a.Template("name", y.Name)
	if err != nil {
		return nil, err
	}
	return &tagAction{name: t, period: d}, nil
}

func (x *tagAction) Type() string { return "tag" }

func (x *tagAction) Prepare(inv *Invocation) (Step, error) {
	name, err := x.name.Render(inv.Env)
	if err != nil {
		return nil, fmt.Errorf("name: %w", err)
	}
	if name == "" {
		return nil, fmt.Errorf("%w: the tag name is empty", ErrEval)
	}
	return &tagStep{host: inv.Env.Host.ID, tag: name, until: inv.Now.Add(x.period)}, nil
}

type tagStep struct {
	host, tag string
	until     time.Time
}

func (s *tagStep) Args() map[string]any {
	return map[string]any{"host": s.host, "tag": s.tag, "until": s.until}
}

func (s *tagStep) Do(ctx context.Context, svc *Services) (string, error) {
	if svc.Tagger == nil {
		return "", fmt.Errorf("%w: tag needs a Tagger", ErrNoService)
	}
	if err := svc.Tagger.Tag(ctx, s.host, s.tag, s.until); err != nil {
		return "", err
	}
	return "tagged " + s.tag + " until " + s.until.UTC().Format(time.RFC3339), nil
}

// --- log ---

type logAction struct {
	message *Template
	level   slog.Level
}

func newLog(a *ActionArgs) (Action, error) {
	var y struct {
		Message string `yaml:"message"`
		Level   string `yaml:"level"`
	}
	if err := a.Decode(&y); err != nil {
		return nil, err
	}
	if y.Message == "" {
		return nil, a.Errorf("message", "is required")
	}
	var lvl slog.Level
	switch y.Level {
	case "debug":
		lvl = slog.LevelDebug
	case "", "info":
		lvl = slog.LevelInfo
	case "warn":
		lvl = slog.LevelWarn
	case "error":
		lvl = slog.LevelError
	default:
		return nil, a.Errorf("level", "%q is not one of debug, info, warn, error", y.Level)
	}
	t, err := a.Template("message", y.Message)
	if err != nil {
		return nil, err
	}
	return &logAction{message: t, level: lvl}, nil
}

func (x *logAction) Type() string { return "log" }

func (x *logAction) Prepare(inv *Invocation) (Step, error) {
	msg, err := x.message.Render(inv.Env)
	if err != nil {
		return nil, fmt.Errorf("message: %w", err)
	}
	return &logStep{msg: msg, level: x.level, rule: inv.Rule.Name, host: inv.Env.Host.ID, det: inv.Env.Detection.ID}, nil
}

type logStep struct {
	msg             string
	level           slog.Level
	rule, host, det string
}

func (s *logStep) Args() map[string]any {
	return map[string]any{"message": s.msg, "level": s.level.String()}
}

func (s *logStep) Do(ctx context.Context, svc *Services) (string, error) {
	if svc.Logger == nil {
		return "", fmt.Errorf("%w: log needs a Logger", ErrNoService)
	}
	svc.Logger.Log(ctx, s.level, s.msg, "rule", s.rule, "host", s.host, "detection", s.det)
	return "logged", nil
}
