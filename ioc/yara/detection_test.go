package yara

import (
	"testing"
	"time"

	"github.com/cordonsec/cordon/ioc"
)

func TestNewDetection(t *testing.T) {
	ev := ioc.Event{Schema: ioc.EventSchema, ID: "e-1", Time: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC),
		Host: ioc.Host{ID: "h-1", Name: "web-01"}, Kind: ioc.EventFile,
		File: &ioc.FileEvent{Path: "/tmp/x.bin", Name: "x.bin", Size: 10}}
	now := time.Date(2026, 11, 25, 10, 0, 1, 0, time.UTC)
	r := mustCompile(t, `
rule crit { meta: severity = "CRITICAL" condition: true }
rule plain { condition: true }
rule odd { meta: severity = 3 condition: true }
rule low { meta: severity = "low" condition: true }`)
	ms, err := r.ScanBytes([]byte("x"))
	if err != nil || len(ms) != 4 {
		t.Fatalf("ScanBytes = %v, %v", ms, err)
	}
	want := map[string]ioc.Severity{"crit": ioc.SeverityCritical, "plain": ioc.SeverityMedium,
		"odd": ioc.SeverityMedium, "low": ioc.SeverityLow}
	ids := map[string]bool{}
	for _, m := range ms {
		d, err := NewDetection(m, ev, now)
		if err != nil {
			t.Fatalf("%s: %v", m.Rule, err)
		}
		if d.Engine != ioc.EngineYARA || d.Rule != m.Rule || d.Severity != want[m.Rule] ||
			d.Event.ID != "e-1" || !d.Time.Equal(now) || d.Host.ID != "h-1" {
			t.Errorf("%s: detection %+v", m.Rule, d)
		}
		if err := d.Validate(); err != nil {
			t.Errorf("%s: Validate: %v", m.Rule, err)
		}
		if ids[d.ID] {
			t.Errorf("%s: duplicate detection id %s", m.Rule, d.ID)
		}
		ids[d.ID] = true
	}
	// Same rule and event: same id and fingerprint.
	a, _ := NewDetection(ms[0], ev, now)
	b, _ := NewDetection(ms[0], ev, now.Add(time.Hour))
	if a.ID != b.ID || a.Fingerprint != b.Fingerprint {
		t.Errorf("detections of the same rule and event differ: %s/%s vs %s/%s", a.ID, a.Fingerprint, b.ID, b.Fingerprint)
	}
}
