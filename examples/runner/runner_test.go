package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cordonsec/cordon/ioc"
	"github.com/cordonsec/cordon/isolation"
	"github.com/cordonsec/cordon/isolation/isolationtest"
	"github.com/cordonsec/cordon/response"
)

// TestExampleCases runs every case of examples/cases through the pipeline:
// each must pass.
func TestExampleCases(t *testing.T) {
	files, err := filepath.Glob("../cases/*.yaml")
	if err != nil || len(files) < 10 {
		t.Fatalf("cases: %v, %d files", err, len(files))
	}
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"test", "../cases"}, nil, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errOut.String())
	}
	if want := fmt.Sprintf("%d passed, 0 failed", len(files)); !strings.Contains(out.String(), want) {
		t.Errorf("summary: want %q in\n%s", want, out.String())
	}
	for _, f := range files {
		c, err := LoadCase(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "PASS "+c.Name+" (") {
			t.Errorf("%s: no PASS line for %q", f, c.Name)
		}
	}
	// The pipeline at work: the YARA detection, the decision and the
	// isolation with its deadline, then the release at the deadline.
	for _, want := range []string{
		`detection engine=yara rule="sample_ransom_note" severity=critical`,
		"decision rule=isolate-on-critical result=done actions=[isolate:done]",
		"isolation enabled mode=automatic deadline=+8h",
		"isolation extended mode=automatic deadline=+10h",
		"isolation released (deadline reached)",
		"decision rule=notify-phishing result=suppressed",
		"decision rule=isolate-miners result=dry_run actions=[isolate:planned]",
		"isolation enabled mode=manual deadline=+2h",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestFailingCasesReported proves that failures are reported: a wrong
// expectation gives a diff and the explanation of the rule, a wrong state
// a diff, a malformed case its place; the exit status is 1.
func TestFailingCasesReported(t *testing.T) {
	var out bytes.Buffer
	code := run(context.Background(), []string{"test", "testdata"}, nil, &out, &out)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, out.String())
	}
	for _, want := range []string{
		"FAIL deliberately-failing",
		"! decisions differ (-want +got):",
		"! - rule=isolate-on-critical result=done",
		"! - enabled mode=automatic deadline=+8h",
		"| rule isolate-on-critical (",
		`detection.severity >= "critical"  =>  false`,
		"FAIL wrong-exclusions",
		"! - state=on mode=automatic deadline=+8h exclusions=[in tcp lport=22 name=ssh]",
		"! + state=on mode=automatic deadline=+8h exclusions=[out tcp rport=53 name=dns-client; out udp rport=53 name=dns-client]",
		`[6:7] unknown field "detection"`,
		"0 passed, 3 failed",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestDefaultCasesFromRepositoryRoot(t *testing.T) {
	t.Chdir("../..")
	files, err := caseFiles([]string{DefaultCases})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 || !strings.HasPrefix(files[0], filepath.Join("examples", "cases")+string(filepath.Separator)) {
		t.Fatalf("files %v", files)
	}
	t.Chdir(t.TempDir())
	if _, err := caseFiles([]string{DefaultCases}); err == nil || !strings.Contains(err.Error(), "repository root") {
		t.Fatalf("outside the repository: %v", err)
	}
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
	}{
		{nil, 2},
		{[]string{"frobnicate"}, 2},
		{[]string{"help"}, 0},
		{[]string{"test", "-nosuchflag"}, 2},
		{[]string{"test", "no/such/case.yaml"}, 2},
		{[]string{"replay"}, 2},
		{[]string{"replay", "--events", "x", "extra"}, 2},
		{[]string{"replay", "--events", "testdata/no-such-file.jsonl"}, 1},
		{[]string{"replay", "--rules", "testdata", "--events", "testdata/events.jsonl"}, 1}, // case files are not rule files
	} {
		var out bytes.Buffer
		if code := run(context.Background(), tc.args, strings.NewReader(""), &out, &out); code != tc.code {
			t.Errorf("%v: exit %d, want %d\n%s", tc.args, code, tc.code, out.String())
		}
	}
}

func TestReplayJSON(t *testing.T) {
	events, err := os.ReadFile("testdata/events.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"replay", "--iocs", "../cases/feeds", "--yara", "../cases/yara",
		"--rules", "../cases/rules", "--events", "-", "--json"}, bytes.NewReader(events), &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(errOut.String(), "runner: -:3: ioc: event: malformed JSON") {
		t.Errorf("the malformed line 3 is not reported: %s", errOut.String())
	}
	var dets []ioc.Detection
	var decs []response.Decision
	sc := bufio.NewScanner(&out)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var h struct{ Schema string }
		if err := json.Unmarshal(sc.Bytes(), &h); err != nil {
			t.Fatal(err)
		}
		switch h.Schema {
		case "cordon.detection/v1":
			d, err := ioc.DecodeDetection(sc.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			dets = append(dets, d)
		case response.DecisionSchema:
			var d response.Decision
			if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
				t.Fatal(err)
			}
			decs = append(decs, d)
		default:
			t.Fatalf("unexpected line %s", sc.Text())
		}
	}
	if len(dets) != 3 || len(decs) != 3 {
		t.Fatalf("%d detections, %d decisions; want 3 and 3", len(dets), len(decs))
	}
	got := []string{}
	for i, d := range decs {
		if d.DetectionID != dets[i].ID {
			t.Errorf("decision %d is for %s, detection is %s", i, d.DetectionID, dets[i].ID)
		}
		for _, r := range d.Rules {
			got = append(got, r.Rule+":"+r.Result)
		}
	}
	// Each event is evaluated at its own time: the second lookup, ten
	// minutes later, falls in the first one's suppression window.
	want := []string{"notify-phishing:done", "notify-phishing:suppressed", "isolate-on-critical:done"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("decisions %v, want %v", got, want)
	}
}

func FuzzParseCase(f *testing.F) {
	files, _ := filepath.Glob("../cases/*.yaml")
	for _, p := range append(files, "testdata/failing.yaml", "testdata/bad-key.yaml") {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("steps: [{advance: -1h}]"))
	f.Add([]byte("steps: [{event: {kind: [1]}}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parseCase(filepath.Join("..", "cases", "fuzz.yaml"), data)
		if err == nil && len(c.Steps) == 0 {
			t.Fatal("a case without steps was accepted")
		}
	})
}

func TestFmtOffset(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "+0s"},
		{30 * time.Second, "+30s"},
		{29*time.Minute + 30*time.Second, "+29m30s"},
		{8 * time.Hour, "+8h"},
		{7*time.Hour + 30*time.Minute, "+7h30m"},
		{time.Hour + 30*time.Second, "+1h30s"},
		{721 * time.Hour, "+721h"},
		{10*time.Second + 400*time.Millisecond, "+10s"},
		{-90 * time.Second, "-1m30s"},
	} {
		if got := fmtOffset(tc.d); got != tc.want {
			t.Errorf("fmtOffset(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

// TestOffsetsInReport: a step that advances by seconds is reported with
// them, and an expectation in seconds is compared with the seconds.
func TestOffsetsInReport(t *testing.T) {
	dir := t.TempDir()
	cases, err := filepath.Abs("../cases")
	if err != nil {
		t.Fatal(err)
	}
	c := "name: seconds\nfeeds: [" + cases + "/feeds/kinds.csv]\nrules: [" + cases + "/rules/c2.yaml]\nsteps:\n" +
		"  - event: {kind: network, network: {protocol: tcp, direction: out, local_address: 192.0.2.1, local_port: 40000, remote_address: 198.51.100.23, remote_port: 443}}\n" +
		"    expect:\n" +
		"      detections: [{engine: atomic, severity: high, indicators: [\"ipv4:198.51.100.23\"]}]\n" +
		"      decisions: [{rule: isolate-c2-briefly, result: done}]\n" +
		"      isolation: [{event: enabled, mode: automatic, deadline: 30m}]\n" +
		"  - advance: 29m30s\n" +
		"    expect: {state: {state: on, mode: automatic, deadline: 30m}}\n" +
		"  - advance: 30s\n" +
		"    expect: {isolation: [{event: released}], state: {state: off}}\n"
	p := filepath.Join(dir, "seconds.yaml")
	if err := os.WriteFile(p, []byte(c), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if code := run(context.Background(), []string{"test", p}, nil, &out, &out); code != 0 {
		t.Fatalf("exit %d\n%s", code, out.String())
	}
	for _, want := range []string{"step 2: advance 29m30s → +29m30s", "step 3: advance 30s → +30m"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestEnforcerMismatch: a step fails when the enforcer does not hold what
// the Manager reports.
func TestEnforcerMismatch(t *testing.T) {
	ctx := context.Background()
	web, err := isolation.ParseRule("out tcp remote=198.18.1.0/24 rport=443 name=web")
	if err != nil {
		t.Fatal(err)
	}
	on := isolation.Status{State: isolation.StateOn, Exclusions: []string{web.String()}}
	off := isolation.Status{State: isolation.StateOff}
	h := &harness{fake: isolationtest.NewFake()}
	if f := h.enforcerMismatch(on); !strings.Contains(f, "holds no rules") {
		t.Errorf("on, no rules: %q", f)
	}
	if f := h.enforcerMismatch(off); f != "" {
		t.Errorf("off, no rules: %q", f)
	}
	if err := h.fake.Apply(ctx, isolation.Plan{Rules: []isolation.Rule{web, isolation.NeighborDiscoveryRule()}}); err != nil {
		t.Fatal(err)
	}
	if f := h.enforcerMismatch(on); f != "" {
		t.Errorf("on, the reported rules: %q", f)
	}
	if f := h.enforcerMismatch(off); !strings.Contains(f, "still holds rules") {
		t.Errorf("off, rules: %q", f)
	}
	if err := h.fake.Apply(ctx, isolation.Plan{Rules: []isolation.Rule{isolation.NeighborDiscoveryRule()}}); err != nil {
		t.Fatal(err)
	}
	if f := h.enforcerMismatch(on); !strings.Contains(f, "differ") || !strings.Contains(f, "name=web") {
		t.Errorf("on, a reported rule missing: %q", f)
	}
}
