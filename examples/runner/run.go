package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/cordonsec/cordon/bus"
	"github.com/cordonsec/cordon/examples/internal/pipeline"
	"github.com/cordonsec/cordon/ioc"
	"github.com/cordonsec/cordon/isolation"
	"github.com/cordonsec/cordon/response"
)

// caseResult is the outcome of one case.
type caseResult struct {
	Name     string
	File     string
	Passed   bool
	Err      error // the case could not run
	Steps    []stepResult
	Duration time.Duration
}

// stepResult is what one step produced and how it compares.
type stepResult struct {
	Index      int
	Title      string
	Lines      []string // what happened, for people
	Failures   []string // diffs and errors
	Explain    []string // explanations of rules that did not do what was expected
	detections []ioc.Detection
}

// runCase runs c through a fresh pipeline in a data directory under tmp.
func runCase(ctx context.Context, c *Case, tmp string) caseResult {
	start := time.Now()
	res := caseResult{Name: c.Name, File: c.file}
	dir, err := os.MkdirTemp(tmp, "case-")
	if err != nil {
		res.Err = err
		return res
	}
	defer os.RemoveAll(dir)
	h, err := newHarness(ctx, c, dir)
	if err != nil {
		res.Err = err
		res.Duration = time.Since(start)
		return res
	}
	defer h.close()
	res.Passed = true
	for i := range c.Steps {
		sr := h.runStep(ctx, i)
		if len(sr.Failures) > 0 {
			res.Passed = false
		}
		res.Steps = append(res.Steps, sr)
		if ctx.Err() != nil {
			break
		}
	}
	res.Duration = time.Since(start)
	return res
}

func (h *harness) runStep(ctx context.Context, i int) stepResult {
	s := &h.c.Steps[i]
	sr := stepResult{Index: i + 1}
	offset := func() string { return fmtOffset(h.clock.Now().Sub(h.c.start)) }
	h.mu.Lock()
	firstEvent := len(h.isoEvents)
	firstResult := len(h.results)
	h.mu.Unlock()
	var cmdResult *isolation.Result
	switch {
	case s.Advance != "":
		sr.Title = fmt.Sprintf("advance %s", s.advance)
		if err := h.advance(ctx, s.advance); err != nil {
			sr.Failures = append(sr.Failures, "advance: "+err.Error())
			return sr
		}
		sr.Title += " → " + offset()
	case s.Command != nil:
		a, _ := s.Command.args()
		sr.Title = fmt.Sprintf("@%s command %s", offset(), a.action)
		var args *pipeline.CommandArgs
		if a.action == "isolate" || a.Reason != "" {
			args = &a.CommandArgs
		}
		cmd, err := pipeline.NewCommand(h.c.Host.ID, bus.Action(a.action), args, h.clock.Now(), time.Hour)
		if err == nil {
			var sc bus.SignedCommand
			if sc, err = bus.SignCommand(h.operator, cmd); err == nil {
				_, err = countingPublisher{h}.PublishCommand(ctx, sc)
			}
		}
		if err == nil {
			err = h.waitFor(ctx, "command handled", func() bool { return h.handled >= h.published })
		}
		if err != nil {
			sr.Failures = append(sr.Failures, "command: "+err.Error())
			return sr
		}
		h.mu.Lock()
		if len(h.results) > firstResult {
			r := h.results[len(h.results)-1]
			cmdResult = &r
		}
		h.mu.Unlock()
	default:
		ev, err := h.c.buildEvent(i, s.Event, h.clock.Now())
		if err != nil {
			sr.Failures = append(sr.Failures, "event: "+err.Error())
			return sr
		}
		sr.Title = fmt.Sprintf("@%s event %s %s%s", offset(), ev.ID, ev.Kind, eventSummary(&ev))
		var content []byte
		if s.Content != "" {
			content = []byte(s.Content)
		}
		dets, err := h.matcher.Match(ctx, &ev, content)
		if err != nil {
			sr.Failures = append(sr.Failures, "match: "+err.Error())
		}
		sr.detections = dets
		for _, d := range dets {
			if _, err := h.bus.PublishDetection(ctx, d); err != nil {
				sr.Failures = append(sr.Failures, "publish detection: "+err.Error())
				return sr
			}
		}
		err = h.waitFor(ctx, "decisions and commands", func() bool {
			for _, d := range dets {
				if h.decisions[d.ID] == nil {
					return false
				}
			}
			return h.handled >= h.published
		})
		if err != nil {
			sr.Failures = append(sr.Failures, err.Error())
			return sr
		}
	}
	if s.Name != "" {
		sr.Title += " — " + s.Name
	}
	h.compare(s, &sr, firstEvent, cmdResult)
	return sr
}

// compare renders what the step produced and compares it with Expect.
func (h *harness) compare(s *Step, sr *stepResult, firstEvent int, cmdResult *isolation.Result) {
	// Detections.
	var gotDet, wantDet []string
	for _, d := range sr.detections {
		gotDet = append(gotDet, detectionLine(d))
	}
	for _, d := range s.Expect.Detections {
		wantDet = append(wantDet, expDetectionLine(d))
	}
	for _, l := range sortedLines(gotDet) {
		sr.Lines = append(sr.Lines, "detection "+l)
	}
	if d := diffLines(wantDet, gotDet, true); d != "" {
		sr.Failures = append(sr.Failures, "detections differ (-want +got):\n"+d)
	}
	// Decisions.
	wantActions := map[string]bool{}
	var wantDec []string
	for _, d := range s.Expect.Decisions {
		if d.Actions != nil {
			wantActions[d.Rule] = true
		}
		wantDec = append(wantDec, expDecisionLine(d))
	}
	var gotDec []string
	h.mu.Lock()
	var decs []*response.Decision
	for _, d := range sr.detections {
		if dec := h.decisions[d.ID]; dec != nil {
			decs = append(decs, dec)
		}
	}
	h.mu.Unlock()
	for _, dec := range decs {
		for _, rd := range dec.Rules {
			gotDec = append(gotDec, decisionLine(rd, wantActions[rd.Rule]))
			sr.Lines = append(sr.Lines, "decision "+decisionLine(rd, true)+ruleAccount(rd))
		}
	}
	if d := diffLines(wantDec, gotDec, true); d != "" {
		sr.Failures = append(sr.Failures, "decisions differ (-want +got):\n"+d)
		sr.Explain = h.explain(sr.detections, wantDec, gotDec)
	}
	// Isolation changes.
	h.mu.Lock()
	events := slices.Clone(h.isoEvents[firstEvent:])
	h.mu.Unlock()
	var gotIso, wantIso []string
	for _, e := range events {
		switch e.Kind {
		case isolation.EventIsolating, isolation.EventReleasing, isolation.EventRestored:
			continue
		}
		l := h.isolationLine(e)
		gotIso = append(gotIso, l)
		extra := ""
		if e.Reason != "" {
			extra = fmt.Sprintf(" (%s)", e.Reason)
		}
		if e.Error != "" {
			extra += " error: " + e.Error
		}
		sr.Lines = append(sr.Lines, "isolation "+l+extra)
	}
	for _, e := range s.Expect.Isolation {
		wantIso = append(wantIso, expIsolationLine(e))
	}
	if d := diffLines(wantIso, gotIso, false); d != "" {
		sr.Failures = append(sr.Failures, "isolation changes differ (-want +got):\n"+d)
	}
	// Command result.
	if cmdResult != nil {
		switch {
		case !cmdResult.OK && !s.Expect.Refused:
			sr.Failures = append(sr.Failures, "command refused: "+cmdResult.Error)
		case cmdResult.OK && s.Expect.Refused:
			sr.Failures = append(sr.Failures, "command accepted, expected refused")
		case !cmdResult.OK:
			sr.Lines = append(sr.Lines, "command refused: "+cmdResult.Error)
		}
	} else if s.Expect.Refused {
		sr.Failures = append(sr.Failures, "refused: only a command can be refused")
	}
	// State.
	st := h.manager().Status()
	if want := s.Expect.State; want != nil {
		got := h.stateLine(st, want.Exclusions != nil)
		if d := diffLines([]string{expStateLine(*want)}, []string{got}, false); d != "" {
			sr.Failures = append(sr.Failures, "state differs (-want +got):\n"+d)
		}
	}
	// The enforcer must hold what the Manager reports.
	if f := h.enforcerMismatch(st); f != "" {
		sr.Failures = append(sr.Failures, f)
	}
	sr.Lines = append(sr.Lines, strings.Replace(h.stateLine(st, false), "state=", "state ", 1))
}

// enforcerMismatch compares the fake enforcer with the Manager's status:
// no rules while off, and while on exactly the exclusions the status
// reports (with neighbour discovery, which the Manager always adds). It
// returns the failure, or "".
func (h *harness) enforcerMismatch(st isolation.Status) string {
	active, plan := h.fake.Host().Active()
	switch {
	case st.State == isolation.StateOn && !active:
		return "the Manager reports the host isolated, but the enforcer holds no rules"
	case st.State == isolation.StateOff && active:
		return "the Manager reports the host not isolated, but the enforcer still holds rules"
	case st.State != isolation.StateOn:
		return ""
	}
	want := isolation.Plan{Rules: []isolation.Rule{isolation.NeighborDiscoveryRule()}}
	for _, x := range st.Exclusions {
		r, err := isolation.ParseRule(x)
		if err != nil {
			return fmt.Sprintf("the Manager reports an exclusion it cannot parse back: %q: %v", x, err)
		}
		want.Rules = append(want.Rules, r)
	}
	lines := func(p isolation.Plan) []string {
		var out []string
		for _, r := range p.Normalize().Rules {
			out = append(out, r.String())
		}
		return out
	}
	if d := diffLines(lines(want), lines(plan), true); d != "" {
		return "the enforcer's rules differ from the exclusions the Manager reports (-want +got):\n" + d
	}
	return ""
}

// explain returns the Explain text of the rules whose decisions differ
// from the expected ones, for each detection of the step.
func (h *harness) explain(dets []ioc.Detection, want, got []string) []string {
	rules := map[string]bool{}
	wantSet := map[string]bool{}
	for _, l := range want {
		wantSet[l] = true
	}
	gotSet := map[string]bool{}
	for _, l := range got {
		gotSet[l] = true
	}
	for _, l := range want {
		if !gotSet[l] {
			rules[ruleOf(l)] = true
		}
	}
	for _, l := range got {
		if !wantSet[l] {
			rules[ruleOf(l)] = true
		}
	}
	var out []string
	for _, d := range dets {
		x := h.engine.Explain(&d)
		var keep []response.RuleExplanation
		for _, r := range x.Rules {
			if rules[r.Rule] {
				keep = append(keep, r)
			}
		}
		if len(keep) == 0 {
			continue
		}
		x.Rules = keep
		out = append(out, fmt.Sprintf("detection %s (%s):\n%s", d.ID, d.Engine, strings.TrimRight(x.Text(), "\n")))
	}
	if len(out) == 0 && len(dets) == 0 && len(rules) > 0 {
		out = append(out, "no detection was made, so no rule could fire")
	}
	return out
}

func ruleOf(line string) string {
	r, _, _ := strings.Cut(strings.TrimPrefix(line, "rule="), " ")
	return r
}

func detectionLine(d ioc.Detection) string {
	var inds []string
	for _, i := range d.Indicators {
		inds = append(inds, i.Kind.String()+":"+i.Value)
	}
	sort.Strings(inds)
	return fmt.Sprintf("engine=%s rule=%q severity=%s indicators=[%s]", d.Engine, d.Rule, sevName(d.Severity), strings.Join(inds, " "))
}

func expDetectionLine(d ExpDetection) string {
	sev, _ := parseSeverity(d.Severity)
	var inds []string
	for _, i := range d.Indicators {
		kind, value, _ := strings.Cut(i, ":")
		k, _ := ioc.ParseKind(kind)
		inds = append(inds, k.String()+":"+value)
	}
	sort.Strings(inds)
	return fmt.Sprintf("engine=%s rule=%q severity=%s indicators=[%s]", d.Engine, d.Rule, sevName(sev), strings.Join(inds, " "))
}

func sevName(s ioc.Severity) string {
	if s == ioc.SeverityUnknown {
		return "unknown"
	}
	return s.String()
}

func decisionLine(rd response.RuleDecision, actions bool) string {
	l := fmt.Sprintf("rule=%s result=%s", rd.Rule, rd.Result)
	if actions {
		var as []string
		for _, a := range rd.Actions {
			as = append(as, a.Type+":"+a.Result)
		}
		l += " actions=[" + strings.Join(as, " ") + "]"
	}
	return l
}

// ruleAccount adds what the actions did, for people.
func ruleAccount(rd response.RuleDecision) string {
	var parts []string
	for _, a := range rd.Actions {
		switch {
		case a.Error != "":
			parts = append(parts, a.Type+": "+a.Error)
		case a.Detail != "":
			parts = append(parts, a.Type+": "+a.Detail)
		}
	}
	if rd.Suppression != nil && rd.Suppression.Suppressed {
		parts = append(parts, fmt.Sprintf("suppressed (%d in the window)", rd.Suppression.Count))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, "; ") + ")"
}

func expDecisionLine(d ExpDecision) string {
	l := fmt.Sprintf("rule=%s result=%s", d.Rule, d.Result)
	if d.Actions != nil {
		l += " actions=[" + strings.Join(d.Actions, " ") + "]"
	}
	return l
}

func (h *harness) isolationLine(e isolation.Event) string {
	l := string(e.Kind)
	if e.Kind != isolation.EventReleased && e.Mode != 0 {
		l += " mode=" + e.Mode.String()
	}
	if e.Kind != isolation.EventReleased && !e.Deadline.IsZero() {
		l += " deadline=" + fmtOffset(e.Deadline.Sub(h.c.start))
	}
	return l
}

func expIsolationLine(e ExpIsolation) string {
	l := e.Event
	if e.Mode != "" {
		l += " mode=" + e.Mode
	}
	if e.Deadline != "" {
		d, _ := parseOffset(e.Deadline)
		l += " deadline=" + fmtOffset(d)
	}
	return l
}

func (h *harness) stateLine(st isolation.Status, exclusions bool) string {
	state := string(st.State)
	if st.Isolated() || st.State == isolation.StateOn {
		state = "on"
	}
	l := "state=" + state
	if st.Mode != 0 {
		l += " mode=" + st.Mode.String()
	}
	if !st.Deadline.IsZero() {
		l += " deadline=" + fmtOffset(st.Deadline.Sub(h.c.start))
	}
	if exclusions {
		l += " exclusions=[" + strings.Join(sortedLines(st.Exclusions), "; ") + "]"
	}
	return l
}

func expStateLine(s ExpState) string {
	l := "state=" + s.State
	if s.Mode != "" {
		l += " mode=" + s.Mode
	}
	if s.Deadline != "" {
		d, _ := parseOffset(s.Deadline)
		l += " deadline=" + fmtOffset(d)
	}
	if s.Exclusions != nil {
		var norm []string
		for _, r := range s.Exclusions {
			if rule, err := isolation.ParseRule(r); err == nil {
				norm = append(norm, rule.String())
			} else {
				norm = append(norm, r)
			}
		}
		l += " exclusions=[" + strings.Join(sortedLines(norm), "; ") + "]"
	}
	return l
}

// fmtOffset writes an offset from the case's start: "+8h", "+7h30m", "+0s".
// Zero units are left out ("+1h0m30s" is "+1h30s"); a negative offset
// (a deadline before the start) has a "-" instead of the "+".
func fmtOffset(d time.Duration) string {
	sign := "+"
	d = d.Round(time.Second)
	if d < 0 {
		sign, d = "-", -d
	}
	if d == 0 {
		return sign + "0s"
	}
	h, m, s := d/time.Hour, (d%time.Hour)/time.Minute, (d%time.Minute)/time.Second
	var b strings.Builder
	b.WriteString(sign)
	if h > 0 {
		fmt.Fprintf(&b, "%dh", h)
	}
	if m > 0 {
		fmt.Fprintf(&b, "%dm", m)
	}
	if s > 0 {
		fmt.Fprintf(&b, "%ds", s)
	}
	return b.String()
}

// diffLines compares want and got (as multisets when unordered) and
// returns a readable diff, "- " for a wanted line that is missing, "+ "
// for a line that was not expected, or "" when equal.
func diffLines(want, got []string, unordered bool) string {
	if unordered {
		want, got = sortedLines(want), sortedLines(got)
	}
	if slices.Equal(want, got) {
		return ""
	}
	// Longest common subsequence, then walk it.
	n, m := len(want), len(got)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if want[i] == got[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var b strings.Builder
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && want[i] == got[j]:
			b.WriteString("  " + want[i] + "\n")
			i, j = i+1, j+1
		case j == m || (i < n && lcs[i+1][j] >= lcs[i][j+1]):
			b.WriteString("- " + want[i] + "\n")
			i++
		default:
			b.WriteString("+ " + got[j] + "\n")
			j++
		}
	}
	if n == 0 {
		b.WriteString("- (nothing)\n")
	}
	if m == 0 {
		b.WriteString("+ (nothing)\n")
	}
	return b.String()
}

// report prints a case's result.
func report(w io.Writer, r caseResult, verbose bool) {
	switch {
	case r.Err != nil:
		fmt.Fprintf(w, "FAIL %s (%s): %v\n", r.Name, r.File, r.Err)
		return
	case r.Passed:
		fmt.Fprintf(w, "PASS %s (%d steps, %v)\n", r.Name, len(r.Steps), r.Duration.Round(time.Millisecond))
	default:
		fmt.Fprintf(w, "FAIL %s (%s, %v)\n", r.Name, r.File, r.Duration.Round(time.Millisecond))
	}
	for _, s := range r.Steps {
		if !verbose && len(s.Failures) == 0 {
			continue
		}
		mark := "  "
		if len(s.Failures) > 0 {
			mark = "✗ "
		}
		fmt.Fprintf(w, "  %sstep %d: %s\n", mark, s.Index, s.Title)
		for _, l := range s.Lines {
			fmt.Fprintf(w, "      %s\n", l)
		}
		for _, f := range s.Failures {
			fmt.Fprintf(w, "%s\n", indent(f, "      ! "))
		}
		for _, x := range s.Explain {
			fmt.Fprintf(w, "%s\n", indent("explain "+x, "      | "))
		}
	}
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n")
}
