package openioc

import (
	"fmt"
	"testing"

	"github.com/cordonsec/cordon/ioc"
	"github.com/cordonsec/cordon/ioc/feed/logic"
)

// genIOC returns an OpenIOC 1.1 document whose tree is one of four shapes,
// each needing different terms, with values unique to i.
func genIOC(i int) []byte {
	var items string
	it := func(cond, search, content string) string {
		return fmt.Sprintf(`<IndicatorItem condition=%q preserve-case="false" negate="false"><Context search=%q/><Content>%s</Content></IndicatorItem>`, cond, search, content)
	}
	switch i % 4 {
	case 0: // a dropped file: name and size
		items = `<Indicator operator="AND">` + it("is", "FileItem/FileName", fmt.Sprintf("drop%05d.exe", i)) +
			it("greater-than", "FileItem/SizeInBytes", "10000") + it("contains", "FileItem/FilePath", `AppData`) + `</Indicator>`
	case 1: // a process: parent and arguments
		items = `<Indicator operator="AND">` + it("is", "ProcessItem/ParentProcessName", fmt.Sprintf("host%05d.exe", i)) +
			it("contains", "ProcessItem/arguments", fmt.Sprintf("--token %05d", i)) + `</Indicator>`
	case 2: // a connection: address or (port and protocol)
		items = `<Indicator operator="OR">` + it("is", "PortItem/remoteIP", fmt.Sprintf("198.18.%d.%d", i/256%256, i%256)) +
			`<Indicator operator="AND">` + it("is", "PortItem/remotePort", fmt.Sprint(20000+i)) + it("is", "PortItem/protocol", "tcp") + `</Indicator></Indicator>`
	case 3: // a registry value
		items = `<Indicator operator="AND">` + it("is", "RegistryItem/ValueName", fmt.Sprintf("upd%05d", i)) +
			it("ends-with", "RegistryItem/Text", ".exe") + `</Indicator>`
	}
	return []byte(fmt.Sprintf(`<OpenIOC xmlns="http://openioc.org/schemas/OpenIOC_1.1" id="bench-%05d"><criteria><Indicator operator="OR">%s</Indicator></criteria></OpenIOC>`, i, items))
}

func benchTrees(tb testing.TB, n int) *logic.Set {
	var trees []*logic.Tree
	for i := range n {
		res, err := Parse(genIOC(i), Config{Name: "bench"})
		if err != nil {
			tb.Fatal(err)
		}
		trees = append(trees, res.Trees...)
	}
	if len(trees) != n {
		tb.Fatalf("%d trees", len(trees))
	}
	set, err := logic.Compile(trees)
	if err != nil {
		tb.Fatal(err)
	}
	return set
}

func benchEvents() []*ioc.Event {
	file := newEvent(ioc.EventFile)
	file.File = &ioc.FileEvent{Path: `C:\Users\bob\AppData\Roaming\drop00400.exe`, Size: 50000}
	proc := newEvent(ioc.EventProcess)
	proc.Process = &ioc.ProcessEvent{Name: "rundll32.exe", ParentName: "host00401.exe", CommandLine: "rundll32 x.dll --token 00401"}
	conn := newEvent(ioc.EventNetwork)
	conn.Network = &ioc.NetworkEvent{Protocol: "tcp", RemoteAddress: "192.0.2.1", RemotePort: 20000 + 402}
	reg := newEvent(ioc.EventRegistry)
	reg.Registry = &ioc.RegistryEvent{Key: `HKCU\Software\Microsoft\Windows\CurrentVersion\Run`, ValueName: "upd00403", Data: `C:\x.exe`}
	return []*ioc.Event{&file, &proc, &conn, &reg}
}

func TestBenchTreesMatch(t *testing.T) {
	set := benchTrees(t, 1000)
	for i, ev := range benchEvents() {
		r := set.Eval(ev, t0, nil)
		if len(r) != 1 || r[0].Tree.ID != fmt.Sprintf("bench-%05d", 400+i) {
			t.Fatalf("event %d: %d results", i, len(r))
		}
	}
	// A near miss of each.
	for _, ev := range benchEvents() {
		switch {
		case ev.File != nil:
			ev.File.Size = 100
		case ev.Process != nil:
			ev.Process.CommandLine = "rundll32 --token 00402"
		case ev.Network != nil:
			ev.Network.Protocol = "udp"
		case ev.Registry != nil:
			ev.Registry.Data = `C:\x.dll`
		}
		if r := set.Eval(ev, t0, nil); len(r) != 0 {
			t.Fatalf("near miss %s matched %s", ev.Kind, r[0].Tree.ID)
		}
	}
}

// BenchmarkEval10kTrees evaluates one event of each kind against 10,000
// OpenIOC trees.
func BenchmarkEval10kTrees(b *testing.B) {
	set := benchTrees(b, 10_000)
	for _, ev := range benchEvents() {
		b.Run(string(ev.Kind), func(b *testing.B) {
			b.ReportAllocs()
			var r []logic.Result
			for b.Loop() {
				r = set.Eval(ev, t0, r[:0])
			}
			if len(r) != 1 {
				b.Fatalf("%d results", len(r))
			}
		})
	}
}
