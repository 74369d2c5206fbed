package nftables

import (
	"context"
	"slices"
	"testing"

	gnft "github.com/google/nftables"
	"github.com/google/nftables/expr"

	"github.com/cordonsec/cordon/isolation/isolationtest"
)

// TestDumpRulesMatchesLibrary reads a real table with both the library's
// decoder and dumpRules: the same rules, handles, comments and
// expressions (as decodeRule and the fixed rules see them).
func TestDumpRulesMatchesLibrary(t *testing.T) {
	needRoot(t)
	h := newNS(t, "h")
	e := enforcerIn(t, h)
	p := isolationtest.PlanA()
	p.Rules = append(p.Rules, mustRule(t, "out tcp remote=192.0.2.2,192.0.2.4,192.0.2.8,192.0.2.16,198.18.0.0/16 rport=443,8443,9000-9100,10000 name=sets"))
	if err := e.Apply(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	dumped, err := e.gen.dumpSets()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]dumpedSet{}
	for _, s := range dumped {
		byName[s.name] = s
	}
	sets := e.setReader(byName)
	for _, id := range []chainID{chainInput, chainOutput} {
		lib, err := e.conn.GetRules(table, baseChain(id))
		if err != nil {
			t.Fatal(err)
		}
		own, err := e.gen.dumpRules(id)
		if err != nil {
			t.Fatal(err)
		}
		if len(lib) != len(own) || len(own) < 10 {
			t.Fatalf("chain %s: library read %d rules, dumpRules %d", id, len(lib), len(own))
		}
		for i := range lib {
			if own[i].foreign != "" || own[i].handle != lib[i].Handle || string(own[i].userData) != string(lib[i].UserData) {
				t.Fatalf("chain %s rule %d: handle %d/%d, comment %q/%q, foreign %q", id, i, own[i].handle, lib[i].Handle, own[i].userData, lib[i].UserData, own[i].foreign)
			}
			if i < len(headExprs(id)) {
				if !slices.EqualFunc(own[i].exprs, headExprs(id)[i], exprEqual) || !slices.EqualFunc(lib[i].Exprs, headExprs(id)[i], exprEqual) {
					t.Fatalf("chain %s rule %d: fixed rule differs", id, i)
				}
				continue
			}
			a1, err1 := decodeRule(id, lib[i].Exprs, lib[i].UserData, sets)
			a2, err2 := decodeRule(id, own[i].exprs, own[i].userData, sets)
			if err1 != nil || err2 != nil || !a1.equal(a2) {
				t.Fatalf("chain %s rule %d: library %s (%v), dumpRules %s (%v)", id, i, a1, err1, a2, err2)
			}
		}
	}
	// A rule with an expression this adapter never writes is foreign.
	admin, err := gnft.New(gnft.WithNetNSFd(int(h.f.Fd())))
	if err != nil {
		t.Fatal(err)
	}
	admin.AddRule(&gnft.Rule{Table: table, Chain: baseChain(chainInput), Exprs: []expr.Any{&expr.Counter{}, &expr.Verdict{Kind: expr.VerdictAccept}}})
	if err := admin.Flush(); err != nil {
		t.Fatal(err)
	}
	own, err := e.gen.dumpRules(chainInput)
	if err != nil {
		t.Fatal(err)
	}
	if last := own[len(own)-1]; last.foreign != "counter" {
		t.Fatalf("counter rule: foreign=%q, exprs %v", last.foreign, last.exprs)
	}
}

// acceptRuleMsg is a NEWRULE payload: nfgenmsg, handle 7, and one
// immediate accept.
var acceptRuleMsg = []byte{1, 0, 0, 0,
	12, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 7,
	52, 0, 4, 0x80,
	48, 0, 1, 0x80,
	14, 0, 1, 0, 'i', 'm', 'm', 'e', 'd', 'i', 'a', 't', 'e', 0, 0, 0,
	28, 0, 2, 0x80,
	8, 0, 1, 0, 0, 0, 0, 0,
	16, 0, 2, 0x80, 12, 0, 2, 0x80, 8, 0, 1, 0, 0, 0, 0, 1}

func TestParseRuleMsg(t *testing.T) {
	r, err := parseRuleMsg(acceptRuleMsg)
	if err != nil || r.handle != 7 || r.foreign != "" || len(r.exprs) != 1 {
		t.Fatalf("got %+v, %v", r, err)
	}
	if v, ok := r.exprs[0].(*expr.Verdict); !ok || v.Kind != expr.VerdictAccept {
		t.Fatalf("got %#v, want accept", r.exprs[0])
	}
	// Cut inside an attribute (the handle at 4-16, the expressions at
	// 16-68): an error, never a shorter rule.
	for _, n := range []int{10, 15, 20, 40, 67} {
		if r, err := parseRuleMsg(acceptRuleMsg[:n]); err == nil {
			t.Errorf("message cut at %d bytes parsed: %+v", n, r)
		}
	}
}

func FuzzParseRuleMsg(f *testing.F) {
	f.Add(acceptRuleMsg)
	f.Add([]byte{1, 0, 0, 0, 4, 0, 4, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseRuleMsg(b)
		if err != nil {
			return
		}
		for _, e := range r.exprs {
			if e == nil {
				t.Fatal("nil expression")
			}
		}
	})
}
