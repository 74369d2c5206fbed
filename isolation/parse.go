package isolation

import (
	"net/netip"
	"strconv"
	"strings"
)

// maxRuleText bounds the length of one rule or plan line.
const maxRuleText = 64 << 10

// token is one word of a rule line: either a bare word or key=value.
type token struct {
	col   int // 1-based byte column of the token's start
	key   string
	value string
	bare  bool // no '=': the whole token is in value
}

// tokenize splits a line into tokens separated by spaces or tabs. A value
// starting with '"' is a Go quoted string.
func tokenize(s string) ([]token, *RuleError) {
	var toks []token
	i := 0
	for {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i >= len(s) {
			return toks, nil
		}
		start := i
		for i < len(s) && s[i] != ' ' && s[i] != '\t' && s[i] != '=' && s[i] != '"' {
			i++
		}
		if i < len(s) && s[i] == '"' {
			return nil, &RuleError{Column: i + 1, Msg: "unexpected quote; only values may be quoted", Err: ErrInvalidRule}
		}
		if i >= len(s) || s[i] != '=' {
			toks = append(toks, token{col: start + 1, value: s[start:i], bare: true})
			continue
		}
		key := s[start:i]
		if key == "" {
			return nil, &RuleError{Column: start + 1, Msg: "missing key before '='", Err: ErrInvalidRule}
		}
		i++ // '='
		var val string
		if i < len(s) && s[i] == '"' {
			q, err := strconv.QuotedPrefix(s[i:])
			if err != nil {
				return nil, &RuleError{Column: i + 1, Field: key, Msg: "bad quoted string", Err: ErrInvalidRule}
			}
			val, err = strconv.Unquote(q)
			if err != nil {
				return nil, &RuleError{Column: i + 1, Field: key, Msg: "bad quoted string", Err: ErrInvalidRule}
			}
			i += len(q)
			if i < len(s) && s[i] != ' ' && s[i] != '\t' {
				return nil, &RuleError{Column: i + 1, Field: key, Msg: "want a space after the quoted value", Err: ErrInvalidRule}
			}
		} else {
			vs := i
			for i < len(s) && s[i] != ' ' && s[i] != '\t' {
				if s[i] == '"' {
					return nil, &RuleError{Column: i + 1, Field: key, Msg: "unexpected quote inside a value", Err: ErrInvalidRule}
				}
				i++
			}
			val = s[vs:i]
		}
		toks = append(toks, token{col: start + 1, key: key, value: val})
	}
}

func at(e *RuleError, t token) *RuleError {
	if e.Column == 0 {
		e.Column = t.col
	}
	return e
}

// ParseRule parses one rule in the text form described at Rule, and
// validates it. It returns a *RuleError (wrapping ErrInvalidRule) that names
// the column and field at fault. Any input is safe: bad bytes give an
// error, never a panic.
func ParseRule(s string) (Rule, error) {
	r, err := parseRule(s)
	if err != nil {
		return Rule{}, err
	}
	return r, nil
}

func parseRule(s string) (Rule, *RuleError) {
	if len(s) > maxRuleText {
		return Rule{}, &RuleError{Msg: "rule text too long", Err: ErrInvalidRule}
	}
	if i := strings.IndexAny(s, "\n\r\x00"); i >= 0 {
		return Rule{}, &RuleError{Column: i + 1, Msg: "line break or NUL in rule", Err: ErrInvalidRule}
	}
	toks, terr := tokenize(s)
	if terr != nil {
		return Rule{}, terr
	}
	if len(toks) < 2 || !toks[0].bare || !toks[1].bare {
		col := 1
		if len(toks) > 0 {
			col = toks[0].col
		}
		return Rule{}, &RuleError{Column: col, Msg: "a rule starts with a direction and a protocol, e.g. \"out tcp\"", Err: ErrInvalidRule}
	}
	var r Rule
	var err error
	if r.Direction, err = ParseDirection(toks[0].value); err != nil {
		return Rule{}, at(err.(*RuleError), toks[0])
	}
	if r.Protocol, err = ParseProtocol(toks[1].value); err != nil {
		return Rule{}, at(err.(*RuleError), toks[1])
	}
	seen := map[string]bool{}
	for _, t := range toks[2:] {
		if t.bare {
			return Rule{}, at(&RuleError{Value: t.value, Msg: "want key=value", Err: ErrInvalidRule}, t)
		}
		if seen[t.key] {
			return Rule{}, at(&RuleError{Field: t.key, Msg: "key given twice", Err: ErrInvalidRule}, t)
		}
		seen[t.key] = true
		switch t.key {
		case "remote":
			for _, v := range splitList(t.value) {
				p, perr := parsePrefix(v)
				if perr != nil {
					return Rule{}, at(ruleErr("remote", v, "want an IPv4 or IPv6 address or CIDR"), t)
				}
				r.Remote = append(r.Remote, p)
			}
		case "lport", "rport":
			var ps []PortRange
			for _, v := range splitList(t.value) {
				pr, perr := ParsePortRange(v)
				if perr != nil {
					re := perr.(*RuleError)
					re.Field = t.key
					return Rule{}, at(re, t)
				}
				ps = append(ps, pr)
			}
			if t.key == "lport" {
				r.LocalPorts = ps
			} else {
				r.RemotePorts = ps
			}
		case "icmp":
			for _, v := range splitList(t.value) {
				n, nerr := strconv.ParseUint(v, 10, 8)
				if nerr != nil {
					return Rule{}, at(ruleErr("icmp", v, "want an ICMP type 0-255"), t)
				}
				r.ICMPTypes = append(r.ICMPTypes, uint8(n))
			}
		case "app":
			r.Application = t.value
		case "name":
			r.Name = t.value
		default:
			return Rule{}, at(&RuleError{Field: t.key, Msg: "unknown key; want remote, lport, rport, icmp, app or name", Err: ErrInvalidRule}, t)
		}
		if t.key != "app" && t.key != "name" && t.value == "" {
			return Rule{}, at(&RuleError{Field: t.key, Msg: "empty value", Err: ErrInvalidRule}, t)
		}
	}
	if err := r.Validate(); err != nil {
		re := err.(*RuleError)
		for _, t := range toks {
			if t.key == re.Field || (re.Field == "port" && (t.key == "lport" || t.key == "rport")) {
				re.Column = t.col
				break
			}
		}
		return Rule{}, re
	}
	return r.Normalize(), nil
}

func splitList(s string) []string {
	if s == "" {
		return []string{""}
	}
	return strings.Split(s, ",")
}

// parsePrefix accepts an address (a single-address prefix) or a CIDR.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// ParsePlan parses the text form written by Plan.String and validates the
// plan. Blank lines and lines starting with '#' are ignored; the first
// other line must be PlanHeader, and "loopback allow" may appear (it is
// implicit). Errors are *RuleError values naming the line and column.
func ParsePlan(s string) (Plan, error) {
	var p Plan
	header := false
	for i, line := range strings.Split(s, "\n") {
		lineNo := i + 1
		line = strings.TrimSuffix(line, "\r")
		trim := strings.TrimLeft(line, " \t")
		if trim == "" || strings.HasPrefix(trim, "#") {
			continue
		}
		off := len(line) - len(trim)
		if !header {
			if strings.TrimRight(trim, " \t") != PlanHeader {
				return Plan{}, &RuleError{Line: lineNo, Column: 1, Msg: "want header " + strconv.Quote(PlanHeader), Err: ErrInvalidPlan}
			}
			header = true
			continue
		}
		kw, rest, _ := strings.Cut(trim, " ")
		restOff := off + len(kw) + 1
		switch kw {
		case "loopback":
			if strings.TrimSpace(rest) != "allow" {
				return Plan{}, &RuleError{Line: lineNo, Column: restOff + 1, Msg: `want "loopback allow"`, Err: ErrInvalidPlan}
			}
		case "rule":
			r, err := parseRule(rest)
			if err != nil {
				err.Line = lineNo
				if err.Column > 0 {
					err.Column += restOff
				}
				return Plan{}, err
			}
			p.Rules = append(p.Rules, r)
		case "mgmt":
			e, err := parseEndpoint(rest)
			if err != nil {
				err.Line = lineNo
				if err.Column > 0 {
					err.Column += restOff
				}
				return Plan{}, err
			}
			p.Management = append(p.Management, e)
		default:
			return Plan{}, &RuleError{Line: lineNo, Column: off + 1, Value: kw, Msg: "want rule, mgmt or loopback", Err: ErrInvalidPlan}
		}
	}
	if !header {
		return Plan{}, &RuleError{Line: 1, Msg: "empty plan text; want header " + strconv.Quote(PlanHeader), Err: ErrInvalidPlan}
	}
	return p.Normalize(), nil
}

func parseEndpoint(s string) (Endpoint, *RuleError) {
	if len(s) > maxRuleText {
		return Endpoint{}, &RuleError{Msg: "line too long", Err: ErrInvalidRule}
	}
	toks, terr := tokenize(s)
	if terr != nil {
		return Endpoint{}, terr
	}
	if len(toks) < 1 || !toks[0].bare {
		return Endpoint{}, &RuleError{Column: 1, Msg: "want a protocol after mgmt", Err: ErrInvalidRule}
	}
	var e Endpoint
	var err error
	if e.Protocol, err = ParseProtocol(toks[0].value); err != nil {
		return Endpoint{}, at(err.(*RuleError), toks[0])
	}
	seen := map[string]bool{}
	for _, t := range toks[1:] {
		if t.bare {
			return Endpoint{}, at(&RuleError{Value: t.value, Msg: "want key=value", Err: ErrInvalidRule}, t)
		}
		if seen[t.key] {
			return Endpoint{}, at(&RuleError{Field: t.key, Msg: "key given twice", Err: ErrInvalidRule}, t)
		}
		seen[t.key] = true
		switch t.key {
		case "addr":
			for _, v := range splitList(t.value) {
				a, aerr := netip.ParseAddr(v)
				if aerr != nil {
					return Endpoint{}, at(ruleErr("addr", v, "want an IPv4 or IPv6 address"), t)
				}
				e.Addrs = append(e.Addrs, a)
			}
		case "port":
			n, perr := parsePort(t.value)
			if perr != nil {
				return Endpoint{}, at(ruleErr("port", t.value, "%v", perr), t)
			}
			e.Port = n
		case "name":
			e.Name = t.value
		default:
			return Endpoint{}, at(&RuleError{Field: t.key, Msg: "unknown key; want addr, port or name", Err: ErrInvalidRule}, t)
		}
	}
	if err := e.Validate(); err != nil {
		return Endpoint{}, at(err.(*RuleError), toks[0])
	}
	return e.normalize(), nil
}
