package localiso_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/cordonsec/cordon/ioc"
	"github.com/cordonsec/cordon/isolation"
	"github.com/cordonsec/cordon/isolation/isolationtest"
	"github.com/cordonsec/cordon/response"
	"github.com/cordonsec/cordon/response/localiso"
	"github.com/cordonsec/cordon/response/responsetest"
)

func newManager(t *testing.T) *isolation.Manager {
	t.Helper()
	m, err := isolation.New(isolation.Config{
		Host:     "h-conf",
		Enforcer: isolationtest.NewFake(),
		Automatic: isolation.ModeConfig{Exclusions: isolation.Exclusions{
			Profiles: []isolation.Profile{isolation.ProfileDNSClient}}},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	if err := m.Restore(context.Background()); err != nil {
		t.Fatal(err)
	}
	return m
}

// The Manager's clock is the wall clock: the harness's Now is taken at
// the start, and deadlines are compared to the second.
func TestConformance(t *testing.T) {
	responsetest.TestIsolator(t, func(t *testing.T) responsetest.IsolatorHarness {
		m := newManager(t)
		now := time.Now().Truncate(time.Second)
		return responsetest.IsolatorHarness{
			Isolator:  &localiso.Isolator{Manager: m, Clock: func() time.Time { return now }},
			Now:       now,
			Tolerance: time.Second,
			Deadline: func(t *testing.T, host string) (time.Time, bool) {
				st := m.Status()
				return st.Deadline, st.Isolated()
			},
		}
	})
}

func TestStatusAfterEngine(t *testing.T) {
	m := newManager(t)
	eng, err := response.New(response.Config{
		Services: response.Services{Isolator: &localiso.Isolator{Manager: m}},
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	err = eng.LoadBytes("r.yaml", []byte("- name: r\n  when: 'true'\n  actions: [ {isolate: {duration: 1h, reason: \"rule {{ detection.id }}\"}} ]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.LoadBytes("bad.yaml", []byte("- name: b\n  when: 'true'\n  actions: [ {isolate: {exclusions: [dns-client]}} ]\n")); err == nil {
		t.Fatal("a rule that names its own exclusions loaded; automatic isolation takes the policy's")
	}
	d := ioc.Detection{Schema: ioc.DetectionSchema, ID: "d-1", Fingerprint: "fp", Time: time.Now(), Host: ioc.Host{ID: "h-conf"},
		Engine: ioc.EngineAtomic, Indicators: []ioc.Indicator{{ID: "i", Kind: ioc.KindMD5, Value: "00112233445566778899aabbccddeeff"}}}
	dec, err := eng.Handle(context.Background(), &d)
	if err != nil {
		t.Fatal(err)
	}
	if dec.Result != response.ResultDone {
		t.Fatalf("decision %+v", dec.Rules)
	}
	st := m.Status()
	if !st.Isolated() || st.Mode != isolation.ModeAutomatic || st.Reason != "rule d-1" || st.Requester != "response" {
		t.Fatalf("status %+v", st)
	}
	if d := time.Until(st.Deadline); d <= 59*time.Minute || d > time.Hour {
		t.Fatalf("deadline in %v", d)
	}
}
