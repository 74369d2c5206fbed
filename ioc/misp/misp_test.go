package misp

import (
	"errors"
	"os"
	"testing"

	"github.com/cordonsec/cordon/ioc"
	"github.com/cordonsec/cordon/ioc/feed/feedtest"
	"github.com/cordonsec/cordon/ioc/feed/logic"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = feedtest.T0

func parseFile(t *testing.T, name string) *Result {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	require.NoError(t, err)
	res, err := Parse(data, Config{Name: name})
	require.NoError(t, err)
	return res
}

func TestSampleEvent(t *testing.T) {
	res := parseFile(t, "event.json")
	// sha256, md5 (filename|md5), domain + ip, url (http and https: no scheme), mutex, filename, hostname
	require.Len(t, res.Indicators, 9)
	require.Len(t, res.Trees, 2)
	require.Len(t, res.YARA, 1)
	assert.Contains(t, res.YARA[0].Source, "rule cordon_test_invoice")
	assert.Equal(t, []string{`event.json: 1 to_ids attribute(s) of type "email-src" skipped: not an indicator cordon matches`}, res.Warnings)
	for _, ind := range res.Indicators {
		assert.Equal(t, ioc.SeverityHigh, ind.Severity, ind.Value)
		assert.Equal(t, "event.json", ind.Source)
		assert.Contains(t, ind.Tags, "tlp:amber")
	}
	assert.Contains(t, res.Indicators[1].Description, `"invoice.pdf.exe"`)
	assert.Equal(t, []string{"tlp:amber", "malware:dropper"}, res.Indicators[1].Tags)
	assert.Equal(t, "http://invoices-cdn.example/get.php?id=7", res.Indicators[4].Value)

	set, err := ioc.Compile(res.Indicators)
	require.NoError(t, err)
	trees, err := logic.Compile(res.Trees)
	require.NoError(t, err)

	file := func(path, md5 string) *ioc.Event {
		e := feedtest.Event(ioc.EventFile, "windows")
		e.File = &ioc.FileEvent{Path: path, MD5: md5}
		return &e
	}
	conn := func(a string, port int) *ioc.Event {
		e := feedtest.Event(ioc.EventNetwork, "windows")
		e.Network = &ioc.NetworkEvent{Protocol: "tcp", RemoteAddress: a, RemotePort: port}
		return &e
	}
	web := func(u string) *ioc.Event {
		e := feedtest.Event(ioc.EventHTTP, "windows")
		e.HTTP = &ioc.HTTPEvent{URL: u}
		return &e
	}
	reg := func(v, data string) *ioc.Event {
		e := feedtest.Event(ioc.EventRegistry, "windows")
		e.Registry = &ioc.RegistryEvent{Key: `HKEY_CURRENT_USER\Software\Microsoft\Windows\CurrentVersion\Run`, ValueName: v, Data: data}
		return &e
	}
	mutex := func(n string) *ioc.Event {
		e := feedtest.Event(ioc.EventMutex, "windows")
		e.Mutex = &ioc.MutexEvent{Name: n}
		return &e
	}
	// Atomic.
	assert.Len(t, set.Match(file(`C:\x\a.bin`, "0CC175B9C0F1B6A831C399E269772661"), t0), 1)
	assert.Empty(t, set.Match(file(`C:\x\a.bin`, "0cc175b9c0f1b6a831c399e269772662"), t0))
	assert.Len(t, set.Match(file(`C:\Users\Public\IH.EXE`, ""), t0), 1, "filename from an object, to_ids \"1\"")
	assert.Len(t, set.Match(conn("203.0.113.77", 80), t0), 1)
	assert.Len(t, set.Match(web("http://cdn2.invoices-cdn.example/"), t0), 1, "domain with subdomains")
	assert.Len(t, set.Match(web("http://invoices-cdn.example/get.php?id=7"), t0), 2, "url and its domain")
	assert.Len(t, set.Match(mutex(`Global\inv-7d1e`), t0), 1)
	assert.Empty(t, set.Match(mutex("inv-7d1f"), t0))
	assert.Empty(t, set.Match(conn("192.0.2.200", 80), t0), "to_ids false")
	// Trees.
	r := trees.Eval(conn("198.51.100.77", 8443), t0, nil)
	require.Len(t, r, 1)
	assert.Equal(t, "a0000000-0000-4000-8000-000000000003", r[0].Tree.ID)
	require.Len(t, r[0].Tree.Indicators, 1)
	ipp := r[0].Tree.Indicators[0]
	assert.Equal(t, ioc.KindIPv4, ipp.Kind)
	assert.Equal(t, "198.51.100.77", ipp.Value, "the indicator is a real address")
	assert.Contains(t, ipp.Description, "|8443", "the description says the port too")
	assert.Empty(t, trees.Eval(conn("198.51.100.77", 443), t0, nil))
	assert.Len(t, trees.Eval(reg("InvoiceHelper", `C:\Users\Public\ih.exe`), t0, nil), 1)
	assert.Empty(t, trees.Eval(reg("InvoiceHelper", `C:\Users\Public\other.exe`), t0, nil))
}

func TestEventList(t *testing.T) {
	res := parseFile(t, "events-list.json")
	require.Len(t, res.Indicators, 2)
	assert.Equal(t, ioc.KindCIDR, res.Indicators[0].Kind)
	assert.Equal(t, ioc.SeverityLow, res.Indicators[0].Severity)
	assert.Equal(t, ioc.SeverityUnknown, res.Indicators[1].Severity)
	assert.Equal(t, "86f7e437faa5a7fce15d1ddcb9eaeaea377667b8", res.Indicators[1].Value)
	resp, err := Parse([]byte(`{"response": [{"Event": {"Attribute": [{"type": "md5", "to_ids": true, "value": "0cc175b9c0f1b6a831c399e269772661"}]}}]}`), Config{})
	require.NoError(t, err)
	assert.Len(t, resp.Indicators, 1)
}

// TestDeleted: deleted attributes and the attributes of deleted objects
// are no indicators.
func TestDeleted(t *testing.T) {
	res, err := Parse([]byte(`{"Event": {"Attribute": [
  {"type": "md5", "to_ids": true, "deleted": true, "value": "0cc175b9c0f1b6a831c399e269772661"},
  {"type": "md5", "to_ids": true, "value": "92eb5ffee6ae2fec3ad71c777531578f"}],
 "Object": [
  {"deleted": true, "Attribute": [{"type": "sha1", "to_ids": true, "value": "86f7e437faa5a7fce15d1ddcb9eaeaea377667b8"}]},
  {"deleted": false, "Attribute": [{"type": "domain", "to_ids": true, "value": "kept.example"}]}]}}`), Config{})
	require.NoError(t, err)
	var got []string
	for _, ind := range res.Indicators {
		got = append(got, ind.Value)
	}
	assert.Equal(t, []string{"92eb5ffee6ae2fec3ad71c777531578f", "kept.example"}, got)
}

// TestURLWithoutScheme: a URL stored without scheme matches over http
// and https.
func TestURLWithoutScheme(t *testing.T) {
	res, err := Parse([]byte(`{"Event": {"Attribute": [{"type": "url", "to_ids": true, "value": "dl.cordon-test.example/a/payload.bin"}]}}`), Config{})
	require.NoError(t, err)
	set, err := ioc.Compile(res.Indicators)
	require.NoError(t, err)
	for _, u := range []string{"http://dl.cordon-test.example/a/payload.bin", "https://dl.cordon-test.example/a/payload.bin"} {
		ev := feedtest.Event(ioc.EventHTTP, "linux")
		ev.HTTP = &ioc.HTTPEvent{URL: u}
		assert.Len(t, set.Match(&ev, t0), 1, u)
	}
	ev := feedtest.Event(ioc.EventHTTP, "linux")
	ev.HTTP = &ioc.HTTPEvent{URL: "https://dl.cordon-test.example/a/other.bin"}
	assert.Empty(t, set.Match(&ev, t0))
}

func TestErrors(t *testing.T) {
	cases := []struct {
		name, in   string
		path       string
		line       int
		wantReason string
	}{
		{"empty", "  ", "", 0, "empty"},
		{"syntax", "{\"Event\": {\n  \"Attribute\": [,]}}", "", 2, "malformed JSON"},
		{"not object", "42", "", 1, "not a JSON object"},
		{"no event", `[{"Event": {}}, {"Evnt": {}}]`, "[1]", 0, `no "Event"`},
		{"bad hash", `{"Event": {"Attribute": [{"type": "md5", "to_ids": true, "value": "abc"}]}}`, "Event.Attribute[0].value", 0, "md5"},
		{"bad object attr", `{"Event": {"Object": [{"Attribute": [{"type": "ip-dst", "to_ids": true, "value": "300.1.1.1"}]}]}}`, "Event.Object[0].Attribute[0].value", 0, "not an IP"},
		{"bad port", `{"Event": {"Attribute": [{"type": "ip-dst|port", "to_ids": true, "value": "192.0.2.1|70000"}]}}`, "Event.Attribute[0].value", 0, "port"},
		{"bad parts", `{"Event": {"Attribute": [{"type": "domain|ip", "to_ids": true, "value": "a.example"}]}}`, "Event.Attribute[0].value", 0, "parts"},
		{"bad level", `{"Event": {"threat_level_id": "9"}}`, "Event.threat_level_id", 0, "not 1, 2, 3 or 4"},
		{"missing type", `{"Event": {"Attribute": [{"to_ids": true, "value": "x"}]}}`, "Event.Attribute[0].type", 0, "missing"},
		{"wrong json type", `{"Event": {"Attribute": {"type": "md5"}}}`, "Event.Attribute", 1, "object"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := Parse([]byte(c.in), Config{Name: "m.json"})
			require.Error(t, err)
			assert.Nil(t, res)
			var e *Error
			require.True(t, errors.As(err, &e), "%T %v", err, err)
			assert.ErrorIs(t, err, ErrSyntax)
			assert.Equal(t, "m.json", e.File)
			assert.Equal(t, c.path, e.Path, err.Error())
			assert.Equal(t, c.line, e.Line, err.Error())
			assert.Contains(t, e.Reason, c.wantReason)
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, n := range []string{"event.json", "events-list.json"} {
		b, _ := os.ReadFile("testdata/" + n)
		f.Add(b)
	}
	f.Add([]byte(`{"response":[{"Event":{"Attribute":[{"type":"regkey|value","to_ids":1,"value":"HKLM\\x|y"}]}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := Parse(data, Config{})
		if !feedtest.Accepted[*Error](t, err) {
			return
		}
		feedtest.Compiles(t, res.Indicators, res.Trees)
	})
}

// TestAdversarial: a byte order mark, leading blank lines, values of the
// wrong JSON type deep in a list: the errors name the attribute by its
// index, and lines count from the file's first.
func TestAdversarial(t *testing.T) {
	const md5 = "900150983cd24fb0d6963f7d28e17f72"
	res, err := Parse([]byte("\ufeff\r\n"+`{"Event": {"threat_level_id": 1, "Attribute": [{"type": "md5", "value": "`+md5+`", "to_ids": "1"}]}}`), Config{Name: "m.json"})
	require.NoError(t, err)
	require.Len(t, res.Indicators, 1)
	assert.Equal(t, ioc.SeverityHigh, res.Indicators[0].Severity)
	set, err := ioc.Compile(res.Indicators)
	require.NoError(t, err)
	ev := feedtest.Event(ioc.EventFile, "linux")
	ev.File = &ioc.FileEvent{Path: "/tmp/a", MD5: md5}
	assert.Len(t, set.Match(&ev, t0), 1)
	ev.File.MD5 = "900150983cd24fb0d6963f7d28e17f73"
	assert.Empty(t, set.Match(&ev, t0))

	cases := []struct {
		name, in   string
		path       string
		line       int
		wantReason string
	}{
		{"to_ids not a boolean", `[{"Event": {}}, {"Event": {"Attribute": [{"type": "md5", "value": "` + md5 + `", "to_ids": true}, {"type": "md5", "value": "x", "to_ids": "yes"}]}}]`,
			"[1].Event.Attribute[1].to_ids", 0, `string "yes" where a boolean`},
		{"value an object", `{"Event": {"Object": [{"Attribute": []}, {"Attribute": [{"type": "md5", "value": {"a": 1}, "to_ids": true}]}]}}`,
			"Event.Object[1].Attribute[0].value", 0, "object where a string"},
		{"tags not a list", `{"response": [{"Event": {"Attribute": [{"type": "md5", "value": "x", "Tag": 5}]}}]}`,
			"response[0].Event.Attribute[0].Tag", 0, "number where an array"},
		{"object not an object", `{"Event": {"Object": [7]}}`, "Event.Object[0]", 0, "number where an object"},
		{"syntax after blank lines", "\n\n\n{\"Event\": {\n  \"Attribute\": [,]}}", "", 5, "malformed JSON"},
		{"not object after blank lines", "\n\n 42", "", 3, "not a JSON object"},
		{"level of the wrong type", "{\"Event\":\n {\"threat_level_id\": {}}}", "Event.threat_level_id", 0, "object where a string"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := Parse([]byte(c.in), Config{Name: "m.json"})
			require.Error(t, err)
			assert.Nil(t, res)
			var e *Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, c.path, e.Path, err.Error())
			assert.Equal(t, c.line, e.Line, err.Error())
			assert.Contains(t, e.Reason, c.wantReason)
			if c.path != "" {
				assert.Contains(t, err.Error(), c.path)
			}
		})
	}
}
