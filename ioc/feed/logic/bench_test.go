package logic

import (
	"fmt"
	"testing"

	"github.com/cordonsec/cordon/ioc"
)

// benchSet builds n trees of two shapes: a file name equality with a size
// test, and a parent process equality with an argument substring.
func benchSet(tb testing.TB, n int) *Set {
	trees := make([]*Tree, 0, n)
	for i := range n {
		var root *Node
		if i%2 == 0 {
			root = And(leaf(tb, Cond{Fields: []Field{FileName}, Op: OpEq, Values: []string{fmt.Sprintf("drop%05d.exe", i)}}),
				leaf(tb, Cond{Fields: []Field{FileSize}, Op: OpGT, Values: []string{"10000"}}))
		} else {
			root = And(leaf(tb, Cond{Fields: []Field{ProcParentName}, Op: OpEq, Values: []string{fmt.Sprintf("host%05d.exe", i)}}),
				leaf(tb, Cond{Fields: []Field{ProcCmdLine}, Op: OpContains, Values: []string{fmt.Sprintf("--token %05d", i)}}))
		}
		trees = append(trees, &Tree{ID: fmt.Sprint(i), Engine: ioc.EngineOpenIOC, Root: root})
	}
	s, err := Compile(trees)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func benchEvent() *ioc.Event {
	ev := base(ioc.EventFile, "windows")
	ev.File = &ioc.FileEvent{Path: `C:\Users\bob\AppData\Roaming\drop04000.exe`, Size: 50000}
	return &ev
}

// BenchmarkEval10k: the index picks the candidate trees.
func BenchmarkEval10k(b *testing.B) {
	s := benchSet(b, 10_000)
	ev := benchEvent()
	b.ReportAllocs()
	var r []Result
	for b.Loop() {
		r = s.Eval(ev, t0, r[:0])
	}
	if len(r) != 1 {
		b.Fatal(len(r))
	}
}

// BenchmarkEval10kAllTrees: the same trees evaluated one by one, without
// the index, for comparison.
func BenchmarkEval10kAllTrees(b *testing.B) {
	s := benchSet(b, 10_000)
	ev := benchEvent()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		var o observed
		observe(ev, &o)
		n = 0
		for _, t := range s.trees {
			var h hit
			if t.Root.eval(&o, &h) {
				n++
			}
		}
	}
	if n != 1 {
		b.Fatal(n)
	}
}

// cidrSet builds n trees, each one CIDR equality on the remote address
// (as OpenIOC PortItem/remoteIP and STIX dst_ref.value compile): IPv4 /24s
// and IPv6 /48s, disjoint.
func cidrSet(tb testing.TB, n int) *Set {
	trees := make([]*Tree, 0, n)
	for i := range n {
		v := fmt.Sprintf("10.%d.%d.0/24", i/2/256, i/2%256)
		if i%2 == 1 {
			v = fmt.Sprintf("2001:db8:%x::/48", i/2)
		}
		root := leaf(tb, Cond{Fields: []Field{NetRemoteAddr}, Op: OpEq, Values: []string{v}})
		trees = append(trees, &Tree{ID: fmt.Sprint(i), Engine: ioc.EngineOpenIOC, Root: root})
	}
	s, err := Compile(trees)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// BenchmarkEval10kCIDR: 10,000 trees of one CIDR equality each and one
// network event, which is within one of them.
func BenchmarkEval10kCIDR(b *testing.B) {
	s := cidrSet(b, 10_000)
	ev := base(ioc.EventNetwork, "linux")
	ev.Network = &ioc.NetworkEvent{Protocol: "tcp", LocalAddress: "192.168.1.20", LocalPort: 50000, RemoteAddress: "10.7.208.9", RemotePort: 443}
	b.ReportAllocs()
	var r []Result
	for b.Loop() {
		r = s.Eval(&ev, t0, r[:0])
	}
	if len(r) != 1 || r[0].Tree.ID != "4000" {
		b.Fatal(r)
	}
}
