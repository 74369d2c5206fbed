package nftables

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	gnft "github.com/google/nftables"
	"github.com/google/nftables/expr"

	"github.com/cordonsec/cordon/isolation"
	"github.com/cordonsec/cordon/isolation/isolationtest"
)

// encodeDecode encodes every atom of p's layout to expressions and
// decodes them back, through the set elements as they would be sent.
func encodeDecode(t *testing.T, p isolation.Plan) {
	t.Helper()
	sets := map[string][]gnft.SetElement{}
	anonLen := map[string]int{}
	named := map[string][]gnft.SetElement{}
	b := &batch{
		addSet: func(s *gnft.Set, elems []gnft.SetElement) error {
			if !s.Anonymous {
				if len(elems) != 0 || !s.Interval || !s.Concatenation {
					t.Fatalf("named set %s: %d elements with the set, interval %v, concatenation %v", s.Name, len(elems), s.Interval, s.Concatenation)
				}
				return nil
			}
			// The kernel names anonymous sets; the test names them by id.
			name := fmt.Sprintf("__set%d", s.ID)
			sets[name] = elems
			anonLen[name] = int(s.KeyType.Bytes)
			return nil
		},
		addElems: func(s *gnft.Set, elems []gnft.SetElement) error {
			named[s.Name] = append(named[s.Name], elems...)
			return nil
		},
	}
	reader := func(name string) ([]span, error) {
		return elementSpans(sets[name], anonLen[name])
	}
	l := planLayout(p)
	for _, s := range l.sets {
		b.addKeySet(s)
		if int(setKeyType(s.shape).Bytes) != keyLen(s.shape) {
			t.Fatalf("set %s: library key type of %d bytes, want %d", s.name, setKeyType(s.shape).Bytes, keyLen(s.shape))
		}
		var got []entry
		for _, el := range named[s.name] {
			e, err := keyEntry(s.shape, el.Key, el.KeyEnd, el.Comment)
			if err != nil {
				t.Fatalf("set %s: decode element: %v", s.name, err)
			}
			got = append(got, e)
		}
		if !slices.EqualFunc(got, s.elems, entry.equal) {
			t.Fatalf("set %s: elements %v, want %v", s.name, got, s.elems)
		}
	}
	for _, a := range slices.Concat(l.input, l.output) {
		exprs := b.atomExprs(a)
		for _, e := range exprs {
			if lk, ok := e.(*expr.Lookup); ok && a.set == "" {
				lk.SetName = fmt.Sprintf("__set%d", lk.SetID)
			}
		}
		got, err := decodeRule(a.chain, exprs, commentData(a.tag), reader)
		if err != nil {
			t.Fatalf("decode %s: %v", a, err)
		}
		if !got.equal(a) {
			t.Fatalf("decode: got %s, want %s", got, a)
		}
	}
}

func TestEncodeDecode(t *testing.T) {
	for _, p := range []isolation.Plan{
		isolationtest.PlanA(),
		isolationtest.PlanB(),
		{Rules: []isolation.Rule{mustRule(t, "both any remote=198.18.0.0/15,198.18.0.1,2001:db8::/32")}},
		{Rules: []isolation.Rule{mustRule(t, "out udp remote=0.0.0.0/0,::/0 lport=1-65535 rport=1,3,65535")}},
		{Rules: []isolation.Rule{mustRule(t, "in icmp icmp=0,255"), mustRule(t, "in icmpv6 icmp=1,3,4,200")}},
		// Many combinations: elements of named sets.
		{Rules: []isolation.Rule{mustRule(t, "out tcp remote=198.18.0.1,198.18.0.3,198.18.0.5,198.18.0.7,198.18.0.9,2001:db8::1,2001:db8::3 rport=1,3,5,7 lport=1000-2000,3000")}},
		{Rules: []isolation.Rule{mustRule(t, "both icmp remote=198.18.0.0/24,198.18.2.0/24 icmp=0,2,4,6,8,10,12,14,16")}},
		// Any protocol with more remotes than expandLimit: an anonymous set.
		{Rules: []isolation.Rule{mustRule(t, "in any remote=198.18.0.1,198.18.0.3,198.18.0.5,198.18.0.7,198.18.0.9,198.18.0.11,198.18.0.13,198.18.0.15,198.18.0.17,198.18.0.19,198.18.0.21,198.18.0.23,198.18.0.25,198.18.0.27,198.18.0.29,198.18.0.31,198.18.0.33")}},
		// Enough elements to need several element messages.
		plan1000(0),
	} {
		encodeDecode(t, p)
	}
}

func TestDecodeRejects(t *testing.T) {
	a := planLayout(isolation.Plan{Rules: []isolation.Rule{mustRule(t, "out tcp remote=198.18.0.1 rport=443")}}).output[0]
	b := &batch{}
	good := b.atomExprs(a)
	noSets := func(string) ([]span, error) { return nil, fmt.Errorf("no sets") }
	cases := map[string]struct {
		exprs []expr.Any
		ud    []byte
	}{
		"no comment":          {good, nil},
		"comment not closed":  {good, []byte{0, 3, 'r', '0', 'x'}},
		"truncated user data": {good, []byte{0, 9, 'r'}},
		"drop verdict":        {append(slices.Clone(good[:len(good)-1]), &expr.Verdict{Kind: expr.VerdictDrop}), commentData("r0")},
		"trailing expression": {append(slices.Clone(good), &expr.Counter{}), commentData("r0")},
		"no family":           {good[2:], commentData("r0")},
		"unknown l4proto": {append([]expr.Any{good[0], good[1], &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{132}}}, good[len(good)-1]), commentData("r0")},
		"inverted comparison": {func() []expr.Any {
			x := slices.Clone(good)
			for i, e := range x {
				if c, ok := e.(*expr.Cmp); ok && len(c.Data) == 4 {
					x[i] = &expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: c.Data}
				}
			}
			return x
		}(), commentData("r0")},
		"empty": {nil, commentData("r0")},
	}
	for _, h := range headExprs(chainInput) {
		cases["fixed rule with a comment"] = struct {
			exprs []expr.Any
			ud    []byte
		}{h, commentData("r0")}
	}
	for name, c := range cases {
		if got, err := decodeRule(chainOutput, c.exprs, c.ud, noSets); err == nil {
			t.Errorf("%s: decoded %s, want an error", name, got)
		}
	}
}

func TestElementSpans(t *testing.T) {
	e := func(k []byte, end bool) gnft.SetElement { return gnft.SetElement{Key: k, IntervalEnd: end} }
	cases := []struct {
		name  string
		elems []gnft.SetElement
		want  string // "" for an error
	}{
		{"two intervals", []gnft.SetElement{e([]byte{0, 80}, false), e([]byte{0, 91}, true), e([]byte{1, 0}, false), e([]byte{1, 1}, true)}, "80-90,256"},
		{"open end", []gnft.SetElement{e([]byte{0, 1}, false), e([]byte{0, 2}, true), e([]byte{255, 0}, false)}, "1,65280-65535"},
		{"nft's leading zero end", []gnft.SetElement{e([]byte{0, 0}, true), e([]byte{0, 5}, false), e([]byte{0, 6}, true)}, "5"},
		{"end without start", []gnft.SetElement{e([]byte{0, 5}, true)}, ""},
		{"open interval in the middle", []gnft.SetElement{e([]byte{0, 1}, false), e([]byte{0, 5}, false), e([]byte{0, 6}, true)}, ""},
		{"wrong width", []gnft.SetElement{e([]byte{1}, false)}, ""},
		{"empty interval", []gnft.SetElement{e([]byte{0, 5}, false), e([]byte{0, 5}, true)}, ""},
	}
	for _, c := range cases {
		ss, err := elementSpans(c.elems, 2)
		if c.want == "" {
			if err == nil {
				t.Errorf("%s: got %s, want an error", c.name, spansText(ss))
			}
			continue
		}
		if err != nil || spansText(ss) != c.want {
			t.Errorf("%s: got %s, %v; want %s", c.name, spansText(ss), err, c.want)
		}
	}
}

func FuzzParseComment(f *testing.F) {
	f.Add(commentData("r0 web"))
	f.Add([]byte{1, 2, 3, 4, 0, 3, 'm', '1', 0})
	f.Add([]byte{0, 255})
	f.Fuzz(func(t *testing.T, ud []byte) {
		s, ok := parseComment(ud)
		if ok && (strings.IndexByte(s, 0) >= 0 || !bytes.Contains(ud, []byte(s))) {
			t.Fatalf("parseComment(%x) = %q", ud, s)
		}
		if ok {
			if back, ok2 := parseComment(commentData(s)); !ok2 || back != s {
				t.Fatalf("comment %q does not round-trip", s)
			}
		}
	})
}

func FuzzElementSpans(f *testing.F) {
	f.Add([]byte{0, 80, 0, 0, 91, 1, 1, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		// Each element: two key bytes and one flag byte.
		var elems []gnft.SetElement
		for len(b) >= 3 {
			elems = append(elems, gnft.SetElement{Key: b[:2], IntervalEnd: b[2]&1 == 1})
			b = b[3:]
		}
		ss, err := elementSpans(elems, 2)
		if err != nil {
			return
		}
		for _, s := range ss {
			if bytes.Compare(s.lo, s.hi) > 0 {
				t.Fatalf("span %x-%x is reversed", s.lo, s.hi)
			}
		}
	})
}
