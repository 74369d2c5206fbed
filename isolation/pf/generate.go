package pf

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/cordonsec/cordon/isolation"
)

// section is one plan item's block of pf rules.
type section struct {
	source string   // "loopback", "block", or the plan line
	lines  []string // pf.conf rules
}

// sections returns the ruleset of the normalized plan p as sections:
// loopback, management endpoints, rules, block. Rules with an Application
// are not representable (the caller rejects them before).
func sections(p isolation.Plan) []section {
	n := p.Normalize()
	out := []section{{source: "loopback", lines: []string{"pass quick on lo0 all no state"}}}
	for _, e := range n.Management {
		var v4, v6 []string
		for _, a := range e.Addrs {
			if a.Unmap().Is4() {
				v4 = append(v4, a.Unmap().String())
			} else {
				v6 = append(v6, a.String())
			}
		}
		s := section{source: e.String()}
		for _, fam := range []struct {
			af    string
			addrs []string
		}{{"inet", v4}, {"inet6", v6}} {
			if len(fam.addrs) == 0 {
				continue
			}
			s.lines = append(s.lines, "pass out quick "+fam.af+" proto "+e.Protocol.String()+
				" from any to "+list(fam.addrs)+" port "+strconv.Itoa(int(e.Port))+" keep state")
		}
		out = append(out, s)
	}
	for _, r := range n.Rules {
		out = append(out, section{source: "rule " + r.String(), lines: ruleLines(r)})
	}
	out = append(out, section{source: "block", lines: []string{"block drop quick inet all", "block drop quick inet6 all"}})
	return out
}

// Ruleset returns the pf ruleset (pf.conf syntax, for the anchor) that
// puts plan p into effect: "pass quick" rules with state for loopback, the
// management endpoints and each rule, then "block drop quick" for IPv4 and
// IPv6. It is deterministic: equal plans give equal text. Rules with an
// Application cannot be expressed in pf; Enforcer.Apply rejects them
// before, and Ruleset writes them as a comment only.
func Ruleset(p isolation.Plan) string {
	var b strings.Builder
	b.WriteString("# cordon network isolation; generated from the plan, do not edit\n")
	for _, s := range sections(p) {
		b.WriteString("# " + s.source + "\n")
		if len(s.lines) == 0 {
			b.WriteString("#   (not expressible in pf: it matches by application)\n")
		}
		for _, l := range s.lines {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func list(items []string) string {
	if len(items) == 1 {
		return items[0]
	}
	return "{ " + strings.Join(items, ", ") + " }"
}

func portList(ps []isolation.PortRange) string {
	var items []string
	for _, p := range ps {
		if p.First == p.Last {
			items = append(items, strconv.Itoa(int(p.First)))
		} else {
			items = append(items, strconv.Itoa(int(p.First))+":"+strconv.Itoa(int(p.Last)))
		}
	}
	return list(items)
}

// ruleLines turns a normalized rule into pf rules: one per direction it
// allows and address family it covers.
func ruleLines(r isolation.Rule) []string {
	if r.Application != "" {
		return nil
	}
	v4ok := r.Protocol != isolation.ProtocolICMPv6
	v6ok := r.Protocol != isolation.ProtocolICMP
	var v4, v6 []string
	for _, p := range r.Remote {
		if p.Addr().Is4() {
			v4 = append(v4, prefixText(p))
		} else {
			v6 = append(v6, prefixText(p))
		}
	}
	if len(r.Remote) > 0 {
		v4ok = v4ok && len(v4) > 0
		v6ok = v6ok && len(v6) > 0
	}
	var out []string
	for _, fam := range []struct {
		af    string
		ok    bool
		addrs []string
	}{{"inet", v4ok, v4}, {"inet6", v6ok, v6}} {
		if !fam.ok {
			continue
		}
		remote := "any"
		if len(fam.addrs) > 0 {
			remote = list(fam.addrs)
		}
		proto := ""
		switch r.Protocol {
		case isolation.ProtocolTCP, isolation.ProtocolUDP, isolation.ProtocolICMP:
			proto = " proto " + r.Protocol.String()
		case isolation.ProtocolICMPv6:
			proto = " proto ipv6-icmp"
		}
		lport, rport := "", ""
		if len(r.LocalPorts) > 0 {
			lport = " port " + portList(r.LocalPorts)
		}
		if len(r.RemotePorts) > 0 {
			rport = " port " + portList(r.RemotePorts)
		}
		icmp := ""
		if len(r.ICMPTypes) > 0 {
			var ts []string
			for _, t := range r.ICMPTypes {
				ts = append(ts, strconv.Itoa(int(t)))
			}
			kw := " icmp-type "
			if r.Protocol == isolation.ProtocolICMPv6 {
				kw = " icmp6-type "
			}
			icmp = kw + list(ts)
		}
		if r.Direction.Includes(isolation.DirectionOut) {
			out = append(out, "pass out quick "+fam.af+proto+" from any"+lport+" to "+remote+rport+icmp+" keep state")
		}
		if r.Direction.Includes(isolation.DirectionIn) {
			out = append(out, "pass in quick "+fam.af+proto+" from "+remote+rport+" to any"+lport+icmp+" keep state")
		}
	}
	return out
}

func prefixText(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}
