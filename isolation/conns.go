package isolation

import "net/netip"

// Listeners is the set of a host's listening TCP sockets, which tells who
// opened an existing TCP connection: platforms list connections by their
// local and remote address, not by who sent the first SYN. Adapters use it
// to decide which connections a Plan (or the rules derived from it)
// allows, so that they all judge a connection the same way. The zero value
// is an empty set ready to use. It is not safe for concurrent use.
type Listeners struct {
	m map[netip.AddrPort]struct{}
}

// Add records a socket listening on local; a wildcard bind has an
// unspecified address (0.0.0.0 or ::). IPv4-mapped addresses are unmapped.
func (l *Listeners) Add(local netip.AddrPort) {
	if l.m == nil {
		l.m = map[netip.AddrPort]struct{}{}
	}
	l.m[unmapPort(local)] = struct{}{}
}

// Len returns the number of listening sockets recorded.
func (l *Listeners) Len() int { return len(l.m) }

// TCPFlow returns the Flow of an existing TCP connection between local
// and remote, as Plan.Allows judges it. The connection is inbound (the
// remote side opened it) when a socket listens on local's port at local's
// address or at an unspecified address of either family (a dual-stack
// socket bound to "::" also accepts IPv4 connections, which the platform
// may list in its IPv4 table); otherwise it is outbound. Addresses are
// unmapped; app is the owning program's path, "" when unknown.
func (l *Listeners) TCPFlow(local, remote netip.AddrPort, app string) Flow {
	local, remote = unmapPort(local), unmapPort(remote)
	f := Flow{Initiator: DirectionOut, Protocol: ProtocolTCP, Remote: remote.Addr(),
		LocalPort: local.Port(), RemotePort: remote.Port(), Application: app}
	if l.listens(local) || l.listens(netip.AddrPortFrom(netip.IPv4Unspecified(), local.Port())) ||
		l.listens(netip.AddrPortFrom(netip.IPv6Unspecified(), local.Port())) {
		f.Initiator = DirectionIn
	}
	return f
}

func (l *Listeners) listens(a netip.AddrPort) bool {
	_, ok := l.m[a]
	return ok
}

func unmapPort(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}
