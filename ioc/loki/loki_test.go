package loki

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/cordonsec/cordon/ioc"
	"github.com/cordonsec/cordon/ioc/feed/feedtest"
	"github.com/cordonsec/cordon/ioc/feed/logic"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = feedtest.T0

func load(t *testing.T, file string) *Result {
	t.Helper()
	list, ok := ListOf(file)
	require.True(t, ok)
	f, err := os.Open("testdata/" + file)
	require.NoError(t, err)
	defer f.Close()
	res, err := Parse(f, list, Config{Name: file})
	require.NoError(t, err)
	return res
}

func fileEv(os, path, md5, sha256 string) *ioc.Event {
	e := feedtest.Event(ioc.EventFile, os)
	e.File = &ioc.FileEvent{Path: path, MD5: md5, SHA256: sha256}
	return &e
}

func TestHashList(t *testing.T) {
	res := load(t, "hash-iocs.txt")
	require.Len(t, res.Indicators, 3)
	assert.Equal(t, ioc.SeverityHigh, res.Indicators[0].Severity)
	assert.Equal(t, 85, res.Indicators[0].Score)
	assert.Equal(t, "Test SHA-1 without score", res.Indicators[1].Description)
	assert.Equal(t, 100, res.Indicators[2].Score)
	assert.Equal(t, ioc.SeverityCritical, res.Indicators[2].Severity)
	set, err := ioc.Compile(res.Indicators)
	require.NoError(t, err)
	m := set.Match(fileEv("linux", "/tmp/x", "5D41402ABC4B2A76B9719D911017C592", ""), t0)
	require.Len(t, m, 1)
	assert.Equal(t, "hash-iocs.txt", m[0].Indicator.Source)
	assert.Empty(t, set.Match(fileEv("linux", "/tmp/x", "5d41402abc4b2a76b9719d911017c593", ""), t0))
	assert.Len(t, set.Match(fileEv("linux", "/tmp/x", "", "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"), t0), 1)
}

func TestC2List(t *testing.T) {
	res := load(t, "c2-iocs.txt")
	require.Len(t, res.Indicators, 3)
	set, err := ioc.Compile(res.Indicators)
	require.NoError(t, err)
	dns := func(q string) *ioc.Event {
		e := feedtest.Event(ioc.EventDNS, "linux")
		e.DNS = &ioc.DNSEvent{Query: q}
		return &e
	}
	conn := func(a string) *ioc.Event {
		e := feedtest.Event(ioc.EventNetwork, "linux")
		e.Network = &ioc.NetworkEvent{RemoteAddress: a, RemotePort: 443}
		return &e
	}
	assert.Len(t, set.Match(dns("x.c2.cordon-test.example"), t0), 1)
	assert.Empty(t, set.Match(dns("c2.cordon-test.example.org"), t0))
	assert.Len(t, set.Match(conn("192.0.2.66"), t0), 1)
	assert.Empty(t, set.Match(conn("192.0.2.67"), t0))
	assert.Len(t, set.Match(conn("2001:db8:c2:ffff::9"), t0), 1)
	assert.Empty(t, set.Match(conn("2001:db8:c3::9"), t0))
}

func TestFilenameList(t *testing.T) {
	res := load(t, "filename-iocs.txt")
	require.Len(t, res.Trees, 3)
	assert.Equal(t, "filename-iocs.txt:2", res.Trees[0].ID)
	assert.Equal(t, ioc.SeverityHigh, res.Trees[0].Severity)
	assert.Equal(t, `\\AppData\\Local\\Temp\\[a-z]{8}\.scr$`, res.Trees[0].Name)
	for _, tr := range res.Trees {
		assert.Empty(t, tr.Indicators, "%s: a regular expression is no indicator value", tr.ID)
	}
	set, err := logic.Compile(res.Trees)
	require.NoError(t, err)
	cases := []struct {
		ev   *ioc.Event
		want string
	}{
		{fileEv("windows", `C:\Users\bob\AppData\Local\Temp\qwertyui.scr`, "", ""), "filename-iocs.txt:2"},
		{fileEv("windows", `C:\Users\bob\AppData\Local\Temp\qwertyu.scr`, "", ""), ""},
		{fileEv("windows", `C:\Users\bob\AppData\Local\Temp\screensaver-demo\abcdefgh.scr`, "", ""), ""},
		{fileEv("linux", "/tmp/.a1b2c3/kworkerd", "", ""), "filename-iocs.txt:3"},
		{fileEv("linux", "/tmp/.a1b2c3/kworkerd2", "", ""), ""},
		{fileEv("windows", `C:\WINDOWS\Tasks\upd.exe`, "", ""), "filename-iocs.txt:4"},
	}
	for _, c := range cases {
		res := set.Eval(c.ev, t0, nil)
		if c.want == "" {
			assert.Empty(t, res, c.ev.File.Path)
			continue
		}
		require.Len(t, res, 1, c.ev.File.Path)
		assert.Equal(t, c.want, res[0].Tree.ID)
	}
	proc := feedtest.Event(ioc.EventProcess, "linux")
	proc.Process = &ioc.ProcessEvent{Name: "kworkerd", Path: "/tmp/.zzzzzz/kworkerd"}
	assert.Len(t, set.Eval(&proc, t0, nil), 1)
}

// TestSkipped: what Loki would read but cordon cannot, or Loki ignores
// too, is a warning that skips the entry, or with Strict an error.
func TestSkipped(t *testing.T) {
	in := "ok\\.exe;10\n(?i)\\\\temp\\\\(?!legit)[a-z]+\\.exe;80\nb\\.exe;50;(a)\\1\n"
	res, err := Parse(strings.NewReader(in), FilenameList, Config{Name: "f.txt"})
	require.NoError(t, err)
	require.Len(t, res.Trees, 1)
	assert.Equal(t, "f.txt:1", res.Trees[0].ID)
	require.Len(t, res.Warnings, 2)
	assert.Contains(t, res.Warnings[0], "f.txt:2: ")
	assert.Contains(t, res.Warnings[0], "RE2")
	assert.Contains(t, res.Warnings[1], "f.txt:3: ")

	_, err = Parse(strings.NewReader(in), FilenameList, Config{Name: "f.txt", Strict: true})
	var e *Error
	require.True(t, errors.As(err, &e), "%v", err)
	assert.Equal(t, 2, e.Line)
	assert.Contains(t, e.Reason, "RE2")

	hashes := "D41D8CD98F00B204E9800998ECF8427E;empty\n5d41402abc4b2a76b9719d911017c592;hello\n" +
		"01ba4719c80b6fe911b091a7c05124b64eeece964e09c058ef8f9805daca546b;90;newline\n"
	res, err = Parse(strings.NewReader(hashes), HashList, Config{Name: "h.txt"})
	require.NoError(t, err)
	require.Len(t, res.Indicators, 1)
	assert.Equal(t, "5d41402abc4b2a76b9719d911017c592", res.Indicators[0].Value)
	require.Len(t, res.Warnings, 2)
	assert.Contains(t, res.Warnings[0], "h.txt:1: ")
	assert.Contains(t, res.Warnings[1], "h.txt:3: ")
}

// TestC2Comment: a comment line describes the C2 entries of its block.
func TestC2Comment(t *testing.T) {
	in := "# first campaign\nc2a.cordon-test.example\n192.0.2.70;80\n\nc2b.cordon-test.example\n## second campaign\n198.51.100.0/24\n"
	res, err := Parse(strings.NewReader(in), C2List, Config{})
	require.NoError(t, err)
	var got []string
	for _, ind := range res.Indicators {
		got = append(got, ind.Description)
	}
	assert.Equal(t, []string{"first campaign", "first campaign", "", "second campaign"}, got)
}

func TestErrors(t *testing.T) {
	cases := []struct {
		list       List
		in         string
		line       int
		wantReason string
	}{
		{HashList, "# c\n\n5d41402abc4b2a76b9719d911017c592;x;y\n", 3, "score"},
		{HashList, "5d41402abc4b2a76b9719d911017c592\nabc;comment\n", 2, "not an MD5"},
		{HashList, "5d41402abc4b2a76b9719d911017c59z;1;c\n", 1, "non-hex"},
		{FilenameList, "ok\\.exe;10\n(unclosed;10\n", 2, "regular expression"},
		{FilenameList, "a;1;b;c\n", 1, "4 fields"},
		{FilenameList, "a;1;(\n", 1, "false-positive"},
		{C2List, "good.example\nbad..example\n", 2, "empty label"},
		{C2List, "10.0.0.0/33\n", 1, "CIDR"},
		{C2List, "a.example;1;2\n", 1, "3 fields"},
	}
	for _, c := range cases {
		t.Run(c.list.String()+"/"+c.wantReason, func(t *testing.T) {
			res, err := Parse(strings.NewReader(c.in), c.list, Config{Name: "l.txt"})
			require.Error(t, err)
			assert.Nil(t, res)
			var e *Error
			require.True(t, errors.As(err, &e))
			assert.ErrorIs(t, err, ErrSyntax)
			assert.Equal(t, "l.txt", e.File)
			assert.Equal(t, c.line, e.Line, err.Error())
			assert.Contains(t, e.Reason, c.wantReason)
		})
	}
	_, err := Parse(strings.NewReader(strings.Repeat("a", MaxLine+1)), C2List, Config{})
	assert.ErrorContains(t, err, "longer than")
}

func FuzzParse(f *testing.F) {
	for _, n := range []string{"hash-iocs.txt", "filename-iocs.txt", "c2-iocs.txt"} {
		b, _ := os.ReadFile("testdata/" + n)
		l, _ := ListOf(n)
		f.Add(uint8(l), b)
	}
	f.Fuzz(func(t *testing.T, list uint8, data []byte) {
		l := List(list%3 + 1)
		res, err := Parse(strings.NewReader(string(data)), l, Config{})
		if !feedtest.Accepted[*Error](t, err) {
			return
		}
		feedtest.Compiles(t, res.Indicators, res.Trees)
	})
}
