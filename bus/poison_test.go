package bus_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/cordonsec/cordon/bus"
	"github.com/cordonsec/cordon/bus/bustest"
	"github.com/cordonsec/cordon/ioc"
)

func TestPoisonDetections(t *testing.T) {
	b := bustest.New(t, bus.Config{MaxMessageBytes: 64 << 10})
	ctx := ctxT(t)
	dls := deadLetters(t, b)

	good := detection("h-1", 1)
	goodJSON, _ := json.Marshal(good)
	v2 := strings.Replace(string(goodJSON), `"cordon.detection/v1"`, `"cordon.detection/v2"`, 1)
	minor := detection("h-1", 2)
	minorJSON, _ := json.Marshal(minor)
	minorJSON = []byte(strings.Replace(string(minorJSON), `"cordon.detection/v1"`, `"cordon.detection/v1.4"`, 1))
	noEngine := strings.Replace(string(goodJSON), `"engine":"atomic"`, `"engine":"magic"`, 1)
	big := `{"schema":"cordon.detection/v1","id":"big","pad":"` + strings.Repeat("x", 70<<10) + `"}`

	poison := []struct {
		name, subject, data string
		reason              bus.DeadLetterReason
		errHas              string
	}{
		{"garbage", "cordon.detections.h-1", "\x00\xffnot json", bus.ReasonMalformed, "at byte"},
		{"empty", "cordon.detections.h-1", "", bus.ReasonMalformed, "empty"},
		{"major v2", "cordon.detections.h-1", v2, bus.ReasonUnsupportedSchema, "major version 2"},
		{"event schema", "cordon.detections.h-1", `{"schema":"cordon.event/v1","id":"x"}`, bus.ReasonUnsupportedSchema, "cordon.event/v1"},
		{"no schema", "cordon.detections.h-1", `{"id":"x"}`, bus.ReasonMalformed, "schema is missing"},
		{"bad engine", "cordon.detections.h-1", noEngine, bus.ReasonMalformed, "engine"},
		{"wrong host subject", "cordon.detections.h-9", string(goodJSON), bus.ReasonMalformed, "host.id"},
		{"oversized", "cordon.detections.h-1", big, bus.ReasonTooLarge, "limit 65536"},
	}
	for i, p := range poison {
		rawPublish(t, b, p.subject, fmt.Sprintf("poison-%d", i), []byte(p.data))
	}
	rawPublish(t, b, "cordon.detections.h-1", minor.ID, minorJSON) // a minor version is fine
	if _, err := b.PublishDetection(ctx, good); err != nil {
		t.Fatal(err)
	}

	got := make(chan ioc.Detection, 10)
	sub, err := b.ConsumeDetections(ctx, bus.ConsumerConfig{}, func(_ context.Context, d ioc.Detection, _ bus.Delivery) error {
		got <- d
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	if d := recv(t, got, "the minor-version detection"); d.ID != minor.ID {
		t.Fatalf("got %s first, want %s", d.ID, minor.ID)
	}
	if d := recv(t, got, "the good detection after the poison"); d.ID != good.ID {
		t.Fatalf("got %s, want %s", d.ID, good.ID)
	}
	bySeq := map[uint64]bus.DeadLetter{}
	for range poison {
		rec := recv(t, dls, "dead letter")
		bySeq[rec.StreamSeq] = rec
	}
	for i, p := range poison {
		rec, ok := bySeq[uint64(i+1)]
		if !ok {
			t.Errorf("%s: no dead letter for stream seq %d", p.name, i+1)
			continue
		}
		if rec.Reason != p.reason || !strings.Contains(rec.Error, p.errHas) || rec.Subject != p.subject ||
			rec.Stream != bus.StreamDetections || rec.MsgID != fmt.Sprintf("poison-%d", i) || rec.Size != len(p.data) || rec.Deliveries != 1 {
			t.Errorf("%s: dead letter %+v; want reason %s, error containing %q", p.name, rec, p.reason, p.errHas)
		}
		if !rec.Truncated && string(rec.Data) != p.data {
			t.Errorf("%s: dead letter keeps %q, want the original bytes", p.name, rec.Data)
		}
		if rec.Reason == bus.ReasonTooLarge && (!rec.Truncated || len(rec.Data) != 32<<10 || string(rec.Data) != p.data[:32<<10]) {
			t.Errorf("%s: oversized data kept %d bytes, truncated=%v", p.name, len(rec.Data), rec.Truncated)
		}
	}
	// Typed publishing refuses what would be dead-lettered.
	bad := good
	bad.Engine = "magic"
	if _, err := b.PublishDetection(ctx, bad); !errors.Is(err, bus.ErrMalformed) || !errors.Is(err, ioc.ErrInvalidDetection) {
		t.Errorf("PublishDetection(invalid) = %v", err)
	}
	huge := detection("h-1", 3)
	huge.Event.File.Path = "/" + strings.Repeat("a", 70<<10)
	if _, err := b.PublishDetection(ctx, huge); !errors.Is(err, bus.ErrTooLarge) {
		t.Errorf("PublishDetection(huge) = %v", err)
	}
}

func TestHandlerFailuresRetryThenDeadLetter(t *testing.T) {
	b := bustest.New(t, bus.Config{})
	ctx := ctxT(t)
	dls := deadLetters(t, b)
	failing, flaky, panicky, rejected, good := detection("h-1", 1), detection("h-1", 2), detection("h-1", 3), detection("h-1", 4), detection("h-1", 5)
	if _, err := b.PublishDetections(ctx, []ioc.Detection{failing, flaky, panicky, rejected, good}); err != nil {
		t.Fatal(err)
	}
	var attempts = map[string]*atomic.Int32{}
	for _, d := range []ioc.Detection{failing, flaky, panicky, rejected, good} {
		attempts[d.ID] = &atomic.Int32{}
	}
	okCh := make(chan string, 10)
	cc := bus.ConsumerConfig{MaxDeliver: 3, Backoff: []time.Duration{time.Millisecond, 2 * time.Millisecond}}
	sub, err := b.ConsumeDetections(ctx, cc, func(_ context.Context, d ioc.Detection, dl bus.Delivery) error {
		n := attempts[d.ID].Add(1)
		if uint64(n) != dl.Attempt {
			t.Errorf("%s: call %d has Attempt %d", d.ID, n, dl.Attempt)
		}
		switch d.ID {
		case failing.ID:
			return errors.New("store unavailable")
		case flaky.ID:
			if n < 3 {
				return errors.New("transient")
			}
		case panicky.ID:
			panic("boom")
		case rejected.ID:
			return fmt.Errorf("no rule can use this: %w", bus.ErrRejected)
		}
		okCh <- d.ID
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	handled := map[string]bool{recv(t, okCh, "handled"): true, recv(t, okCh, "handled"): true}
	if !handled[good.ID] || !handled[flaky.ID] {
		t.Fatalf("handled %v, want %s and %s", handled, good.ID, flaky.ID)
	}
	want := map[string]struct {
		reason   bus.DeadLetterReason
		attempts int32
		errHas   string
	}{
		failing.ID:  {bus.ReasonMaxDeliver, 3, "store unavailable"},
		panicky.ID:  {bus.ReasonMaxDeliver, 3, "panicked: boom"},
		rejected.ID: {bus.ReasonRejected, 1, "no rule can use this"},
	}
	for range want {
		rec := recv(t, dls, "dead letter")
		w, ok := want[rec.MsgID]
		if !ok {
			t.Fatalf("unexpected dead letter %+v", rec)
		}
		if rec.Reason != w.reason || rec.Deliveries != uint64(w.attempts) || !strings.Contains(rec.Error, w.errHas) {
			t.Errorf("dead letter %+v, want %+v", rec, w)
		}
		if n := attempts[rec.MsgID].Load(); n != w.attempts {
			t.Errorf("%s handled %d times, want %d", rec.MsgID, n, w.attempts)
		}
		delete(want, rec.MsgID)
	}
}

type poisonCommand struct {
	name string
	data []byte
	want error
}

func TestPoisonCommands(t *testing.T) {
	now := t0
	clock := func() time.Time { return now }
	b := bustest.New(t, bus.Config{Clock: clock})
	ctx := ctxT(t)
	dls := deadLetters(t, b)
	trusted, _ := nkeys.CreateAccount()
	stranger, _ := nkeys.CreateAccount()
	pub, _ := trusted.PublicKey()
	sign := func(kp nkeys.KeyPair, c bus.Command) []byte {
		t.Helper()
		if c.Host == "" {
			c.Host = "h-7"
		}
		if c.Action == "" {
			c.Action = bus.ActionRelease
		}
		if c.IssuedAt.IsZero() {
			c.IssuedAt = now
		}
		if c.Expires.IsZero() {
			c.Expires = c.IssuedAt.Add(time.Hour)
		}
		sc, err := bus.SignCommand(kp, c)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := json.Marshal(sc)
		return data
	}
	forged := sign(trusted, bus.Command{ID: "forged"})
	var fsc bus.SignedCommand
	_ = json.Unmarshal(forged, &fsc)
	fsc.Payload = []byte(strings.Replace(string(fsc.Payload), `"release"`, `"isolate"`, 1))
	forged, _ = json.Marshal(fsc)
	replay := sign(trusted, bus.Command{ID: "replayed"})

	cases := []poisonCommand{
		{"forged", forged, bus.ErrBadSignature},
		{"untrusted", sign(stranger, bus.Command{ID: "untrusted"}), bus.ErrUntrustedIssuer},
		{"expired", sign(trusted, bus.Command{ID: "expired", IssuedAt: now.Add(-2 * time.Hour), Expires: now.Add(-time.Hour)}), bus.ErrCommandExpired},
		{"future", sign(trusted, bus.Command{ID: "future", IssuedAt: now.Add(time.Hour), Expires: now.Add(2 * time.Hour)}), bus.ErrCommandFromFuture},
		{"first", replay, nil},
		{"replayed", replay, bus.ErrCommandReplayed},
		{"garbage", []byte("{{{"), bus.ErrMalformed},
		{"other host", sign(trusted, bus.Command{ID: "other-host", Host: "h-8"}), bus.ErrWrongHost},
		{"good", sign(trusted, bus.Command{ID: "good"}), nil},
	}
	for i, c := range cases {
		// Distinct message ids, as an attacker re-publishing would use.
		rawPublish(t, b, "cordon.commands.h-7", fmt.Sprintf("m-%d", i), c.data)
	}
	v, err := bus.NewVerifier(bus.VerifierConfig{TrustedKeys: []string{pub}, Host: "h-7", Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 10)
	sub, err := b.ConsumeCommands(ctx, "h-7", v, bus.ConsumerConfig{}, func(_ context.Context, c bus.Command, _ bus.Delivery) error {
		got <- c.ID
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	if id := recv(t, got, "first command"); id != "replayed" {
		t.Fatalf("first accepted %q", id)
	}
	if id := recv(t, got, "good command"); id != "good" {
		t.Fatalf("second accepted %q", id)
	}
	bySeq := map[uint64]bus.DeadLetter{}
	for range len(cases) - 2 {
		rec := recv(t, dls, "dead letter")
		bySeq[rec.StreamSeq] = rec
	}
	for i, c := range cases {
		rec, ok := bySeq[uint64(i+1)]
		if c.want == nil {
			if ok {
				t.Errorf("%s: dead-lettered: %+v", c.name, rec)
			}
			continue
		}
		if !ok {
			t.Errorf("%s: not dead-lettered", c.name)
			continue
		}
		wantReason := bus.ReasonRejected
		if c.want == bus.ErrMalformed {
			wantReason = bus.ReasonMalformed
		}
		// The dead letter carries the verifier's error text.
		if rec.Reason != wantReason || !strings.Contains(rec.Error, strings.TrimPrefix(c.want.Error(), "bus: ")) {
			t.Errorf("%s: dead letter reason %s error %q; want %s with %q", c.name, rec.Reason, rec.Error, wantReason, c.want)
		}
	}
	if _, err := b.ConsumeCommands(ctx, "h-8", v, bus.ConsumerConfig{}, func(context.Context, bus.Command, bus.Delivery) error { return nil }); !errors.Is(err, bus.ErrInvalidConfig) {
		t.Errorf("ConsumeCommands with a verifier for another host: %v", err)
	}
}

// A valid command refused only because the verifier's replay memory is
// full is not lost: it is delivered again and accepted once room is made
// (a remembered id expired); nothing is dead-lettered.
func TestCommandWaitsForReplayMemory(t *testing.T) {
	b := bustest.New(t, bus.Config{})
	ctx := ctxT(t)
	dls := deadLetters(t, b)
	issuer := fixedKey(t, 3)
	pub, _ := issuer.PublicKey()
	base := time.Now()
	var offset atomic.Int64 // added to base by the verifier's clock
	v, err := bus.NewVerifier(bus.VerifierConfig{TrustedKeys: []string{pub}, Host: "h-9", MaxSkew: time.Second, MaxRemembered: 1,
		Clock: func() time.Time { return base.Add(time.Duration(offset.Load())) }})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id   string
		life time.Duration
	}{{"short", time.Minute}, {"long", time.Hour}} {
		sc, err := bus.SignCommand(issuer, bus.Command{ID: c.id, Host: "h-9", Action: bus.ActionStatus, IssuedAt: base, Expires: base.Add(c.life)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.PublishCommand(ctx, sc); err != nil {
			t.Fatal(err)
		}
	}
	got := make(chan string, 4)
	var attempts atomic.Int64 // deliveries of "long" refused so far, seen through the handler of "short"
	sub, err := b.ConsumeCommands(ctx, "h-9", v, bus.ConsumerConfig{Backoff: []time.Duration{10 * time.Millisecond}, MaxDeliver: 1000},
		func(_ context.Context, c bus.Command, d bus.Delivery) error {
			attempts.Store(int64(d.Attempt))
			got <- c.ID
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	if id := recv(t, got, "first command"); id != "short" {
		t.Fatalf("first accepted %q", id)
	}
	// "long" is refused and delivered again, more than once.
	waitUntil(t, "redeliveries of the refused command", func() bool {
		c, err := b.JetStream().Consumer(ctx, bus.StreamCommands, sub.Name())
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		return err == nil && info.NumRedelivered >= 1 && info.Delivered.Consumer >= 4
	})
	select {
	case id := <-got:
		t.Fatalf("%q accepted while the replay memory is full", id)
	case rec := <-dls:
		t.Fatalf("dead-lettered while the replay memory is full: %+v", rec)
	default:
	}
	offset.Store(int64(2 * time.Minute)) // "short" expired: its room is free
	if id := recv(t, got, "second command"); id != "long" {
		t.Fatalf("second accepted %q", id)
	}
	if a := attempts.Load(); a < 2 {
		t.Fatalf("long accepted at attempt %d, want a redelivery", a)
	}
	select {
	case rec := <-dls:
		t.Fatalf("dead-lettered: %+v", rec)
	default:
	}
}
