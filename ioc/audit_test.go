package ioc

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSetValidityOutsideNanoRange: bounds that Unix nanoseconds cannot
// hold (a feed's "valid until 9999-12-31", a "valid from" in 1600) keep
// their meaning, and the Unix epoch is a bound like any other.
func TestSetValidityOutsideNanoRange(t *testing.T) {
	far := time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
	epoch := time.Unix(0, 0).UTC()
	old := time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name        string
		from, until time.Time
		match       bool
	}{
		{"until 9999", time.Time{}, far, true},
		{"from 1600", old, time.Time{}, true},
		{"from 1600 until 9999", old, far, true},
		{"until the epoch", time.Time{}, epoch, false},
		{"from 1600 until the epoch", old, epoch, false},
		{"from the epoch", epoch, time.Time{}, true},
		{"from 9999", far, time.Time{}, false},
		{"until 1600", time.Date(1500, 1, 1, 0, 0, 0, 0, time.UTC), old, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ind := Indicator{ID: "w", Kind: KindIPv4, Value: "192.0.2.1", ValidFrom: tc.from, ValidUntil: tc.until}
			set, err := Compile([]Indicator{ind})
			require.NoError(t, err)
			got := set.Match(netEv("192.0.2.1"), t0)
			assert.Equal(t, tc.match, len(got) == 1, "matches: %+v", got)
			assert.Equal(t, tc.match, ind.ActiveAt(t0), "ActiveAt agrees")
			for back := range set.All() {
				assert.True(t, back.ValidFrom.Equal(tc.from), "valid_from reported as given: %v", back.ValidFrom)
				assert.True(t, back.ValidUntil.Equal(tc.until), "valid_until reported as given: %v", back.ValidUntil)
			}
		})
	}
}

// TestCIDRExpiredLongestPrefix: an expired (or not yet valid) narrow
// prefix does not hide a current wider one; every containing prefix in
// force is reported, longest first.
func TestCIDRExpiredLongestPrefix(t *testing.T) {
	set, err := Compile([]Indicator{
		{ID: "wide", Kind: KindCIDR, Value: "192.0.2.0/24"},
		{ID: "mid-expired", Kind: KindCIDR, Value: "192.0.2.128/25", ValidUntil: t0.Add(-time.Hour)},
		{ID: "narrow-future", Kind: KindCIDR, Value: "192.0.2.192/26", ValidFrom: t0.Add(time.Hour)},
		{ID: "v6-wide", Kind: KindCIDR, Value: "2001:db8::/32"},
		{ID: "v6-narrow-expired", Kind: KindCIDR, Value: "2001:db8:1::/48", ValidUntil: t0},
	})
	require.NoError(t, err)
	ids := func(addr string, at time.Time) []string {
		var out []string
		for _, m := range set.Match(netEv(addr), at) {
			out = append(out, m.Indicator.ID)
		}
		return out
	}
	assert.Equal(t, []string{"wide"}, ids("192.0.2.200", t0))
	assert.Equal(t, []string{"narrow-future", "wide"}, ids("192.0.2.200", t0.Add(2*time.Hour)))
	assert.Equal(t, []string{"mid-expired", "wide"}, ids("192.0.2.130", t0.Add(-2*time.Hour)), "every prefix in force, longest first")
	assert.Equal(t, []string{"wide"}, ids("192.0.2.130", t0))
	assert.Equal(t, []string{"v6-wide"}, ids("2001:db8:1::9", t0))
	assert.Empty(t, ids("198.18.0.1", t0))
}

// TestWindowsNameObservable: on a Windows host a file or process name is
// compared without case, so its observable (and the fingerprint) is the
// same whatever case the event wrote it in.
func TestWindowsNameObservable(t *testing.T) {
	set, err := Compile([]Indicator{
		{ID: "f", Kind: KindFileName, Value: "Mimikatz.exe"},
		{ID: "p", Kind: KindProcessName, Value: "PsExec.exe"},
	})
	require.NoError(t, err)
	var fps []string
	for _, name := range []string{"MIMIKATZ.EXE", "mimikatz.exe", "MimiKatz.Exe"} {
		got := set.Match(fileEv("windows", FileEvent{Name: name}), t0)
		require.Len(t, got, 1)
		assert.Equal(t, "mimikatz.exe", got[0].Observable)
		assert.Equal(t, "Mimikatz.exe", got[0].Indicator.Value, "the indicator keeps its case")
		fps = append(fps, got[0].Fingerprint("h-1"))
	}
	assert.Equal(t, fps[0], fps[1])
	assert.Equal(t, fps[0], fps[2])
	got := set.Match(procEv("windows", ProcessEvent{Path: `C:\Tools\PSEXEC.EXE`}), t0)
	require.Len(t, got, 1)
	assert.Equal(t, "psexec.exe", got[0].Observable)
	// Elsewhere case matters, and the observable is the name as written.
	got = set.Match(fileEv("linux", FileEvent{Name: "Mimikatz.exe"}), t0)
	require.Len(t, got, 1)
	assert.Equal(t, "Mimikatz.exe", got[0].Observable)
}

// TestMatchFingerprintIsTheDetections: Match.Fingerprint is the
// fingerprint of the atomic detection of that one match.
func TestMatchFingerprintIsTheDetections(t *testing.T) {
	set, err := Compile([]Indicator{{ID: "d", Kind: KindDomain, Value: "evil.example"}})
	require.NoError(t, err)
	e := dnsEv("www.evil.example")
	got := set.Match(e, t0)
	require.Len(t, got, 1)
	det, err := NewDetection(*e, EngineAtomic, "", 0, got, t0)
	require.NoError(t, err)
	assert.Equal(t, det.Fingerprint, got[0].Fingerprint(e.Host.ID))
	det2, err := NewDetection(*e, EngineSTIX, "indicator--1", 0, got, t0)
	require.NoError(t, err)
	assert.NotEqual(t, det.Fingerprint, det2.Fingerprint, "engine and rule are in the fingerprint")
}

// TestMetaNoCollision: indicators whose source, description and tags
// differ keep their own, whatever bytes those contain.
func TestMetaNoCollision(t *testing.T) {
	inds := []Indicator{
		{ID: "a", Kind: KindMutex, Value: "a", Source: "s\x00d"},
		{ID: "b", Kind: KindMutex, Value: "b", Source: "s", Description: "d"},
		{ID: "c", Kind: KindMutex, Value: "c", Tags: []string{"x\x00y"}},
		{ID: "d", Kind: KindMutex, Value: "d", Tags: []string{"x", "y"}},
		{ID: "e", Kind: KindMutex, Value: "e", Source: "x", Tags: []string{"y"}},
		{ID: "f", Kind: KindMutex, Value: "f", Description: "x", Tags: []string{"y"}},
	}
	set, err := Compile(inds)
	require.NoError(t, err)
	for _, want := range inds {
		got := set.Match(mutexEv(want.Value), t0)
		require.Len(t, got, 1, want.ID)
		assert.Equal(t, want, got[0].Indicator, want.ID)
	}
}

func TestZeroMatcher(t *testing.T) {
	var m Matcher
	assert.Empty(t, m.Match(mutexEv("m")))
	assert.Equal(t, 0, m.Set().Len())
	s, err := Compile([]Indicator{{ID: "m", Kind: KindMutex, Value: "m"}})
	require.NoError(t, err)
	assert.Nil(t, m.Swap(s))
	assert.Len(t, m.Match(mutexEv("m")), 1)
}

// TestStrictKeys: field names are exact (encoding/json would take "Schema"
// for "schema") and a key may not repeat (encoding/json keeps the last),
// in events and detections, on the fast path and the reflective one.
func TestStrictKeys(t *testing.T) {
	evJSON := `{"schema":"cordon.event/v1","id":"e","time":"2026-11-25T10:00:00Z","host":{"id":"h"},"kind":"registry","registry":{"key":"HKLM\\Run","value_name":"x"}}`
	_, err := DecodeEvent([]byte(evJSON))
	require.NoError(t, err)
	evTests := []struct{ name, in, field, reason string }{
		{"top-level case", strings.Replace(evJSON, `"schema"`, `"Schema"`, 1), "Schema", `case-sensitive: "schema"`},
		{"nested case", strings.Replace(evJSON, `"value_name"`, `"VALUE_NAME"`, 1), "registry.VALUE_NAME", `case-sensitive: "value_name"`},
		{"host case", strings.Replace(evJSON, `{"id":"h"}`, `{"ID":"h"}`, 1), "host.ID", "case-sensitive"},
		{"repeated top-level", strings.Replace(evJSON, `"id":"e"`, `"id":"e","id":"f"`, 1), "id", "appears twice"},
		{"repeated nested", strings.Replace(evJSON, `"value_name":"x"`, `"value_name":"x","value_name":"y"`, 1), "registry.value_name", "appears twice"},
		{"repeated block", strings.Replace(evJSON, `}}`, `},"registry":{"key":"HKLM\\Other"}}`, 1), "registry", "appears twice"},
		{"escaped key", strings.Replace(evJSON, `"value_name"`, `"value_nam\u0065":"z","value_name"`, 1), "registry.value_name", "appears twice"},
	}
	for _, tc := range evTests {
		t.Run("event/"+tc.name, func(t *testing.T) {
			_, err := DecodeEvent([]byte(tc.in))
			var fe *FieldError
			require.ErrorAs(t, err, &fe, "accepted %s", tc.in)
			assert.Equal(t, tc.field, fe.Field)
			assert.Contains(t, fe.Reason, tc.reason)
			assert.ErrorIs(t, err, ErrInvalidEvent)
			var e Event
			assert.ErrorAs(t, json.Unmarshal([]byte(tc.in), &e), &fe, "json.Unmarshal is as strict")
		})
	}

	ev, err := DecodeEvent([]byte(evJSON))
	require.NoError(t, err)
	det, err := NewDetection(ev, EngineAtomic, "", 0, []Match{{Indicator: Indicator{ID: "i", Kind: KindRegistryKey, Value: `hkey_local_machine\run`}, Field: "registry.key", Observable: `hkey_local_machine\run`}}, t0)
	require.NoError(t, err)
	b, err := json.Marshal(det)
	require.NoError(t, err)
	detJSON := string(b)
	detTests := []struct{ name, in, field, reason string }{
		{"top-level case", strings.Replace(detJSON, `"fingerprint"`, `"Fingerprint"`, 1), "Fingerprint", "case-sensitive"},
		{"indicator case", strings.Replace(detJSON, `"kind":"registry-key"`, `"Kind":"registry-key"`, 1), "indicators[0].Kind", "case-sensitive"},
		{"event case", strings.Replace(detJSON, `"value_name"`, `"Value_Name"`, 1), "event.registry.Value_Name", "case-sensitive"},
		{"repeated", strings.Replace(detJSON, `"rule":""`, `"rule":"","rule":"x"`, 1), "rule", "appears twice"},
		{"repeated in event", strings.Replace(detJSON, `"kind":"registry"`, `"kind":"registry","kind":"registry"`, 1), "event.kind", "appears twice"},
	}
	for _, tc := range detTests {
		t.Run("detection/"+tc.name, func(t *testing.T) {
			require.NotEqual(t, detJSON, tc.in)
			_, err := DecodeDetection([]byte(tc.in))
			var fe *FieldError
			require.ErrorAs(t, err, &fe, "accepted %s", tc.in)
			assert.Equal(t, tc.field, fe.Field)
			assert.Contains(t, fe.Reason, tc.reason)
			assert.ErrorIs(t, err, ErrInvalidDetection)
		})
	}
}

// TestFastDecodeIsReflective: the decoder without reflection gives every
// sample event (escapes in Windows paths included) exactly the value
// encoding/json gives it.
func TestFastDecodeIsReflective(t *testing.T) {
	type plain Event
	for _, line := range readEvents(t) {
		var slow plain
		require.NoError(t, json.Unmarshal(line, &slow))
		r := jsonReader{b: line}
		var fast Event
		require.True(t, r.event(&fast) && r.end(), "the fast path reads %s", line)
		assert.Equal(t, Event(slow), fast)
	}
}

// TestGlobIndex: globs are found through any literal element, each
// matches once however often its element repeats, and globs without a
// literal element are still tried.
func TestGlobIndex(t *testing.T) {
	set, err := Compile([]Indicator{
		{ID: "mid", Kind: KindFilePath, Value: `C:\Users\*\AppData\Roaming\*.exe`},
		{ID: "base", Kind: KindFilePath, Value: `C:\Users\*\evil.exe`},
		{ID: "none", Kind: KindFilePath, Value: `C:\*\*\*.scr`},
		{ID: "unix", Kind: KindFilePath, Value: "/tmp/**/x/*.so"},
		{ID: "repeated key", Kind: KindFilePath, Value: "/opt/**/cache/*.so"}, // indexed by "cache"
		{ID: "dup", Kind: KindFilePath, Value: `C:\Users\*\AppData\Roaming\*.exe`},
	})
	require.NoError(t, err)
	ids := func(os, path string) []string {
		var out []string
		for _, m := range set.Match(fileEv(os, FileEvent{Path: path}), t0) {
			out = append(out, m.Indicator.ID)
		}
		return out
	}
	assert.ElementsMatch(t, []string{"mid", "dup"}, ids("windows", `c:\users\bob\appdata\roaming\Upd.EXE`))
	assert.ElementsMatch(t, []string{"base"}, ids("windows", `C:/Users/bob/EVIL.exe`))
	assert.ElementsMatch(t, []string{"none"}, ids("windows", `C:\a\b\c.scr`))
	assert.ElementsMatch(t, []string{"unix"}, ids("linux", "/tmp/x/x/x/a.so"), "an element repeated: one match")
	assert.Equal(t, "cache", globKey("/opt/**/cache/*.so", "/"))
	assert.ElementsMatch(t, []string{"repeated key"}, ids("linux", "/opt/cache/cache/cache/a.so"), "the indexed element repeated: one match")
	assert.Empty(t, ids("linux", "/tmp/X/a.so"))
	assert.Empty(t, ids("windows", `c:\users\bob\appdata\local\upd.exe`))
}

// TestManyGlobsBuild: adding globs is not quadratic (a duplicate pattern
// is found by a map), and a glob too large to compile is an error, never
// a panic.
func TestManyGlobsBuild(t *testing.T) {
	inds := make([]Indicator, 20000)
	for i := range inds {
		inds[i] = Indicator{Kind: KindFilePath, Value: "/opt/" + strings.Repeat("d", i%7+1) + "/*/" + strconv.Itoa(i) + ".so"}
	}
	set, err := Compile(inds)
	require.NoError(t, err)
	got := set.Match(fileEv("linux", FileEvent{Path: "/opt/d/x/19999.so"}), t0)
	require.Len(t, got, 1)
	assert.Equal(t, "/opt/d/*/19999.so", got[0].Indicator.Value)

	huge := "/" + strings.Repeat("*a?", 1<<20)
	_, err = Compile([]Indicator{{ID: "huge", Kind: KindFilePath, Value: huge}})
	var ie *IndicatorError
	require.ErrorAs(t, err, &ie)
	assert.Contains(t, ie.Reason, "a path has at most 32767")
	assert.ErrorIs(t, err, ErrInvalidValue)

	// The longest path accepted, all wildcards, builds and matches.
	long := "/" + strings.Repeat("*/", maxPathLen/2-1) + "?"
	require.LessOrEqual(t, len(long), maxPathLen)
	set, err = Compile([]Indicator{{ID: "long", Kind: KindFilePath, Value: long}})
	require.NoError(t, err)
	assert.Empty(t, set.Match(fileEv("linux", FileEvent{Path: "/a/b"}), t0))
}

// TestMalformedURLsAreMalformed: the URLs TestSetMatch uses to show that a
// malformed URL still names its host are ones the normalizer refuses.
func TestMalformedURLsAreMalformed(t *testing.T) {
	for _, u := range []string{"http://user@WWW.Evil.Example.:8080/a b\tc", "http://192.0.2.9/%zz?x", "http://good.example/a b@evil.example/"} {
		_, err := Normalize(KindURL, u)
		assert.ErrorIs(t, err, ErrInvalidValue, u)
	}
}
