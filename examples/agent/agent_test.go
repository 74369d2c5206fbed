package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cordonsec/cordon/isolation"
)

// waitUntil polls cond (an effect of other goroutines: the bus, the
// Manager) until it holds; the 30 s deadline only guards against a hang.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type agentEnv struct {
	dir, cfgPath, socket, watch string
	a                           *agent
	cancel                      context.CancelFunc
	done                        chan error
	stderr                      *lockedBuffer
}

type lockedBuffer struct {
	mu  chan struct{}
	buf bytes.Buffer
}

func newLockedBuffer() *lockedBuffer { return &lockedBuffer{mu: make(chan struct{}, 1)} }
func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.Write(p)
}
func (b *lockedBuffer) String() string {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.String()
}

// startAgent runs the agent on an embedded bus with the example feeds,
// YARA rules and response rules, events from a file, and the fake
// enforcer.
func startAgent(t *testing.T, events string, extra string) *agentEnv {
	t.Helper()
	env := &agentEnv{dir: t.TempDir(), stderr: newLockedBuffer()}
	hash, err := isolation.HashPassword("correct horse", isolation.Argon2Params{Memory: 8 * 1024, Time: 1, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(env.dir, "events.jsonl"), []byte(events), 0o600); err != nil {
		t.Fatal(err)
	}
	cases, err := filepath.Abs("../cases")
	if err != nil {
		t.Fatal(err)
	}
	env.socket = filepath.Join(env.dir, "state", "control.sock")
	cfg := "host: {id: h-agent, name: agent-test}\n" +
		"state_dir: state\n" +
		"feeds: " + cases + "/feeds\n" +
		"yara: [" + cases + "/yara]\n" +
		"" +
		"isolation: {enforce: false, password_hash: '" + hash + "', automatic: {profiles: [dns-client]}}\n" +
		"metrics: {listen: 127.0.0.1:0}\n" +
		"log: {level: debug}\n" + extra
	if !strings.Contains(extra, "rules:") {
		cfg += "rules: {dirs: [" + cases + "/rules]}\n"
	}
	if !strings.Contains(extra, "sources:") {
		cfg += "sources: {events: events.jsonl}\n"
	}
	env.cfgPath = filepath.Join(env.dir, "agent.yaml")
	if err := os.WriteFile(env.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	env.cancel = cancel
	ready := make(chan *agent, 1)
	env.done = make(chan error, 1)
	go func() { env.done <- cmdRun(ctx, []string{"--config", env.cfgPath}, env.stderr, ready) }()
	select {
	case env.a = <-ready:
	case err := <-env.done:
		t.Fatalf("agent stopped: %v\n%s", err, env.stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("agent did not start\n%s", env.stderr.String())
	}
	t.Cleanup(func() {
		cancel()
		if err := <-env.done; err != nil {
			t.Errorf("agent: %v", err)
		}
		if t.Failed() {
			t.Logf("agent log:\n%s", env.stderr.String())
		}
	})
	return env
}

const criticalEvent = `{"schema":"cordon.event/v1","id":"ev-1","time":"2026-11-25T10:00:00Z","host":{"id":"h-agent"},"kind":"file","file":{"path":"/tmp/c.bin","sha256":"b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"}}
not an event
`

func metricsText(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitMetrics reads the metrics until they contain every line of want
// (counters other goroutines update), and returns the last text; after
// 30 s it fails naming the lines missing.
func waitMetrics(t *testing.T, addr string, want ...string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		m := metricsText(t, addr)
		var missing []string
		for _, w := range want {
			if !strings.Contains(m, w) {
				missing = append(missing, strings.TrimSpace(w))
			}
		}
		if len(missing) == 0 {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s the metrics lack %q:\n%s", missing, m)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestAgentIsolatesOnDetection(t *testing.T) {
	env := startAgent(t, criticalEvent, "")
	a := env.a
	waitUntil(t, "isolation", func() bool { return a.mgr.Status().State == isolation.StateOn })
	st := a.mgr.Status()
	if st.Mode != isolation.ModeAutomatic || time.Until(st.Deadline) < 7*time.Hour || len(st.Exclusions) != 2 {
		t.Fatalf("status %+v", st)
	}
	// The bad line is logged by the events reader, the decision is
	// counted once the engine recorded it (after Isolate returned) and the
	// latency once the Manager published its "enabled" event (after the
	// state went on): all are other goroutines, so each is waited for.
	waitUntil(t, "the malformed events line reported", func() bool { return strings.Contains(env.stderr.String(), "bad event") })
	// The state in the isolation bucket, for the console.
	waitUntil(t, "the isolation bucket", func() bool {
		s, err := a.bus.IsolationState(context.Background(), "h-agent")
		if err != nil {
			return false
		}
		var got isolation.Status
		return json.Unmarshal(s.Value, &got) == nil && got.State == isolation.StateOn
	})
	m := waitMetrics(t, a.metricsAddr,
		`cordon_agent_events_total{source="events"} 1`+"\n",
		`cordon_agent_detections_total{engine="atomic"} 1`+"\n",
		`cordon_agent_decisions_total{action="isolate",result="done",rule="isolate-on-critical"} 1`+"\n",
		`cordon_agent_isolation_state{state="on"} 1`+"\n",
		`cordon_agent_bus_connected 1`+"\n",
		`cordon_agent_detection_to_enforcement_seconds_count 1`+"\n",
	)
	if strings.Contains(m, "cordon_agent_isolation_deadline_seconds 0\n") {
		t.Error("deadline metric is 0 while isolated")
	}
	if os.Geteuid() != 0 {
		t.Log("not root: the control socket checks are skipped (the socket is root-only)")
		return
	}
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"status", "--config", env.cfgPath}, nil, &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), "state:    on") || !strings.Contains(out.String(), "mode:     automatic") {
		t.Fatalf("status: %d\n%s%s", code, out.String(), errOut.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"exclusions", "--socket", env.socket}, nil, &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), "exclusion   out udp rport=53 name=dns-client") {
		t.Fatalf("exclusions: %d\n%s%s", code, out.String(), errOut.String())
	}
	out.Reset()
	errOut.Reset()
	if code := run(context.Background(), []string{"release", "--socket", env.socket}, strings.NewReader("wrong password\n"), &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), "wrong password") {
		t.Fatalf("release with a wrong password: %d\n%s%s", code, out.String(), errOut.String())
	}
	if a.mgr.Status().State != isolation.StateOn {
		t.Fatal("released with a wrong password")
	}
	pw := filepath.Join(env.dir, "pw")
	os.WriteFile(pw, []byte("correct horse\n"), 0o600)
	out.Reset()
	if code := run(context.Background(), []string{"release", "--socket", env.socket, "--password-file", pw}, nil, &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), "state:    off") {
		t.Fatalf("release: %d\n%s%s", code, out.String(), errOut.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"exclusions", "--socket", env.socket}, nil, &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), "not isolated") {
		t.Fatalf("exclusions when not isolated: %d\n%s", code, out.String())
	}
}

func TestAgentUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
	}{
		{nil, 2},
		{[]string{"nope"}, 2},
		{[]string{"help"}, 0},
		{[]string{"run"}, 2},
		{[]string{"run", "--config", "no-such.yaml"}, 1},
		{[]string{"check", "--config", "agent.yaml"}, 0},
		{[]string{"check", "--config", "agent.yaml", "extra"}, 2},
		{[]string{"status"}, 2},
		{[]string{"status", "--socket", "a", "--config", "b"}, 2},
		{[]string{"hash-password", "--password-file", "no-such-file"}, 1},
	} {
		var out bytes.Buffer
		if code := run(context.Background(), tc.args, strings.NewReader(""), &out, &out); code != tc.code {
			t.Errorf("%v: exit %d, want %d\n%s", tc.args, code, tc.code, out.String())
		}
	}
	var out bytes.Buffer
	if code := run(context.Background(), []string{"hash-password"}, strings.NewReader("long enough\n"), &out, io.Discard); code != 0 {
		t.Fatalf("hash-password: %d", code)
	}
	if ok, err := isolation.VerifyPassword(strings.TrimSpace(out.String()), "long enough"); !ok || err != nil {
		t.Fatalf("hash %q does not verify: %v", out.String(), err)
	}
}

func TestAgentPublishOnly(t *testing.T) {
	env := startAgent(t, criticalEvent, "rules: {mode: publish}\n")
	a := env.a
	js := a.bus.JetStream()
	waitUntil(t, "the detection on the bus", func() bool {
		st, err := js.Stream(context.Background(), "CORDON_DETECTIONS")
		if err != nil {
			return false
		}
		info, err := st.Info(context.Background())
		return err == nil && info.State.Msgs == 1
	})
	if a.engine != nil {
		t.Fatal("publish mode runs a response engine")
	}
	if st := a.mgr.Status(); st.State != isolation.StateOff {
		t.Fatalf("publish mode isolated the host: %+v", st)
	}
}
