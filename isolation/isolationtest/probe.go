package isolationtest

import (
	"net/netip"

	"github.com/cordonsec/cordon/isolation"
)

// OtherApplication is the program path ProbeFlowsFor gives the near miss
// of an application rule: a program no rule names.
const OtherApplication = "/opt/cordon-test/other-application"

// ProbeFlowsFor returns ProbeFlows plus, for each management endpoint and
// rule of p, a flow it allows and near misses: another port, the other
// direction, an address outside its prefixes and, for an application
// rule, another program. Adapters compare their platform's decision on
// these flows with p.Allows (golden and probe tests).
func ProbeFlowsFor(p isolation.Plan) []isolation.Flow {
	flows := ProbeFlows()
	n := p.Normalize()
	for _, e := range n.Management {
		for _, a := range e.Addrs {
			f := isolation.Flow{Initiator: isolation.DirectionOut, Protocol: e.Protocol, Remote: a, RemotePort: e.Port, LocalPort: 50000}
			flows = append(flows, f)
			f.RemotePort++
			flows = append(flows, f)
			f.RemotePort--
			f.Initiator = isolation.DirectionIn
			flows = append(flows, f)
		}
	}
	for _, r := range n.Rules {
		remotes := []netip.Addr{netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("2001:db8:ffff::7")}
		for _, pr := range r.Remote {
			remotes = append(remotes, pr.Addr())
		}
		protos := []isolation.Protocol{r.Protocol}
		if r.Protocol == isolation.ProtocolAny {
			protos = []isolation.Protocol{isolation.ProtocolTCP, isolation.ProtocolUDP}
		}
		for _, proto := range protos {
			for _, dir := range []isolation.Direction{isolation.DirectionIn, isolation.DirectionOut} {
				for _, remote := range remotes {
					if proto == isolation.ProtocolICMP && !remote.Is4() || proto == isolation.ProtocolICMPv6 && !remote.Is6() {
						continue
					}
					f := isolation.Flow{Initiator: dir, Protocol: proto, Remote: remote, LocalPort: 50001, RemotePort: 50002}
					if len(r.LocalPorts) > 0 {
						f.LocalPort = r.LocalPorts[0].Last
					}
					if len(r.RemotePorts) > 0 {
						f.RemotePort = r.RemotePorts[0].First
					}
					if len(r.ICMPTypes) > 0 {
						f.ICMPType = r.ICMPTypes[0]
					}
					if r.Application != "" {
						f.Application = r.Application
						other := f
						other.Application = OtherApplication
						flows = append(flows, other)
					}
					flows = append(flows, f)
					g := f
					g.LocalPort, g.RemotePort, g.ICMPType = f.LocalPort-1, f.RemotePort+1, f.ICMPType+1
					flows = append(flows, g)
				}
			}
		}
	}
	return flows
}
