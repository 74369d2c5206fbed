package responsebus_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nkeys"

	"github.com/cordonsec/cordon/bus"
	"github.com/cordonsec/cordon/bus/bustest"
	"github.com/cordonsec/cordon/ioc"
	"github.com/cordonsec/cordon/isolation"
	"github.com/cordonsec/cordon/response"
	"github.com/cordonsec/cordon/response/responsebus"
	"github.com/cordonsec/cordon/response/responsetest"
)

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func openBus(t *testing.T, dir string) *bus.Bus {
	t.Helper()
	b, err := bus.Open(ctxT(t), bus.Config{DataDir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func closeBus(t *testing.T, b *bus.Bus) {
	t.Helper()
	if err := b.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
}

func detection(id, host string) ioc.Detection {
	return ioc.Detection{Schema: ioc.DetectionSchema, ID: id, Fingerprint: "fp-" + id, Time: t0,
		Host: ioc.Host{ID: host, Name: host}, Engine: ioc.EngineAtomic, Severity: ioc.SeverityCritical,
		Indicators: []ioc.Indicator{{ID: "i-1", Kind: ioc.KindMD5, Value: "00112233445566778899aabbccddeeff",
			Severity: ioc.SeverityCritical, Tags: []string{"ransomware"}}},
		Event: ioc.Event{Schema: ioc.EventSchema, ID: "ev-" + id, Time: t0, Kind: ioc.EventFile, Host: ioc.Host{ID: host},
			File: &ioc.FileEvent{Path: "/tmp/x", MD5: "00112233445566778899aabbccddeeff"}}}
}

const rules = `- name: isolate-ransomware
  when: detection.severity >= "high" && "ransomware" in indicator.tags
  actions:
    - isolate: { duration: 2h, reason: "IOC {{ indicator.value }}" }
    - notify: { subject: soc.alerts }
  suppress: { key: "host.id + '/' + indicator.id", period: 1h }
`

// Suppression windows and counts survive an engine restart: the engine
// and its bus are closed and opened again on the same data directory.
func TestSuppressionSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	now := t0
	run := func(detID string) *response.Decision {
		b := openBus(t, dir)
		defer closeBus(t, b)
		supp, err := responsebus.NewSuppressions(ctxT(t), b.JetStream(), responsebus.SuppressionsConfig{})
		if err != nil {
			t.Fatal(err)
		}
		eng, err := response.New(response.Config{
			Services:     response.Services{Isolator: responsetest.NewIsolator(func() time.Time { return now }), Publisher: &responsetest.Publisher{}},
			Suppressions: supp, Clock: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler),
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := eng.LoadBytes("rules.yaml", []byte(rules)); err != nil {
			t.Fatal(err)
		}
		d := detection(detID, "h1")
		dec, err := eng.Handle(ctxT(t), &d)
		if err != nil {
			t.Fatal(err)
		}
		return dec
	}
	if dec := run("d1"); dec.Result != response.ResultDone || dec.Rules[0].Suppression.Count != 1 {
		t.Fatalf("first run %+v", dec.Rules[0])
	}
	now = now.Add(10 * time.Minute)
	dec := run("d2")
	if dec.Result != response.ResultSuppressed || dec.Rules[0].Suppression.Count != 2 || !dec.Rules[0].Suppression.Since.Equal(t0) {
		t.Fatalf("after restart %+v", dec.Rules[0].Suppression)
	}
	// A redelivery of d2 after another restart is not counted again.
	if dec := run("d2"); dec.Rules[0].Suppression.Count != 2 {
		t.Fatalf("redelivery %+v", dec.Rules[0].Suppression)
	}
	now = t0.Add(61 * time.Minute)
	if dec := run("d3"); dec.Result != response.ResultDone || dec.Rules[0].Suppression.Count != 1 {
		t.Fatalf("after the period %+v", dec.Rules[0])
	}
}

// The detection that opened a window, delivered again after others were
// suppressed in it (its actions failed, it was not acknowledged), is not
// suppressed: its effect is not lost.
func TestSuppressionsOpenerRedelivered(t *testing.T) {
	b := bustest.New(t, bus.Config{Logger: slog.New(slog.DiscardHandler)})
	supp, err := responsebus.NewSuppressions(ctxT(t), b.JetStream(), responsebus.SuppressionsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for i, step := range []struct {
		id         string
		suppressed bool
		count      int64
	}{{"a", false, 1}, {"b", true, 2}, {"a", false, 2}, {"c", true, 3}} {
		s, err := supp.Hit(ctxT(t), "r", "k", step.id, t0.Add(time.Duration(i)*time.Minute), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if s.Suppressed != step.suppressed || s.Count != step.count {
			t.Fatalf("hit %d (%s): %+v, want suppressed %v count %d", i, step.id, s, step.suppressed, step.count)
		}
	}
}

// Several engines on one bucket share the windows: concurrent hits on a
// key count every firing once and open one window.
func TestSuppressionsConcurrent(t *testing.T) {
	b := bustest.New(t, bus.Config{Logger: slog.New(slog.DiscardHandler)})
	supp, err := responsebus.NewSuppressions(ctxT(t), b.JetStream(), responsebus.SuppressionsConfig{Retries: 100})
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	errs := make(chan error, n)
	opened := make(chan bool, n)
	for i := range n {
		go func() {
			s, err := supp.Hit(ctxT(t), "r", "k", string(rune('a'+i)), t0, time.Hour)
			errs <- err
			opened <- !s.Suppressed
		}()
	}
	windows := 0
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		if <-opened {
			windows++
		}
	}
	s, err := supp.Peek(ctxT(t), "r", "k", t0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if windows != 1 || s.Count != n+1 || !s.Suppressed {
		t.Fatalf("windows opened %d, peek %+v (want count %d)", windows, s, n+1)
	}
}

// Run over the bus: a published detection is handled, its decision is
// stored as cordon.events.<host>.decision, the notification is published,
// and the detection is acknowledged.
func TestRunOverBus(t *testing.T) {
	b := bustest.New(t, bus.Config{Logger: slog.New(slog.DiscardHandler)})
	iso := responsetest.NewIsolator(nil)
	eng, err := response.New(response.Config{
		Services: response.Services{Isolator: iso, Publisher: responsebus.Publisher{Conn: b.Conn()}},
		Sink:     responsebus.Sink{Bus: b},
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.LoadBytes("rules.yaml", []byte(rules)); err != nil {
		t.Fatal(err)
	}
	alerts, err := b.Conn().SubscribeSync("soc.alerts")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctxT(t))
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx, responsebus.Detections{Bus: b}) }()
	d := detection("det-run-1", "h-7")
	d.Time = time.Now().UTC()
	if _, err := b.PublishDetection(ctxT(t), d); err != nil {
		t.Fatal(err)
	}
	events := make(chan bus.Event, 4)
	sub, err := b.ConsumeEvents(ctxT(t), bus.ConsumerConfig{Durable: "test-events"}, func(_ context.Context, e bus.Event, _ bus.Delivery) error {
		events <- e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	var ev bus.Event
	select {
	case ev = <-events:
	case <-time.After(20 * time.Second):
		t.Fatal("no decision event")
	}
	if ev.Kind != "decision" || ev.Host != "h-7" || ev.ID != response.DecisionID("det-run-1") {
		t.Fatalf("event %+v", ev)
	}
	var dec response.Decision
	if err := json.Unmarshal(ev.Data, &dec); err != nil {
		t.Fatal(err)
	}
	if dec.DetectionID != "det-run-1" || dec.Result != response.ResultDone || dec.Rules[0].Rule != "isolate-ransomware" {
		t.Fatalf("decision %+v", dec)
	}
	msg, err := alerts.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var n response.Notification
	if err := json.Unmarshal(msg.Data, &n); err != nil || n.Host != "h-7" || n.Rule != "isolate-ransomware" {
		t.Fatalf("notification %s %v", msg.Data, err)
	}
	if len(iso.Requests()) != 1 {
		t.Fatalf("isolate requests %d", len(iso.Requests()))
	}
	// The detection was acknowledged: nothing is pending on the consumer.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := b.JetStream().Consumer(ctxT(t), bus.StreamDetections, "cordon-detections")
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.Info(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		if info.NumAckPending == 0 && info.NumPending == 0 && info.AckFloor.Stream >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not acknowledged: %+v", info)
		}
		time.Sleep(20 * time.Millisecond) // polling the server's view, not waiting for a timer of ours
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

type commandLog struct{ sent []bus.SignedCommand }

func (c *commandLog) PublishCommand(_ context.Context, sc bus.SignedCommand) (bus.PubAck, error) {
	c.sent = append(c.sent, sc)
	return bus.PubAck{}, nil
}

func newKey(t *testing.T) nkeys.KeyPair {
	kp, err := nkeys.CreateAccount()
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

// Commands passes the Isolator conformance suite; the deadline in force
// is read from the last command it sent (issued_at + duration).
func TestCommandsConformance(t *testing.T) {
	responsetest.TestIsolator(t, func(t *testing.T) responsetest.IsolatorHarness {
		log := &commandLog{}
		now := t0
		c, err := responsebus.NewCommands(responsebus.CommandsConfig{Bus: log, Key: newKey(t), Clock: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		return responsetest.IsolatorHarness{Isolator: c, Now: now, Deadline: func(t *testing.T, host string) (time.Time, bool) {
			if len(log.sent) == 0 {
				return time.Time{}, false
			}
			cmd, err := log.sent[len(log.sent)-1].Unverified()
			if err != nil {
				t.Fatal(err)
			}
			if cmd.Action != bus.ActionIsolate || cmd.Host != host {
				return time.Time{}, false
			}
			var args struct{ Duration isolation.Duration }
			if err := json.Unmarshal(cmd.Args, &args); err != nil {
				t.Fatal(err)
			}
			return cmd.IssuedAt.Add(time.Duration(args.Duration)), true
		}}
	})
}

// A command sent over the bus verifies on the agent's side, and its args
// decode strictly as an isolation.Command.
func TestCommandsOverBus(t *testing.T) {
	b := bustest.New(t, bus.Config{Logger: slog.New(slog.DiscardHandler)})
	kp := newKey(t)
	pub, _ := kp.PublicKey()
	c, err := responsebus.NewCommands(responsebus.CommandsConfig{Bus: b, Key: kp})
	if err != nil {
		t.Fatal(err)
	}
	until, err := c.Isolate(ctxT(t), response.IsolateRequest{ID: "dec-1/r/0", Host: "h-9", Until: time.Now().Add(2 * time.Hour),
		Duration: 2 * time.Hour, Reason: "IOC x", Mode: response.ModeAutomatic})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Release(ctxT(t), response.ReleaseRequest{ID: "dec-2/r/0", Host: "h-9", Reason: "all clear"}); err != nil {
		t.Fatal(err)
	}
	v, err := bus.NewVerifier(bus.VerifierConfig{TrustedKeys: []string{pub}, Host: "h-9"})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan isolation.Command, 2)
	sub, err := b.ConsumeCommands(ctxT(t), "h-9", v, bus.ConsumerConfig{}, func(_ context.Context, cmd bus.Command, _ bus.Delivery) error {
		ic := isolation.Command{ID: cmd.ID, Action: isolation.Action(cmd.Action), Requester: cmd.Issuer}
		dec := json.NewDecoder(bytes.NewReader(cmd.Args))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ic); err != nil {
			t.Errorf("args %s: %v", cmd.Args, err)
		}
		got <- ic
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	var cmds []isolation.Command
	for range 2 {
		select {
		case ic := <-got:
			cmds = append(cmds, ic)
		case <-time.After(20 * time.Second):
			t.Fatal("command not delivered")
		}
	}
	iso, rel := cmds[0], cmds[1]
	if iso.ID != "dec-1/r/0" || iso.Action != isolation.ActionIsolate || iso.Mode != isolation.ModeAutomatic || iso.Reason != "IOC x" {
		t.Fatalf("isolate %+v", iso)
	}
	if d := time.Duration(iso.Duration); d <= 0 || d > 2*time.Hour || time.Until(until) > 2*time.Hour {
		t.Fatalf("duration %v until %v", d, until)
	}
	if rel.Action != isolation.ActionRelease || rel.Reason != "all clear" {
		t.Fatalf("release %+v", rel)
	}
}

func TestSinkIdempotent(t *testing.T) {
	b := bustest.New(t, bus.Config{Logger: slog.New(slog.DiscardHandler)})
	s := responsebus.Sink{Bus: b}
	dec := &response.Decision{Schema: response.DecisionSchema, ID: response.DecisionID("d1"), Time: t0, Host: "h1", DetectionID: "d1", Result: response.ResultNoMatch}
	for range 2 {
		if err := s.Record(ctxT(t), dec); err != nil {
			t.Fatal(err)
		}
	}
	st, err := b.JetStream().Stream(ctxT(t), bus.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("%d events stored for one decision recorded twice", info.State.Msgs)
	}
}

// A failed decision (Run has the detection delivered again) does not
// keep the decision of the later successful delivery out of the stream:
// the failure is stored once, the success once, under the decision id.
func TestSinkStoresOutcomeAfterFailure(t *testing.T) {
	b := bustest.New(t, bus.Config{Logger: slog.New(slog.DiscardHandler)})
	s := responsebus.Sink{Bus: b}
	dec := &response.Decision{Schema: response.DecisionSchema, ID: response.DecisionID("d1"), Time: t0, Host: "h1", DetectionID: "d1", Result: response.ResultFailed}
	for _, result := range []string{response.ResultFailed, response.ResultFailed, response.ResultDone, response.ResultDone} {
		dec.Result = result
		if err := s.Record(ctxT(t), dec); err != nil {
			t.Fatal(err)
		}
	}
	st, err := b.JetStream().Stream(ctxT(t), bus.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for seq := uint64(1); seq <= 2; seq++ {
		m, err := st.GetMsg(ctxT(t), seq)
		if err != nil {
			t.Fatalf("seq %d: %v", seq, err)
		}
		e, err := bus.DecodeEvent(m.Subject, m.Data)
		if err != nil {
			t.Fatal(err)
		}
		var d response.Decision
		if err := json.Unmarshal(e.Data, &d); err != nil {
			t.Fatal(err)
		}
		got = append(got, e.ID+" "+d.Result)
	}
	if want := []string{dec.ID + ".failed failed", dec.ID + " done"}; got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("stored %v, want %v", got, want)
	}
	info, err := st.Info(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 2 {
		t.Fatalf("%d events stored, want 2", info.State.Msgs)
	}
}

// failOnce is an Isolator failing its first call.
type failOnce struct {
	failed atomic.Bool
	iso    *responsetest.Isolator
}

func (f *failOnce) Isolate(ctx context.Context, req response.IsolateRequest) (time.Time, error) {
	if f.failed.CompareAndSwap(false, true) {
		return time.Time{}, responsetest.ErrInjected
	}
	return f.iso.Isolate(ctx, req)
}

func (f *failOnce) Release(ctx context.Context, req response.ReleaseRequest) error {
	return f.iso.Release(ctx, req)
}

// Over the bus, a detection whose isolation failed is not acknowledged:
// it comes again, the host is isolated, and both the failed and the done
// decision are in the audit stream.
func TestRunOverBusRetriesFailedIsolation(t *testing.T) {
	b := bustest.New(t, bus.Config{Logger: slog.New(slog.DiscardHandler)})
	iso := &failOnce{iso: responsetest.NewIsolator(nil)}
	supp, err := responsebus.NewSuppressions(ctxT(t), b.JetStream(), responsebus.SuppressionsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := response.New(response.Config{
		Services:     response.Services{Isolator: iso, Publisher: responsebus.Publisher{Conn: b.Conn()}},
		Sink:         responsebus.Sink{Bus: b},
		Suppressions: supp,
		Logger:       slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.LoadBytes("rules.yaml", []byte(rules)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctxT(t))
	done := make(chan error, 1)
	src := responsebus.Detections{Bus: b, Consumer: bus.ConsumerConfig{Backoff: []time.Duration{10 * time.Millisecond}}}
	go func() { done <- eng.Run(ctx, src) }()
	d := detection("det-retry-1", "h-8")
	d.Time = time.Now().UTC()
	if _, err := b.PublishDetection(ctxT(t), d); err != nil {
		t.Fatal(err)
	}
	results := make(chan string, 4)
	sub, err := b.ConsumeEvents(ctxT(t), bus.ConsumerConfig{Durable: "test-events"}, func(_ context.Context, e bus.Event, _ bus.Delivery) error {
		var dec response.Decision
		if err := json.Unmarshal(e.Data, &dec); err != nil {
			return err
		}
		results <- e.ID + " " + dec.Result
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	id := response.DecisionID("det-retry-1")
	for _, want := range []string{id + ".failed failed", id + " done"} {
		select {
		case got := <-results:
			if got != want {
				t.Fatalf("decision event %q, want %q", got, want)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("no decision event %q", want)
		}
	}
	if _, ok := iso.iso.Deadline("h-8"); !ok || len(iso.iso.Requests()) != 1 {
		t.Fatalf("host not isolated once: requests %+v", iso.iso.Requests())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// A decision larger than the bus's message limit (here: four rules that
// each record a 100 KB indicator value, and render it into their log
// action) is stored shortened and marked Truncated, with every rule and
// action result kept, instead of being refused: a refusal had the
// detection delivered again, refused again, and dead-lettered without
// its decision.
func TestSinkStoresOversizedDecisionTruncated(t *testing.T) {
	b := bustest.New(t, bus.Config{Logger: slog.New(slog.DiscardHandler)})
	eng, err := response.New(response.Config{Sink: responsebus.Sink{Bus: b}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	var src bytes.Buffer
	for _, n := range []string{"a", "b", "c", "d"} {
		src.WriteString("- name: " + n + "\n  when: 'true'\n  actions: [ {log: {message: \"{{ indicator.value }}\", level: debug}} ]\n")
	}
	if err := eng.LoadBytes("big.yaml", src.Bytes()); err != nil {
		t.Fatal(err)
	}
	d := detection("d-big", "h1")
	d.Indicators[0].Kind = ioc.KindURL
	d.Indicators[0].Value = "http://example.com/" + string(bytes.Repeat([]byte("é"), 50_000))
	dec, err := eng.Handle(ctxT(t), &d)
	if err != nil {
		t.Fatalf("Handle: %v (the decision was not recorded)", err)
	}
	if dec.Result != response.ResultDone || len(dec.Rules) != 4 {
		t.Fatalf("decision %s with %d rules", dec.Result, len(dec.Rules))
	}
	got := make(chan bus.Event, 1)
	sub, err := b.ConsumeEvents(ctxT(t), bus.ConsumerConfig{}, func(_ context.Context, e bus.Event, _ bus.Delivery) error {
		got <- e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	var e bus.Event
	select {
	case e = <-got:
	case <-time.After(20 * time.Second):
		t.Fatal("no decision event stored")
	}
	var stored response.Decision
	if err := json.Unmarshal(e.Data, &stored); err != nil {
		t.Fatal(err)
	}
	if e.ID != dec.ID || !stored.Truncated || stored.ID != dec.ID || stored.Result != response.ResultDone || len(stored.Rules) != 4 {
		t.Fatalf("stored event %s: decision %s truncated=%v result %s, %d rules", e.ID, stored.ID, stored.Truncated, stored.Result, len(stored.Rules))
	}
	for _, r := range stored.Rules {
		if len(r.Actions) != 1 || r.Actions[0].Type != "log" || r.Actions[0].Result != "done" {
			t.Fatalf("rule %s actions %+v", r.Rule, r.Actions)
		}
		if len(r.IndicatorValue) > 1100 || !strings.HasSuffix(r.IndicatorValue, "…") || !utf8.ValidString(r.IndicatorValue) {
			t.Fatalf("indicator value of %d bytes, not cut on a rune boundary", len(r.IndicatorValue))
		}
	}
}
