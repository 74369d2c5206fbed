package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/cordonsec/cordon/bus"
	"github.com/cordonsec/cordon/bus/bustest"
	"github.com/cordonsec/cordon/examples/internal/consolecmd"
	"github.com/cordonsec/cordon/examples/internal/pipeline"
	"github.com/cordonsec/cordon/ioc"
	"github.com/cordonsec/cordon/isolation"
	"github.com/cordonsec/cordon/isolation/isolationtest"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func keygen(t *testing.T) (path, pub string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "operator.nk")
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"keygen", "--out", path}, &out, &errOut); code != 0 {
		t.Fatalf("keygen: %d %s", code, errOut.String())
	}
	pub = strings.TrimSpace(out.String())
	if !strings.HasPrefix(pub, "A") || len(pub) != 56 {
		t.Fatalf("public key %q", pub)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("seed file: %v %v", st, err)
	}
	return path, pub
}

// TestKeygenPrints: without --out (the README's try-out) keygen prints the
// public key and a seed that signs as that key.
func TestKeygenPrints(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"keygen"}, &out, &errOut); code != 0 {
		t.Fatalf("keygen: exit %d: %s", code, errOut.String())
	}
	var pub, seed string
	if _, err := fmt.Sscanf(out.String(), "public key: %s\nseed: %s\n", &pub, &seed); err != nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	kp, err := nkeys.FromSeed([]byte(seed))
	if err != nil {
		t.Fatalf("seed %q: %v", seed, err)
	}
	if got, err := kp.PublicKey(); err != nil || got != pub || !strings.HasPrefix(pub, "A") {
		t.Fatalf("seed's public key %q (%v), printed %q", got, err, pub)
	}
	if !strings.Contains(errOut.String(), "keep the seed secret") {
		t.Errorf("no warning about the printed seed: %q", errOut.String())
	}
}

func TestKeygenRefusesToOverwrite(t *testing.T) {
	path, _ := keygen(t)
	var out bytes.Buffer
	if code := run(context.Background(), []string{"keygen", "--out", path}, &out, &out); code != 1 {
		t.Fatalf("second keygen: exit %d", code)
	}
}

// agent runs the host side of the test: a Manager over the fake enforcer
// taking verified commands from the bus and publishing its audit events
// and state, as examples/agent does.
func agent(t *testing.T, b *bus.Bus, host, trusted string) *isolation.Manager {
	t.Helper()
	ctx := context.Background()
	m, err := isolation.New(isolation.Config{Host: host, Enforcer: isolationtest.NewFake(), Sink: pipeline.EventSink{Bus: b}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if err := m.Restore(ctx); err != nil {
		t.Fatal(err)
	}
	v, err := bus.NewVerifier(bus.VerifierConfig{TrustedKeys: []string{trusted}, Host: host})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := b.ConsumeCommands(ctx, host, v, bus.ConsumerConfig{}, func(ctx context.Context, c bus.Command, _ bus.Delivery) error {
		res, err := pipeline.HandleCommand(ctx, m, c)
		// The answer, after the isolation events (published
		// synchronously by EventSink), as the agent sends it.
		ev, perr := pipeline.CommandResultEvent(host, res, time.Now())
		if perr != nil {
			return perr
		}
		if _, perr := b.PublishEvent(ctx, ev); perr != nil {
			return perr
		}
		if err != nil {
			return err
		}
		st, _ := json.Marshal(res.Status)
		_, err = b.PutIsolationState(ctx, host, st)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Stop)
	return m
}

func TestIsolateStatusRelease(t *testing.T) {
	b := bustest.New(t, bus.Config{Listen: "127.0.0.1:0"})
	url := b.ClientURL()
	key, pub := keygen(t)
	m := agent(t, b, "h-1", pub)
	excl := filepath.Join(t.TempDir(), "excl.json")
	if err := os.WriteFile(excl, []byte(`{"profiles": [], "rules": ["in tcp remote=192.0.2.100 lport=22 name=admin-ssh"]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var out, errOut bytes.Buffer
	code := run(ctx, []string{"isolate", "h-1", "--bus", url, "--key", key, "--duration", "2h", "--exclusions", excl, "--reason", "test"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("isolate: exit %d: %s%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "h-1 isolation enabled mode=manual until=") || !strings.Contains(out.String(), `reason="test"`) {
		t.Errorf("isolate output:\n%s", out.String())
	}
	st := m.Status()
	if st.State != isolation.StateOn || st.Mode != isolation.ModeManual || len(st.Exclusions) != 1 || !strings.Contains(st.Exclusions[0], "admin-ssh") {
		t.Fatalf("status after isolate: %+v", st)
	}
	if d := time.Until(st.Deadline); d < 119*time.Minute || d > 2*time.Hour {
		t.Errorf("deadline in %v, want 2h", d)
	}
	// The host's entry in the isolation bucket is written after the
	// command was carried out, so after the "enabled" event the isolate
	// command waited for: it is waited for.
	waitStatus := time.Now().Add(30 * time.Second)
	for {
		out.Reset()
		errOut.Reset()
		code := run(ctx, []string{"status", "--bus", url}, &out, &errOut)
		if code == 0 && strings.Contains(out.String(), "h-1: on mode=manual until=") {
			break
		}
		if time.Now().After(waitStatus) {
			t.Fatalf("status after 30 s: exit %d:\n%s%s", code, out.String(), errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	out.Reset()
	if code := run(ctx, []string{"status", "h-9", "--bus", url}, &out, &errOut); code != 1 || !strings.Contains(out.String(), "h-9: no state reported") {
		t.Fatalf("status of an unknown host: exit %d:\n%s", code, out.String())
	}
	out.Reset()
	if code := run(ctx, []string{"release", "h-1", "--bus", url, "--key", key}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "h-1 isolation released") {
		t.Fatalf("release: exit %d:\n%s%s", code, out.String(), errOut.String())
	}
	if m.Status().State != isolation.StateOff {
		t.Fatalf("after release: %+v", m.Status())
	}
}

// TestCommandAnswers: a command the host carries out without a state
// change, or refuses, is answered at once by the host's command result
// (without it the console waited out --wait and reported no answer).
func TestCommandAnswers(t *testing.T) {
	b := bustest.New(t, bus.Config{Listen: "127.0.0.1:0"})
	url := b.ClientURL()
	key, pub := keygen(t)
	m := agent(t, b, "h-4", pub)
	ctx := context.Background()
	var out bytes.Buffer
	// The --wait is long: an answer that does not come fails the test by
	// its timeout instead of passing by it.
	code := run(ctx, []string{"release", "h-4", "--bus", url, "--key", key, "--wait", "10m"}, &out, &out)
	if code != 0 || !strings.Contains(out.String(), "h-4 answered command ") || !strings.Contains(out.String(), "nothing changed, off") {
		t.Fatalf("release of a host not isolated: exit %d:\n%s", code, out.String())
	}
	out.Reset()
	code = run(ctx, []string{"isolate", "h-4", "--bus", url, "--key", key, "--duration", "900000h", "--wait", "10m"}, &out, &out)
	if code != 1 || !strings.Contains(out.String(), "h-4 refused command ") || !strings.Contains(out.String(), "out of range") {
		t.Fatalf("isolation the host refuses: exit %d:\n%s", code, out.String())
	}
	if st := m.Status(); st.State != isolation.StateOff {
		t.Fatalf("state %+v", st)
	}
	// An isolation still returns on its "enabled" event.
	out.Reset()
	code = run(ctx, []string{"isolate", "h-4", "--bus", url, "--key", key, "--duration", "1h", "--wait", "10m"}, &out, &out)
	if code != 0 || !strings.Contains(out.String(), "h-4 isolation enabled mode=manual") {
		t.Fatalf("isolate: exit %d:\n%s", code, out.String())
	}
}

func TestUntrustedKeyIsNotObeyed(t *testing.T) {
	b := bustest.New(t, bus.Config{Listen: "127.0.0.1:0"})
	_, pub := keygen(t)
	other, _ := keygen(t)
	m := agent(t, b, "h-2", pub)
	var out bytes.Buffer
	code := run(context.Background(), []string{"isolate", "h-2", "--bus", b.ClientURL(), "--key", other, "--wait", "1s"}, &out, &out)
	if code != 1 || !strings.Contains(out.String(), "no answer from h-2") {
		t.Fatalf("exit %d:\n%s", code, out.String())
	}
	if m.Status().State != isolation.StateOff {
		t.Fatalf("a command signed by an untrusted key was obeyed: %+v", m.Status())
	}
}

func TestWatch(t *testing.T) {
	b := bustest.New(t, bus.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- consolecmd.Watch(ctx, b, "*", false, false, &out, ready) }()
	<-ready
	ev := ioc.Event{Schema: ioc.EventSchema, ID: "e-1", Time: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC),
		Host: ioc.Host{ID: "h-3"}, Kind: ioc.EventDNS, DNS: &ioc.DNSEvent{Query: "a.example"}}
	det, err := ioc.NewDetection(ev, ioc.EngineAtomic, "", ioc.SeverityHigh,
		[]ioc.Match{{Indicator: ioc.Indicator{ID: "i-1", Kind: ioc.KindDomain, Value: "a.example", Severity: ioc.SeverityHigh}, Field: "dns.query", Observable: "a.example"}}, ev.Time)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.PublishDetection(ctx, det); err != nil {
		t.Fatal(err)
	}
	sink := pipeline.EventSink{Bus: b}
	if err := sink.Publish(ctx, isolation.Event{Schema: isolation.EventSchema, ID: "ie-1", Time: ev.Time, Host: "h-3",
		Kind: isolation.EventEnabled, Mode: isolation.ModeAutomatic, Deadline: ev.Time.Add(8 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"2026-11-25T10:00:00Z h-3 detection " + det.ID + " engine=atomic severity=high indicators=domain:a.example",
		"2026-11-25T10:00:00Z h-3 isolation enabled mode=automatic until=2026-11-25T18:00:00Z",
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := out.String()
		if strings.Contains(s, want[0]) && strings.Contains(s, want[1]) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("watch output lacks %q:\n%s", want, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
	}{
		{nil, 2},
		{[]string{"nope"}, 2},
		{[]string{"help"}, 0},
		{[]string{"keygen", "extra"}, 2},
		{[]string{"isolate"}, 2},
		{[]string{"isolate", "h-1", "--bus", "nats://127.0.0.1:1"}, 2},                                      // no key
		{[]string{"isolate", "h-1", "--until-released", "--duration", "1h", "--key", "k", "--bus", "x"}, 2}, // both
		{[]string{"isolate", "bad.host", "--key", "k", "--bus", "x"}, 2},
		{[]string{"status", "a", "b"}, 2},
		{[]string{"watch", "--bus", ""}, 2},
		{[]string{"isolate", "h-1", "--help"}, 0},
	} {
		t.Setenv("CORDON_BUS", "")
		t.Setenv("CORDON_KEY", "")
		var out bytes.Buffer
		if code := run(context.Background(), tc.args, &out, &out); code != tc.code {
			t.Errorf("%v: exit %d, want %d\n%s", tc.args, code, tc.code, out.String())
		}
	}
}
