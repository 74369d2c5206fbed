package openioc

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/cordonsec/cordon/ioc"
	"github.com/cordonsec/cordon/ioc/feed/feedtest"
	"github.com/cordonsec/cordon/ioc/feed/logic"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = feedtest.T0

// newEvent returns an event from a Windows host, where OpenIOCs run.
func newEvent(kind ioc.EventKind) ioc.Event { return feedtest.Event(kind, "windows") }

func parseFile(t *testing.T, name string, cfg Config) *Result {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	require.NoError(t, err)
	cfg.Name = name
	res, err := Parse(data, cfg)
	require.NoError(t, err)
	return res
}

func fileEv(path string, size int64) *ioc.Event {
	e := newEvent(ioc.EventFile)
	e.File = &ioc.FileEvent{Path: path, Size: size}
	return &e
}

func connEv(addr string, port int) *ioc.Event {
	e := newEvent(ioc.EventNetwork)
	e.Network = &ioc.NetworkEvent{Protocol: "tcp", RemoteAddress: addr, RemotePort: port}
	return &e
}

func regEv(key, value, data string) *ioc.Event {
	e := newEvent(ioc.EventRegistry)
	e.Registry = &ioc.RegistryEvent{Key: key, ValueName: value, Data: data}
	return &e
}

func procEv(name, parent, args string) *ioc.Event {
	e := newEvent(ioc.EventProcess)
	e.Process = &ioc.ProcessEvent{Name: name, ParentName: parent, CommandLine: args, Path: `C:\Windows\System32\WindowsPowerShell\v1.0\` + name}
	return &e
}

func dnsEv(q string) *ioc.Event {
	e := newEvent(ioc.EventDNS)
	e.DNS = &ioc.DNSEvent{Query: q}
	return &e
}

func httpEv(u string) *ioc.Event {
	e := newEvent(ioc.EventHTTP)
	e.HTTP = &ioc.HTTPEvent{URL: u}
	return &e
}

type evCase struct {
	name  string
	ev    *ioc.Event
	match bool
}

func runTree(t *testing.T, res *Result, cases []evCase) {
	t.Helper()
	require.Empty(t, res.Indicators)
	require.Len(t, res.Trees, 1)
	set, err := logic.Compile(res.Trees)
	require.NoError(t, err)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := set.Eval(c.ev, t0, nil)
			if !c.match {
				assert.Empty(t, r)
				return
			}
			require.Len(t, r, 1)
			assert.Equal(t, res.ID, r[0].Tree.ID)
			assert.Equal(t, ioc.EngineOpenIOC, r[0].Tree.Engine)
		})
	}
}

func TestOpenIOC10(t *testing.T) {
	res := parseFile(t, "dropper-1.0.ioc", Config{Severity: ioc.SeverityHigh})
	assert.Equal(t, V10, res.Version)
	assert.Equal(t, "6d2a1b7e-cord-4e00-a000-000000000010", res.ID)
	assert.Equal(t, "CORDON-TEST dropper (1.0)", res.Description)
	require.Len(t, res.Warnings, 1)
	assert.Equal(t, "EventLogItem/message", res.Warnings[0].Term)
	assert.Equal(t, 38, res.Warnings[0].Line)
	assert.Equal(t, ioc.SeverityHigh, res.Trees[0].Severity)
	runTree(t, res, []evCase{
		{"scr in temp", fileEv(`C:\Users\bob\AppData\Local\Temp\qx81.SCR`, 100), true},
		{"the excluded screensaver", fileEv(`C:\Users\bob\AppData\Local\Temp\sstext3d.scr`, 100), false},
		{"scr elsewhere", fileEv(`C:\Users\bob\Desktop\qx81.scr`, 100), false},
		{"exe in temp", fileEv(`C:\Users\bob\AppData\Local\Temp\qx81.exe`, 100), false},
		{"c2 address and port", connEv("192.0.2.31", 8531), true},
		{"c2 address, other port", connEv("192.0.2.31", 8532), false},
		{"service installed", regEv(`HKLM\SYSTEM\CurrentControlSet\Services\CordonTestSvc\Parameters`, "ServiceDll", ""), true},
		{"other service", regEv(`HKLM\SYSTEM\CurrentControlSet\Services\CordonTestSvc2`, "ImagePath", ""), false},
	})
}

func TestOpenIOC11(t *testing.T) {
	res := parseFile(t, "loader-1.1.ioc", Config{})
	assert.Equal(t, V11, res.Version)
	assert.Empty(t, res.Warnings)
	runTree(t, res, []evCase{
		{"word spawns encoded powershell", procEv("powershell.exe", "WINWORD.EXE", "powershell.exe -NoP -Enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoA"), true},
		{"excel spawns it", procEv("powershell.exe", "excel.exe", "powershell.exe -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoA"), false},
		{"short argument", procEv("powershell.exe", "winword.exe", "powershell.exe -enc SQBF"), false},
		{"run key with powershell", regEv(`HKCU\Software\Microsoft\Windows\CurrentVersion\Run`, "Updater", "powershell -w hidden -f x.ps1"), true},
		{"run key named OneDrive", regEv(`HKCU\Software\Microsoft\Windows\CurrentVersion\Run`, "OneDrive", "powershell -w hidden -f x.ps1"), false},
		{"run key named onedrive (case preserved)", regEv(`HKCU\Software\Microsoft\Windows\CurrentVersion\Run`, "onedrive", "powershell -f x.ps1"), true},
		{"large script", fileEv(`D:\share\big.PS1`, 2_000_000), true},
		{"small script", fileEv(`D:\share\big.ps1`, 999), false},
		{"stage domain", dnsEv("PS-Stage.cordon-test.example."), true},
		{"subdomain is not the host", dnsEv("a.ps-stage.cordon-test.example"), false},
		{"uri", httpEv("https://blog.example/wp-content/uploads/ps/run.txt"), true},
		{"other uri", httpEv("https://blog.example/wp-content/uploads/img/run.txt"), false},
	})
}

// TestSha256IsTree: FileItem/Sha256sum "is" stays a tree, as the atomic
// sha256 set also matches process.sha256; it matches file digests in
// either case, and its severity is the tree's.
func TestSha256IsTree(t *testing.T) {
	res := parseFile(t, "hashes-1.1.ioc", Config{Severity: ioc.SeverityCritical})
	require.Empty(t, res.Indicators)
	require.Len(t, res.Trees, 1)
	assert.Equal(t, ioc.SeverityCritical, res.Trees[0].Severity)
	match := feedtest.Matcher(t, res.Indicators, res.Trees)
	ev := newEvent(ioc.EventFile)
	ev.File = &ioc.FileEvent{Path: `C:\x`, SHA256: "D7A8FBB307D7809469CA9ABCB0082E4F8D5651E46D3CDB762D02D0BF37C9E592"}
	assert.True(t, match(&ev))
	ev.File.SHA256 = "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e593"
	assert.False(t, match(&ev))
	ev = newEvent(ioc.EventProcess)
	ev.Process = &ioc.ProcessEvent{Name: "x.exe", SHA256: "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592"}
	assert.False(t, match(&ev), "a FileItem digest is not a process image's")
}

func TestAtomic(t *testing.T) {
	doc := head11 + "<Indicator operator=\"OR\">\n" + xitem("is", "FileItem/Md5sum", "0CC175B9C0F1B6A831C399E269772661") +
		"<Indicator operator=\"OR\">\n" + xitem("is", "FileItem/Md5sum", "900150983cd24fb0d6963f7d28e17f72") + "</Indicator>\n" +
		"</Indicator></criteria></OpenIOC>"
	res, err := Parse([]byte(doc), Config{Severity: ioc.SeverityCritical})
	require.NoError(t, err)
	require.Empty(t, res.Trees)
	require.Len(t, res.Indicators, 2)
	assert.Equal(t, "0cc175b9c0f1b6a831c399e269772661", res.Indicators[0].Value)
	assert.Equal(t, "x", res.Indicators[0].ID)
	set, err := ioc.Compile(res.Indicators)
	require.NoError(t, err)
	ev := newEvent(ioc.EventFile)
	ev.File = &ioc.FileEvent{Path: `C:\x`, MD5: "900150983CD24FB0D6963F7D28E17F72"}
	m := set.Match(&ev, t0)
	require.Len(t, m, 1)
	assert.Equal(t, ioc.SeverityCritical, m[0].Indicator.Severity)
	ev.File.MD5 = "900150983cd24fb0d6963f7d28e17f73"
	assert.Empty(t, set.Match(&ev, t0))
}

// TestOneItemAsTwo are the regressions of the atomic compilation: an IOC
// of one item matches what the same item does beside a second one.
func TestOneItemAsTwo(t *testing.T) {
	one := func(search, content string) func(*ioc.Event) bool {
		res, err := Parse([]byte(oneItem(search, content, false)), Config{})
		require.NoError(t, err)
		return feedtest.Matcher(t, res.Indicators, res.Trees)
	}
	linux := func(f ioc.FileEvent) *ioc.Event {
		e := feedtest.Event(ioc.EventFile, "linux")
		e.File = &f
		return &e
	}
	t.Run("FileName ignores case on Linux", func(t *testing.T) {
		m := one("FileItem/FileName", "Evil.ELF")
		assert.True(t, m(linux(ioc.FileEvent{Path: "/tmp/evil.elf"})))
		assert.True(t, m(linux(ioc.FileEvent{Name: "EVIL.elf"})))
		assert.False(t, m(linux(ioc.FileEvent{Path: "/tmp/evil.elf.txt"})))
	})
	t.Run("FileName is not a process name", func(t *testing.T) {
		m := one("FileItem/FileName", "evil.exe")
		assert.True(t, m(fileEv(`C:\x\Evil.exe`, 1)))
		assert.False(t, m(procEv("evil.exe", "explorer.exe", "")))
	})
	t.Run("Sha256sum is not a process image's", func(t *testing.T) {
		m := one("FileItem/Sha256sum", "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592")
		ev := newEvent(ioc.EventProcess)
		ev.Process = &ioc.ProcessEvent{Name: "x.exe", SHA256: "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592"}
		assert.False(t, m(&ev))
	})
	t.Run("remoteIP is not a DNS answer", func(t *testing.T) {
		for _, v := range []string{"192.0.2.7", "192.0.2.0/24", "2001:db8::7"} {
			m := one("PortItem/remoteIP", v)
			addr := strings.TrimSuffix(v, "0/24") + "7"
			if !strings.Contains(v, "/") {
				addr = v
			}
			assert.True(t, m(connEv(addr, 443)), v)
			ev := newEvent(ioc.EventDNS)
			ev.DNS = &ioc.DNSEvent{Query: "x.example", Answers: []string{addr}}
			assert.False(t, m(&ev), v)
			host := addr
			if strings.Contains(addr, ":") {
				host = "[" + addr + "]"
			}
			assert.False(t, m(httpEv("http://"+host+"/")), v)
		}
	})
	t.Run("DNS host is not an answer", func(t *testing.T) {
		m := one("DnsEntryItem/Host", "c2.example")
		assert.True(t, m(dnsEv("C2.example")))
		ev := newEvent(ioc.EventDNS)
		ev.DNS = &ioc.DNSEvent{Query: "cdn.example", Answers: []string{"c2.example"}}
		assert.False(t, m(&ev))
		assert.False(t, m(httpEv("http://c2.example/")))
	})
	t.Run("URL ignores the case of the path", func(t *testing.T) {
		m := one("UrlHistoryItem/URL", "http://evil.example/Stage.bin")
		assert.True(t, m(httpEv("http://EVIL.example/stage.BIN")))
	})
	t.Run("mutex ignores case", func(t *testing.T) {
		m := one("ProcessItem/HandleList/Handle/Name", `Global\EvilMx`)
		ev := newEvent(ioc.EventMutex)
		ev.Mutex = &ioc.MutexEvent{Name: "evilmx"}
		assert.True(t, m(&ev))
	})
}

// TestPreserveCaseAtomic: with preserve-case, a URL and a mutex compare
// exactly, as their atomic sets do: they compile atomic.
func TestPreserveCaseAtomic(t *testing.T) {
	for _, c := range []struct{ search, value, same, other string }{
		{"UrlHistoryItem/URL", "http://Evil.example/Stage.bin", "http://evil.EXAMPLE/Stage.bin", "http://evil.example/stage.bin"},
		{"ProcessItem/HandleList/Handle/Name", `Global\EvilMx`, "EvilMx", "evilmx"},
	} {
		res, err := Parse([]byte(oneItem(c.search, c.value, true)), Config{})
		require.NoError(t, err)
		require.Len(t, res.Indicators, 1, c.search)
		require.Empty(t, res.Trees)
		set, err := ioc.Compile(res.Indicators)
		require.NoError(t, err)
		ev := httpEv(c.same)
		if strings.HasPrefix(c.search, "Process") {
			e := newEvent(ioc.EventMutex)
			e.Mutex = &ioc.MutexEvent{Name: c.same}
			ev = &e
		}
		assert.Len(t, set.Match(ev, t0), 1, c.search)
		if ev.HTTP != nil {
			ev.HTTP.URL = c.other
		} else {
			ev.Mutex.Name = c.other
		}
		assert.Empty(t, set.Match(ev, t0), c.search)
	}
}

// TestPreserveCaseIsNotAtomic: an "is" with preserve-case on a name is
// a tree that compares case; on a digest it stays atomic.
func TestPreserveCaseIsNotAtomic(t *testing.T) {
	pc := func(search, content string) string {
		return head11 + "<Indicator operator=\"OR\">\n" + `<IndicatorItem condition="is" preserve-case="true"><Context search="` + search + `"/><Content>` + content + "</Content></IndicatorItem>\n</Indicator></criteria></OpenIOC>"
	}
	res, err := Parse([]byte(pc("FileItem/FileName", "Invoice.EXE")), Config{})
	require.NoError(t, err)
	require.Empty(t, res.Indicators)
	require.Len(t, res.Trees, 1)
	set, err := logic.Compile(res.Trees)
	require.NoError(t, err)
	ev := newEvent(ioc.EventFile)
	ev.File = &ioc.FileEvent{Path: `C:\Users\x\Invoice.EXE`}
	assert.Len(t, set.Eval(&ev, t0, nil), 1)
	ev.File = &ioc.FileEvent{Path: `C:\Users\x\invoice.exe`}
	assert.Empty(t, set.Eval(&ev, t0, nil))

	res, err = Parse([]byte(pc("FileItem/Md5sum", "0CC175B9C0F1B6A831C399E269772661")), Config{})
	require.NoError(t, err)
	assert.Empty(t, res.Trees)
	require.Len(t, res.Indicators, 1)
}

// TestProcessNameIsNotParentName: ProcessItem/name never matches the
// parent's name, which the atomic process-name set would.
func TestProcessNameIsNotParentName(t *testing.T) {
	doc := head11 + "<Indicator operator=\"OR\">\n" + xitem("is", "ProcessItem/name", "dropper.exe") + "</Indicator></criteria></OpenIOC>"
	res, err := Parse([]byte(doc), Config{})
	require.NoError(t, err)
	atomic, err := ioc.Compile(res.Indicators)
	require.NoError(t, err)
	trees, err := logic.Compile(res.Trees)
	require.NoError(t, err)
	matches := func(name, parent string) bool {
		ev := newEvent(ioc.EventProcess)
		ev.Process = &ioc.ProcessEvent{Name: name, ParentName: parent, PID: 7}
		return len(atomic.Match(&ev, t0))+len(trees.Eval(&ev, t0, nil)) > 0
	}
	assert.True(t, matches("Dropper.exe", "explorer.exe"))
	assert.False(t, matches("cmd.exe", "dropper.exe"))
}

const head11 = `<OpenIOC xmlns="http://openioc.org/schemas/OpenIOC_1.1" id="x"><criteria>
`

func xitem(cond, search, content string) string {
	return `<IndicatorItem condition="` + cond + `"><Context search="` + search + `"/><Content>` + content + "</Content></IndicatorItem>\n"
}

func TestErrors(t *testing.T) {
	cases := []struct {
		name, in   string
		cfg        Config
		line       int
		wantReason string
		sentinel   error
	}{
		{"malformed", head11 + "<Indicator operator=\"OR\">\n</criteria></OpenIOC>", Config{}, 3, "malformed XML", ErrSyntax},
		{"root", "<stix/>", Config{}, 1, "neither ioc", ErrSyntax},
		{"no id", `<ioc><definition/></ioc>`, Config{}, 1, "no id", ErrSyntax},
		{"no criteria", `<OpenIOC id="x"><metadata/></OpenIOC>`, Config{}, 1, "no criteria", ErrSyntax},
		{"no indicator", head11 + "</criteria></OpenIOC>", Config{}, 1, "no Indicator", ErrSyntax},
		{"operator", head11 + "<Indicator operator=\"XOR\">\n" + xitem("is", "FileItem/FileName", "a") + "</Indicator></criteria></OpenIOC>", Config{}, 2, "operator", ErrSyntax},
		{"condition", head11 + "<Indicator operator=\"OR\">\n" + xitem("is", "FileItem/FileName", "a") + xitem("like", "FileItem/FileName", "b") + "</Indicator></criteria></OpenIOC>", Config{}, 4, "condition \"like\"", ErrSyntax},
		{"no context", head11 + "<Indicator operator=\"OR\">\n<IndicatorItem condition=\"is\"><Content>a</Content></IndicatorItem></Indicator></criteria></OpenIOC>", Config{}, 3, "no Context", ErrSyntax},
		{"empty content", head11 + "<Indicator operator=\"OR\">\n" + xitem("is", "FileItem/FileName", " ") + "</Indicator></criteria></OpenIOC>", Config{}, 3, "empty", ErrSyntax},
		{"bad regex", head11 + "<Indicator operator=\"OR\">\n" + xitem("matches", "FileItem/FileName", "(a") + "</Indicator></criteria></OpenIOC>", Config{}, 3, "regular expression", ErrSyntax},
		{"bad number", head11 + "<Indicator operator=\"OR\">\n" + xitem("greater-than", "FileItem/SizeInBytes", "big") + "</Indicator></criteria></OpenIOC>", Config{}, 3, "integer", ErrSyntax},
		{"bad atomic md5", head11 + "<Indicator operator=\"OR\">\n" + xitem("is", "FileItem/Md5sum", "0cc175b9") + "</Indicator></criteria></OpenIOC>", Config{}, 3, "Md5sum", ErrSyntax},
		{"bad sha256, a tree", head11 + "<Indicator operator=\"OR\">\n" + xitem("is", "FileItem/Sha256sum", "e3b0c442") + "</Indicator></criteria></OpenIOC>", Config{}, 3, "Sha256sum", ErrSyntax},
		{"bad negate", head11 + "<Indicator operator=\"OR\">\n<IndicatorItem condition=\"is\" negate=\"maybe\"><Context search=\"FileItem/FileName\"/><Content>a</Content></IndicatorItem></Indicator></criteria></OpenIOC>", Config{}, 3, "negate", ErrSyntax},
		{"strict", head11 + "<Indicator operator=\"OR\">\n" + xitem("is", "FileItem/FileName", "a") + xitem("is", "HookItem/HookedFunction", "b") + "</Indicator></criteria></OpenIOC>", Config{Strict: true}, 4, "not supported", ErrUnsupported},
		{"deep", head11 + strings.Repeat("<Indicator operator=\"OR\">", 130) + "</criteria></OpenIOC>", Config{}, 2, "nested deeper", ErrSyntax},
		{"charset", `<?xml version="1.0" encoding="koi8-r"?><ioc/>`, Config{}, 1, "encoding", ErrSyntax},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.Name = "t.ioc"
			res, err := Parse([]byte(c.in), c.cfg)
			require.Error(t, err)
			assert.Nil(t, res)
			var e *Error
			require.True(t, errors.As(err, &e), "%T %v", err, err)
			assert.ErrorIs(t, err, c.sentinel)
			assert.Equal(t, "t.ioc", e.File)
			assert.Equal(t, c.line, e.Line, err.Error())
			assert.Contains(t, e.Reason, c.wantReason)
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, n := range []string{"dropper-1.0.ioc", "loader-1.1.ioc", "hashes-1.1.ioc"} {
		b, _ := os.ReadFile("testdata/" + n)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := Parse(data, Config{})
		if !feedtest.Accepted[*Error](t, err) {
			return
		}
		feedtest.Compiles(t, res.Indicators, res.Trees)
	})
}

func TestTermsSorted(t *testing.T) {
	ts := Terms()
	assert.True(t, slices.IsSorted(ts), "%v", ts)
	assert.Contains(t, ts, "fileitem/md5sum")
	assert.Contains(t, ts, "registryitem/path")
}
