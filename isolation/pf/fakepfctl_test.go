package pf

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/cordonsec/cordon/isolation"
)

// errExit is what the fake returns for a failing pfctl, as exec returns an
// *exec.ExitError.
var errExit = errors.New("exit status 1")

// fakePfctl is an in-memory pf behind a pfctl command line: anchors with
// their rules (parsed from what it is given and printed back in pfctl's
// own style), the enable reference tokens, and the state table. It
// implements Runner and is safe for concurrent use.
type fakePfctl struct {
	mu        sync.Mutex
	anchors   map[string][]pfRule
	enabled   bool
	tokens    []uint64
	nextToken uint64
	states    []pfState
	calls     []string
	failOn    map[string]string // call text prefix -> stderr of an injected failure
	// main is what "pfctl -s rules" prints for the main ruleset; the
	// stock macOS pf.conf by default.
	main []string
}

// stockMainRuleset is "pfctl -s rules" of the main ruleset the stock
// macOS /etc/pf.conf loads.
var stockMainRuleset = []string{
	`scrub-anchor "com.apple/*" all fragment reassemble`,
	`anchor "com.apple/*" all`,
}

func newFakePfctl() *fakePfctl {
	return &fakePfctl{anchors: map[string][]pfRule{}, nextToken: 18446743524172218000, failOn: map[string]string{},
		main: slices.Clone(stockMainRuleset)}
}

func (f *fakePfctl) callLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// reboot forgets what a restart of macOS forgets: anchors loaded at run
// time, tokens, states; pf comes up disabled.
func (f *fakePfctl) reboot() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.anchors = map[string][]pfRule{}
	f.tokens = nil
	f.states = nil
	f.enabled = false
}

// Run implements Runner.
func (f *fakePfctl) Run(ctx context.Context, stdin []byte, args ...string) ([]byte, []byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	call := strings.Join(args, " ")
	f.calls = append(f.calls, call)
	for prefix, stderr := range f.failOn {
		if strings.HasPrefix(call, prefix) {
			delete(f.failOn, prefix)
			return nil, []byte(stderr), errExit
		}
	}
	var (
		anchor, show, flush, release, file string
		check, enable, disable             bool
		kills                              []string
	)
	for i := 0; i < len(args); i++ {
		a := args[i]
		val := func() (string, bool) {
			if i+1 >= len(args) {
				return "", false
			}
			i++
			return args[i], true
		}
		var ok = true
		switch a {
		case "-a":
			anchor, ok = val()
		case "-s":
			show, ok = val()
		case "-F":
			flush, ok = val()
		case "-X":
			release, ok = val()
		case "-f":
			file, ok = val()
		case "-k":
			var h string
			h, ok = val()
			kills = append(kills, h)
		case "-n":
			check = true
		case "-E":
			enable = true
		case "-d":
			disable = true
		default:
			ok = false
		}
		if !ok {
			return nil, []byte("usage: pfctl [-AdeghMmNnOPqRrvz] ...\n"), errExit
		}
	}
	switch {
	case file != "":
		if file != "-" {
			return nil, []byte("pfctl: " + file + ": No such file or directory\n"), errExit
		}
		rs, err := parseRules(string(stdin))
		if err != nil {
			var se *SyntaxError
			if errors.As(err, &se) {
				return nil, []byte(fmt.Sprintf("stdin:%d: syntax error\n", se.Line)), errExit
			}
			return nil, []byte(err.Error()), errExit
		}
		if check {
			return nil, nil, nil
		}
		f.anchors[anchor] = rs
		return nil, []byte("No ALTQ support in kernel\nALTQ related functions disabled\n"), nil
	case show == "rules" && anchor == "":
		var b strings.Builder
		for _, l := range f.main {
			b.WriteString(l + "\n")
		}
		return []byte(b.String()), []byte("No ALTQ support in kernel\nALTQ related functions disabled\n"), nil
	case show == "rules":
		var b strings.Builder
		for _, r := range f.anchors[anchor] {
			b.WriteString(pfctlRuleText(r))
			b.WriteByte('\n')
		}
		return []byte(b.String()), []byte("No ALTQ support in kernel\nALTQ related functions disabled\n"), nil
	case show == "info":
		if f.enabled {
			return []byte("Status: Enabled for 0 days 00:00:42           Debug: Urgent\n\nState Table                          Total             Rate\n"), nil, nil
		}
		return []byte("Status: Disabled for 0 days 00:00:00          Debug: Urgent\n"), nil, nil
	case show == "References":
		var b strings.Builder
		b.WriteString("TOKENS:\nPID      Process Name                 TOKEN                     TIMESTAMP\n")
		for _, t := range f.tokens {
			fmt.Fprintf(&b, "%-8d %-28s %-25d %s\n", 812, "pfctl", t, "0 days 00:00:42")
		}
		return []byte(b.String()), nil, nil
	case show == "states":
		var b strings.Builder
		for _, s := range f.states {
			b.WriteString(stateText(s))
			b.WriteByte('\n')
			b.WriteString("   age 00:00:03, expires in 23:59:57, 4:3 pkts, 300:200 bytes\n")
		}
		return []byte(b.String()), nil, nil
	case show != "":
		return nil, []byte("pfctl: Unknown show modifier '" + show + "'\n"), errExit
	case flush == "all":
		if anchor == "" {
			// Without an anchor this would flush states and every rule of
			// the host: cordon must never do it.
			f.states = nil
		}
		delete(f.anchors, anchor)
		return nil, []byte("rules cleared\nnat cleared\n0 tables deleted.\n"), nil
	case enable:
		f.nextToken++
		f.tokens = append(f.tokens, f.nextToken)
		msg := "pf enabled\n"
		if f.enabled {
			msg = "pf already enabled\n"
		}
		f.enabled = true
		return nil, []byte(msg + "Token : " + strconv.FormatUint(f.nextToken, 10) + "\n"), nil
	case release != "":
		t, err := strconv.ParseUint(release, 10, 64)
		i := slices.Index(f.tokens, t)
		if err != nil || i < 0 {
			return nil, []byte("pfctl: DIOCSTOPREF: Invalid argument\n"), errExit
		}
		f.tokens = slices.Delete(f.tokens, i, i+1)
		if len(f.tokens) == 0 {
			f.enabled = false
			return nil, []byte("pf disabled\n"), nil
		}
		return nil, []byte("pf not disabled, " + strconv.Itoa(len(f.tokens)) + " references remain\n"), nil
	case disable:
		f.enabled = false
		return nil, []byte("pf disabled\n"), nil
	case len(kills) == 2:
		src, err1 := netip.ParseAddr(kills[0])
		dst, err2 := netip.ParseAddr(kills[1])
		if err1 != nil || err2 != nil {
			return nil, []byte("pfctl: no IP address found for " + kills[0] + "\n"), errExit
		}
		n := 0
		f.states = slices.DeleteFunc(f.states, func(s pfState) bool {
			a, b := s.local.Addr(), s.remote.Addr()
			if !s.out {
				a, b = b, a
			}
			if a == src && b == dst {
				n++
				return true
			}
			return false
		})
		return nil, []byte(fmt.Sprintf("killed %d states from 1 sources and 0 destinations\n", n)), nil
	}
	return nil, []byte("pfctl: unsupported command\n"), errExit
}

func hostText(p netip.Prefix) string {
	if !p.IsValid() {
		return "any"
	}
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

func portText(p portOp) string {
	switch p.op {
	case ":":
		return strconv.Itoa(int(p.a)) + ":" + strconv.Itoa(int(p.b))
	case "><", "<>":
		return strconv.Itoa(int(p.a)) + " " + p.op + " " + strconv.Itoa(int(p.b))
	}
	return p.op + " " + strconv.Itoa(int(p.a))
}

// The type names pfctl prints for a number (the first name of its table).
var (
	icmpNameOf  = map[int]string{0: "echorep", 3: "unreach", 8: "echoreq", 11: "timex"}
	icmp6NameOf = map[int]string{1: "unreach", 128: "echoreq", 129: "echorep", 130: "groupqry", 131: "grouprep",
		132: "groupterm", 133: "routersol", 134: "routeradv", 135: "neighbrsol", 136: "neighbradv"}
)

// pfctlRuleText prints r the way "pfctl -s rules" does: hosts without
// mask, "port = N", "all" for any to any, type names, and pf's default
// "flags S/SA keep state" spelled out.
func pfctlRuleText(r pfRule) string {
	var b strings.Builder
	b.WriteString(r.action)
	if r.drop {
		b.WriteString(" drop")
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
	if !r.from.IsValid() && !r.to.IsValid() && r.fromPort.op == "" && r.toPort.op == "" {
		b.WriteString(" all")
	} else {
		b.WriteString(" from " + hostText(r.from))
		if r.fromPort.op != "" {
			b.WriteString(" port " + portText(r.fromPort))
		}
		b.WriteString(" to " + hostText(r.to))
		if r.toPort.op != "" {
			b.WriteString(" port " + portText(r.toPort))
		}
	}
	if r.icmpType >= 0 {
		names, kw := icmpNameOf, " icmp-type "
		if r.proto == "ipv6-icmp" {
			names, kw = icmp6NameOf, " icmp6-type "
		}
		name, ok := names[r.icmpType]
		if !ok {
			name = strconv.Itoa(r.icmpType)
		}
		b.WriteString(kw + name)
		if r.icmpCode >= 0 {
			b.WriteString(" code " + strconv.Itoa(r.icmpCode))
		}
	}
	if r.action == "pass" {
		switch {
		case r.state == "no":
			b.WriteString(" no state")
		case (r.proto == "tcp" || r.proto == "") && (r.flags == "" || r.flags == "S/SA"):
			b.WriteString(" flags S/SA keep state")
		case r.flags != "":
			b.WriteString(" flags " + r.flags + " keep state")
		default:
			b.WriteString(" keep state")
		}
	}
	return b.String()
}

// stateText prints s as "pfctl -s states" does.
func stateText(s pfState) string {
	hp := func(a netip.AddrPort) string {
		if a.Addr().Is6() {
			return a.Addr().String() + "[" + strconv.Itoa(int(a.Port())) + "]"
		}
		return a.String()
	}
	arrow := "<-"
	if s.out {
		arrow = "->"
	}
	return fmt.Sprintf("ALL %s %s %s %s       ESTABLISHED:ESTABLISHED", s.proto, hp(s.local), arrow, hp(s.remote))
}

// probe decides flow f by the rules of anchor as pf would for its first
// packet: the first matching quick rule, else the last matching rule, else
// pass (the anchor has no opinion).
func (f *fakePfctl) probe(anchor string, fl isolation.Flow) bool {
	f.mu.Lock()
	rules := slices.Clone(f.anchors[anchor])
	f.mu.Unlock()
	remote := fl.Remote.Unmap()
	local := netip.MustParseAddr("192.0.2.10")
	if remote.Is6() {
		local = netip.MustParseAddr("2001:db8::a")
	}
	if remote.IsLoopback() {
		local = remote
	}
	dir := "out"
	src, dst := local, remote
	sport, dport := fl.LocalPort, fl.RemotePort
	if fl.Initiator == isolation.DirectionIn {
		dir = "in"
		src, dst = remote, local
		sport, dport = fl.RemotePort, fl.LocalPort
	}
	proto := map[isolation.Protocol]string{isolation.ProtocolTCP: "tcp", isolation.ProtocolUDP: "udp",
		isolation.ProtocolICMP: "icmp", isolation.ProtocolICMPv6: "ipv6-icmp"}[fl.Protocol]
	af := "inet"
	if remote.Is6() {
		af = "inet6"
	}
	verdict := "pass"
	for _, r := range rules {
		switch {
		case r.dir != "" && r.dir != dir,
			r.iface != "" && (r.iface != "lo0" || !remote.IsLoopback()),
			r.af != "" && r.af != af,
			r.proto != "" && r.proto != proto,
			r.from.IsValid() && !r.from.Contains(src),
			r.to.IsValid() && !r.to.Contains(dst),
			!portMatches(r.fromPort, sport),
			!portMatches(r.toPort, dport),
			r.icmpType >= 0 && r.icmpType != int(fl.ICMPType):
			continue
		}
		verdict = r.action
		if r.quick {
			break
		}
	}
	return verdict == "pass"
}

func portMatches(p portOp, port uint16) bool {
	switch p.op {
	case "":
		return true
	case "=":
		return port == p.a
	case "!=":
		return port != p.a
	case "<":
		return port < p.a
	case "<=":
		return port <= p.a
	case ">":
		return port > p.a
	case ">=":
		return port >= p.a
	case ":":
		return port >= p.a && port <= p.b
	case "><":
		return port > p.a && port < p.b
	case "<>":
		return port < p.a || port > p.b
	}
	return false
}
