package stix

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cordonsec/cordon/ioc"
	"github.com/cordonsec/cordon/ioc/feed/feedtest"
	"github.com/cordonsec/cordon/ioc/feed/logic"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = feedtest.T0

func TestBundle(t *testing.T) {
	data, err := os.ReadFile("testdata/bundle.json")
	require.NoError(t, err)
	res, err := Parse(data, Config{Name: "bundle.json", Severity: ioc.SeverityMedium})
	require.NoError(t, err)
	// Atomic: the domain, the expired mutex (its window is kept). The
	// SHA-256 equality is a tree (the atomic sha256 set also matches
	// process.sha256) that reports its indicator.
	require.Len(t, res.Indicators, 2)
	assert.Equal(t, ioc.KindHostname, res.Indicators[0].Kind)
	require.Len(t, res.Trees, 5)
	require.Len(t, res.Trees[0].Indicators, 1)
	hash := res.Trees[0].Indicators[0]
	assert.Equal(t, ioc.KindSHA256, hash.Kind)
	assert.Equal(t, "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9", hash.Value)
	assert.Equal(t, 90, hash.Confidence)
	assert.Equal(t, []string{"malicious-activity"}, hash.Tags)
	assert.Equal(t, 1, res.Revoked)
	require.Len(t, res.YARA, 1)
	assert.Equal(t, "objects[12].pattern", res.YARA[0].Path)
	var reasons []string
	for _, w := range res.Warnings {
		reasons = append(reasons, w.Path+": "+w.Reason)
	}
	assert.Equal(t, []string{
		"objects[9]: FOLLOWEDBY needs a sequence of events over time",
		"objects[10]: the qualifier REPEATS needs a sequence of events over time",
		"objects[11]: object path x-cordon-thing:value is not evaluated",
		`objects[13]: pattern_type "sigma" is not evaluated`,
	}, reasons)

	set, err := ioc.Compile(res.Indicators)
	require.NoError(t, err)
	trees, err := logic.Compile(res.Trees)
	require.NoError(t, err)

	file := func(path string, size int64, sha string) *ioc.Event {
		e := feedtest.Event(ioc.EventFile, "windows")
		e.File = &ioc.FileEvent{Path: path, Size: size, SHA256: sha}
		return &e
	}
	conn := func(a string, port int) *ioc.Event {
		e := feedtest.Event(ioc.EventNetwork, "linux")
		e.Network = &ioc.NetworkEvent{Protocol: "tcp", RemoteAddress: a, RemotePort: port}
		return &e
	}
	proc := func(name, cmd string) *ioc.Event {
		e := feedtest.Event(ioc.EventProcess, "linux")
		e.Process = &ioc.ProcessEvent{Name: name, CommandLine: cmd}
		return &e
	}
	reg := func(key, name, data string) *ioc.Event {
		e := feedtest.Event(ioc.EventRegistry, "windows")
		e.Registry = &ioc.RegistryEvent{Key: key, ValueName: name, Data: data}
		return &e
	}
	dns := func(q string) *ioc.Event {
		e := feedtest.Event(ioc.EventDNS, "linux")
		e.DNS = &ioc.DNSEvent{Query: q}
		return &e
	}
	mutex := func(n string) *ioc.Event {
		e := feedtest.Event(ioc.EventMutex, "windows")
		e.Mutex = &ioc.MutexEvent{Name: n}
		return &e
	}
	// Atomic matches and near misses.
	assert.Len(t, trees.Eval(file(`C:\a.bin`, 1, "B94D27B9934D3E08A52E52D7DA7DABFAC484EFE37A5380EE9088F7ACE2EFCDE9"), t0, nil), 1)
	assert.Empty(t, trees.Eval(file(`C:\a.bin`, 1, "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde8"), t0, nil))
	imageEv := proc("a.bin", "")
	imageEv.Process.SHA256 = "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
	assert.Empty(t, trees.Eval(imageEv, t0, nil), "a file hash is not a process image's")
	assert.Len(t, set.Match(dns("Beacon.cordon-test.example"), t0), 1)
	assert.Empty(t, set.Match(dns("x.beacon.cordon-test.example"), t0), "domain-name equality is exact")
	assert.Empty(t, set.Match(mutex("cordon-expired"), t0), "valid_until passed")
	assert.Len(t, set.Match(mutex("cordon-expired"), time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)), 1)
	assert.Empty(t, set.Match(mutex("cordon-revoked"), t0), "revoked")

	cases := []struct {
		name string
		ev   *ioc.Event
		want string
	}{
		{"subset and port", conn("198.19.4.4", 8443), "indicator--00000000-cord-4000-8000-000000000003"},
		{"subset, other port", conn("198.19.4.4", 443), ""},
		{"outside the prefix", conn("198.20.0.1", 4444), ""},
		{"second observation", conn("2001:db8:c2:0:0:0:0:7", 443), "indicator--00000000-cord-4000-8000-000000000003"},
		{"miner by name", proc("xmrig", "./xmrig"), "indicator--00000000-cord-4000-8000-000000000004"},
		{"miner by argument", proc("kthreadd2", "./k --donate-level=1 -o pool"), "indicator--00000000-cord-4000-8000-000000000004"},
		{"argument, excluded name", proc("sysmon", "--donate-level 1"), ""},
		{"name is case-sensitive", proc("XMRig", "./XMRig"), ""},
		{"run value, other data", reg(`HKLM\Software\Microsoft\Windows\CurrentVersion\Run`, "CordonTest", `C:\Users\x\evil.exe`), "indicator--00000000-cord-4000-8000-000000000005"},
		{"run value, allowed data", reg(`HKLM\Software\Microsoft\Windows\CurrentVersion\Run`, "CordonTest", `C:\Program Files\Cordon\ok.exe`), ""},
		{"run value, other name", reg(`HKLM\Software\Microsoft\Windows\CurrentVersion\Run`, "Other", `C:\x.exe`), ""},
		{"big script in temp", file(`C:\Windows\Temp\inst.ps1`, 600000, ""), "indicator--00000000-cord-4000-8000-000000000006"},
		{"small script in temp", file(`C:\Windows\Temp\inst.ps1`, 6000, ""), ""},
		{"big script elsewhere", file(`C:\Users\Temp\inst.ps1`, 600000, ""), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := trees.Eval(c.ev, t0, nil)
			if c.want == "" {
				assert.Empty(t, r)
				return
			}
			require.Len(t, r, 1)
			assert.Equal(t, c.want, r[0].Tree.ID)
			assert.Equal(t, ioc.EngineSTIX, r[0].Tree.Engine)
			assert.Equal(t, ioc.SeverityMedium, r[0].Tree.Severity)
		})
	}
	// The script indicator is valid until 2027.
	assert.Empty(t, trees.Eval(file(`C:\Windows\Temp\inst.ps1`, 600000, ""), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), nil))
}

func TestPatternGrammar(t *testing.T) {
	good := []string{
		"[file:hashes.MD5 = '0cc175b9c0f1b6a831c399e269772661']",
		"[a:b = 'x'] AND ([c:d = 1] OR [e:f[0].g != 2.5]) FOLLOWEDBY [h:i = true]",
		"[file:name = 'it''s'] WITHIN 5 SECONDS",
		"[file:name NOT IN ('a', 'b\\'c')] START t'2026-01-01T00:00:00Z' STOP t'2026-02-01T00:00:00Z'",
		"[artifact:payload_bin = b'aGk=' OR artifact:x = h'00ff']",
		"([x:y = -1])",
	}
	for _, g := range good {
		_, err := parsePattern(g)
		if g == "[file:name = 'it''s'] WITHIN 5 SECONDS" {
			// Two adjacent strings are not a value.
			assert.Error(t, err, g)
			continue
		}
		assert.NoError(t, err, g)
	}
	bad := []struct {
		in  string
		col int
		msg string
	}{
		{"", 1, "expected '['"},
		{"[file:name = 'a'", 17, "expected ']'"},
		{"[file:name == 'a']", 13, "expected a literal"},
		{"[file:name = 'a] ", 14, "unterminated"},
		{"[file name = 'a']", 7, "expected ':'"},
		{"[file:name = 'a'] AND", 22, "expected '['"},
		{"[file:name = 'a'] WITHIN x SECONDS", 26, "WITHIN needs"},
		{"[file:name IN 'a']", 15, "IN needs a list"},
		{"[file:name = 'a\\x']", 14, "backslash"},
		{"[file:name ! 'a']", 12, "'!'"},
		{"[file:name = 'a'] [b:c = 'd']", 19, "unexpected"},
		{"[file:size = -]", 14, "digit"},
		{"[:name = 'a']", 2, "object type"},
		{strings.Repeat("(", 150) + "[a:b = 1]", 101, "nested deeper"},
	}
	for _, b := range bad {
		_, err := parsePattern(b.in)
		var pe *PatternError
		require.True(t, errors.As(err, &pe), "%q: %v", b.in, err)
		assert.Equal(t, b.col, pe.Column, "%q: %v", b.in, err)
		assert.Contains(t, pe.Reason, b.msg, b.in)
	}
}

func TestErrors(t *testing.T) {
	ind := func(extra string) string {
		return `{"type": "bundle", "objects": [{"type": "malware"}, {"type": "indicator", "spec_version": "2.1", "id": "indicator--1"` + extra + `}]}`
	}
	cases := []struct {
		name, in     string
		strict       bool
		path         string
		line, column int
		msg          string
		sentinel     error
	}{
		{"empty", "", false, "", 0, 0, "empty", ErrSyntax},
		{"malformed", "{\n \"type\": \"bundle\",\n \"objects\": [}", false, "", 3, 14, "malformed JSON", ErrSyntax},
		{"not stix", `{"type": "report"}`, false, "type", 0, 0, "neither bundle nor indicator", ErrSyntax},
		{"no pattern", ind(`, "valid_from": "2026-01-01T00:00:00Z"`), false, "objects[1].pattern", 0, 0, "missing", ErrSyntax},
		{"no valid_from", ind(`, "pattern": "[file:name = 'a']"`), false, "objects[1].valid_from", 0, 0, "required", ErrSyntax},
		{"bad valid_until", ind(`, "pattern": "[file:name = 'a']", "valid_from": "2026-01-01T00:00:00Z", "valid_until": "soon"`), false, "objects[1].valid_until", 0, 0, "RFC 3339", ErrSyntax},
		{"window reversed", ind(`, "pattern": "[file:name = 'a']", "valid_from": "2026-01-01T00:00:00Z", "valid_until": "2025-01-01T00:00:00Z"`), false, "objects[1].valid_until", 0, 0, "not after", ErrSyntax},
		{"confidence", ind(`, "pattern": "[file:name = 'a']", "valid_from": "2026-01-01T00:00:00Z", "confidence": 101`), false, "objects[1].confidence", 0, 0, "0-100", ErrSyntax},
		{"pattern syntax", ind(`, "pattern": "[file:name = 'a' AND]", "valid_from": "2026-01-01T00:00:00Z"`), false, "objects[1].pattern", 0, 21, "object type", ErrSyntax},
		{"atomic value", ind(`, "pattern": "[file:hashes.'SHA-1' = 'abc']", "valid_from": "2026-01-01T00:00:00Z"`), false, "objects[1].pattern", 0, 24, "sha1", ErrSyntax},
		{"tree value", ind(`, "pattern": "[file:size > 'big' AND file:name = 'a']", "valid_from": "2026-01-01T00:00:00Z"`), false, "objects[1].pattern", 0, 2, "integer", ErrSyntax},
		{"bad regex", ind(`, "pattern": "[file:name MATCHES '(a']", "valid_from": "2026-01-01T00:00:00Z"`), false, "objects[1].pattern", 0, 2, "regular expression", ErrSyntax},
		{"PCRE-only regex, strict", ind(`, "pattern": "[file:name MATCHES '(?<=a)b']", "valid_from": "2026-01-01T00:00:00Z"`), true, "objects[1]", 0, 0, "RE2", ErrUnsupported},
		{"wrong type", ind(`, "pattern": 7`), false, "objects[1].pattern", 0, 0, "number", ErrSyntax},
		{"strict", ind(`, "pattern": "[file:name = 'a'] FOLLOWEDBY [file:name = 'b']", "valid_from": "2026-01-01T00:00:00Z"`), true, "objects[1]", 0, 0, "FOLLOWEDBY", ErrUnsupported},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := Parse([]byte(c.in), Config{Name: "b.json", Strict: c.strict})
			require.Error(t, err)
			assert.Nil(t, res)
			var e *Error
			require.True(t, errors.As(err, &e), "%T %v", err, err)
			assert.ErrorIs(t, err, c.sentinel)
			assert.Equal(t, "b.json", e.File)
			assert.Equal(t, c.path, e.Path, err.Error())
			assert.Equal(t, c.line, e.Line, err.Error())
			assert.Equal(t, c.column, e.Column, err.Error())
			assert.Contains(t, e.Reason, c.msg)
		})
	}
}

// TestPCREOnlyRegex: a MATCHES in valid PCRE that RE2 lacks is a warning
// that skips that indicator only; the rest of the bundle loads.
func TestPCREOnlyRegex(t *testing.T) {
	data := `[{"type":"indicator","id":"indicator--1","valid_from":"2026-01-01T00:00:00Z","pattern":"[process:command_line MATCHES '(?i)curl(?=.*sh)']"},
{"type":"indicator","id":"indicator--2","valid_from":"2026-01-01T00:00:00Z","pattern":"[file:name MATCHES '^(a)\\\\1$' AND file:size > 1]"},
{"type":"indicator","id":"indicator--3","valid_from":"2026-01-01T00:00:00Z","pattern":"[file:name MATCHES '^dropper[0-9]+[.]exe$' AND file:size > 1]"}]`
	res, err := Parse([]byte(data), Config{Name: "p.json"})
	require.NoError(t, err)
	require.Len(t, res.Trees, 1)
	assert.Equal(t, "indicator--3", res.Trees[0].ID)
	require.Len(t, res.Warnings, 2)
	assert.Equal(t, "[0]", res.Warnings[0].Path)
	assert.Contains(t, res.Warnings[0].Reason, "RE2")
	assert.Equal(t, "[1]", res.Warnings[1].Path)
	assert.Contains(t, res.Warnings[1].Reason, `\\1`)
}

func TestSingleAndArray(t *testing.T) {
	one := `{"type": "indicator", "id": "indicator--2", "pattern": "[url:value = 'HTTP://Evil.example:80/x']"}`
	res, err := Parse([]byte(one), Config{})
	require.NoError(t, err)
	require.Len(t, res.Indicators, 1)
	assert.Equal(t, "http://evil.example/x", res.Indicators[0].Value)
	assert.Equal(t, "stix", res.Indicators[0].Source)
	two := strings.Replace(one, "indicator--2", "indicator--3", 1)
	res, err = Parse([]byte("["+one+","+two+"]"), Config{})
	require.NoError(t, err)
	assert.Len(t, res.Indicators, 2)
}

// TestVersions: of the objects sharing an id, the one modified last is
// the indicator; a later revoked version revokes it, in any file order.
func TestVersions(t *testing.T) {
	ver := func(mod, pattern string, revoked bool) string {
		return fmt.Sprintf(`{"type": "indicator", "spec_version": "2.1", "id": "indicator--7", "modified": %q, "valid_from": "2026-01-01T00:00:00Z", "revoked": %t, "pattern": %q}`, mod, revoked, pattern)
	}
	v1 := ver("2026-02-01T00:00:00Z", "[domain-name:value = 'old.cordon-test.example']", false)
	v2 := ver("2026-03-01T00:00:00.5Z", "[domain-name:value = 'new.cordon-test.example']", false)
	v3 := ver("2026-04-01T00:00:00Z", "[domain-name:value = 'new.cordon-test.example']", true)
	values := func(objs ...string) ([]string, int) {
		res, err := Parse([]byte(`{"type": "bundle", "id": "bundle--1", "objects": [`+strings.Join(objs, ",")+`]}`), Config{})
		require.NoError(t, err)
		var vs []string
		for _, ind := range res.Indicators {
			vs = append(vs, ind.Value)
		}
		return vs, res.Revoked
	}
	got, revoked := values(v1, v2)
	assert.Equal(t, []string{"new.cordon-test.example"}, got)
	assert.Zero(t, revoked)
	got, _ = values(v2, v1)
	assert.Equal(t, []string{"new.cordon-test.example"}, got)
	got, revoked = values(v1, v3, v2)
	assert.Empty(t, got, "revoked by its latest version")
	assert.Equal(t, 1, revoked)

	_, err := Parse([]byte(`[`+strings.Replace(v1, "2026-02-01T00:00:00Z", "yesterday", 1)+`]`), Config{Name: "b.json"})
	assert.ErrorContains(t, err, "[0].modified")
}

func FuzzParse(f *testing.F) {
	b, _ := os.ReadFile("testdata/bundle.json")
	f.Add(b)
	f.Add([]byte(`{"type":"indicator","id":"i","pattern":"[a:b = 'c'] AND [d:e[*].f NOT LIKE 'g%'] REPEATS 2 TIMES"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := Parse(data, Config{})
		if !feedtest.Accepted[*Error](t, err) {
			return
		}
		feedtest.Compiles(t, res.Indicators, res.Trees)
	})
}

func FuzzPattern(f *testing.F) {
	for _, s := range []string{
		"[file:hashes.'SHA-256' = 'ab'] OR [ipv4-addr:value ISSUBSET '10.0.0.0/8']",
		"([process:name = 'a' AND process:pid > 10] FOLLOWEDBY [x:y = h'00']) WITHIN 1.5 SECONDS",
		"[windows-registry-key:values[*].name NOT MATCHES '^a+$']",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ast, err := parsePattern(s)
		if err != nil {
			var pe *PatternError
			if !errors.As(err, &pe) {
				t.Fatalf("error of type %T", err)
			}
			return
		}
		b := &builder{}
		root, err := b.obs(ast)
		if err != nil {
			return
		}
		if _, err := logic.Compile([]*logic.Tree{{ID: "x", Engine: ioc.EngineSTIX, Root: root}}); err != nil {
			t.Fatalf("tree does not compile: %v", err)
		}
	})
}

// TestAdversarialDocuments: a byte order mark, leading blank lines, long
// chains of AND and OR, and nesting past the tree's bound.
func TestAdversarialDocuments(t *testing.T) {
	bundle := func(pattern string) string {
		return fmt.Sprintf(`{"type": "bundle", "objects": [{"type": "indicator", "spec_version": "2.1", "id": "indicator--1", "valid_from": "2026-01-01T00:00:00Z", "pattern": %q}]}`, pattern)
	}
	mutexEv := func(name string) *ioc.Event {
		ev := feedtest.Event(ioc.EventMutex, "windows")
		ev.Mutex = &ioc.MutexEvent{Name: name}
		return &ev
	}
	matches := func(t *testing.T, res *Result, ev *ioc.Event) bool {
		t.Helper()
		set, err := logic.Compile(res.Trees)
		require.NoError(t, err)
		aset, err := ioc.Compile(res.Indicators)
		require.NoError(t, err)
		return len(set.Eval(ev, t0, nil))+len(aset.Match(ev, t0)) > 0
	}

	t.Run("byte order mark", func(t *testing.T) {
		res, err := Parse([]byte("\ufeff"+bundle("[mutex:name = 'bom-mx']")), Config{Name: "b.json"})
		require.NoError(t, err)
		assert.True(t, matches(t, res, mutexEv("bom-mx")))
		assert.False(t, matches(t, res, mutexEv("bom-mx2")))
	})
	t.Run("lines count from the file's first", func(t *testing.T) {
		_, err := Parse([]byte("\n\n\r\n{\"type\": \"bundle\",\n \"objects\": [}"), Config{Name: "b.json"})
		var e *Error
		require.ErrorAs(t, err, &e)
		assert.Equal(t, 5, e.Line, err.Error())
	})
	t.Run("long chains", func(t *testing.T) {
		for _, p := range []string{
			strings.Repeat("[mutex:name = 'chain-a'] AND ", 500) + "[mutex:name = 'chain-a']",
			"[" + strings.Repeat("mutex:name = 'chain-a' AND ", 500) + "mutex:name = 'chain-a']",
			strings.Repeat("[mutex:name = 'x'] OR ", 500) + "[mutex:name = 'chain-a']",
			"[" + strings.Repeat("mutex:name = 'x' OR ", 500) + "mutex:name = 'chain-a']",
		} {
			res, err := Parse([]byte(bundle(p)), Config{Name: "b.json"})
			require.NoError(t, err, p[:40])
			require.Len(t, res.Trees, 1)
			assert.True(t, matches(t, res, mutexEv("chain-a")), p[:40])
			assert.False(t, matches(t, res, mutexEv("chain-b")), p[:40])
		}
	})
	t.Run("deepest nesting", func(t *testing.T) {
		// AND and OR by turns, each level in parentheses, inside one
		// observation: the deepest the pattern bound allows compiles (the
		// tree stays within logic.MaxDepth) and matches; one more level
		// is an error naming the pattern and the column.
		nested := func(levels int) string {
			var b strings.Builder
			b.WriteString("[")
			for range levels - 1 {
				b.WriteString("mutex:name = 'a' OR mutex:name = 'b' AND (")
			}
			b.WriteString("mutex:name = 'deep-mx'")
			b.WriteString(strings.Repeat(")", levels-1))
			b.WriteString("]")
			return b.String()
		}
		res, err := Parse([]byte(bundle(nested(MaxNesting))), Config{Name: "b.json"})
		require.NoError(t, err)
		feedtest.Compiles(t, res.Indicators, res.Trees)
		ev := mutexEv("b")
		assert.False(t, matches(t, res, ev), "b AND (… deep-mx): the innermost fails")
		assert.True(t, matches(t, res, mutexEv("a")))
		_, err = Parse([]byte(bundle(nested(MaxNesting+1))), Config{Name: "b.json"})
		var e *Error
		require.ErrorAs(t, err, &e)
		assert.Equal(t, "objects[0].pattern", e.Path, err.Error())
		assert.Positive(t, e.Column)
		assert.Contains(t, e.Reason, "nested deeper than")
	})
}

// TestRealNumberOnIntegerProperty: "[file:size > 1.5]" is valid STIX that
// cordon does not evaluate: a warning for that indicator, not an error
// that rejects the bundle.
func TestRealNumberOnIntegerProperty(t *testing.T) {
	doc := `[{"type": "indicator", "id": "indicator--1", "pattern": "[file:size > 1.5]"},
	 {"type": "indicator", "id": "indicator--2", "pattern": "[mutex:name = 'still-loaded']"}]`
	res, err := Parse([]byte(doc), Config{Name: "b.json"})
	require.NoError(t, err)
	require.Len(t, res.Warnings, 1)
	assert.Equal(t, "[0]", res.Warnings[0].Path)
	assert.Contains(t, res.Warnings[0].Reason, "real number 1.5")
	assert.Len(t, res.Indicators, 1)
	_, err = Parse([]byte(doc), Config{Name: "b.json", Strict: true})
	assert.ErrorIs(t, err, ErrUnsupported)
}
