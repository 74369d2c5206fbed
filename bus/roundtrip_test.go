package bus_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nkeys"

	"github.com/cordonsec/cordon/bus"
	"github.com/cordonsec/cordon/bus/bustest"
	"github.com/cordonsec/cordon/ioc"
)

func TestDetectionRoundTripAndDedup(t *testing.T) {
	b := bustest.New(t, bus.Config{})
	ctx := ctxT(t)
	d := detection("h-1", 1)

	ack1, err := b.PublishDetection(ctx, d)
	if err != nil {
		t.Fatalf("PublishDetection: %v", err)
	}
	ack2, err := b.PublishDetection(ctx, d)
	if err != nil {
		t.Fatalf("PublishDetection again: %v", err)
	}
	if ack1.Duplicate || !ack2.Duplicate || ack2.Seq != ack1.Seq || ack1.Stream != bus.StreamDetections {
		t.Fatalf("acks = %+v, %+v; want the second a duplicate of the first in %s", ack1, ack2, bus.StreamDetections)
	}
	// A different detection after it: once it arrives, any duplicate of
	// the first would have arrived before it.
	last := detection("h-1", 2)
	if _, err := b.PublishDetection(ctx, last); err != nil {
		t.Fatalf("PublishDetection: %v", err)
	}

	got := make(chan ioc.Detection, 10)
	sub, err := b.ConsumeDetections(ctx, bus.ConsumerConfig{}, func(_ context.Context, d ioc.Detection, dl bus.Delivery) error {
		if dl.Subject != "cordon.detections.h-1" || dl.Stream != bus.StreamDetections || dl.Attempt != 1 {
			t.Errorf("delivery = %+v", dl)
		}
		got <- d
		return nil
	})
	if err != nil {
		t.Fatalf("ConsumeDetections: %v", err)
	}
	defer sub.Stop()
	first := recv(t, got, "first detection")
	if diff := cmp.Diff(d, first); diff != "" {
		t.Errorf("detection changed on the way (-sent +got):\n%s", diff)
	}
	second := recv(t, got, "second detection")
	if second.ID != last.ID {
		t.Fatalf("second delivery is %s, want %s (the duplicate was delivered)", second.ID, last.ID)
	}
	if sub.Name() != "cordon-detections" {
		t.Errorf("default durable = %q", sub.Name())
	}
	sub.Stop()
	waitClosed(t, sub.Closed(), "subscription closed")
}

func TestPublishDetectionsBatch(t *testing.T) {
	b := bustest.New(t, bus.Config{})
	ctx := ctxT(t)
	ds := make([]ioc.Detection, 50)
	for i := range ds {
		ds[i] = detection("h-2", i)
	}
	ds[7].Host.ID = "bad.host" // not a subject token
	ds[7].Event.Host.ID = "bad.host"
	acks, err := b.PublishDetections(ctx, ds)
	var be *bus.BatchError
	if !errors.As(err, &be) || len(be.Failed) != 1 || be.Failed[7] == nil || !errors.Is(err, bus.ErrInvalidSubject) {
		t.Fatalf("PublishDetections error = %v, want a BatchError for index 7 only", err)
	}
	seen := map[uint64]bool{}
	for i, a := range acks {
		if i == 7 {
			continue
		}
		if a.Seq == 0 || a.Duplicate || seen[a.Seq] {
			t.Fatalf("ack[%d] = %+v", i, a)
		}
		seen[a.Seq] = true
	}
	// Retrying the whole batch stores nothing new.
	ds[7] = detection("h-2", 7)
	acks, err = b.PublishDetections(ctx, ds)
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	for i, a := range acks {
		if a.Duplicate != (i != 7) {
			t.Errorf("retry ack[%d].Duplicate = %v", i, a.Duplicate)
		}
	}
}

func TestEventRoundTrip(t *testing.T) {
	b := bustest.New(t, bus.Config{Clock: func() time.Time { return t0 }})
	ctx := ctxT(t)
	e := bus.Event{Host: "h-3", Kind: "isolation.enabled", Source: "isolation", Data: json.RawMessage(`{"deadline":"2026-11-25T18:00:00Z"}`)}
	ack, err := b.PublishEvent(ctx, e)
	if err != nil {
		t.Fatalf("PublishEvent: %v", err)
	}
	if ack.Stream != bus.StreamEvents {
		t.Errorf("stored in %s", ack.Stream)
	}
	got := make(chan bus.Event, 1)
	sub, err := b.ConsumeEvents(ctx, bus.ConsumerConfig{FilterSubjects: []string{"cordon.events.*.isolation.>"}}, func(_ context.Context, e bus.Event, dl bus.Delivery) error {
		if dl.Subject != "cordon.events.h-3.isolation.enabled" {
			t.Errorf("subject %s", dl.Subject)
		}
		got <- e
		return nil
	})
	if err != nil {
		t.Fatalf("ConsumeEvents: %v", err)
	}
	defer sub.Stop()
	ev := recv(t, got, "event")
	if ev.ID == "" || ev.Schema != bus.SchemaAudit || !ev.Time.Equal(t0) {
		t.Errorf("defaults not filled: %+v", ev)
	}
	e.ID, e.Schema, e.Time = ev.ID, ev.Schema, ev.Time
	if diff := cmp.Diff(e, ev); diff != "" {
		t.Errorf("event changed (-sent +got):\n%s", diff)
	}

	for _, bad := range []bus.Event{
		{Host: "h.3", Kind: "x"},
		{Host: "h-3", Kind: "a..b"},
		{Host: "h-3", Kind: "x", Data: json.RawMessage(`{`)},
		{Host: "h-3", Kind: "x", Schema: "cordon.audit/v2"},
	} {
		if _, err := b.PublishEvent(ctx, bad); err == nil {
			t.Errorf("PublishEvent(%+v) succeeded", bad)
		}
	}
}

func TestCommandRoundTripOfflineHost(t *testing.T) {
	now := t0
	b := bustest.New(t, bus.Config{Clock: func() time.Time { return now }})
	ctx := ctxT(t)
	kp, err := nkeys.CreateAccount()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	c := bus.Command{Host: "h-4", Action: bus.ActionIsolate, IssuedAt: now, Expires: now.Add(time.Hour),
		Args: json.RawMessage(`{"duration":"8h","reason":"ransomware","mode":"automatic","exclusions":[{"profile":"dns-client"}]}`)}
	sc, err := bus.SignCommand(kp, c)
	if err != nil {
		t.Fatalf("SignCommand: %v", err)
	}
	// Published while no consumer exists for the host: it waits.
	if _, err := b.PublishCommand(ctx, sc); err != nil {
		t.Fatalf("PublishCommand: %v", err)
	}
	v, err := bus.NewVerifier(bus.VerifierConfig{TrustedKeys: []string{pub}, Host: "h-4", Clock: func() time.Time { return now.Add(time.Minute) }})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan bus.Command, 1)
	sub, err := b.ConsumeCommands(ctx, "h-4", v, bus.ConsumerConfig{}, func(_ context.Context, c bus.Command, _ bus.Delivery) error {
		got <- c
		return nil
	})
	if err != nil {
		t.Fatalf("ConsumeCommands: %v", err)
	}
	defer sub.Stop()
	cmd := recv(t, got, "command")
	c.ID, c.Issuer = sc.ID, pub
	if diff := cmp.Diff(c, cmd); diff != "" {
		t.Errorf("command changed (-sent +got):\n%s", diff)
	}
	if sub.Name() != "cordon-commands-h-4" {
		t.Errorf("durable %q", sub.Name())
	}

	now = now.Add(2 * time.Hour)
	if _, err := b.PublishCommand(ctx, sc); !errors.Is(err, bus.ErrCommandExpired) {
		t.Errorf("PublishCommand of an expired command: %v, want ErrCommandExpired", err)
	}
}

func TestIsolationState(t *testing.T) {
	b := bustest.New(t, bus.Config{})
	ctx := ctxT(t)
	if _, err := b.IsolationState(ctx, "h-5"); !errors.Is(err, bus.ErrNotFound) {
		t.Fatalf("IsolationState of a new host: %v, want ErrNotFound", err)
	}
	w, err := b.WatchIsolation(ctx, "*")
	if err != nil {
		t.Fatalf("WatchIsolation: %v", err)
	}
	defer w.Stop()
	if s := recv(t, w.Updates(), "end of initial values"); s.Host != "" {
		t.Fatalf("first update %+v, want the end-of-initial marker", s)
	}
	rev, err := b.PutIsolationState(ctx, "h-5", []byte(`{"state":"on"}`))
	if err != nil {
		t.Fatalf("PutIsolationState: %v", err)
	}
	s := recv(t, w.Updates(), "put")
	if s.Host != "h-5" || string(s.Value) != `{"state":"on"}` || s.Revision != rev || s.Deleted {
		t.Fatalf("watched %+v", s)
	}
	got, err := b.IsolationState(ctx, "h-5")
	if err != nil || string(got.Value) != `{"state":"on"}` || got.Revision != rev {
		t.Fatalf("IsolationState = %+v, %v", got, err)
	}
	if _, err := b.UpdateIsolationState(ctx, "h-5", []byte(`{"state":"off"}`), rev+100); err == nil {
		t.Fatal("update at a stale revision succeeded")
	}
	rev2, err := b.UpdateIsolationState(ctx, "h-5", []byte(`{"state":"off"}`), rev)
	if err != nil || rev2 <= rev {
		t.Fatalf("UpdateIsolationState: %d, %v", rev2, err)
	}
	if s := recv(t, w.Updates(), "update"); string(s.Value) != `{"state":"off"}` {
		t.Fatalf("watched %+v", s)
	}
	if err := b.DeleteIsolationState(ctx, "h-5"); err != nil {
		t.Fatal(err)
	}
	if s := recv(t, w.Updates(), "delete"); !s.Deleted || s.Host != "h-5" {
		t.Fatalf("watched %+v", s)
	}
	if _, err := b.PutIsolationState(ctx, "h-5", []byte(`not json`)); !errors.Is(err, bus.ErrMalformed) {
		t.Errorf("non-JSON value: %v", err)
	}
	if _, err := b.PutIsolationState(ctx, "h>5", []byte(`{}`)); !errors.Is(err, bus.ErrInvalidSubject) {
		t.Errorf("bad host: %v", err)
	}
	w.Stop()
	waitClosed(t, w.Closed(), "watch closed")
}

func TestClosedBus(t *testing.T) {
	b, err := bus.Open(ctxT(t), bus.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	sub, err := b.ConsumeDetections(ctx, bus.ConsumerConfig{}, func(context.Context, ioc.Detection, bus.Delivery) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	waitClosed(t, sub.Closed(), "subscription closed by Close")
	if err := b.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := b.PublishDetection(ctx, detection("h", 1)); !errors.Is(err, bus.ErrClosed) {
		t.Errorf("publish after Close: %v", err)
	}
	if _, err := b.ConsumeEvents(ctx, bus.ConsumerConfig{}, func(context.Context, bus.Event, bus.Delivery) error { return nil }); !errors.Is(err, bus.ErrClosed) {
		t.Errorf("consume after Close: %v", err)
	}
}
