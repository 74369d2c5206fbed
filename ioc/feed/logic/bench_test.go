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
