package response_test

import (
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/cordonsec/cordon/ioc"
	"github.com/cordonsec/cordon/response"
	"github.com/cordonsec/cordon/response/responsetest"
)

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: t0} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type ind struct {
	id, kind, value, source string
	sev                     ioc.Severity
	tags                    []string
}

// detection builds a detection on host with the given engine and
// indicators; its severity is the highest of theirs.
func detection(id, host string, engine ioc.Engine, inds ...ind) ioc.Detection {
	d := ioc.Detection{Schema: ioc.DetectionSchema, ID: id, Fingerprint: "fp-" + id, Time: t0,
		Host:   ioc.Host{ID: host, Name: host + ".example", OS: "linux", Addresses: []string{"192.0.2.10"}},
		Engine: engine, Event: ioc.Event{Schema: ioc.EventSchema, ID: "ev-" + id, Time: t0, Kind: ioc.EventFile,
			Host: ioc.Host{ID: host}, File: &ioc.FileEvent{Path: "/tmp/x.bin", Name: "x.bin"}}}
	if len(inds) == 0 {
		d.Rule = "yara-rule"
	}
	for _, i := range inds {
		k, err := ioc.ParseKind(i.kind)
		if err != nil {
			panic(err)
		}
		d.Indicators = append(d.Indicators, ioc.Indicator{ID: i.id, Kind: k, Value: i.value, Source: i.source, Severity: i.sev, Tags: i.tags})
		d.Severity = max(d.Severity, i.sev)
	}
	return d
}

type fixture struct {
	eng   *response.Engine
	clock *clock
	iso   *responsetest.Isolator
	pub   *responsetest.Publisher
	tag   *responsetest.Tagger
	sink  *responsetest.Sink
}

func newFixture(t *testing.T, mod func(*response.Config), rules string) *fixture {
	t.Helper()
	f := &fixture{clock: newClock(), pub: &responsetest.Publisher{}, tag: &responsetest.Tagger{}, sink: &responsetest.Sink{}}
	f.iso = responsetest.NewIsolator(f.clock.Now)
	cfg := response.Config{
		Services: response.Services{Isolator: f.iso, Publisher: f.pub, Tagger: f.tag},
		Sink:     f.sink,
		Clock:    f.clock.Now,
		Logger:   slog.New(slog.DiscardHandler),
	}
	if mod != nil {
		mod(&cfg)
	}
	eng, err := response.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.LoadBytes("rules.yaml", []byte(rules)); err != nil {
		t.Fatal(err)
	}
	f.eng = eng
	return f
}
