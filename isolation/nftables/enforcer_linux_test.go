package nftables

import (
	"context"
	"encoding/binary"
	"errors"
	"math/bits"
	"os"
	"testing"

	gnft "github.com/google/nftables"
	"github.com/google/nftables/expr"
	mnl "github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/cordonsec/cordon/isolation"
	"github.com/cordonsec/cordon/isolation/isolationtest"
)

func TestConfig(t *testing.T) {
	needRoot(t)
	h := newNS(t, "h")
	if _, err := New(Config{NetNSPath: h.path, NetNSFile: h.f}); !errors.Is(err, isolation.ErrInvalidConfig) {
		t.Errorf("both NetNSPath and NetNSFile: %v, want ErrInvalidConfig", err)
	}
	if _, err := New(Config{NetNSPath: "/nonexistent/netns"}); !errors.Is(err, ErrNamespace) {
		t.Errorf("missing namespace: %v, want ErrNamespace", err)
	}
	if _, err := New(Config{NetNSPath: "/proc/self/ns/uts"}); !errors.Is(err, ErrNamespace) {
		t.Errorf("a UTS namespace: %v, want ErrNamespace", err)
	}
	// NetNSFile: the enforcer works in that namespace and keeps its own
	// handle; the caller may close the file.
	f, err := os.Open(h.path)
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{NetNSFile: f})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	_ = f.Close()
	if err := e.Apply(context.Background(), isolationtest.PlanB()); err != nil {
		t.Fatal(err)
	}
	other := enforcerIn(t, h)
	if o, err := other.Observe(context.Background()); err != nil || !o.Active || !o.Plan.Equivalent(isolationtest.PlanB()) {
		t.Fatalf("the namespace given by file does not hold the plan: %+v, %v", o, err)
	}
}

// dormant holds the batch that makes the table dormant (see TestRepairs).
var dormant []mnl.Message

// TestRepairs changes the table behind the enforcer's back in ways that
// are not a plan at all; Observe reports them and Apply repairs them.
func TestRepairs(t *testing.T) {
	needRoot(t)
	cases := []struct {
		name   string
		tamper func(c *gnft.Conn)
	}{
		{"table dormant", func(c *gnft.Conn) {
			// The library always writes table flags 0; patch its message.
			capture := &batchSender{}
			cc, _ := gnft.New(gnft.WithTestDial(capture.dial))
			cc.AddTable(table)
			_ = cc.Flush()
			for _, m := range capture.msgs {
				if uint16(m.Header.Type) == unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_NEWTABLE {
					binary.BigEndian.PutUint32(m.Data[len(m.Data)-4:], unix.NFT_TABLE_F_DORMANT)
				}
			}
			dormant = capture.msgs
		}},
		{"policy accept", func(c *gnft.Conn) {
			ch := baseChain(chainInput)
			accept := gnft.ChainPolicyAccept
			ch.Policy = &accept
			c.AddChain(ch)
		}},
		{"chains flushed", func(c *gnft.Conn) {
			c.FlushChain(baseChain(chainInput))
			c.FlushChain(baseChain(chainOutput))
		}},
		{"chain deleted", func(c *gnft.Conn) {
			c.FlushChain(baseChain(chainOutput))
			c.DelChain(baseChain(chainOutput))
		}},
		{"foreign accept rule", func(c *gnft.Conn) {
			c.AddRule(&gnft.Rule{Table: table, Chain: baseChain(chainInput), Exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}})
		}},
		{"foreign chain", func(c *gnft.Conn) {
			prio := gnft.ChainPriority(-5)
			c.AddChain(&gnft.Chain{Name: "sneaky", Table: table, Type: gnft.ChainTypeFilter, Hooknum: gnft.ChainHookInput, Priority: &prio})
		}},
		{"foreign chain jumped to", func(c *gnft.Conn) {
			c.AddChain(&gnft.Chain{Name: "sneaky", Table: table})
			c.InsertRule(&gnft.Rule{Table: table, Chain: baseChain(chainInput), Exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: "sneaky"}}})
			c.AddRule(&gnft.Rule{Table: table, Chain: &gnft.Chain{Name: "sneaky", Table: table}, Exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}})
		}},
		{"chain with another priority", func(c *gnft.Conn) {
			c.FlushChain(baseChain(chainInput))
			c.DelChain(baseChain(chainInput))
			ch := baseChain(chainInput)
			prio := gnft.ChainPriority(100)
			ch.Priority = &prio
			c.AddChain(ch)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newNS(t, "h")
			e := enforcerIn(t, h)
			ctx := context.Background()
			plan := isolationtest.PlanA()
			if err := e.Apply(ctx, plan); err != nil {
				t.Fatal(err)
			}
			admin, err := gnft.New(gnft.WithNetNSFd(int(h.f.Fd())))
			if err != nil {
				t.Fatal(err)
			}
			dormant = nil
			c.tamper(admin)
			if err := admin.Flush(); err != nil {
				t.Fatalf("tamper: %v", err)
			}
			if dormant != nil {
				if err := e.gen.sendBatch(dormant); err != nil {
					t.Fatalf("tamper: %v", err)
				}
				if tb, err := admin.ListTableOfFamily(tableName, gnft.TableFamilyINet); err != nil || (tb.Flags|bits.ReverseBytes32(tb.Flags))&unix.NFT_TABLE_F_DORMANT == 0 {
					t.Fatalf("table not dormant after tampering: %+v, %v", tb, err)
				}
			}
			if _, err := e.Observe(ctx); !errors.Is(err, isolation.ErrReadBack) {
				t.Fatalf("Observe after tampering: %v, want ErrReadBack", err)
			}
			if err := e.Apply(ctx, plan); err != nil {
				t.Fatalf("Apply did not repair: %v", err)
			}
			o, err := e.Observe(ctx)
			if err != nil || !o.Active || !o.Plan.Equivalent(plan) {
				t.Fatalf("after repair: %+v, %v", o, err)
			}
			chains, err := admin.ListChainsOfTableFamily(gnft.TableFamilyINet)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, ch := range chains {
				if ch.Table.Name == tableName {
					n++
				}
			}
			if n != 2 {
				t.Fatalf("after repair: %d chains, want input and output", n)
			}
			if tb, err := admin.ListTableOfFamily(tableName, gnft.TableFamilyINet); err != nil || tb.Flags != 0 {
				t.Fatalf("after repair: table %+v, %v", tb, err)
			}
		})
	}
}
