package feed

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cordonsec/cordon/ioc"
	"github.com/cordonsec/cordon/ioc/csvfeed"
	"github.com/cordonsec/cordon/ioc/feed/feedtest"
	"github.com/cordonsec/cordon/ioc/openioc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = feedtest.T0

func TestDetect(t *testing.T) {
	want := map[string]Format{
		"partner.csv": FormatCSV, "hash-iocs.txt": FormatLokiHash, "filename-iocs.txt": FormatLokiFilename,
		"c2-iocs.txt": FormatLokiC2, "case-17.json": FormatMISP, "intel.stix.json": FormatSTIX, "persistence.ioc": FormatOpenIOC,
	}
	for name, f := range want {
		data, err := os.ReadFile(filepath.Join("testdata/feeds", name))
		require.NoError(t, err)
		got, err := Detect(name, data)
		require.NoError(t, err, name)
		assert.Equal(t, f, got, name)
	}
	// Loki lists under other names, told by content.
	for in, f := range map[string]Format{
		"# x\n900150983cd24fb0d6963f7d28e17f72;75;x\n": FormatLokiHash,
		"evil.example\n":           FormatLokiC2,
		"192.0.2.0/24\n":           FormatLokiC2,
		`\\Temp\\x\.exe;50` + "\n": FormatLokiFilename,
		`[{"Event": {}}]`:          FormatMISP,
		`[{"type": "indicator"}]`:  FormatSTIX,
		"\ufeff <OpenIOC/>":        FormatOpenIOC,
	} {
		got, err := Detect("list.txt", []byte(in))
		require.NoError(t, err, in)
		assert.Equal(t, f, got, in)
	}
	for _, in := range []string{"", "  \n", "{}", "[]", `{"a": 1}`, "[1]", "{bad", "just words here"} {
		_, err := Detect("x", []byte(in))
		assert.ErrorIs(t, err, ErrUnknownFormat, in)
	}
}

func loadSamples(t *testing.T) *Loader {
	t.Helper()
	l, err := NewLoader(Config{Now: func() time.Time { return t0 }})
	require.NoError(t, err)
	r := l.LoadDir("testdata/feeds")
	require.NoError(t, r.Err())
	require.Len(t, r.Loaded, 7)
	assert.Empty(t, r.Warnings)
	return l
}

func TestSnapshotMatch(t *testing.T) {
	l := loadSamples(t)
	snap := l.Snapshot()
	files := snap.Files()
	require.Len(t, files, 7)
	assert.Equal(t, "c2-iocs.txt", files[0].Name)
	require.Len(t, snap.YARA(), 1)
	assert.Equal(t, 1, snap.YARA()[0].Rules.NumRules())
	m, err := snap.YARA()[0].Rules.ScanBytes([]byte("xx CASE-17-MARKER xx"))
	require.NoError(t, err)
	assert.Len(t, m, 1)
	fev := feedtest.Event(ioc.EventFile, "linux")
	fev.File = &ioc.FileEvent{Path: "/tmp/dropped.bin"}
	dets, err := snap.ScanYARA(t.Context(), &fev, []byte("head CASE-17-MARKER tail"), t0)
	require.NoError(t, err)
	require.Len(t, dets, 1)
	assert.Equal(t, ioc.EngineYARA, dets[0].Engine)
	assert.Equal(t, "case17_marker", dets[0].Rule)
	dets, err = snap.ScanYARA(t.Context(), &fev, []byte("head CASE-17-MARKEX tail"), t0)
	require.NoError(t, err)
	assert.Empty(t, dets)

	type want struct {
		engine ioc.Engine
		rule   string
		source string
	}
	file := func(path, sha1, md5 string) *ioc.Event {
		e := feedtest.Event(ioc.EventFile, "windows")
		e.File = &ioc.FileEvent{Path: path, SHA1: sha1, MD5: md5}
		return &e
	}
	conn := func(a string, port int) *ioc.Event {
		e := feedtest.Event(ioc.EventNetwork, "linux")
		e.Network = &ioc.NetworkEvent{RemoteAddress: a, RemotePort: port}
		return &e
	}
	reg := func(name, data string) *ioc.Event {
		e := feedtest.Event(ioc.EventRegistry, "windows")
		e.Registry = &ioc.RegistryEvent{Key: `HKCU\Software\Microsoft\Windows\CurrentVersion\Run`, ValueName: name, Data: data}
		return &e
	}
	proc := func(cmd string) *ioc.Event {
		e := feedtest.Event(ioc.EventProcess, "linux")
		e.Process = &ioc.ProcessEvent{Name: "python3", CommandLine: cmd}
		return &e
	}
	dns := func(q string) *ioc.Event {
		e := feedtest.Event(ioc.EventDNS, "linux")
		e.DNS = &ioc.DNSEvent{Query: q}
		return &e
	}
	cases := []struct {
		name string
		ev   *ioc.Event
		want []want
	}{
		{"csv sha1", file(`C:\x.dll`, "A9993E364706816ABA3E25717850C26C9CD0D89D", ""), []want{{ioc.EngineAtomic, "", "partner.csv"}}},
		{"csv sha1 near miss", file(`C:\x.dll`, "a9993e364706816aba3e25717850c26c9cd0d89e", ""), nil},
		{"csv hostname", dns("exfil.cordon-feed.example"), []want{{ioc.EngineAtomic, "", "partner.csv"}}},
		{"csv hostname is exact", dns("a.exfil.cordon-feed.example"), nil},
		{"loki hash and filename at once", file(`C:\ProgramData\0123456789ab\svc.exe`, "", "900150983cd24fb0d6963f7d28e17f72"),
			[]want{{ioc.EngineAtomic, "", "hash-iocs.txt"}, {ioc.EngineAtomic, "filename-iocs.txt:1", ""}}},
		{"loki filename near miss", file(`C:\ProgramData\0123456789ab\svc2.exe`, "", ""), nil},
		{"loki c2", conn("198.18.7.7", 443), []want{{ioc.EngineAtomic, "", "c2-iocs.txt"}}},
		{"misp ip|port", conn("198.18.9.9", 2222), []want{{ioc.EngineAtomic, "f17e0000-0000-4000-8000-000000000001", "case-17.json"}}},
		{"misp ip, other port", conn("198.18.9.9", 2223), nil},
		{"openioc tree", reg("FeedTestUpdater", `C:\Users\Public\u.VBS`), []want{{ioc.EngineOpenIOC, "f0000000-feed-4000-8000-000000000001", ""}}},
		{"openioc near miss", reg("FeedTestUpdater", `C:\Users\Public\u.exe`), nil},
		{"stix tree", proc("python3 x.py -feedtest- 1"), []want{{ioc.EngineSTIX, "indicator--f0000000-0000-4000-8000-000000000001", ""}}},
		{"stix near miss", proc("python3 x.py -feedtest 1"), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dets := l.Match(c.ev)
			require.Len(t, dets, len(c.want))
			for i, w := range c.want {
				d := dets[i]
				require.NoError(t, d.Validate())
				assert.Equal(t, w.engine, d.Engine)
				assert.Equal(t, w.rule, d.Rule)
				if w.source != "" {
					require.NotEmpty(t, d.Indicators)
					assert.Equal(t, w.source, d.Indicators[0].Source)
				}
				for _, ind := range d.Indicators {
					// Every indicator reported is a value of its kind.
					_, err := ioc.Normalize(ind.Kind, ind.Value)
					assert.NoError(t, err, "indicator %+v", ind)
				}
				if strings.HasPrefix(d.Rule, "filename-iocs.txt:") {
					assert.Empty(t, d.Indicators, "a Loki expression is no indicator value")
					assert.Equal(t, ioc.SeverityHigh, d.Severity, "from the entry's score")
				}
			}
		})
	}
	// The atomic matches of one event are one detection.
	both := file(`C:\x.dll`, "a9993e364706816aba3e25717850c26c9cd0d89d", "900150983cd24fb0d6963f7d28e17f72")
	dets = l.Match(both)
	require.Len(t, dets, 1)
	assert.Len(t, dets[0].Indicators, 2)
	assert.Equal(t, ioc.SeverityHigh, dets[0].Severity)
}

// TestLokiWarnings: a Loki entry cordon skips is reported in the file's
// warnings; with Strict it rejects the file.
func TestLokiWarnings(t *testing.T) {
	list := []byte("\\\\Temp\\\\[a-z]{8}\\.exe$;70\n\\\\Temp\\\\(?!ok)\\w+\\.scr$;70\n")
	f, err := Parse("my-filename-iocs.txt", list, Options{})
	require.NoError(t, err)
	assert.Len(t, f.Trees, 1)
	require.Len(t, f.Warnings, 1)
	assert.Contains(t, f.Warnings[0], "my-filename-iocs.txt:2: ")
	_, err = Parse("my-filename-iocs.txt", list, Options{Strict: true})
	assert.ErrorContains(t, err, "my-filename-iocs.txt:2: ")
}

func TestLoadKeepsPreviousOnError(t *testing.T) {
	var reports []Reload
	l, err := NewLoader(Config{Now: func() time.Time { return t0 }, OnReload: func(r Reload) { reports = append(reports, r) }})
	require.NoError(t, err)
	require.NoError(t, l.Load("a.csv", []byte("type,value\ndomain,one.example\n")))
	before := l.Snapshot()
	ev := feedtest.Event(ioc.EventDNS, "linux")
	ev.DNS = &ioc.DNSEvent{Query: "one.example"}
	require.Len(t, l.Match(&ev), 1)

	err = l.Load("a.csv", []byte("type,value\ndomain,two.example\nsha256,nothex\n"))
	var fe *FileError
	require.True(t, errors.As(err, &fe))
	assert.Equal(t, "a.csv", fe.File)
	var ce *csvfeed.Error
	require.True(t, errors.As(err, &ce))
	assert.Equal(t, 3, ce.Line)
	assert.Contains(t, err.Error(), "a.csv:3:8")
	assert.Same(t, before, l.Snapshot(), "the snapshot is not swapped")
	assert.Len(t, l.Match(&ev), 1, "the previous content stays in force")
	require.Len(t, reports, 2)
	assert.Equal(t, []string{"a.csv"}, reports[0].Loaded)
	assert.Empty(t, reports[1].Loaded)
	assert.Len(t, reports[1].Errors, 1)

	// nil content is an empty file, not a removal.
	require.ErrorIs(t, l.Load("a.csv", nil), ErrUnknownFormat)
	assert.Same(t, before, l.Snapshot())

	require.NoError(t, l.Load("a.csv", []byte("type,value\ndomain,two.example\n")))
	assert.Empty(t, l.Match(&ev))
	ev.DNS.Query = "two.example"
	assert.Len(t, l.Match(&ev), 1)
	assert.True(t, l.Remove("a.csv"))
	assert.False(t, l.Remove("a.csv"))
	assert.Empty(t, l.Match(&ev))
	assert.Equal(t, 0, l.Snapshot().Atomic().Len())
}

func TestStrictAndWarnings(t *testing.T) {
	doc := []byte(`<OpenIOC id="x"><criteria><Indicator operator="OR">
<IndicatorItem condition="is"><Context search="FileItem/FileName"/><Content>a.exe</Content></IndicatorItem>
<IndicatorItem condition="is"><Context search="HookItem/HookedFunction"/><Content>b</Content></IndicatorItem>
</Indicator></criteria></OpenIOC>`)
	f, err := Parse("w.ioc", doc, Options{})
	require.NoError(t, err)
	require.Len(t, f.Warnings, 1)
	assert.Contains(t, f.Warnings[0], `w.ioc:3`)
	assert.Contains(t, f.Warnings[0], "HookItem/HookedFunction")
	_, err = Parse("w.ioc", doc, Options{Strict: true})
	assert.ErrorIs(t, err, openioc.ErrUnsupported)
	var got Reload
	l, err := NewLoader(Config{OnReload: func(r Reload) { got = r }})
	require.NoError(t, err)
	require.NoError(t, l.Load("w.ioc", doc))
	assert.Equal(t, f.Warnings, got.Warnings)
}

func TestBadYARAInMISP(t *testing.T) {
	_, err := Parse("y.json", []byte(`{"Event": {"Attribute": [{"type": "yara", "to_ids": true, "value": "rule x { condition: nosuch }"}]}}`), Options{})
	var ye *YARAError
	require.True(t, errors.As(err, &ye), "%v", err)
	assert.Equal(t, "Event.Attribute[0].value", ye.Where)
}

func TestLoadDirErrors(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "good.csv", "type,value\nmd5,900150983cd24fb0d6963f7d28e17f72\n")
	write(t, dir, "bad.csv", "type,value\nmd5,900150983cd24fb0d6963f7d28e17f7\n")
	write(t, dir, ".hidden.csv", "garbage")
	write(t, dir, "edit.csv~", "garbage")
	require.NoError(t, os.Mkdir(filepath.Join(dir, "sub"), 0o755))
	l, err := NewLoader(Config{MaxFileSize: 1000})
	require.NoError(t, err)
	r := l.LoadDir(dir)
	assert.Equal(t, []string{"good.csv"}, r.Loaded)
	require.Len(t, r.Errors, 1)
	assert.Contains(t, r.Errors[0].Error(), "bad.csv:2:5")
	write(t, dir, "big.csv", "type,value\n"+strings.Repeat("#", 2000)+"\n")
	r = l.LoadDir(dir)
	assert.Len(t, r.Errors, 2)
	assert.Contains(t, r.Err().Error(), "MaxFileSize")
	require.NoError(t, os.Remove(filepath.Join(dir, "good.csv")))
	r = l.LoadDir(dir)
	assert.Equal(t, []string{"good.csv"}, r.Removed)
	r = l.LoadDir(filepath.Join(dir, "missing"))
	assert.Len(t, r.Errors, 1)
	_, err = NewLoader(Config{Debounce: -1})
	assert.ErrorIs(t, err, ErrInvalidConfig)
}

func write(t *testing.T, dir, name, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644))
}

func TestBuildDuplicate(t *testing.T) {
	_, err := Build([]*File{{Name: "a"}, {Name: "a"}})
	var fe *FileError
	assert.True(t, errors.As(err, &fe))
	_, err = Build([]*File{{Name: "a", Indicators: []ioc.Indicator{{Kind: ioc.KindMD5, Value: "x"}}}})
	assert.ErrorIs(t, err, ioc.ErrInvalidValue)
}

func FuzzParse(f *testing.F) {
	entries, _ := os.ReadDir("testdata/feeds")
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join("testdata/feeds", e.Name()))
		f.Add(e.Name(), b)
	}
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		file, err := Parse(name, data, Options{})
		if !feedtest.Accepted[*FileError](t, err) {
			return
		}
		if _, err := Build([]*File{file}); err != nil {
			t.Fatalf("parsed file does not build: %v", err)
		}
	})
}

// TestCases decodes the wire events of testdata/cases.jsonl strictly and
// checks the detections the sample feeds give for each: engine, rule and
// the source of the first indicator ("engine:rule:source").
func TestCases(t *testing.T) {
	l := loadSamples(t)
	data, err := os.ReadFile("testdata/cases.jsonl")
	require.NoError(t, err)
	for i, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var c struct {
			Want  []string        `json:"want"`
			Event json.RawMessage `json:"event"`
		}
		require.NoError(t, json.Unmarshal([]byte(line), &c), "line %d", i+1)
		ev, err := ioc.DecodeEvent(c.Event)
		require.NoError(t, err, "line %d", i+1)
		got := []string{}
		for _, d := range l.Match(&ev) {
			require.NoError(t, d.Validate())
			src := ""
			if len(d.Indicators) > 0 {
				src = d.Indicators[0].Source
			}
			got = append(got, fmt.Sprintf("%s:%s:%s", d.Engine, d.Rule, src))
		}
		assert.Equal(t, c.Want, got, "line %d (%s)", i+1, ev.ID)
	}
}
