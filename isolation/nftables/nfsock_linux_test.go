package nftables

import (
	"context"
	"encoding/binary"
	"testing"

	gnft "github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/cordonsec/cordon/isolation/isolationtest"
)

// TestBatchRejected: a batch the kernel refuses (here a rule for a chain
// that does not exist, after a valid flush) fails as a whole and leaves
// the plan in force untouched.
func TestBatchRejected(t *testing.T) {
	needRoot(t)
	h := newNS(t, "h")
	e := enforcerIn(t, h)
	ctx := context.Background()
	if err := e.Apply(ctx, isolationtest.PlanA()); err != nil {
		t.Fatal(err)
	}
	before, err := e.gen.generation()
	if err != nil {
		t.Fatal(err)
	}
	capture := &batchSender{}
	c, err := gnft.New(gnft.WithTestDial(capture.dial))
	if err != nil {
		t.Fatal(err)
	}
	c.FlushChain(baseChain(chainInput))
	c.FlushChain(baseChain(chainOutput))
	c.AddRule(&gnft.Rule{Table: table, Chain: &gnft.Chain{Name: "missing", Table: table}, Exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}})
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := e.gen.sendBatch(capture.msgs); err == nil {
		t.Fatal("sendBatch accepted a rule for a missing chain")
	}
	after, err := e.gen.generation()
	if err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Errorf("generation moved from %d to %d: the failed batch committed something", before, after)
	}
	o, err := e.Observe(ctx)
	if err != nil || !o.Active || !o.Plan.Equivalent(isolationtest.PlanA()) {
		t.Fatalf("after a rejected batch: %+v, %v", o, err)
	}
	// A successful Apply moves the generation; the same plan again does not.
	if err := e.Apply(ctx, isolationtest.PlanB()); err != nil {
		t.Fatal(err)
	}
	g1, _ := e.gen.generation()
	if g1 == after {
		t.Error("generation unchanged by a new plan")
	}
	if err := e.Apply(ctx, isolationtest.PlanB()); err != nil {
		t.Fatal(err)
	}
	if g2, _ := e.gen.generation(); g2 != g1 {
		t.Errorf("the same plan again moved the generation from %d to %d", g1, g2)
	}
}

func FuzzParseGen(f *testing.F) {
	msg := []byte{unix.AF_UNSPEC, 0, 0, 0, 8, 0, unix.NFTA_GEN_ID, 0, 0, 0, 0, 42}
	f.Add(msg)
	f.Add([]byte{0, 0, 0, 0, 3, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := parseGen(b)
		if err == nil && len(b) < 12 {
			t.Fatalf("parseGen(%x) = %d from too short a message", b, g)
		}
	})
}

func TestParseGen(t *testing.T) {
	b := []byte{unix.AF_UNSPEC, 0, 0, 0}
	b = binary.NativeEndian.AppendUint16(b, 9)
	b = binary.NativeEndian.AppendUint16(b, unix.NFTA_GEN_PROC_NAME)
	b = append(b, "nft\x00\x00"...)
	b = append(b, 0, 0, 0) // padding to 4
	b = binary.NativeEndian.AppendUint16(b, 8)
	b = binary.NativeEndian.AppendUint16(b, unix.NFTA_GEN_ID)
	b = binary.BigEndian.AppendUint32(b, 77)
	if g, err := parseGen(b); err != nil || g != 77 {
		t.Fatalf("parseGen = %d, %v; want 77", g, err)
	}
	if _, err := parseGen(b[:12]); err == nil {
		t.Fatal("parseGen without the id attribute succeeded")
	}
}
