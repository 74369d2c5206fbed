package response_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cordonsec/cordon/ioc"
	"github.com/cordonsec/cordon/response"
	"github.com/cordonsec/cordon/response/responsetest"
)

func rule(name, when, actions string, extra ...string) string {
	s := fmt.Sprintf("- name: %s\n  when: %q\n  actions:\n%s", name, when, actions)
	for _, e := range extra {
		s += "  " + e + "\n"
	}
	return s
}

const logAction = "    - log: {message: fired}\n"

// Severities compare in severity order, not as strings: "critical" >=
// "high" although "critical" < "high" lexicographically, and "medium" <
// "high" although "medium" > "high".
func TestSeverityOrder(t *testing.T) {
	sevs := []ioc.Severity{ioc.SeverityUnknown, ioc.SeverityLow, ioc.SeverityMedium, ioc.SeverityHigh, ioc.SeverityCritical}
	tests := []struct {
		when string
		want func(s ioc.Severity) bool
	}{
		{`detection.severity >= "high"`, func(s ioc.Severity) bool { return s >= ioc.SeverityHigh }},
		{`detection.severity > "high"`, func(s ioc.Severity) bool { return s > ioc.SeverityHigh }},
		{`detection.severity < "medium"`, func(s ioc.Severity) bool { return s < ioc.SeverityMedium }},
		{`detection.severity <= "low"`, func(s ioc.Severity) bool { return s <= ioc.SeverityLow }},
		{`detection.severity == "critical"`, func(s ioc.Severity) bool { return s == ioc.SeverityCritical }},
		{`detection.severity != "critical"`, func(s ioc.Severity) bool { return s != ioc.SeverityCritical }},
		{`"high" <= detection.severity`, func(s ioc.Severity) bool { return s >= ioc.SeverityHigh }},
		{`"medium" > detection.severity`, func(s ioc.Severity) bool { return s < ioc.SeverityMedium }},
		{`detection.severity in ["low", "critical"]`, func(s ioc.Severity) bool { return s == ioc.SeverityLow || s == ioc.SeverityCritical }},
		{`severityAtLeast(detection.severity, "medium")`, func(s ioc.Severity) bool { return s >= ioc.SeverityMedium }},
		{`detection.severity >= severity("high")`, func(s ioc.Severity) bool { return s >= ioc.SeverityHigh }},
		{`indicator.severity >= detection.severity`, func(s ioc.Severity) bool { return true }},
		{`detection.severity == ""`, func(s ioc.Severity) bool { return s == ioc.SeverityUnknown }},
	}
	for _, tc := range tests {
		f, err := response.Compile(response.LoadConfig{}, "sev.yaml", []byte(rule("r", tc.when, logAction)))
		if err != nil {
			t.Fatalf("%s: %v", tc.when, err)
		}
		for _, s := range sevs {
			t.Run(fmt.Sprintf("%s/%s", tc.when, s), func(t *testing.T) {
				d := detection("d", "h", "atomic", ind{id: "i", kind: "md5", value: "00112233445566778899aabbccddeeff", sev: s})
				got, _, err := f.Rules[0].Matches(&d)
				if err != nil {
					t.Fatal(err)
				}
				if got != tc.want(s) {
					t.Fatalf("%s with severity %q: %v", tc.when, s, got)
				}
			})
		}
	}
}

func TestActions(t *testing.T) {
	var logBuf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logBuf, nil))
	rules := `- name: all
  when: indicator.kind == "sha256"
  actions:
    - isolate: { reason: "IOC {{ indicator.value }} ({{ detection.severity }})" }
    - isolate: { duration: 2h }
    - notify:  { subject: soc.alerts, message: "isolating {{ host.name }}" }
    - tag:     { name: "ioc-{{ indicator.source }}", period: 48h }
    - log:     { message: "rule fired on {{ host.id }}", level: warn }
    - release: { reason: "test release" }
`
	f := newFixture(t, func(c *response.Config) {
		c.Services.Logger = logger
	}, rules)
	d := detection("d1", "h1", "atomic", ind{id: "i1", kind: "sha256", value: strings.Repeat("ab", 32), source: "feed-a", sev: ioc.SeverityCritical})
	dec, err := f.eng.Handle(context.Background(), &d)
	if err != nil {
		t.Fatal(err)
	}
	if dec.Result != response.ResultDone || len(dec.Rules) != 1 {
		t.Fatalf("decision %+v", dec)
	}
	for i, a := range dec.Rules[0].Actions {
		if a.Result != "done" {
			t.Errorf("action %d %s: %s %s", i, a.Type, a.Result, a.Error)
		}
	}
	reqs := f.iso.Requests()
	if len(reqs) != 2 {
		t.Fatalf("isolate requests %d", len(reqs))
	}
	want := response.IsolateRequest{ID: dec.ID + "/all/0", Host: "h1", Until: t0.Add(8 * time.Hour), Duration: 8 * time.Hour,
		Reason: "IOC " + strings.Repeat("ab", 32) + " (critical)", Mode: "automatic"}
	if fmt.Sprint(reqs[0]) != fmt.Sprint(want) {
		t.Errorf("isolate\n got %+v\nwant %+v", reqs[0], want)
	}
	if reqs[1].Duration != 2*time.Hour || reqs[1].Reason != "response rule all" {
		t.Errorf("second isolate %+v", reqs[1])
	}
	msgs := f.pub.Messages()
	if len(msgs) != 1 || msgs[0].Subject != "soc.alerts" {
		t.Fatalf("notify %v", msgs)
	}
	var n response.Notification
	if err := json.Unmarshal(msgs[0].Data, &n); err != nil {
		t.Fatal(err)
	}
	if n.Schema != response.NotificationSchema || n.Message != "isolating h1.example" || n.Rule != "all" || n.Host != "h1" ||
		n.DetectionID != "d1" || n.Severity != "critical" || n.IndicatorKind != "sha256" {
		t.Errorf("notification %+v", n)
	}
	if u, ok := f.tag.Until("h1", "ioc-feed-a"); !ok || !u.Equal(t0.Add(48*time.Hour)) {
		t.Errorf("tag until %v %v", u, ok)
	}
	if !strings.Contains(logBuf.String(), "level=WARN") || !strings.Contains(logBuf.String(), `msg="rule fired on h1"`) {
		t.Errorf("log: %s", logBuf.String())
	}
	if rel := f.iso.Releases(); len(rel) != 1 || rel[0].Host != "h1" || rel[0].Reason != "test release" {
		t.Errorf("release %v", rel)
	}
	if _, isolated := f.iso.Deadline("h1"); isolated {
		t.Error("still isolated after release")
	}
	if got := f.sink.Decisions(); len(got) != 1 || got[0].ID != dec.ID {
		t.Errorf("sink %v", got)
	}
}

// An action whose service fails or is missing is recorded as failed; the
// rule's other actions still run and the decision is recorded.
func TestActionFailure(t *testing.T) {
	rules := rule("r", "true", "    - isolate: {}\n    - notify: {subject: soc.x}\n    - tag: {name: t}\n")
	f := newFixture(t, func(c *response.Config) { c.Services.Tagger = nil }, rules)
	f.iso.Fail = true
	d := detection("d1", "h1", "atomic", ind{id: "i", kind: "md5", value: "00112233445566778899aabbccddeeff"})
	dec, err := f.eng.Handle(context.Background(), &d)
	if err != nil {
		t.Fatal(err)
	}
	a := dec.Rules[0].Actions
	if dec.Result != response.ResultFailed || a[0].Result != "failed" || a[1].Result != "done" || a[2].Result != "failed" ||
		!strings.Contains(a[2].Error, "not configured") {
		t.Fatalf("decision %+v", dec.Rules[0])
	}
}

// A second isolating detection extends the deadline to the later of the
// two; a shorter one never shortens it.
func TestExtendNotShorten(t *testing.T) {
	rules := rule("long", `"long" in indicator.tags`, "    - isolate: {duration: 8h}\n") +
		rule("short", `"short" in indicator.tags`, "    - isolate: {duration: 1h}\n") +
		rule("longer", `"longer" in indicator.tags`, "    - isolate: {duration: 24h}\n")
	f := newFixture(t, nil, rules)
	ctx := context.Background()
	handle := func(id, tag string) {
		d := detection(id, "h1", "atomic", ind{id: "i-" + id, kind: "md5", value: "00112233445566778899aabbccddeeff", tags: []string{tag}})
		if _, err := f.eng.Handle(ctx, &d); err != nil {
			t.Fatal(err)
		}
	}
	handle("d1", "long")
	f.clock.Advance(time.Hour)
	handle("d2", "short") // would end at t0+2h
	if dl, _ := f.iso.Deadline("h1"); !dl.Equal(t0.Add(8 * time.Hour)) {
		t.Fatalf("deadline %v after a shorter isolation, want %v", dl, t0.Add(8*time.Hour))
	}
	handle("d3", "longer")
	if dl, _ := f.iso.Deadline("h1"); !dl.Equal(t0.Add(25 * time.Hour)) {
		t.Fatalf("deadline %v after a longer isolation, want %v", dl, t0.Add(25*time.Hour))
	}
}

func TestDryRun(t *testing.T) {
	rules := rule("dry", "true", "    - isolate: {}\n    - notify: {subject: soc.x}\n", "dry_run: true", "stop: true", `suppress: {key: host.id, period: 1h}`) +
		rule("real", "true", "    - notify: {subject: soc.y}\n")
	ctx := context.Background()
	t.Run("per-rule", func(t *testing.T) {
		f := newFixture(t, nil, rules)
		for _, id := range []string{"d1", "d2"} {
			d := detection(id, "h1", "atomic", ind{id: "i", kind: "md5", value: "00112233445566778899aabbccddeeff"})
			dec, err := f.eng.Handle(ctx, &d)
			if err != nil {
				t.Fatal(err)
			}
			// The dry rule's stop does not stop the real rule.
			if len(dec.Rules) != 2 || dec.Rules[0].Result != response.ResultDryRun || !dec.Rules[0].DryRun ||
				dec.Rules[0].Actions[0].Result != "planned" || dec.Rules[0].Actions[0].Args["host"] != "h1" ||
				dec.Rules[1].Result != response.ResultDone {
				t.Fatalf("decision %+v", dec)
			}
			// Dry runs look at the suppression window but do not open it.
			if s := dec.Rules[0].Suppression; s == nil || s.Suppressed || s.Count != 1 {
				t.Fatalf("suppression %+v", s)
			}
		}
		if len(f.iso.Requests()) != 0 {
			t.Fatal("a dry-run rule isolated")
		}
		if m := f.pub.Messages(); len(m) != 2 || m[0].Subject != "soc.y" {
			t.Fatalf("messages %v", m)
		}
	})
	t.Run("engine-wide", func(t *testing.T) {
		f := newFixture(t, func(c *response.Config) { c.DryRun = true }, rules)
		d := detection("d1", "h1", "atomic", ind{id: "i", kind: "md5", value: "00112233445566778899aabbccddeeff"})
		dec, err := f.eng.Handle(ctx, &d)
		if err != nil {
			t.Fatal(err)
		}
		if !dec.DryRun || dec.Result != response.ResultDryRun || len(dec.Rules) != 2 || dec.Rules[1].Actions[0].Result != "planned" {
			t.Fatalf("decision %+v", dec)
		}
		if len(f.iso.Requests()) != 0 || len(f.pub.Messages()) != 0 {
			t.Fatal("something was done in dry-run")
		}
		if len(f.sink.Decisions()) != 1 {
			t.Fatal("the decision was not recorded")
		}
	})
}

func TestSuppression(t *testing.T) {
	rules := rule("s", "true", "    - notify: {subject: soc.x}\n", `suppress: {key: "host.id + '/' + indicator.value", period: 1h}`)
	f := newFixture(t, nil, rules)
	ctx := context.Background()
	handle := func(id, host string) *response.Decision {
		d := detection(id, host, "atomic", ind{id: "i", kind: "md5", value: "00112233445566778899aabbccddeeff"})
		dec, err := f.eng.Handle(ctx, &d)
		if err != nil {
			t.Fatal(err)
		}
		return dec
	}
	if dec := handle("d1", "h1"); dec.Result != response.ResultDone || dec.Rules[0].SuppressKey != "h1/00112233445566778899aabbccddeeff" {
		t.Fatalf("first %+v", dec.Rules[0])
	}
	f.clock.Advance(30 * time.Minute)
	dec := handle("d2", "h1")
	if dec.Result != response.ResultSuppressed || dec.Rules[0].Suppression.Count != 2 || dec.Rules[0].Actions[0].Result != "skipped" {
		t.Fatalf("second %+v", dec.Rules[0])
	}
	// The same detection again (a redelivery) is not counted twice.
	if dec := handle("d2", "h1"); dec.Rules[0].Suppression.Count != 2 {
		t.Fatalf("redelivery counted: %+v", dec.Rules[0].Suppression)
	}
	// Another key is not suppressed.
	if dec := handle("d3", "h2"); dec.Result != response.ResultDone {
		t.Fatalf("other key %+v", dec.Rules[0])
	}
	f.clock.Advance(31 * time.Minute)
	if dec := handle("d4", "h1"); dec.Result != response.ResultDone || dec.Rules[0].Suppression.Count != 1 {
		t.Fatalf("after the period %+v", dec.Rules[0])
	}
	if n := len(f.pub.Messages()); n != 3 {
		t.Fatalf("%d notifications, want 3", n)
	}
}

func TestStopAndOrder(t *testing.T) {
	rules := rule("a", `indicator.kind == "md5"`, logAction) +
		rule("b", `indicator.kind == "md5"`, logAction, "stop: true") +
		rule("c", "true", logAction)
	f := newFixture(t, nil, rules)
	md5 := detection("d1", "h1", "atomic", ind{id: "i", kind: "md5", value: "00112233445566778899aabbccddeeff"})
	var names []string
	for _, fr := range f.eng.Evaluate(&md5) {
		names = append(names, fr.Rule.Name)
	}
	if strings.Join(names, ",") != "a,b" {
		t.Fatalf("fired %v, want a,b", names)
	}
	sha1 := detection("d2", "h1", "atomic", ind{id: "i", kind: "sha1", value: strings.Repeat("a", 40)})
	if got := f.eng.Evaluate(&sha1); len(got) != 1 || got[0].Rule.Name != "c" {
		t.Fatalf("fired %v, want c", got)
	}
}

// A detection with several indicators: the rule is evaluated per
// indicator and fires once, for the first that matches.
func TestSeveralIndicators(t *testing.T) {
	rules := rule("r", `"bad" in indicator.tags`, "    - notify: {subject: soc.x, message: \"{{ indicator.value }} {{ match.index }}/{{ match.count }}\"}\n") +
		rule("any", `any(detection.indicators, .kind == "domain") && indicator.kind == "md5"`, logAction) +
		rule("yara", `detection.engine == "yara" && indicator.kind == "" && match.index == -1`, logAction)
	f := newFixture(t, nil, rules)
	d := detection("d1", "h1", "atomic",
		ind{id: "1", kind: "md5", value: "00112233445566778899aabbccddeeff"},
		ind{id: "2", kind: "domain", value: "evil.example", tags: []string{"bad"}},
		ind{id: "3", kind: "domain", value: "worse.example", tags: []string{"bad"}})
	dec, err := f.eng.Handle(context.Background(), &d)
	if err != nil {
		t.Fatal(err)
	}
	if len(dec.Rules) != 2 || dec.Rules[0].Indicator != 1 || dec.Rules[0].IndicatorValue != "evil.example" || dec.Rules[1].Rule != "any" || dec.Rules[1].Indicator != 0 {
		t.Fatalf("decision %+v", dec.Rules)
	}
	msgs := f.pub.Messages()
	var n response.Notification
	if len(msgs) != 1 || json.Unmarshal(msgs[0].Data, &n) != nil || n.Message != "evil.example 1/3" {
		t.Fatalf("messages %s", msgs)
	}
	y := detection("d2", "h1", "yara")
	if got := f.eng.Evaluate(&y); len(got) != 1 || got[0].Rule.Name != "yara" || got[0].Indicator != -1 {
		t.Fatalf("yara %v", got)
	}
}

// Run acknowledges a detection only after its decision is recorded: when
// the sink fails, the detection is delivered again, and handled once.
func TestRunAckAfterRecord(t *testing.T) {
	rules := rule("r", "true", "    - isolate: {}\n", `suppress: {key: host.id, period: 1h}`)
	f := newFixture(t, nil, rules)
	f.sink.FailNext(2)
	src := &responsetest.Source{Detections: []ioc.Detection{
		detection("d1", "h1", "atomic", ind{id: "i", kind: "md5", value: "00112233445566778899aabbccddeeff"}),
		detection("d2", "h2", "atomic", ind{id: "i", kind: "md5", value: "00112233445566778899aabbccddeeff"}),
	}}
	if err := f.eng.Run(context.Background(), src); err != nil {
		t.Fatal(err)
	}
	if got := src.Acked(); !slices.Equal(got, []string{"d1", "d2"}) {
		t.Fatalf("acked %v", got)
	}
	decs := f.sink.Decisions()
	if len(decs) != 2 {
		t.Fatalf("%d decisions", len(decs))
	}
	// d1 was handled three times: the suppression window counts it once,
	// so the recorded decision is not "suppressed", and the isolator saw
	// the same request id each time.
	if decs[0].Result != response.ResultDone || decs[0].Rules[0].Suppression.Count != 1 {
		t.Fatalf("decision %+v", decs[0].Rules[0])
	}
	ids := map[string]bool{}
	for _, r := range f.iso.Requests() {
		ids[r.ID] = true
	}
	if len(ids) != 2 {
		t.Fatalf("isolate request ids %v", ids)
	}
	// A detection that cannot be recorded is never acknowledged.
	f.sink.FailNext(100)
	src2 := &responsetest.Source{Detections: []ioc.Detection{detection("d3", "h3", "atomic", ind{id: "i", kind: "md5", value: "00112233445566778899aabbccddeeff"})}}
	if err := f.eng.Run(context.Background(), src2); err != nil {
		t.Fatal(err)
	}
	if len(src2.Acked()) != 0 || len(src2.Failed()) != 1 {
		t.Fatalf("acked %v failed %v", src2.Acked(), src2.Failed())
	}
}

func TestHandleRejectsNoHost(t *testing.T) {
	f := newFixture(t, nil, rule("r", "true", logAction))
	d := detection("d1", "", "atomic", ind{id: "i", kind: "md5", value: "00112233445566778899aabbccddeeff"})
	if _, err := f.eng.Handle(context.Background(), &d); !errors.Is(err, response.ErrInvalidDetection) {
		t.Fatalf("err %v", err)
	}
	if _, err := f.eng.Handle(context.Background(), nil); !errors.Is(err, response.ErrInvalidDetection) {
		t.Fatalf("nil detection: err %v", err)
	}
}

// A rule whose condition fails at run time does not fire; the others do.
func TestEvalErrorDoesNotFire(t *testing.T) {
	f := newFixture(t, nil, rule("oob", `detection.indicators[5].value == "x"`, logAction)+rule("ok", "true", logAction))
	d := detection("d1", "h1", "atomic", ind{id: "i", kind: "md5", value: "00112233445566778899aabbccddeeff"})
	got := f.eng.Evaluate(&d)
	if len(got) != 1 || got[0].Rule.Name != "ok" {
		t.Fatalf("fired %v", got)
	}
	x := f.eng.Explain(&d)
	if x.Rules[0].Evaluations[0].Error == "" {
		t.Fatal("explain hides the error")
	}
}

// Expressions run within expr's memory budget: a rule that would loop
// 2.7*10^7 times fails quickly and does not fire.
func TestExpressionBudget(t *testing.T) {
	f := newFixture(t, nil, rule("loop", "all(1..300, all(1..300, all(1..300, true)))", logAction))
	d := detection("d1", "h1", "atomic", ind{id: "i", kind: "md5", value: "00112233445566778899aabbccddeeff"})
	start := time.Now()
	if got := f.eng.Evaluate(&d); len(got) != 0 {
		t.Fatalf("fired %v", got)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Fatalf("took %v", el)
	}
	if x := f.eng.Explain(&d); !strings.Contains(x.Rules[0].Evaluations[0].Error, "memory budget") {
		t.Fatalf("explain %+v", x.Rules[0].Evaluations[0])
	}
}

// Handle runs concurrently with rule swaps: each detection sees one
// rule set from start to end.
func TestConcurrentHandleAndLoad(t *testing.T) {
	a := rule("a", "true", "    - tag: {name: a}\n")
	b := rule("b", "true", "    - tag: {name: b}\n") + rule("b2", "true", "    - tag: {name: b}\n")
	f := newFixture(t, nil, a)
	ctx := context.Background()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 200 {
			src := a
			if i%2 == 0 {
				src = b
			}
			if err := f.eng.LoadBytes("rules.yaml", []byte(src)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				d := detection(fmt.Sprintf("d-%d-%d", g, i), "h1", "atomic", ind{id: "i", kind: "md5", value: "00112233445566778899aabbccddeeff"})
				dec, err := f.eng.Handle(ctx, &d)
				if err != nil {
					t.Error(err)
					return
				}
				// One rule set: either a alone, or b and b2.
				switch {
				case len(dec.Rules) == 1 && dec.Rules[0].Rule == "a":
				case len(dec.Rules) == 2 && dec.Rules[0].Rule == "b" && dec.Rules[1].Rule == "b2":
				default:
					t.Errorf("mixed rule sets: %+v", dec.Rules)
					return
				}
				_ = f.eng.Explain(&d).Text()
			}
		}()
	}
	wg.Wait()
	<-done
}

func TestLoadDir(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("10-good.yaml", rule("good", "true", logAction))
	write("20-bad.yml", rule("bad", "indicator.nope", logAction))
	write("notes.txt", "not rules")
	eng, err := response.New(response.Config{})
	if err != nil {
		t.Fatal(err)
	}
	err = eng.LoadDir(dir)
	if !errors.Is(err, response.ErrExpression) || !strings.Contains(err.Error(), "20-bad.yml:2:") {
		t.Fatalf("err %v", err)
	}
	if rs := eng.Rules().Rules(); len(rs) != 1 || rs[0].Name != "good" {
		t.Fatalf("rules %v", rs)
	}
}

func TestRegistry(t *testing.T) {
	reg := response.DefaultRegistry()
	if got := strings.Join(reg.Names(), ","); got != "isolate,log,notify,release,tag" {
		t.Fatalf("names %s", got)
	}
	noop := func(*response.ActionArgs) (response.Action, error) { return nil, errors.New("x") }
	if err := reg.Register("isolate", noop); !errors.Is(err, response.ErrDuplicateAction) {
		t.Fatalf("duplicate: %v", err)
	}
	for _, bad := range []string{"", "Isolate", "has space", strings.Repeat("a", 65)} {
		if err := reg.Register(bad, noop); !errors.Is(err, response.ErrInvalidConfig) {
			t.Fatalf("name %q: %v", bad, err)
		}
	}
	if err := reg.Register("x", nil); !errors.Is(err, response.ErrInvalidConfig) {
		t.Fatalf("nil factory: %v", err)
	}
	// A factory's plain error is located at the action.
	if err := reg.Register("broken", noop); err != nil {
		t.Fatal(err)
	}
	_, err := response.Compile(response.LoadConfig{Actions: reg}, "r.yaml", []byte("- name: r\n  when: 'true'\n  actions: [ {broken: {}} ]\n"))
	var les response.LoadErrors
	if !errors.As(err, &les) || les[0].Line != 3 || les[0].Field != "actions[0].broken" || !errors.Is(err, response.ErrInvalidRule) {
		t.Fatalf("err %v", err)
	}
	// An empty registry knows no action.
	_, err = response.Compile(response.LoadConfig{Actions: response.NewRegistry()}, "r.yaml", []byte("- name: r\n  when: 'true'\n  actions: [ {log: {message: x}} ]\n"))
	if !errors.Is(err, response.ErrUnknownAction) {
		t.Fatalf("err %v", err)
	}
}

// A tag set by one rule is seen in host.tags by later detections, until
// it expires.
func TestHostTags(t *testing.T) {
	rules := rule("mark", `indicator.kind == "domain"`, "    - tag: {name: suspect, period: 1h}\n") +
		rule("escalate", `"suspect" in host.tags && indicator.kind == "md5"`, "    - isolate: {}\n")
	tags := &response.MemoryTags{}
	f := newFixture(t, func(c *response.Config) { c.Services.Tagger = tags }, rules)
	ctx := context.Background()
	md5 := detection("d1", "h1", "atomic", ind{id: "i", kind: "md5", value: "00112233445566778899aabbccddeeff"})
	if got := f.eng.Evaluate(&md5); len(got) != 0 {
		t.Fatalf("untagged host: %v", got)
	}
	dom := detection("d2", "h1", "atomic", ind{id: "j", kind: "domain", value: "evil.example"})
	if _, err := f.eng.Handle(ctx, &dom); err != nil {
		t.Fatal(err)
	}
	if got := tags.HostTags("h1", f.clock.Now()); !slices.Equal(got, []string{"suspect"}) {
		t.Fatalf("tags %v", got)
	}
	md5.ID = "d3"
	dec, err := f.eng.Handle(ctx, &md5)
	if err != nil {
		t.Fatal(err)
	}
	if len(dec.Rules) != 1 || dec.Rules[0].Rule != "escalate" || len(f.iso.Requests()) != 1 {
		t.Fatalf("decision %+v", dec.Rules)
	}
	f.clock.Advance(time.Hour)
	if got := f.eng.Evaluate(&md5); len(got) != 0 {
		t.Fatalf("expired tag still seen: %v", got)
	}
	if got := tags.HostTags("h1", f.clock.Now()); len(got) != 0 {
		t.Fatalf("tags %v", got)
	}
}

// flakyIsolator fails its first n calls, then is iso.
type flakyIsolator struct {
	n   int
	iso *responsetest.Isolator
}

func (f *flakyIsolator) Isolate(ctx context.Context, req response.IsolateRequest) (time.Time, error) {
	if f.n > 0 {
		f.n--
		return time.Time{}, responsetest.ErrInjected
	}
	return f.iso.Isolate(ctx, req)
}

func (f *flakyIsolator) Release(ctx context.Context, req response.ReleaseRequest) error {
	return f.iso.Release(ctx, req)
}

// scriptedSource delivers detections in the order given (an id may come
// again, as a redelivery does) and keeps each handler result.
type scriptedSource struct {
	order []ioc.Detection
	errs  []error
}

func (s *scriptedSource) Consume(ctx context.Context, h func(ctx context.Context, d ioc.Detection) error) error {
	for _, d := range s.order {
		s.errs = append(s.errs, h(ctx, d))
	}
	return nil
}

// A transient action failure is recorded and the detection is not
// acknowledged: it is delivered again and then acts, even when another
// detection was suppressed by the window its first attempt opened; the
// isolation happens once.
func TestRunRetriesFailedAction(t *testing.T) {
	rules := rule("r", "true", "    - isolate: {}\n", `suppress: {key: host.id, period: 1h}`)
	var flaky *flakyIsolator
	f := newFixture(t, func(c *response.Config) {
		flaky = &flakyIsolator{n: 1, iso: c.Services.Isolator.(*responsetest.Isolator)}
		c.Services.Isolator = flaky
	}, rules)
	d1 := detection("d1", "h1", "atomic", ind{id: "i", kind: "md5", value: "00112233445566778899aabbccddeeff"})
	d2 := detection("d2", "h1", "atomic", ind{id: "i", kind: "md5", value: "00112233445566778899aabbccddeeff"})
	src := &scriptedSource{order: []ioc.Detection{d1, d2, d1}}
	if err := f.eng.Run(context.Background(), src); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(src.errs[0], response.ErrActionFailed) || !errors.Is(src.errs[0], responsetest.ErrInjected) ||
		!strings.Contains(src.errs[0].Error(), "rule r (rules.yaml)") || !strings.Contains(src.errs[0].Error(), "actions[0] isolate") {
		t.Fatalf("first delivery: %v, want ErrActionFailed naming the rule, action and cause", src.errs[0])
	}
	if src.errs[1] != nil || src.errs[2] != nil {
		t.Fatalf("later deliveries: %v", src.errs[1:])
	}
	var results []string
	for _, d := range f.sink.Decisions() {
		results = append(results, d.DetectionID+":"+d.Result)
	}
	if want := []string{"d1:failed", "d2:suppressed", "d1:done"}; !slices.Equal(results, want) {
		t.Fatalf("decisions %v, want %v", results, want)
	}
	if reqs := f.iso.Requests(); len(reqs) != 1 || reqs[0].Host != "h1" {
		t.Fatalf("isolate requests %+v, want one for h1", reqs)
	}
	if _, ok := f.iso.Deadline("h1"); !ok {
		t.Fatal("h1 not isolated")
	}
}

// An action that no attempt can make succeed (its service is not
// configured) is recorded as failed and the detection acknowledged.
func TestRunAcksPermanentFailure(t *testing.T) {
	f := newFixture(t, func(c *response.Config) { c.Services.Isolator = nil }, rule("r", "true", "    - isolate: {}\n"))
	src := &responsetest.Source{Detections: []ioc.Detection{
		detection("d1", "h1", "atomic", ind{id: "i", kind: "md5", value: "00112233445566778899aabbccddeeff"})}}
	if err := f.eng.Run(context.Background(), src); err != nil {
		t.Fatal(err)
	}
	if got := src.Acked(); !slices.Equal(got, []string{"d1"}) {
		t.Fatalf("acked %v", got)
	}
	if decs := f.sink.Decisions(); len(decs) != 1 || decs[0].Result != response.ResultFailed {
		t.Fatalf("decisions %+v", decs)
	}
}
