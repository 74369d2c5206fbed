package pf

import (
	"net/netip"
	"strings"

	"github.com/cordonsec/cordon/isolation"
)

// pfState is one line of "pfctl -s states": a connection pf tracks.
type pfState struct {
	proto  string
	local  netip.AddrPort // pf prints the host's side first
	remote netip.AddrPort
	out    bool // "->": the host initiated it; "<-": the remote did
}

// parseHostPort reads "192.0.2.1:443", "2001:db8::1[443]" or a bare
// address (protocols without ports).
func parseHostPort(s string) (netip.AddrPort, bool) {
	if i := strings.IndexByte(s, '['); i > 0 && strings.HasSuffix(s, "]") {
		a, err := netip.ParseAddr(s[:i])
		if err != nil {
			return netip.AddrPort{}, false
		}
		ap, err := netip.ParseAddrPort("[" + a.String() + "]:" + s[i+1:len(s)-1])
		return ap, err == nil
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, true
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a, 0), true
}

// parseStates reads "pfctl -s states" output. Lines it does not
// recognize as a state (verbose continuation lines, notices) are skipped;
// a state line with an unreadable address is an error naming the line.
func parseStates(text string) ([]pfState, error) {
	var out []pfState
	for i, line := range strings.Split(text, "\n") {
		if line == "" || line[0] == ' ' || line[0] == '\t' {
			continue
		}
		f := strings.Fields(line)
		arrow := -1
		for j, w := range f {
			if w == "->" || w == "<-" {
				arrow = j
				break
			}
		}
		if arrow < 3 || arrow+1 >= len(f) {
			continue
		}
		local, ok1 := parseHostPort(f[2])
		remote, ok2 := parseHostPort(f[arrow+1])
		if !ok1 || !ok2 {
			return nil, &SyntaxError{Line: i + 1, Token: line, Msg: "unreadable state addresses"}
		}
		out = append(out, pfState{proto: f[1], local: local, remote: remote, out: f[arrow] == "->"})
	}
	return out, nil
}

// flow returns the state as a flow of the plan, and false for protocols a
// plan cannot name. The ICMP type of an ICMP state is not printed; it is
// taken as echo request (8, or 128 for ICMPv6), the only ICMP that pf
// keeps state for in practice.
func (s pfState) flow() (isolation.Flow, bool) {
	f := isolation.Flow{Initiator: isolation.DirectionIn, Remote: s.remote.Addr().Unmap()}
	if s.out {
		f.Initiator = isolation.DirectionOut
	}
	switch s.proto {
	case "tcp":
		f.Protocol = isolation.ProtocolTCP
	case "udp":
		f.Protocol = isolation.ProtocolUDP
	case "icmp":
		f.Protocol, f.ICMPType = isolation.ProtocolICMP, 8
		return f, true
	case "ipv6-icmp", "icmp6":
		f.Protocol, f.ICMPType = isolation.ProtocolICMPv6, 128
		return f, true
	default:
		return f, false
	}
	f.LocalPort, f.RemotePort = s.local.Port(), s.remote.Port()
	return f, true
}
