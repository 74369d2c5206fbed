package pf

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/cordonsec/cordon/isolation"
)

// portOp is a pf port condition: "= 53", "1024:65535", "> 1023" ...
type portOp struct {
	op   string // "" (none), "=", "!=", "<", "<=", ">", ">=", ":", "><", "<>"
	a, b uint16
}

func (p portOp) String() string {
	switch p.op {
	case "":
		return ""
	case ":", "><", "<>":
		return strconv.Itoa(int(p.a)) + " " + p.op + " " + strconv.Itoa(int(p.b))
	}
	return p.op + " " + strconv.Itoa(int(p.a))
}

// normalize writes the inclusive range N:N as "= N".
func (p portOp) normalize() portOp {
	if p.op == ":" && p.a == p.b {
		return portOp{op: "=", a: p.a}
	}
	return p
}

// pfRule is one pf filter rule with every list expanded: what one line of
// "pfctl -s rules" describes.
type pfRule struct {
	action   string // "pass" or "block"
	drop     bool   // "block drop"
	dir      string // "in", "out" or "" (both)
	quick    bool
	iface    string // "on <iface>", or ""
	af       string // "inet", "inet6" or ""
	proto    string // "tcp", "udp", "icmp", "ipv6-icmp" or ""
	from     netip.Prefix
	fromPort portOp
	to       netip.Prefix
	toPort   portOp
	icmpType int // -1: none
	icmpCode int // -1: none
	flags    string
	state    string // "keep", "no" or "" (block rules)
}

// canonical returns the rule's text in one normalized form, so that the
// rule as cordon wrote it and as pfctl prints it compare equal: hosts as
// prefixes, ports normalized, ICMP types as numbers, pf's defaults (keep
// state and flags S/SA on pass rules) made explicit or dropped. The form
// is itself valid input for parseRuleLine.
func (r pfRule) canonical() string {
	var b strings.Builder
	b.WriteString(r.action)
	if r.action == "block" {
		if r.drop {
			b.WriteString(" drop")
		}
	}
	if r.dir != "" {
		b.WriteString(" " + r.dir)
	}
	if r.quick {
		b.WriteString(" quick")
	}
	if r.iface != "" {
		b.WriteString(" on " + r.iface)
	}
	if r.af != "" {
		b.WriteString(" " + r.af)
	}
	if r.proto != "" {
		b.WriteString(" proto " + r.proto)
	}
	b.WriteString(" from " + addrText(r.from))
	if s := r.fromPort.normalize().String(); s != "" {
		b.WriteString(" port " + s)
	}
	b.WriteString(" to " + addrText(r.to))
	if s := r.toPort.normalize().String(); s != "" {
		b.WriteString(" port " + s)
	}
	if r.icmpType >= 0 {
		if r.proto == "ipv6-icmp" {
			b.WriteString(" icmp6-type " + strconv.Itoa(r.icmpType))
		} else {
			b.WriteString(" icmp-type " + strconv.Itoa(r.icmpType))
		}
		if r.icmpCode >= 0 {
			b.WriteString(" code " + strconv.Itoa(r.icmpCode))
		}
	}
	if r.action == "pass" {
		state := r.state
		if state == "" {
			state = "keep"
		}
		flags := r.flags
		if (flags == "S/SA" || flags == "any") && state == "keep" {
			// pfctl prints the default of stateful pass rules as
			// "flags S/SA" (older versions) or "flags any" (newer ones),
			// also on rules without a protocol; cordon never sets flags.
			flags = ""
		}
		if flags != "" {
			b.WriteString(" flags " + flags)
		}
		b.WriteString(" " + state + " state")
	} else if r.flags != "" {
		b.WriteString(" flags " + r.flags)
	}
	return b.String()
}

func addrText(p netip.Prefix) string {
	if !p.IsValid() {
		return "any"
	}
	return p.Masked().String()
}

// diffRules returns "" when got and want hold the same rules (as
// multisets), and otherwise the missing ("-") and unexpected ("+") ones.
func diffRules(got, want []pfRule) string {
	return isolation.DiffLines(canonicalTexts(got), canonicalTexts(want))
}

func canonicalTexts(rs []pfRule) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.canonical()
	}
	return out
}

// icmpTypeNames and icmp6TypeNames are the type names pfctl accepts and
// prints (pfctl_parser.c), for reading its output.
var icmpTypeNames = map[string]int{
	"echorep": 0, "unreach": 3, "squench": 4, "redir": 5, "althost": 6, "echoreq": 8,
	"routeradv": 9, "routersol": 10, "timex": 11, "paramprob": 12, "timereq": 13,
	"timerep": 14, "inforeq": 15, "inforep": 16, "maskreq": 17, "maskrep": 18,
	"trace": 30, "dataconv": 31, "mobredir": 32, "ipv6-where": 33, "ipv6-here": 34,
	"mobregreq": 35, "mobregrep": 36, "skip": 39, "photuris": 40,
}

var icmp6TypeNames = map[string]int{
	"unreach": 1, "toobig": 2, "timex": 3, "paramprob": 4, "echoreq": 128, "echorep": 129,
	"groupqry": 130, "listqry": 130, "grouprep": 131, "listenrep": 131, "groupterm": 132,
	"listendone": 132, "routersol": 133, "routeradv": 134, "neighbrsol": 135,
	"neighbradv": 136, "redir": 137, "routrrenum": 138, "wrureq": 139, "wrurep": 140,
	"fqdnreq": 139, "fqdnrep": 140, "niqry": 139, "nirep": 140, "mtraceresp": 200, "mtrace": 201,
}
