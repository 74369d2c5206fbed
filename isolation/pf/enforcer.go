package pf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/cordonsec/cordon/isolation"
)

// DefaultAnchor is the anchor cordon's rules live in when Config.Anchor is
// empty. The stock macOS /etc/pf.conf evaluates every "com.apple/*"
// anchor, so no change to pf.conf is needed.
const DefaultAnchor = "com.apple/cordon"

// DefaultStateDir holds the enforcer's reference token and plan when
// Config.StateDir is empty.
const DefaultStateDir = "/var/db/cordon/pf"

// Config configures an Enforcer. The zero value is valid on macOS.
type Config struct {
	// Runner runs pfctl. Nil: ExecRunner (/sbin/pfctl) on macOS; on other
	// platforms New then fails with an error wrapping
	// isolation.ErrUnsupported.
	Runner Runner

	// Anchor is the pf anchor cordon's rules are loaded into. Empty:
	// DefaultAnchor.
	Anchor string

	// StateDir is a directory only root can write, where the enforcer keeps
	// the pf enable reference token it holds ("token") and the plan it
	// loaded ("plan"), so that a restarted agent can release the token and
	// report the plan. Empty: DefaultStateDir. It is created when missing.
	StateDir string

	// Logger receives the enforcer's log records. Nil: discarded.
	Logger *slog.Logger
}

var anchorRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$`)

// Validate checks the configuration: Anchor, when set, is a path of
// letters, digits and "_.-" segments (no wildcard, no ".."); StateDir,
// when set, is absolute. It returns an error wrapping
// isolation.ErrInvalidConfig.
func (c Config) Validate() error {
	if c.Anchor != "" && (!anchorRE.MatchString(c.Anchor) || slices.Contains(strings.Split(c.Anchor, "/"), "..")) {
		return fmt.Errorf("pf: %w: Anchor %q: want segments of letters, digits, _ . - separated by /", isolation.ErrInvalidConfig, c.Anchor)
	}
	if c.StateDir != "" && !filepath.IsAbs(c.StateDir) {
		return fmt.Errorf("pf: %w: StateDir %q is not absolute", isolation.ErrInvalidConfig, c.StateDir)
	}
	return nil
}

// Enforcer is the macOS isolation.Enforcer: it puts a Plan into effect as
// the ruleset of a pf anchor. It implements isolation.Observer and
// isolation.Capable (pf cannot match applications). It is safe for
// concurrent use; calls are serialized.
type Enforcer struct {
	anchor string
	dir    string
	log    *slog.Logger

	mu     sync.Mutex
	run    Runner
	closed bool
}

var _ interface {
	isolation.Enforcer
	isolation.Observer
	isolation.Capable
} = (*Enforcer)(nil)

// New returns an Enforcer. It runs nothing: rules an earlier process
// loaded stay until Apply replaces them or Clear flushes them. Errors:
// cfg.Validate's, or one wrapping isolation.ErrUnsupported off macOS when
// cfg.Runner is nil.
func New(cfg Config) (*Enforcer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	run := cfg.Runner
	if run == nil {
		r, err := platformRunner()
		if err != nil {
			return nil, fmt.Errorf("pf: new: %w", err)
		}
		run = r
	}
	e := &Enforcer{anchor: cfg.Anchor, dir: cfg.StateDir, log: cfg.Logger, run: run}
	if e.anchor == "" {
		e.anchor = DefaultAnchor
	}
	if e.dir == "" {
		e.dir = DefaultStateDir
	}
	if e.log == nil {
		e.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return e, nil
}

// Capabilities implements isolation.Capable: pf matches addresses, ports
// and protocols, not applications.
func (e *Enforcer) Capabilities() isolation.Capabilities { return isolation.Capabilities{} }

// pfctl runs one pfctl command and returns its stdout.
func (e *Enforcer) pfctl(ctx context.Context, stdin []byte, args ...string) (string, string, error) {
	out, errb, err := e.run.Run(ctx, stdin, args...)
	if err != nil {
		return string(out), string(errb), &CommandError{Args: args, Stderr: string(errb), Err: err}
	}
	return string(out), string(errb), nil
}

// rules reads the anchor's rules back with "pfctl -a ANCHOR -s rules".
func (e *Enforcer) rules(ctx context.Context) ([]pfRule, error) {
	out, _, err := e.pfctl(ctx, nil, "-a", e.anchor, "-s", "rules")
	if err != nil {
		return nil, err
	}
	rs, err := parseRules(out)
	if err != nil {
		return nil, fmt.Errorf("rules of anchor %s: %w", e.anchor, err)
	}
	return rs, nil
}

func (e *Enforcer) tokenPath() string { return filepath.Join(e.dir, "token") }
func (e *Enforcer) planPath() string  { return filepath.Join(e.dir, "plan") }

// readFile returns the trimmed content of path, "" when it does not exist.
func readFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// writeFile replaces path atomically: temporary file, fsync, rename.
func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

var tokenRE = regexp.MustCompile(`(?m)^Token\s*:\s*([0-9]+)\s*$`)

// tokenHeld reports whether pf lists token among its enable references
// ("pfctl -s References") and is enabled ("pfctl -s info").
func (e *Enforcer) tokenHeld(ctx context.Context, token string) (bool, error) {
	info, _, err := e.pfctl(ctx, nil, "-s", "info")
	if err != nil {
		return false, err
	}
	if !strings.Contains(info, "Status: Enabled") {
		return false, nil
	}
	if token == "" {
		return false, nil
	}
	refs, _, err := e.pfctl(ctx, nil, "-s", "References")
	if err != nil {
		return false, err
	}
	for _, line := range strings.Split(refs, "\n") {
		if slices.Contains(strings.Fields(line), token) {
			return true, nil
		}
	}
	return false, nil
}

// enable makes sure pf is enabled with a reference token this enforcer
// holds: "pfctl -E", keeping the token in StateDir. It never disables pf.
func (e *Enforcer) enable(ctx context.Context) error {
	token, err := readFile(e.tokenPath())
	if err != nil {
		return fmt.Errorf("read token: %w", err)
	}
	held, err := e.tokenHeld(ctx, token)
	if err != nil {
		return err
	}
	if held {
		return nil
	}
	out, errb, err := e.pfctl(ctx, nil, "-E")
	if err != nil {
		return err
	}
	m := tokenRE.FindStringSubmatch(out + "\n" + errb)
	if m == nil {
		return fmt.Errorf("%w: %q", ErrNoToken, strings.TrimSpace(errb))
	}
	if err := writeFile(e.tokenPath(), []byte(m[1]+"\n")); err != nil {
		// Do not leak the reference we cannot record.
		if _, _, xerr := e.pfctl(ctx, nil, "-X", m[1]); xerr != nil {
			err = errors.Join(err, xerr)
		}
		return fmt.Errorf("record token: %w", err)
	}
	if token != "" {
		e.log.WarnContext(ctx, "pf: recorded token no longer held; enabled pf again", "old", token, "new", m[1])
	}
	return nil
}

// Apply implements isolation.Enforcer. It loads the plan's ruleset into
// the anchor (after a "pfctl -n" syntax check; pfctl replaces an anchor's
// ruleset atomically), makes sure pf is enabled with a reference token,
// reads the rules back and compares them, then kills the states the plan
// does not allow. Nothing is loaded when the anchor already holds the
// plan's rules.
func (e *Enforcer) Apply(ctx context.Context, p isolation.Plan) error {
	if err := p.Validate(); err != nil {
		return fmt.Errorf("pf: apply: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return fmt.Errorf("pf: apply: %w", isolation.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pf: apply: %w", err)
	}
	if p.HasApplicationRules() {
		return fmt.Errorf("pf: apply: pf cannot match rules by application: %w", isolation.ErrUnsupported)
	}
	n := p.Normalize()
	text := Ruleset(n)
	want, err := parseRules(text)
	if err != nil {
		return fmt.Errorf("pf: apply: generated ruleset: %w", err)
	}
	have, err := e.rules(ctx)
	if err != nil {
		return fmt.Errorf("pf: apply: %w", err)
	}
	if err := e.enable(ctx); err != nil {
		return fmt.Errorf("pf: apply: enable pf: %w", err)
	}
	if diffRules(have, want) == "" {
		e.log.DebugContext(ctx, "pf: anchor already holds the plan", "anchor", e.anchor)
	} else {
		if _, _, err := e.pfctl(ctx, []byte(text), "-a", e.anchor, "-n", "-f", "-"); err != nil {
			return fmt.Errorf("pf: apply: syntax check: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("pf: apply: %w", err)
		}
		if _, _, err := e.pfctl(ctx, []byte(text), "-a", e.anchor, "-f", "-"); err != nil {
			return fmt.Errorf("pf: apply: load: %w", err)
		}
	}
	if old, _ := readFile(e.planPath()); old+"\n" != n.String() {
		if err := writeFile(e.planPath(), []byte(n.String())); err != nil {
			return fmt.Errorf("pf: apply: %w: record plan: %w", isolation.ErrReadBack, err)
		}
	}
	got, err := e.rules(ctx)
	if err != nil {
		return fmt.Errorf("pf: apply: %w: %w", isolation.ErrReadBack, err)
	}
	if d := diffRules(got, want); d != "" {
		return fmt.Errorf("pf: apply: %w: anchor %s:\n%s", isolation.ErrReadBack, e.anchor, d)
	}
	if held, err := e.tokenHeld(ctx, mustRead(e.tokenPath())); err != nil || !held {
		return fmt.Errorf("pf: apply: %w: pf is not enabled with cordon's token (%v)", isolation.ErrReadBack, err)
	}
	if err := e.anchorEvaluated(ctx); err != nil {
		return fmt.Errorf("pf: apply: %w: %w", isolation.ErrReadBack, err)
	}
	e.log.InfoContext(ctx, "pf: isolation rules in force", "anchor", e.anchor, "rules", len(want))
	if err := e.killStates(ctx, n); err != nil {
		return fmt.Errorf("pf: apply: %w", err)
	}
	return nil
}

// anchorEvaluated checks, in the main ruleset ("pfctl -s rules"), that
// pf evaluates the anchor for every packet: an unconditional anchor rule
// names it, or its parent's children ("com.apple/*" for
// "com.apple/cordon"), and no "pass ... quick" rule comes before that
// one. A pf.conf without the stock "com.apple/*" anchor (replaced by an
// administrator or a profile) would otherwise leave the loaded rules
// unused while Apply reported the host isolated.
func (e *Enforcer) anchorEvaluated(ctx context.Context) error {
	out, _, err := e.pfctl(ctx, nil, "-s", "rules")
	if err != nil {
		return fmt.Errorf("main ruleset: %w", err)
	}
	names := []string{e.anchor}
	if i := strings.LastIndexByte(e.anchor, '/'); i >= 0 {
		names = append(names, e.anchor[:i]+"/*")
	}
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if name, rest, ok := anchorRule(line); ok && slices.Contains(names, name) {
			if rest != "" && rest != "all" {
				return fmt.Errorf("%w: anchor %s is evaluated only for some packets: %q", ErrAnchorNotEvaluated, e.anchor, line)
			}
			return nil
		}
		if f := strings.Fields(line); f[0] == "pass" && slices.Contains(f, "quick") {
			return fmt.Errorf("%w: main ruleset rule %q passes packets before anchor %s", ErrAnchorNotEvaluated, line, e.anchor)
		}
	}
	return fmt.Errorf("%w: no rule of the main ruleset evaluates anchor %s (pf.conf needs anchor %q)", ErrAnchorNotEvaluated, e.anchor, names[len(names)-1])
}

// anchorRule splits a filter anchor rule of "pfctl -s rules" output,
// `anchor "NAME" REST`, into the name and the rest.
func anchorRule(line string) (name, rest string, ok bool) {
	after, found := strings.CutPrefix(line, `anchor "`)
	if !found {
		return "", "", false
	}
	name, rest, found = strings.Cut(after, `"`)
	if !found {
		return "", "", false
	}
	return name, strings.TrimSpace(rest), true
}

func mustRead(path string) string {
	s, _ := readFile(path)
	return s
}

// killStates kills the states of flows p does not allow, by host pair
// ("pfctl -k SRC -k DST", the initiator first): pf's kill has no finer
// selector, so an allowed state between the same two hosts is killed too
// (its flow is allowed, so it is set up again).
func (e *Enforcer) killStates(ctx context.Context, p isolation.Plan) error {
	out, _, err := e.pfctl(ctx, nil, "-s", "states")
	if err != nil {
		return fmt.Errorf("%w: %w", isolation.ErrConnectionsLeft, err)
	}
	states, err := parseStates(out)
	if err != nil {
		return fmt.Errorf("%w: %w", isolation.ErrConnectionsLeft, err)
	}
	type pair struct{ src, dst string }
	var pairs []pair
	for _, s := range states {
		if s.remote.Addr().Unmap().IsLoopback() {
			continue
		}
		f, ok := s.flow()
		if ok && p.Allows(f) {
			continue
		}
		pr := pair{s.local.Addr().String(), s.remote.Addr().String()}
		if !s.out {
			pr = pair{pr.dst, pr.src}
		}
		if !slices.Contains(pairs, pr) {
			pairs = append(pairs, pr)
		}
	}
	var errs []error
	for _, pr := range pairs {
		if _, errb, err := e.pfctl(ctx, nil, "-k", pr.src, "-k", pr.dst); err != nil {
			errs = append(errs, err)
		} else {
			e.log.InfoContext(ctx, "pf: killed states", "src", pr.src, "dst", pr.dst, "pfctl", strings.TrimSpace(errb))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", isolation.ErrConnectionsLeft, errors.Join(errs...))
	}
	return nil
}

// Clear implements isolation.Enforcer: it flushes the anchor ("pfctl -a
// ANCHOR -F all") and releases the reference token ("pfctl -X TOKEN"); pf
// itself stays enabled if others hold references. It checks that the
// anchor is empty afterwards.
func (e *Enforcer) Clear(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return fmt.Errorf("pf: clear: %w", isolation.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pf: clear: %w", err)
	}
	if _, _, err := e.pfctl(ctx, nil, "-a", e.anchor, "-F", "all"); err != nil {
		return fmt.Errorf("pf: clear: %w", err)
	}
	got, err := e.rules(ctx)
	if err != nil {
		return fmt.Errorf("pf: clear: %w: %w", isolation.ErrReadBack, err)
	}
	if len(got) > 0 {
		return fmt.Errorf("pf: clear: %w: %d rules left in anchor %s", isolation.ErrReadBack, len(got), e.anchor)
	}
	if err := os.Remove(e.planPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("pf: clear: %w", err)
	}
	token, err := readFile(e.tokenPath())
	if err != nil {
		return fmt.Errorf("pf: clear: read token: %w", err)
	}
	if token == "" {
		return nil
	}
	if _, _, err := e.pfctl(ctx, nil, "-X", token); err != nil {
		// A token lost with a reboot cannot be released and needs not be.
		if held, herr := e.tokenHeld(ctx, token); herr != nil || held {
			return fmt.Errorf("pf: clear: release token: %w", err)
		}
		e.log.InfoContext(ctx, "pf: recorded token was no longer held", "token", token)
	}
	if err := os.Remove(e.tokenPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("pf: clear: %w", err)
	}
	e.log.InfoContext(ctx, "pf: isolation rules flushed", "anchor", e.anchor)
	return nil
}

// Observe implements isolation.Observer by reading the anchor's rules
// back. The host is Active when both block rules are in the anchor; the
// Plan holds the items of the recorded plan (StateDir/plan) whose pf rules
// are all present.
func (e *Enforcer) Observe(ctx context.Context) (isolation.Observation, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return isolation.Observation{}, fmt.Errorf("pf: observe: %w", isolation.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return isolation.Observation{}, fmt.Errorf("pf: observe: %w", err)
	}
	have, err := e.rules(ctx)
	if err != nil {
		return isolation.Observation{}, fmt.Errorf("pf: observe: %w", err)
	}
	present := map[string]int{}
	for _, r := range have {
		present[r.canonical()]++
	}
	complete := func(lines []string) bool {
		rs, err := parseRules(strings.Join(lines, "\n"))
		if err != nil {
			return false
		}
		for _, r := range rs {
			if present[r.canonical()] == 0 {
				return false
			}
		}
		return true
	}
	var obs isolation.Observation
	secs := sections(isolation.Plan{})
	if !complete(secs[len(secs)-1].lines) {
		return obs, nil
	}
	obs.Active = true
	text, err := readFile(e.planPath())
	if err != nil {
		return obs, fmt.Errorf("pf: observe: %w", err)
	}
	if text == "" {
		return obs, nil
	}
	recorded, err := isolation.ParsePlan(text)
	if err != nil {
		return obs, fmt.Errorf("pf: observe: recorded plan %s: %w", e.planPath(), err)
	}
	var plan isolation.Plan
	for _, ep := range recorded.Management {
		if complete(sections(isolation.Plan{Management: []isolation.Endpoint{ep}})[1].lines) {
			plan.Management = append(plan.Management, ep)
		}
	}
	for _, r := range recorded.Rules {
		if complete(ruleLines(r)) {
			plan.Rules = append(plan.Rules, r)
		}
	}
	obs.Plan = plan.Normalize()
	return obs, nil
}

// Close implements isolation.Enforcer. The anchor's rules and the token
// stay: isolation outlives the agent process.
func (e *Enforcer) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	return nil
}
