package logic

import (
	"testing"
	"time"

	"github.com/cordonsec/cordon/ioc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func base(kind ioc.EventKind, os string) ioc.Event {
	return ioc.Event{Schema: ioc.EventSchema, ID: "e-1", Time: t0, Host: ioc.Host{ID: "h-1", OS: os}, Kind: kind}
}

func leaf(t testing.TB, c Cond) *Node {
	t.Helper()
	n, err := NewCond(c)
	require.NoError(t, err)
	return n
}

func TestEval(t *testing.T) {
	file := base(ioc.EventFile, "windows")
	file.File = &ioc.FileEvent{Path: `C:\Users\bob\AppData\evil.SCR`, Size: 4096, MD5: "44D88612FEA8A8F36DE82E1278ABB02F"}
	proc := base(ioc.EventProcess, "windows")
	proc.Process = &ioc.ProcessEvent{Name: "powershell.exe", Path: `C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe`, CommandLine: "powershell -enc SQBFAFgA", ParentName: "winword.exe", PID: 42}
	netw := base(ioc.EventNetwork, "linux")
	netw.Network = &ioc.NetworkEvent{Protocol: "TCP", RemoteAddress: "::ffff:198.51.100.7", RemotePort: 4444, LocalPort: 50000}
	dns := base(ioc.EventDNS, "linux")
	dns.DNS = &ioc.DNSEvent{Query: "C2.Evil.example.", Answers: []string{"cdn.example", "192.0.2.9"}}
	reg := base(ioc.EventRegistry, "windows")
	reg.Registry = &ioc.RegistryEvent{Key: `HKLM\Software\Microsoft\Windows\CurrentVersion\Run`, ValueName: "Updater", Data: `C:\ProgramData\u.exe`}
	linuxProc := base(ioc.EventProcess, "linux")
	linuxProc.Process = &ioc.ProcessEvent{Path: "/tmp/.x/kworkerd"}
	web := base(ioc.EventHTTP, "linux")
	web.HTTP = &ioc.HTTPEvent{URL: "HTTP://Dl.Evil.example:80/a/payload.bin?x=1", Method: "get"}

	cases := []struct {
		name  string
		root  func(t testing.TB) *Node
		ev    ioc.Event
		match bool
	}{
		{"md5 equality, case folded", func(t testing.TB) *Node {
			return leaf(t, Cond{Fields: []Field{FileMD5}, Op: OpEq, Values: []string{"44d88612fea8a8f36de82e1278abb02f"}})
		}, file, true},
		{"md5 near miss", func(t testing.TB) *Node {
			return leaf(t, Cond{Fields: []Field{FileMD5}, Op: OpEq, Values: []string{"44d88612fea8a8f36de82e1278abb02e"}})
		}, file, false},
		{"extension and size", func(t testing.TB) *Node {
			return And(leaf(t, Cond{Fields: []Field{FileExt}, Op: OpEq, Values: []string{"scr"}}),
				leaf(t, Cond{Fields: []Field{FileSize}, Op: OpLT, Values: []string{"10000"}}))
		}, file, true},
		{"size too large", func(t testing.TB) *Node {
			return And(leaf(t, Cond{Fields: []Field{FileExt}, Op: OpEq, Values: []string{"scr"}}),
				leaf(t, Cond{Fields: []Field{FileSize}, Op: OpGT, Values: []string{"10000"}}))
		}, file, false},
		{"directory contains", func(t testing.TB) *Node {
			return leaf(t, Cond{Fields: []Field{FileDir}, Op: OpContains, Values: []string{`\AppData`}})
		}, file, true},
		{"case-sensitive suffix misses", func(t testing.TB) *Node {
			return leaf(t, Cond{Fields: []Field{FileName}, Op: OpSuffix, Values: []string{".scr"}, CaseSensitive: true})
		}, file, false},
		{"office spawns encoded powershell", func(t testing.TB) *Node {
			return And(leaf(t, Cond{Fields: []Field{ProcParentName}, Op: OpIn, Values: []string{"excel.exe", "WINWORD.EXE"}}),
				leaf(t, Cond{Fields: []Field{ProcCmdLine}, Op: OpRegex, Values: []string{`-e(nc)?\s+[A-Za-z0-9+/=]{8,}`}}))
		}, proc, true},
		{"isnot on the same value", func(t testing.TB) *Node {
			return leaf(t, Cond{Fields: []Field{ProcName}, Op: OpEq, Values: []string{"powershell.exe"}, Negate: true})
		}, proc, false},
		{"isnot on an absent field", func(t testing.TB) *Node {
			return leaf(t, Cond{Fields: []Field{ProcName}, Op: OpEq, Values: []string{"cmd.exe"}, Negate: true})
		}, file, false},
		{"remote address in CIDR, port", func(t testing.TB) *Node {
			return And(leaf(t, Cond{Fields: []Field{NetRemoteAddr}, Op: OpEq, Values: []string{"198.51.100.0/24"}}),
				leaf(t, Cond{Fields: []Field{NetRemotePort}, Op: OpEq, Values: []string{"4444"}}),
				leaf(t, Cond{Fields: []Field{NetProtocol}, Op: OpEq, Values: []string{"tcp"}, CaseSensitive: true}))
		}, netw, true},
		{"other port", func(t testing.TB) *Node {
			return And(leaf(t, Cond{Fields: []Field{NetRemoteAddr}, Op: OpSubset, Values: []string{"198.51.100.0/24"}}),
				leaf(t, Cond{Fields: []Field{NetRemotePort}, Op: OpEq, Values: []string{"4445"}}))
		}, netw, false},
		{"dns query or answer", func(t testing.TB) *Node {
			return Or(leaf(t, Cond{Fields: []Field{DNSQuery}, Op: OpEq, Values: []string{"nothing.example"}}),
				leaf(t, Cond{Fields: []Field{DNSAnswer, NetRemoteAddr}, Op: OpEq, Values: []string{"192.0.2.9"}}))
		}, dns, true},
		{"dns like", func(t testing.TB) *Node {
			return leaf(t, Cond{Fields: []Field{DNSQuery}, Op: OpLike, Values: []string{"%.evil.example"}})
		}, dns, true},
		{"registry run key and data", func(t testing.TB) *Node {
			return And(leaf(t, Cond{Fields: []Field{RegKeyPath}, Op: OpEq, Values: []string{`Software\Microsoft\Windows\CurrentVersion\Run`}}),
				leaf(t, Cond{Fields: []Field{RegPath}, Op: OpEq, Values: []string{`HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Run\updater`}}),
				leaf(t, Cond{Fields: []Field{RegData}, Op: OpPrefix, Values: []string{`c:\programdata\`}}))
		}, reg, true},
		{"registry key starts with an abbreviated hive", func(t testing.TB) *Node {
			return leaf(t, Cond{Fields: []Field{RegKey}, Op: OpPrefix, Values: []string{`HKLM\Software\Microsoft\`}})
		}, reg, true},
		{"registry key contains, abbreviated hive, other key", func(t testing.TB) *Node {
			return leaf(t, Cond{Fields: []Field{RegKey}, Op: OpContains, Values: []string{`HKCU\Software\Microsoft`}})
		}, reg, false},
		{"case-sensitive LIKE on a registry key ignores case", func(t testing.TB) *Node {
			return leaf(t, Cond{Fields: []Field{RegKey}, Op: OpLike, Values: []string{`HKEY_LOCAL_MACHINE\Software\%\Run`}, CaseSensitive: true})
		}, reg, true},
		{"case-sensitive regex on a registry key ignores case", func(t testing.TB) *Node {
			return leaf(t, Cond{Fields: []Field{RegPath}, Op: OpRegex, Values: []string{`\\Run\\Updater$`}, CaseSensitive: true})
		}, reg, true},
		{"case-sensitive contains on a Windows directory ignores case", func(t testing.TB) *Node {
			return leaf(t, Cond{Fields: []Field{FileDir}, Op: OpContains, Values: []string{`\AppData`}, CaseSensitive: true})
		}, file, true},
		{"case-sensitive suffix on a Linux path keeps case", func(t testing.TB) *Node {
			return leaf(t, Cond{Fields: []Field{ProcPath}, Op: OpSuffix, Values: []string{"/Kworkerd"}, CaseSensitive: true})
		}, linuxProc, false},
		{"case-sensitive suffix on a Linux path", func(t testing.TB) *Node {
			return leaf(t, Cond{Fields: []Field{ProcPath}, Op: OpSuffix, Values: []string{"/kworkerd"}, CaseSensitive: true})
		}, linuxProc, true},
		{"case-sensitive regex on a Linux path keeps case", func(t testing.TB) *Node {
			return leaf(t, Cond{Fields: []Field{ProcPath}, Op: OpRegex, Values: []string{`/\.x/Kworkerd$`}, CaseSensitive: true})
		}, linuxProc, false},
		{"case-sensitive regex on a Windows path ignores case", func(t testing.TB) *Node {
			return leaf(t, Cond{Fields: []Field{FilePath}, Op: OpRegex, Values: []string{`\\AppData\\.*\.SCR$`}, CaseSensitive: true})
		}, file, true},
		{"url and host", func(t testing.TB) *Node {
			return And(leaf(t, Cond{Fields: []Field{HTTPURL}, Op: OpEq, Values: []string{"http://dl.evil.example/a/payload.bin?x=1"}}),
				leaf(t, Cond{Fields: []Field{HTTPHost}, Op: OpEq, Values: []string{"DL.evil.example"}}),
				leaf(t, Cond{Fields: []Field{HTTPMethod}, Op: OpEq, Values: []string{"GET"}}))
		}, web, true},
		{"never", func(t testing.TB) *Node {
			return Or(Never(), And(Never(), leaf(t, Cond{Fields: []Field{HTTPMethod}, Op: OpEq, Values: []string{"GET"}})))
		}, web, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := &Tree{ID: "t", Engine: ioc.EngineOpenIOC, Root: tc.root(t)}
			set, err := Compile([]*Tree{tr})
			require.NoError(t, err)
			ev := tc.ev
			res := set.Eval(&ev, t0, nil)
			if tc.match {
				require.Len(t, res, 1, tr.Root.String())
				assert.Same(t, tr, res[0].Tree)
			} else {
				assert.Empty(t, res, tr.Root.String())
			}
		})
	}
}

func TestValidity(t *testing.T) {
	ev := base(ioc.EventMutex, "windows")
	ev.Mutex = &ioc.MutexEvent{Name: `Global\qwerty-77`}
	tr := &Tree{ID: "m", Engine: ioc.EngineSTIX, ValidFrom: t0, ValidUntil: t0.Add(time.Hour),
		Root: leaf(t, Cond{Fields: []Field{MutexName}, Op: OpEq, Values: []string{"qwerty-77"}, CaseSensitive: true})}
	set, err := Compile([]*Tree{tr})
	require.NoError(t, err)
	assert.Len(t, set.Eval(&ev, t0, nil), 1)
	assert.Empty(t, set.Eval(&ev, t0.Add(-time.Second), nil))
	assert.Empty(t, set.Eval(&ev, t0.Add(time.Hour), nil))
}

func TestNewCondErrors(t *testing.T) {
	for _, c := range []Cond{
		{Op: OpEq, Values: []string{"x"}},
		{Fields: []Field{FileName}, Values: []string{"x"}},
		{Fields: []Field{FileName}, Op: OpEq},
		{Fields: []Field{FileName}, Op: OpEq, Values: []string{"a", "b"}},
		{Fields: []Field{FileName}, Op: OpRegex, Values: []string{"(unclosed"}},
		{Fields: []Field{FileSize}, Op: OpGT, Values: []string{"big"}},
		{Fields: []Field{NetRemoteAddr}, Op: OpSubset, Values: []string{"not-a-prefix"}},
		{Fields: []Field{fieldEnd}, Op: OpEq, Values: []string{"x"}},
	} {
		_, err := NewCond(c)
		assert.ErrorIs(t, err, ErrInvalidCond, "%+v", c)
	}
	_, err := Compile([]*Tree{{ID: "x", Engine: ioc.EngineSTIX, Root: And()}})
	assert.ErrorIs(t, err, ErrInvalidTree)
	deep := leaf(t, Cond{Fields: []Field{FileName}, Op: OpEq, Values: []string{"x"}})
	for i := range MaxDepth + 1 {
		// And and Or by turns: a chain of one operator is merged flat.
		if i%2 == 0 {
			deep = And(deep)
		} else {
			deep = Or(deep)
		}
	}
	_, err = Compile([]*Tree{{ID: "x", Engine: ioc.EngineSTIX, Root: deep}})
	assert.ErrorIs(t, err, ErrInvalidTree)
}

// TestIndexSelects checks that the index hands an event only the trees
// whose keys it carries.
func TestIndexSelects(t *testing.T) {
	var trees []*Tree
	for i := range 100 {
		trees = append(trees, &Tree{ID: "t", Engine: ioc.EngineOpenIOC, Root: And(
			leaf(t, Cond{Fields: []Field{FileName}, Op: OpEq, Values: []string{"name" + string(rune('a'+i%26)) + string(rune('a'+i/26))}}),
			leaf(t, Cond{Fields: []Field{FileSize}, Op: OpGT, Values: []string{"1"}}),
		)})
	}
	set, err := Compile(trees)
	require.NoError(t, err)
	assert.Empty(t, set.byField[FileSize], "the AND should be indexed by its equality, not by size")
	ev := base(ioc.EventFile, "linux")
	ev.File = &ioc.FileEvent{Path: "/tmp/namecb", Size: 10}
	res := set.Eval(&ev, t0, nil)
	require.Len(t, res, 1)
	assert.Same(t, trees[2+26], res[0].Tree)
	assert.Equal(t, FileName, res[0].Field)
}

func TestPCREOnly(t *testing.T) {
	for _, re := range []string{`a(?=b)`, `(?<=a)b`, `(?!x)y`, `(a)\1`, `a{2000}`, `a*+`} {
		_, ok := PCREOnly(re)
		assert.True(t, ok, re)
	}
	for _, re := range []string{`(a`, `[z-a]`, `a.*b`, `^x$`} {
		_, ok := PCREOnly(re)
		assert.False(t, ok, re)
	}
}

// TestChainsFlatten: a chain of ANDs (or ORs) built two operands at a time,
// as a binary parser builds "[a] AND [b] AND …", is one level deep, so a
// long chain compiles and evaluates; mixed chains keep their structure.
func TestChainsFlatten(t *testing.T) {
	mx := func(v string) *Node { return leaf(t, Cond{Fields: []Field{MutexName}, Op: OpEq, Values: []string{v}}) }
	ev := base(ioc.EventMutex, "linux")
	ev.Mutex = &ioc.MutexEvent{Name: "m-0"}

	and := mx("m-0")
	or := mx("none")
	for range 5 * MaxDepth {
		and = And(and, mx("m-0"))
		or = Or(or, mx("none"))
	}
	or = Or(or, mx("m-0"))
	for _, c := range []struct {
		name string
		root *Node
		kids int
	}{{"and", and, 5*MaxDepth + 1}, {"or", or, 5*MaxDepth + 2}} {
		tr := &Tree{ID: c.name, Engine: ioc.EngineSTIX, Root: c.root}
		require.NoError(t, tr.Validate(), c.name)
		assert.Len(t, c.root.kids, c.kids, c.name)
		s, err := Compile([]*Tree{tr})
		require.NoError(t, err, c.name)
		assert.Len(t, s.Eval(&ev, t0, nil), 1, c.name)
	}
	// A near miss in the chain fails it.
	tr := &Tree{ID: "miss", Engine: ioc.EngineSTIX, Root: And(and, mx("m-1"))}
	s, err := Compile([]*Tree{tr})
	require.NoError(t, err)
	assert.Empty(t, s.Eval(&ev, t0, nil))

	// Different operators nest; an empty And is not merged away.
	assert.Equal(t, `(mutex.name = ["a"] OR (mutex.name = ["b"] AND mutex.name = ["c"]))`,
		Or(mx("a"), And(mx("b"), mx("c"))).String())
	require.ErrorIs(t, (&Tree{ID: "e", Engine: ioc.EngineSTIX, Root: And(mx("a"), And())}).Validate(), ErrInvalidTree)
	require.ErrorIs(t, (&Tree{ID: "e", Engine: ioc.EngineSTIX}).Validate(), ErrInvalidTree)
	require.ErrorIs(t, (&Tree{ID: "e", Engine: "bogus", Root: mx("a")}).Validate(), ErrInvalidTree)

	// Deep alternation is still bounded.
	deep := mx("a")
	for i := range MaxDepth + 1 {
		if i%2 == 0 {
			deep = And(deep, mx("b"))
		} else {
			deep = Or(deep, mx("b"))
		}
	}
	assert.ErrorIs(t, (&Tree{ID: "d", Engine: ioc.EngineSTIX, Root: deep}).Validate(), ErrInvalidTree)
}
