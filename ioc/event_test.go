package ioc

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func readEvents(t testing.TB) [][]byte {
	t.Helper()
	f, err := os.ReadFile("testdata/events.jsonl")
	require.NoError(t, err)
	var lines [][]byte
	sc := bufio.NewScanner(bytes.NewReader(f))
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) > 0 {
			lines = append(lines, append([]byte(nil), sc.Bytes()...))
		}
	}
	return lines
}

// TestEventRoundTrip decodes every sample event, encodes it, and checks
// that the JSON is the same object, field for field.
func TestEventRoundTrip(t *testing.T) {
	for _, line := range readEvents(t) {
		ev, err := DecodeEvent(line)
		require.NoError(t, err, "%s", line)
		out, err := json.Marshal(ev)
		require.NoError(t, err)
		assert.JSONEq(t, string(line), string(out))
		var back Event
		require.NoError(t, json.Unmarshal(out, &back))
		assert.Equal(t, ev, back)
	}
}

func TestEventErrors(t *testing.T) {
	base := `{"schema":"cordon.event/v1","id":"e","time":"2026-11-25T10:00:00Z","host":{"id":"h"},"kind":"file","file":{"path":"/x"}}`
	tests := []struct {
		name, in, field, reason string
		unknownSchema           bool
	}{
		{"unknown top-level field", strings.Replace(base, `"id":"e"`, `"id":"e","colour":"red"`, 1), "colour", "not a field", false},
		{"unknown nested field", strings.Replace(base, `"path":"/x"`, `"path":"/x","owner":"root"`, 1), "file.owner", "not a field", false},
		{"unknown host field", strings.Replace(base, `{"id":"h"}`, `{"id":"h","ip":"x"}`, 1), "host.ip", "not a field", false},
		{"missing id", strings.Replace(base, `"id":"e",`, ``, 1), "id", "is required", false},
		{"missing time", strings.Replace(base, `"time":"2026-11-25T10:00:00Z",`, ``, 1), "time", "is required", false},
		{"missing host id", strings.Replace(base, `{"id":"h"}`, `{"name":"h"}`, 1), "host.id", "is required", false},
		{"missing schema", strings.Replace(base, `"schema":"cordon.event/v1",`, ``, 1), "schema", "is required", false},
		{"other schema", strings.Replace(base, `cordon.event/v1`, `cordon.detection/v1`, 1), "schema", "is not cordon.event/v1", false},
		{"unknown major", strings.Replace(base, `cordon.event/v1`, `cordon.event/v2`, 1), "schema", "does not know", true},
		{"missing block", strings.Replace(base, `,"file":{"path":"/x"}`, ``, 1), "file", "is required", false},
		{"two blocks", strings.Replace(base, `}}`, `},"mutex":{"name":"m"}}`, 1), "mutex", "not allowed", false},
		{"bad kind", strings.Replace(base, `"kind":"file"`, `"kind":"disk"`, 1), "kind", "is not one of", false},
		{"bad digest", strings.Replace(base, `"path":"/x"`, `"path":"/x","sha256":"abc"`, 1), "file.sha256", "has 3 characters", false},
		{"wrong type", strings.Replace(base, `"path":"/x"`, `"path":"/x","size":"big"`, 1), "file.size", "cannot hold a JSON string", false},
		{"bad address", `{"schema":"cordon.event/v1","id":"e","time":"2026-11-25T10:00:00Z","host":{"id":"h"},"kind":"network","network":{"remote_address":"10.0.0.300"}}`, "network.remote_address", "is not an IP address", false},
		{"bad port", `{"schema":"cordon.event/v1","id":"e","time":"2026-11-25T10:00:00Z","host":{"id":"h"},"kind":"network","network":{"remote_address":"192.0.2.1","remote_port":70000}}`, "network.remote_port", "outside 0-65535", false},
		{"bad host address", strings.Replace(base, `{"id":"h"}`, `{"id":"h","addresses":["192.0.2.1","nope"]}`, 1), "host.addresses[1]", "is not an IP address", false},
		{"trailing data", base + `{}`, "", "trailing data", false},
		{"syntax", base[:40], "", "malformed JSON", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeEvent([]byte(tc.in))
			require.Error(t, err)
			var fe *FieldError
			require.ErrorAs(t, err, &fe, "%v", err)
			assert.Equal(t, tc.field, fe.Field, "%v", err)
			assert.Contains(t, fe.Reason, tc.reason)
			assert.ErrorIs(t, err, ErrInvalidEvent)
			assert.Equal(t, tc.unknownSchema, errors.Is(err, ErrUnknownSchema))
			if tc.field != "" {
				assert.Contains(t, err.Error(), tc.field)
			}
		})
	}
	// A minor version of the same major is read.
	_, err := DecodeEvent([]byte(strings.Replace(base, `cordon.event/v1`, `cordon.event/v1.4`, 1)))
	assert.NoError(t, err)
}

func TestDetection(t *testing.T) {
	lines := readEvents(t)
	ev, err := DecodeEvent(lines[0])
	require.NoError(t, err)
	set, err := Compile([]Indicator{
		{ID: "i-1", Kind: KindSHA256, Value: sha256Hex, Source: "feed-a", Severity: SeverityHigh, Score: 80, Tags: []string{"ransomware"}},
		{ID: "i-2", Kind: KindMD5, Value: md5Hex, Source: "feed-b", Severity: SeverityCritical},
	})
	require.NoError(t, err)
	matches := set.Match(&ev, t0)
	require.Len(t, matches, 2)
	now := t0.Add(time.Second)
	det, err := NewDetection(ev, EngineAtomic, "", SeverityUnknown, matches, now)
	require.NoError(t, err)
	assert.Equal(t, DetectionSchema, det.Schema)
	assert.Equal(t, SeverityCritical, det.Severity, "the highest indicator severity")
	assert.Equal(t, ev.Host, det.Host)
	assert.Len(t, det.Indicators, 2)

	// The fingerprint ignores the event and match order, the id does not
	// ignore the event.
	ev2 := ev
	ev2.ID = "e-other"
	rev := []Match{matches[1], matches[0]}
	det2, err := NewDetection(ev2, EngineAtomic, "", SeverityUnknown, rev, now.Add(time.Hour))
	require.NoError(t, err)
	assert.Equal(t, det.Fingerprint, det2.Fingerprint)
	assert.NotEqual(t, det.ID, det2.ID)
	det3, err := NewDetection(ev, EngineAtomic, "", SeverityUnknown, matches, now.Add(time.Hour))
	require.NoError(t, err)
	assert.Equal(t, det.ID, det3.ID, "the same event yields the same detection id")
	// Another host, another fingerprint.
	ev3 := ev
	ev3.Host.ID = "h-other"
	det4, err := NewDetection(ev3, EngineAtomic, "", SeverityUnknown, matches, now)
	require.NoError(t, err)
	assert.NotEqual(t, det.Fingerprint, det4.Fingerprint)
	assert.NotEqual(t, matches[0].Fingerprint("h-42"), matches[0].Fingerprint("h-43"))

	// Round trip, strictly.
	b, err := json.Marshal(det)
	require.NoError(t, err)
	back, err := DecodeDetection(b)
	require.NoError(t, err)
	assert.Equal(t, det.ID, back.ID)
	assert.True(t, det.Time.Equal(back.Time))
	back.Time = det.Time
	assert.Equal(t, det, back)
	b2, err := json.Marshal(back)
	require.NoError(t, err)
	assert.JSONEq(t, string(b), string(b2))
	for _, field := range []string{`"schema"`, `"id"`, `"fingerprint"`, `"time"`, `"host"`, `"engine":"atomic"`, `"rule":""`, `"indicators"`, `"severity":"critical"`, `"event"`} {
		assert.Contains(t, string(b), field)
	}

	// Strictness reaches into the embedded event.
	bad := strings.Replace(string(b), `"path":"/tmp/x.bin"`, `"path":"/tmp/x.bin","mode":"0644"`, 1)
	_, err = DecodeDetection([]byte(bad))
	var fe *FieldError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "event.file.mode", fe.Field)
	bad = strings.Replace(string(b), `"engine":"atomic"`, `"engine":"magic"`, 1)
	_, err = DecodeDetection([]byte(bad))
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "engine", fe.Field)

	// A YARA detection has a rule and no indicators.
	yd, err := NewDetection(ev, EngineYARA, "Ransom_X", SeverityHigh, nil, now)
	require.NoError(t, err)
	assert.Equal(t, SeverityHigh, yd.Severity)
	b, err = json.Marshal(yd)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"indicators":[]`)
	_, err = DecodeDetection(b)
	require.NoError(t, err)

	_, err = NewDetection(ev, EngineAtomic, "", 0, nil, now)
	assert.ErrorIs(t, err, ErrInvalidDetection)
	_, err = NewDetection(ev, Engine("x"), "r", 0, nil, now)
	assert.ErrorIs(t, err, ErrInvalidDetection)
}

// TestSampleEventsMatch runs the sample events through a set built for them.
func TestSampleEventsMatch(t *testing.T) {
	set, err := Compile([]Indicator{
		{ID: "hash", Kind: KindSHA256, Value: sha256Hex},
		{ID: "c2-net", Kind: KindCIDR, Value: "198.18.0.0/24"},
		{ID: "c2-v6", Kind: KindIPv6, Value: "2001:db8::66"},
		{ID: "c2-dom", Kind: KindDomain, Value: "evil.example"},
		{ID: "run", Kind: KindRegistryKey, Value: `HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Run\Updater`},
		{ID: "mutex", Kind: KindMutex, Value: "DCPERSFWBP"},
		{ID: "parent", Kind: KindProcessName, Value: "WinWord.exe"},
	})
	require.NoError(t, err)
	want := [][]string{
		{"hash"},
		{"hash", "parent"},
		{"c2-net"},
		{"c2-dom", "c2-net", "c2-v6"},
		{"c2-dom"},
		{"run"},
		{"mutex"},
	}
	for i, line := range readEvents(t) {
		ev, err := DecodeEvent(line)
		require.NoError(t, err)
		var ids []string
		for _, m := range set.Match(&ev, t0) {
			ids = append(ids, m.Indicator.ID)
		}
		assert.ElementsMatch(t, want[i], ids, "event %s", ev.ID)
	}
}

func TestDetectionTypeErrorNamesField(t *testing.T) {
	in := `{"schema":"cordon.detection/v1","id":"d","fingerprint":"f","time":"2026-11-25T10:00:00Z","host":{"id":"h"},"engine":"atomic","rule":"","indicators":[{"id":"i","kind":"md5","value":"x","score":"high"}],"severity":"high","event":{"schema":"cordon.event/v1","id":"e","time":"2026-11-25T10:00:00Z","host":{"id":"h"},"kind":"mutex","mutex":{"name":"m"}}}`
	_, err := DecodeDetection([]byte(in))
	var fe *FieldError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "indicators.score", fe.Field)
	in = strings.Replace(in, `"score":"high"`, `"score":7`, 1)
	_, err = DecodeDetection([]byte(strings.Replace(in, `"name":"m"`, `"name":7`, 1)))
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "event.mutex.name", fe.Field)
}

// TestRuleFingerprintSeesTheObservable: one rule matching two files makes
// two findings; the observable-only match adds no indicator.
func TestRuleFingerprintSeesTheObservable(t *testing.T) {
	mk := func(id, path string) Event {
		return Event{Schema: EventSchema, ID: id, Time: t0, Host: Host{ID: "h-1"}, Kind: EventFile, File: &FileEvent{Path: path}}
	}
	obs := func(p string) []Match { return []Match{{Field: "file.path", Observable: p}} }
	a, err := NewDetection(mk("e-1", "/tmp/a.bin"), EngineOpenIOC, "ioc-1", SeverityHigh, obs("/tmp/a.bin"), t0)
	require.NoError(t, err)
	b, err := NewDetection(mk("e-2", "/home/x/b.bin"), EngineOpenIOC, "ioc-1", SeverityHigh, obs("/home/x/b.bin"), t0)
	require.NoError(t, err)
	assert.NotEqual(t, a.Fingerprint, b.Fingerprint, "two files, one rule: two findings")
	assert.Empty(t, a.Indicators)
	a2, err := NewDetection(mk("e-3", "/tmp/a.bin"), EngineOpenIOC, "ioc-1", SeverityHigh, obs("/tmp/a.bin"), t0)
	require.NoError(t, err)
	assert.Equal(t, a.Fingerprint, a2.Fingerprint, "the same file again: the same finding")
	_, err = NewDetection(mk("e-4", "/tmp/a.bin"), EngineAtomic, "", 0, obs("/tmp/a.bin"), t0)
	assert.ErrorIs(t, err, ErrInvalidDetection, "an observable without an indicator needs a rule")
}
