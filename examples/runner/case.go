package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/cordonsec/cordon/examples/internal/pipeline"
	"github.com/cordonsec/cordon/ioc"
	"github.com/cordonsec/cordon/isolation"
)

// commandArgs is an operator command's action and arguments.
type commandArgs struct {
	pipeline.CommandArgs
	action string
}

// DefaultStart is the virtual time a case starts at when it names none.
var DefaultStart = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

// Case is one case file: what is loaded, what happens, what is expected.
// Paths are relative to the case file.
type Case struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	// Start is the virtual time of the first step (RFC 3339). Default:
	// DefaultStart.
	Start string   `yaml:"start"`
	Host  HostSpec `yaml:"host"`
	// Feeds are indicator feed files of any supported format.
	Feeds []string `yaml:"feeds"`
	// YARA are YARA rule files.
	YARA []string `yaml:"yara"`
	// Rules are response rule files.
	Rules []string `yaml:"rules"`
	// DryRun runs the whole engine in dry-run.
	DryRun bool `yaml:"dry_run"`
	// Policy configures automatic isolation (the policy's exclusions),
	// HostSettings manual isolation (the host's own exclusions).
	Policy       *ModeSpec `yaml:"policy"`
	HostSettings *ModeSpec `yaml:"host_settings"`
	Steps        []Step    `yaml:"steps"`

	file  string
	start time.Time
}

// HostSpec is the host the events come from.
type HostSpec struct {
	ID        string   `yaml:"id"`
	Name      string   `yaml:"name"`
	OS        string   `yaml:"os"`
	Addresses []string `yaml:"addresses"`
}

// ModeSpec configures one isolation mode.
type ModeSpec struct {
	// Duration is the mode's default duration ("8h" when empty).
	Duration string `yaml:"duration"`
	// Profiles: absent means the default profiles, [] none.
	Profiles *[]string `yaml:"profiles"`
	// Rules are custom exclusion rules in rule text form.
	Rules []string `yaml:"rules"`
}

// Step is one thing that happens: an event, an operator command, or time
// passing. Exactly one of Event, Command and Advance is set.
type Step struct {
	Name string `yaml:"name"`
	// Event is a cordon.event/v1 event; schema, id ("e-<step>"), time
	// (the virtual now) and host (the case's) are filled in when absent.
	Event map[string]any `yaml:"event"`
	// Content is the content of the event's file (or process image),
	// scanned with the YARA rules.
	Content string `yaml:"content"`
	// Command is an operator command signed with the console's key.
	Command *CommandSpec `yaml:"command"`
	// Advance moves the virtual clock ("8h", "30m").
	Advance string `yaml:"advance"`
	Expect  Expect `yaml:"expect"`

	advance time.Duration
	event   *ioc.Event
}

// CommandSpec is an operator command.
type CommandSpec struct {
	Action        string    `yaml:"action"` // isolate, release, status
	Mode          string    `yaml:"mode"`   // isolate: manual (default) or automatic
	Duration      string    `yaml:"duration"`
	UntilReleased bool      `yaml:"until_released"`
	Reason        string    `yaml:"reason"`
	Exclusions    *ModeSpec `yaml:"exclusions"` // manual isolation's exclusions
}

// Expect is what a step must produce. An absent list expects nothing:
// a step with no detections expected fails when one is made.
type Expect struct {
	Detections []ExpDetection `yaml:"detections"`
	Decisions  []ExpDecision  `yaml:"decisions"`
	// Isolation are the isolation state changes (audit events enabled,
	// extended, updated, released, failed) in order; the intermediate
	// isolating and releasing, and restored, are not listed.
	Isolation []ExpIsolation `yaml:"isolation"`
	// State, when set, is checked after the step.
	State *ExpState `yaml:"state"`
	// Refused: the command is expected to be refused by the Manager.
	Refused bool `yaml:"refused"`
}

// ExpDetection is an expected detection.
type ExpDetection struct {
	Engine     string   `yaml:"engine"`
	Rule       string   `yaml:"rule"`
	Severity   string   `yaml:"severity"`
	Indicators []string `yaml:"indicators"` // "kind:value", normalized
}

// ExpDecision is an expected rule decision.
type ExpDecision struct {
	Rule   string `yaml:"rule"`
	Result string `yaml:"result"` // done, failed, suppressed, dry_run
	// Actions, when set, are "type:result" ("isolate:done",
	// "isolate:planned").
	Actions []string `yaml:"actions"`
}

// ExpIsolation is an expected isolation state change.
type ExpIsolation struct {
	Event string `yaml:"event"` // enabled, extended, updated, released, failed
	Mode  string `yaml:"mode"`
	// Deadline is the absolute deadline as an offset from the case's
	// start ("8h"); empty for released.
	Deadline string `yaml:"deadline"`
}

// ExpState is the expected isolation state after a step.
type ExpState struct {
	State    string `yaml:"state"` // on, off
	Mode     string `yaml:"mode"`
	Deadline string `yaml:"deadline"` // offset from the case's start
	// Exclusions, when set, are the exclusion rules in force (rule text).
	Exclusions []string `yaml:"exclusions"`
}

// LoadCase reads and validates the case file at path, strictly: an unknown
// key or a wrong value is an error naming the file and where.
func LoadCase(path string) (*Case, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseCase(path, data)
}

// parseCase decodes and validates the case file path holding data.
func parseCase(path string, data []byte) (*Case, error) {
	var c Case
	if err := pipeline.PlainYAML(data); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := yaml.UnmarshalWithOptions(data, &c, yaml.Strict()); err != nil {
		return nil, fmt.Errorf("%s: %s", path, yaml.FormatError(err, false, true))
	}
	c.file = path
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &c, nil
}

func (c *Case) path(rel string) string {
	if filepath.IsAbs(rel) {
		return rel
	}
	return filepath.Join(filepath.Dir(c.file), rel)
}

func (c *Case) validate() error {
	if c.Name == "" {
		c.Name = strings.TrimSuffix(filepath.Base(c.file), filepath.Ext(c.file))
	}
	c.start = DefaultStart
	if c.Start != "" {
		t, err := time.Parse(time.RFC3339, c.Start)
		if err != nil {
			return fmt.Errorf("start: %v", err)
		}
		c.start = t.UTC()
	}
	if c.Host.ID == "" {
		c.Host.ID = "h-1"
	}
	if c.Host.Name == "" {
		c.Host.Name = c.Host.ID
	}
	for i, p := range c.Feeds {
		if _, err := os.Stat(c.path(p)); err != nil {
			return fmt.Errorf("feeds[%d]: %v", i, err)
		}
	}
	for i, p := range c.YARA {
		if _, err := os.Stat(c.path(p)); err != nil {
			return fmt.Errorf("yara[%d]: %v", i, err)
		}
	}
	for i, p := range c.Rules {
		if _, err := os.Stat(c.path(p)); err != nil {
			return fmt.Errorf("rules[%d]: %v", i, err)
		}
	}
	for _, m := range []struct {
		name string
		spec *ModeSpec
	}{{"policy", c.Policy}, {"host_settings", c.HostSettings}} {
		if _, err := m.spec.modeConfig(); err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
	}
	if len(c.Steps) == 0 {
		return errors.New("steps: at least one step is needed")
	}
	for i := range c.Steps {
		if err := c.validateStep(i); err != nil {
			return fmt.Errorf("steps[%d]: %w", i, err)
		}
	}
	return nil
}

func (c *Case) validateStep(i int) error {
	s := &c.Steps[i]
	n := 0
	if s.Event != nil {
		n++
	}
	if s.Command != nil {
		n++
	}
	if s.Advance != "" {
		n++
	}
	if n != 1 {
		return errors.New("exactly one of event, command and advance is needed")
	}
	if s.Content != "" && s.Event == nil {
		return errors.New("content: only with an event")
	}
	if s.Advance != "" {
		d, err := time.ParseDuration(s.Advance)
		if err != nil || d <= 0 {
			return fmt.Errorf("advance: %q is not a positive duration", s.Advance)
		}
		s.advance = d
	}
	if s.Command != nil {
		if _, err := s.Command.args(); err != nil {
			return fmt.Errorf("command: %w", err)
		}
	}
	for j, d := range s.Expect.Detections {
		if d.Engine == "" {
			return fmt.Errorf("expect.detections[%d].engine: required", j)
		}
		if _, err := parseSeverity(d.Severity); err != nil {
			return fmt.Errorf("expect.detections[%d].severity: %v", j, err)
		}
		for k, ind := range d.Indicators {
			kind, _, ok := strings.Cut(ind, ":")
			if _, err := ioc.ParseKind(kind); !ok || err != nil {
				return fmt.Errorf("expect.detections[%d].indicators[%d]: %q is not kind:value", j, k, ind)
			}
		}
	}
	for j, d := range s.Expect.Decisions {
		if d.Rule == "" || d.Result == "" {
			return fmt.Errorf("expect.decisions[%d]: rule and result are required", j)
		}
	}
	for j, e := range s.Expect.Isolation {
		if !slices.Contains([]string{"enabled", "extended", "updated", "released", "failed"}, e.Event) {
			return fmt.Errorf("expect.isolation[%d].event: %q is not enabled, extended, updated, released or failed", j, e.Event)
		}
		if _, err := parseOffset(e.Deadline); err != nil {
			return fmt.Errorf("expect.isolation[%d].deadline: %v", j, err)
		}
	}
	if st := s.Expect.State; st != nil {
		if st.State != "on" && st.State != "off" {
			return fmt.Errorf("expect.state.state: %q is not on or off", st.State)
		}
		if _, err := parseOffset(st.Deadline); err != nil {
			return fmt.Errorf("expect.state.deadline: %v", err)
		}
	}
	if s.Event != nil {
		ev, err := c.buildEvent(i, s.Event, c.start)
		if err != nil {
			return fmt.Errorf("event: %w", err)
		}
		s.event = &ev
	}
	return nil
}

// buildEvent fills in the defaults of a step's event and decodes it
// strictly. Time defaults to now (the virtual clock when the step runs).
func (c *Case) buildEvent(i int, m map[string]any, now time.Time) (ioc.Event, error) {
	ev := make(map[string]any, len(m)+4)
	for k, v := range m {
		ev[k] = v
	}
	if _, ok := ev["schema"]; !ok {
		ev["schema"] = ioc.EventSchema
	}
	if _, ok := ev["id"]; !ok {
		ev["id"] = fmt.Sprintf("e-%d", i+1)
	}
	if _, ok := ev["time"]; !ok {
		ev["time"] = now.Format(time.RFC3339Nano)
	}
	if _, ok := ev["host"]; !ok {
		h := map[string]any{"id": c.Host.ID, "name": c.Host.Name}
		if c.Host.OS != "" {
			h["os"] = c.Host.OS
		}
		if len(c.Host.Addresses) > 0 {
			h["addresses"] = c.Host.Addresses
		}
		ev["host"] = h
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return ioc.Event{}, err
	}
	return ioc.DecodeEvent(b)
}

func (m *ModeSpec) modeConfig() (isolation.ModeConfig, error) {
	var mc isolation.ModeConfig
	if m == nil {
		return mc, nil
	}
	if m.Duration != "" {
		d, err := time.ParseDuration(m.Duration)
		if err != nil || d <= 0 {
			return mc, fmt.Errorf("duration: %q is not a positive duration", m.Duration)
		}
		mc.Duration = d
	}
	x, err := m.exclusions()
	if err != nil {
		return mc, err
	}
	mc.Exclusions = x
	return mc, nil
}

func (m *ModeSpec) exclusions() (isolation.Exclusions, error) {
	var x isolation.Exclusions
	if m.Profiles != nil {
		x.Profiles = []isolation.Profile{}
		for _, p := range *m.Profiles {
			x.Profiles = append(x.Profiles, isolation.Profile(p))
		}
	}
	for i, r := range m.Rules {
		rule, err := isolation.ParseRule(r)
		if err != nil {
			return x, fmt.Errorf("rules[%d]: %v", i, err)
		}
		x.Rules = append(x.Rules, rule)
	}
	if err := x.Validate(); err != nil {
		return x, fmt.Errorf("exclusions: %v", err)
	}
	return x, nil
}

// args returns the bus command's arguments.
func (cs *CommandSpec) args() (*commandArgs, error) {
	a := &commandArgs{}
	switch cs.Action {
	case "isolate", "release", "status":
	default:
		return nil, fmt.Errorf("action: %q is not isolate, release or status", cs.Action)
	}
	a.action = cs.Action
	if cs.Action != "isolate" {
		if cs.Mode != "" || cs.Duration != "" || cs.UntilReleased || cs.Exclusions != nil {
			return nil, fmt.Errorf("mode, duration, until_released and exclusions are for isolate only")
		}
		a.Reason = cs.Reason
		return a, nil
	}
	a.Mode = isolation.ModeManual
	if cs.Mode != "" {
		if err := a.Mode.UnmarshalText([]byte(cs.Mode)); err != nil || cs.Mode == "" {
			return nil, fmt.Errorf("mode: %q is not manual or automatic", cs.Mode)
		}
	}
	if cs.Duration != "" {
		d, err := time.ParseDuration(cs.Duration)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("duration: %q is not a positive duration", cs.Duration)
		}
		a.Duration = isolation.Duration(d)
	}
	a.UntilReleased = cs.UntilReleased
	a.Reason = cs.Reason
	if cs.Exclusions != nil {
		x, err := cs.Exclusions.exclusions()
		if err != nil {
			return nil, fmt.Errorf("exclusions: %w", err)
		}
		a.Exclusions = &x
	}
	return a, nil
}

// parseOffset parses an offset from the case's start; "" is zero.
func parseOffset(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration from the start", s)
	}
	return d, nil
}

func sortedLines(l []string) []string {
	l = slices.Clone(l)
	sort.Strings(l)
	return l
}

// parseSeverity parses an expected severity; "unknown" is the severity of
// a detection whose feed gives none.
func parseSeverity(s string) (ioc.Severity, error) {
	if s == "unknown" {
		return ioc.SeverityUnknown, nil
	}
	if s == "" {
		return 0, errors.New("required (low, medium, high, critical or unknown)")
	}
	return ioc.ParseSeverity(s)
}
