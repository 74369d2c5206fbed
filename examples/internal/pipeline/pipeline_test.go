package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cordonsec/cordon/bus"
	"github.com/cordonsec/cordon/isolation"
	"github.com/cordonsec/cordon/isolation/isolationtest"
	"github.com/cordonsec/cordon/response"
)

func TestIsolationCommand(t *testing.T) {
	for _, tc := range []struct {
		name   string
		action bus.Action
		args   string
		want   isolation.Command
		excl   bool
		err    string
	}{
		{name: "automatic from the engine", action: bus.ActionIsolate, args: `{"mode":"automatic","duration":"30m","reason":"r"}`,
			want: isolation.Command{ID: "c", Action: isolation.ActionIsolate, Mode: isolation.ModeAutomatic, Duration: isolation.Duration(30 * time.Minute), Reason: "r", Requester: "K"}},
		{name: "manual with exclusions", action: bus.ActionIsolate, args: `{"mode":"manual","exclusions":{"profiles":[],"rules":["in tcp lport=22"]}}`,
			want: isolation.Command{ID: "c", Action: isolation.ActionIsolate, Mode: isolation.ModeManual, Requester: "K"}, excl: true},
		{name: "release without args", action: bus.ActionRelease,
			want: isolation.Command{ID: "c", Action: isolation.ActionRelease, Requester: "K"}},
		{name: "unknown arg", action: bus.ActionIsolate, args: `{"mode":"manual","forever":true}`, err: `unknown field "forever"`},
		{name: "exclusions for automatic", action: bus.ActionIsolate, args: `{"mode":"automatic","exclusions":{}}`, err: "only for a manual isolation"},
		{name: "bad exclusion rule", action: bus.ActionIsolate, args: `{"mode":"manual","exclusions":{"rules":["sideways"]}}`, err: "args"},
		{name: "unknown action", action: "reboot", err: `unknown action "reboot"`},
		{name: "exclusions on a release", action: bus.ActionRelease, args: `{"mode":"manual","exclusions":{"rules":["in tcp lport=22"]}}`, err: "only for an isolate command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := bus.Command{ID: "c", Issuer: "K", Action: tc.action}
			if tc.args != "" {
				c.Args = json.RawMessage(tc.args)
			}
			got, x, err := IsolationCommand(c)
			if tc.err != "" {
				if err == nil || !errors.Is(err, ErrBadCommand) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want || (x != nil) != tc.excl {
				t.Fatalf("got %+v %v, want %+v", got, x, tc.want)
			}
		})
	}
}

func TestNewCommandRoundTrip(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	x := isolation.Exclusions{Profiles: []isolation.Profile{isolation.ProfileDNSClient}}
	c, err := NewCommand("h-1", bus.ActionIsolate, &CommandArgs{Mode: isolation.ModeManual, UntilReleased: true, Exclusions: &x}, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Expires.Equal(now.Add(time.Hour)) {
		t.Errorf("expires %v", c.Expires)
	}
	got, gx, err := IsolationCommand(c)
	if err != nil || !got.UntilReleased || got.Mode != isolation.ModeManual || gx == nil || !gx.Equal(x) {
		t.Fatalf("round trip: %+v %v %v", got, gx, err)
	}
}

func TestPlainYAML(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"a: 1\nb: [x, y]\n", true},
		{"a: &x 1\nb: *x\n", false},
		{"a: !!str 1\n", false},
		{"a: 'quoted & * !'\n", true},
	} {
		err := PlainYAML([]byte(tc.in))
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrYAMLAlias)) {
			t.Errorf("%q: %v", tc.in, err)
		}
	}
}

func TestLocalIsolatorExtendsNeverShortens(t *testing.T) {
	var l LocalIsolator
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	ctx := context.Background()
	steps := []struct {
		until, want time.Time
	}{
		{t0.Add(8 * time.Hour), t0.Add(8 * time.Hour)},
		{t0.Add(time.Hour), t0.Add(8 * time.Hour)},
		{t0.Add(10 * time.Hour), t0.Add(10 * time.Hour)},
	}
	for i, s := range steps {
		got, err := l.Isolate(ctx, response.IsolateRequest{Host: "h", Until: s.until})
		if err != nil || !got.Equal(s.want) {
			t.Fatalf("step %d: %v %v, want %v", i, got, err, s.want)
		}
	}
	if _, on := l.Deadline("h", t0.Add(9*time.Hour)); !on {
		t.Error("not isolated at +9h")
	}
	if _, on := l.Deadline("h", t0.Add(10*time.Hour)); on {
		t.Error("still isolated at the deadline")
	}
	l.Release(ctx, response.ReleaseRequest{Host: "h"})
	if _, on := l.Deadline("h", t0); on {
		t.Error("isolated after release")
	}
	if _, err := l.Isolate(ctx, response.IsolateRequest{}); err == nil {
		t.Error("no host accepted")
	}
}

type recordingSink struct {
	mu  sync.Mutex
	got []string
}

func (r *recordingSink) Publish(_ context.Context, e isolation.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, string(e.Kind))
	return nil
}

// TestAsyncSinkThenKeepsOrder: work queued with Then runs after the
// events queued before it (a command's answer never overtakes its
// isolation events), and Close runs what is still queued.
func TestAsyncSinkThenKeepsOrder(t *testing.T) {
	rec := &recordingSink{}
	s := NewAsyncSink(rec, 1, nil)
	ctx := context.Background()
	for _, k := range []isolation.EventKind{isolation.EventIsolating, isolation.EventEnabled} {
		if err := s.Publish(ctx, isolation.Event{Kind: k}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Then(ctx, "result", func(context.Context) error {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		rec.got = append(rec.got, "result")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	s.Close(ctx)
	if got, want := strings.Join(rec.got, " "), "isolating enabled result"; got != want {
		t.Fatalf("order %q, want %q", got, want)
	}
}

func TestCommandResultEventRoundTrip(t *testing.T) {
	res := isolation.Result{CommandID: "c-1", Error: "refused", Status: isolation.Status{State: isolation.StateOff}}
	e, err := CommandResultEvent("h-1", res, time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if subj, err := e.Subject(); err != nil || subj != "cordon.events.h-1.command.result" || e.ID != "result-c-1" {
		t.Fatalf("subject %q (%v), id %q", subj, err, e.ID)
	}
	got, ok, err := DecodeCommandResult(e)
	if !ok || err != nil || got.CommandID != "c-1" || got.Error != "refused" || got.OK {
		t.Fatalf("decoded %+v ok=%v err=%v", got, ok, err)
	}
	if _, ok, _ := DecodeIsolationEvent(e); ok {
		t.Fatal("a command result decoded as an isolation event")
	}
	if _, ok, _ := DecodeCommandResult(bus.Event{Source: IsolationEventSource, Kind: "isolation.enabled"}); ok {
		t.Fatal("an isolation event decoded as a command result")
	}
}

// TestRefusedIsolateKeepsManualExclusions: an isolate command the Manager
// refuses changes nothing, not even the host's manual exclusion list it
// carries.
func TestRefusedIsolateKeepsManualExclusions(t *testing.T) {
	ctx := context.Background()
	ssh, err := isolation.ParseRule("in tcp lport=22 name=ssh")
	if err != nil {
		t.Fatal(err)
	}
	m, err := isolation.New(isolation.Config{
		Host:     "h-1",
		Enforcer: isolationtest.NewFake(),
		Manual:   isolation.ModeConfig{Exclusions: isolation.Exclusions{Profiles: []isolation.Profile{}, Rules: []isolation.Rule{ssh}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Restore(ctx); err != nil {
		t.Fatal(err)
	}
	cmd := func(id, args string) bus.Command {
		return bus.Command{ID: id, Issuer: "K", Action: bus.ActionIsolate, Args: json.RawMessage(args)}
	}
	// Until released with a duration: refused by the Manager's rules.
	res, err := HandleCommand(ctx, m, cmd("c1", `{"mode":"manual","duration":"1h","until_released":true,"exclusions":{"profiles":[],"rules":["out tcp rport=443 name=web"]}}`))
	if err != nil || res.OK || res.Error == "" {
		t.Fatalf("invalid isolate: %+v, %v; want a refusal", res, err)
	}
	res, err = HandleCommand(ctx, m, cmd("c2", `{"mode":"manual","duration":"1h"}`))
	if err != nil || !res.OK {
		t.Fatalf("valid isolate: %+v, %v", res, err)
	}
	if got := res.Status.Exclusions; len(got) != 1 || !strings.Contains(got[0], "lport=22") {
		t.Fatalf("exclusions in force %q: the refused command replaced the host's list", got)
	}
}
