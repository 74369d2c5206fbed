package pf

import (
	"net/netip"
	"strconv"
	"strings"
)

// maxExpansion bounds the rules one line may expand to, so that hostile
// text cannot make the parser allocate without limit.
const maxExpansion = 1 << 16

type ptoken struct {
	text string
	col  int // 1-based byte column
}

// tokenizeRule splits a rule line into words, with "{", "}" and ","
// as tokens of their own.
func tokenizeRule(line string) []ptoken {
	var out []ptoken
	i := 0
	for i < len(line) {
		c := line[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '{' || c == '}' || c == ',':
			out = append(out, ptoken{string(c), i + 1})
			i++
		case c == '"':
			j := i + 1
			for j < len(line) && line[j] != '"' {
				j++
			}
			if j < len(line) {
				j++
			}
			out = append(out, ptoken{line[i:j], i + 1})
			i = j
		default:
			j := i
			for j < len(line) && !strings.ContainsRune(" \t\r{},\"", rune(line[j])) {
				j++
			}
			out = append(out, ptoken{line[i:j], i + 1})
			i = j
		}
	}
	return out
}

type ruleParser struct {
	toks []ptoken
	pos  int
	line int
	err  *SyntaxError
}

func (p *ruleParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos].text
	}
	return ""
}

func (p *ruleParser) next() ptoken {
	if p.pos < len(p.toks) {
		t := p.toks[p.pos]
		p.pos++
		return t
	}
	return ptoken{col: 0}
}

func (p *ruleParser) fail(t ptoken, format string, args ...any) {
	if p.err == nil {
		msg := format
		if len(args) > 0 {
			msg = sprintf(format, args...)
		}
		p.err = &SyntaxError{Line: p.line, Column: t.col, Token: t.text, Msg: msg}
	}
}

func (p *ruleParser) accept(word string) bool {
	if p.peek() == word {
		p.pos++
		return true
	}
	return false
}

// list parses "item" or "{ item [,] item ... }" with item parsed by fn,
// which may consume several tokens.
func (p *ruleParser) list(what string, fn func() bool) {
	if !p.accept("{") {
		fn()
		return
	}
	n := 0
	for p.err == nil {
		switch p.peek() {
		case "}":
			p.pos++
			if n == 0 {
				p.fail(p.toks[p.pos-1], "empty %s list", what)
			}
			return
		case ",":
			p.pos++
			continue
		case "":
			p.fail(p.next(), "unterminated %s list", what)
			return
		}
		if !fn() {
			return
		}
		n++
	}
}

// side is one "from" or "to" part.
type side struct {
	addrs []netip.Prefix // invalid prefix: any
	ports []portOp       // none: no port condition
}

func (p *ruleParser) parseSide(s *side) {
	addr := func() bool {
		t := p.next()
		switch {
		case t.text == "any":
			s.addrs = append(s.addrs, netip.Prefix{})
			return true
		case t.text == "":
			p.fail(t, "want an address")
			return false
		}
		pr, err := netip.ParsePrefix(t.text)
		if err != nil {
			a, aerr := netip.ParseAddr(t.text)
			if aerr != nil || a.Zone() != "" {
				p.fail(t, "want an address, a prefix or any")
				return false
			}
			pr = netip.PrefixFrom(a, a.BitLen())
		}
		if pr.Addr().Zone() != "" || pr.Addr().Is4In6() {
			p.fail(t, "unsupported address form")
			return false
		}
		s.addrs = append(s.addrs, pr.Masked())
		return true
	}
	p.list("address", addr)
	if p.err != nil || !p.accept("port") {
		return
	}
	p.list("port", func() bool {
		t := p.next()
		switch t.text {
		case "=", "!=", "<", "<=", ">", ">=":
			v, ok := p.portNumber(p.next())
			if ok {
				s.ports = append(s.ports, portOp{op: t.text, a: v})
			}
			return ok
		}
		if lo, hi, ok := strings.Cut(t.text, ":"); ok {
			a, ok1 := p.portNumber(ptoken{lo, t.col})
			b, ok2 := p.portNumber(ptoken{hi, t.col + len(lo) + 1})
			if ok1 && ok2 {
				if a > b {
					p.fail(t, "port range start is after its end")
					return false
				}
				s.ports = append(s.ports, portOp{op: ":", a: a, b: b})
			}
			return ok1 && ok2
		}
		a, ok := p.portNumber(t)
		if !ok {
			return false
		}
		if op := p.peek(); op == "><" || op == "<>" || op == ":" {
			p.pos++
			b, ok := p.portNumber(p.next())
			if !ok {
				return false
			}
			s.ports = append(s.ports, portOp{op: op, a: a, b: b})
			return true
		}
		s.ports = append(s.ports, portOp{op: "=", a: a})
		return true
	})
}

func (p *ruleParser) portNumber(t ptoken) (uint16, bool) {
	n, err := strconv.ParseUint(t.text, 10, 16)
	if err != nil {
		p.fail(t, "want a port number 0-65535")
		return 0, false
	}
	return uint16(n), true
}

// parseRuleLine parses one pf filter rule, as written in pf.conf (a
// subset: the forms cordon generates) or as printed by "pfctl -s rules",
// and returns it with its lists expanded. line numbers the errors.
func parseRuleLine(text string, line int) ([]pfRule, error) {
	p := &ruleParser{toks: tokenizeRule(text), line: line}
	var r pfRule
	r.icmpType, r.icmpCode = -1, -1
	t := p.next()
	switch t.text {
	case "pass", "block":
		r.action = t.text
	default:
		p.fail(t, "want pass or block")
		return nil, p.err
	}
	if r.action == "block" {
		if p.accept("drop") {
			r.drop = true
		} else if p.peek() == "return" {
			p.fail(p.next(), "block return is not used by cordon")
		}
	}
	if p.accept("in") {
		r.dir = "in"
	} else if p.accept("out") {
		r.dir = "out"
	}
	if p.accept("quick") {
		r.quick = true
	}
	if p.accept("on") {
		t := p.next()
		if t.text == "" || strings.ContainsAny(t.text, "{}!(),") {
			p.fail(t, "want an interface name")
		}
		r.iface = t.text
	}
	if p.accept("inet") {
		r.af = "inet"
	} else if p.accept("inet6") {
		r.af = "inet6"
	}
	var protos []string
	if p.accept("proto") {
		p.list("protocol", func() bool {
			t := p.next()
			switch t.text {
			case "tcp", "udp", "icmp", "ipv6-icmp":
				protos = append(protos, t.text)
			case "icmp6":
				protos = append(protos, "ipv6-icmp")
			default:
				p.fail(t, "want tcp, udp, icmp or ipv6-icmp")
				return false
			}
			return true
		})
	}
	if len(protos) == 0 {
		protos = []string{""}
	}
	var from, to side
	if p.accept("all") {
		from.addrs = []netip.Prefix{{}}
		to.addrs = []netip.Prefix{{}}
	} else {
		if t := p.next(); t.text != "from" && p.err == nil {
			p.fail(t, "want from or all")
		}
		p.parseSide(&from)
		if t := p.next(); t.text != "to" && p.err == nil {
			p.fail(t, "want to")
		}
		p.parseSide(&to)
	}
	var types []int
	code := -1
	for p.err == nil && p.pos < len(p.toks) {
		t := p.next()
		switch t.text {
		case "icmp-type", "icmp6-type":
			names := icmpTypeNames
			if t.text == "icmp6-type" {
				names = icmp6TypeNames
			}
			p.list("icmp type", func() bool {
				u := p.next()
				if n, ok := names[u.text]; ok {
					types = append(types, n)
					return true
				}
				n, err := strconv.ParseUint(u.text, 10, 8)
				if err != nil {
					p.fail(u, "want an ICMP type name or number 0-255")
					return false
				}
				types = append(types, int(n))
				return true
			})
			if p.accept("code") {
				u := p.next()
				n, err := strconv.ParseUint(u.text, 10, 8)
				if err != nil {
					p.fail(u, "want an ICMP code 0-255")
				}
				code = int(n)
			}
		case "flags":
			u := p.next()
			if u.text == "" || strings.ContainsAny(u.text, "{},\"") {
				p.fail(u, "want TCP flags")
			}
			r.flags = u.text
		case "keep", "no", "modulate", "synproxy":
			if u := p.next(); u.text != "state" {
				p.fail(u, "want state")
			}
			if t.text == "no" {
				r.state = "no"
			} else if t.text == "keep" {
				r.state = "keep"
			} else {
				p.fail(t, "%s state is not used by cordon", t.text)
			}
		default:
			p.fail(t, "unexpected word")
		}
	}
	if p.err != nil {
		return nil, p.err
	}
	if len(types) == 0 {
		types = []int{-1}
	}
	if len(from.ports) == 0 {
		from.ports = []portOp{{}}
	}
	if len(to.ports) == 0 {
		to.ports = []portOp{{}}
	}
	n := len(protos) * len(from.addrs) * len(from.ports) * len(to.addrs) * len(to.ports) * len(types)
	if n > maxExpansion {
		return nil, &SyntaxError{Line: line, Msg: "rule expands to " + strconv.Itoa(n) + " rules, more than " + strconv.Itoa(maxExpansion)}
	}
	out := make([]pfRule, 0, n)
	for _, proto := range protos {
		for _, fa := range from.addrs {
			for _, fp := range from.ports {
				for _, ta := range to.addrs {
					for _, tp := range to.ports {
						for _, ty := range types {
							x := r
							x.proto, x.from, x.fromPort, x.to, x.toPort, x.icmpType = proto, fa, fp, ta, tp, ty
							if ty >= 0 {
								x.icmpCode = code
							}
							if err := x.fixFamily(line); err != nil {
								return nil, err
							}
							out = append(out, x)
						}
					}
				}
			}
		}
	}
	return out, nil
}

// fixFamily sets the address family from the addresses when the rule names
// none (as pfctl does when it expands a mixed list) and rejects mixtures.
func (r *pfRule) fixFamily(line int) error {
	for _, a := range []netip.Prefix{r.from, r.to} {
		if !a.IsValid() {
			continue
		}
		fam := "inet"
		if a.Addr().Is6() {
			fam = "inet6"
		}
		if r.af == "" {
			r.af = fam
		} else if r.af != fam {
			return &SyntaxError{Line: line, Token: a.String(), Msg: "address family differs from " + r.af}
		}
	}
	if (r.proto == "icmp" && r.af == "inet6") || (r.proto == "ipv6-icmp" && r.af == "inet") {
		return &SyntaxError{Line: line, Token: r.proto, Msg: "protocol does not fit address family " + r.af}
	}
	if (r.fromPort.op != "" || r.toPort.op != "") && r.proto != "tcp" && r.proto != "udp" {
		return &SyntaxError{Line: line, Token: "port", Msg: "ports need proto tcp or udp"}
	}
	if r.icmpType >= 0 && r.proto != "icmp" && r.proto != "ipv6-icmp" {
		return &SyntaxError{Line: line, Token: "icmp-type", Msg: "ICMP types need proto icmp or ipv6-icmp"}
	}
	return nil
}

// parseRules parses a ruleset (pf.conf subset or "pfctl -s rules" output):
// one rule a line; blank lines and "#" comments are skipped.
func parseRules(text string) ([]pfRule, error) {
	var out []pfRule
	for i, line := range strings.Split(text, "\n") {
		trim := strings.TrimSpace(line)
		if trim == "" || strings.HasPrefix(trim, "#") {
			continue
		}
		rs, err := parseRuleLine(line, i+1)
		if err != nil {
			return nil, err
		}
		if len(out)+len(rs) > maxExpansion {
			return nil, &SyntaxError{Line: i + 1, Msg: "ruleset expands to more than " + strconv.Itoa(maxExpansion) + " rules"}
		}
		out = append(out, rs...)
	}
	return out, nil
}
