package logic

import (
	"testing"

	"github.com/cordonsec/cordon/ioc"
)

// FuzzCond builds a condition from arbitrary values and evaluates it
// against events of every kind: it may be rejected, never panic.
func FuzzCond(f *testing.F) {
	f.Add(uint8(FileName), uint8(OpRegex), "a.*b", false, false, "x.exe")
	f.Add(uint8(NetRemoteAddr), uint8(OpEq), "10.0.0.0/8", true, true, "10.1.2.3")
	f.Add(uint8(FileSize), uint8(OpGT), "0x10", false, false, "99")
	f.Add(uint8(DNSQuery), uint8(OpLike), "%.ex_mple", false, true, "a.example")
	f.Add(uint8(RegKeyPath), uint8(OpIn), "software\\run", false, false, `HKLM\Software\Run`)
	f.Fuzz(func(t *testing.T, field, op uint8, value string, negate, cs bool, observed string) {
		n, err := NewCond(Cond{Fields: []Field{Field(field)}, Op: Op(op), Values: []string{value}, Negate: negate, CaseSensitive: cs})
		if err != nil {
			return
		}
		set, err := Compile([]*Tree{{ID: "f", Engine: ioc.EngineOpenIOC, Root: Or(n, And(n, n))}})
		if err != nil {
			t.Fatal(err)
		}
		evs := []ioc.Event{
			{Kind: ioc.EventFile, File: &ioc.FileEvent{Path: observed, Name: observed, Size: int64(len(observed)), MD5: observed}},
			{Kind: ioc.EventProcess, Process: &ioc.ProcessEvent{Name: observed, Path: observed, CommandLine: observed, ParentName: observed}},
			{Kind: ioc.EventNetwork, Network: &ioc.NetworkEvent{RemoteAddress: observed, Protocol: observed, RemotePort: len(observed)}},
			{Kind: ioc.EventDNS, DNS: &ioc.DNSEvent{Query: observed, Answers: []string{observed, value}}},
			{Kind: ioc.EventHTTP, HTTP: &ioc.HTTPEvent{URL: observed, Method: observed}},
			{Kind: ioc.EventRegistry, Registry: &ioc.RegistryEvent{Key: observed, ValueName: observed, Data: observed}},
			{Kind: ioc.EventMutex, Mutex: &ioc.MutexEvent{Name: observed}},
		}
		for i := range evs {
			set.Eval(&evs[i], t0, nil)
		}
	})
}
