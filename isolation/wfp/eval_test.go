package wfp

import (
	"net/netip"
	"testing"

	"github.com/cordonsec/cordon/isolation"
)

func TestDecideWFPSemantics(t *testing.T) {
	pfx := netip.MustParsePrefix
	port := func(f Field, p uint16) Condition { return Condition{Field: f, Op: OpEqual, Low: p, High: p} }
	fs := []Filter{
		{Layer: LayerConnectV4, Action: ActionBlock, Weight: 0},
		{Layer: LayerConnectV4, Action: ActionPermit, Weight: 10, Conditions: []Condition{
			{Field: FieldProtocol, Op: OpEqual, Low: protoTCP},
			{Field: FieldRemoteAddress, Op: OpEqual, Prefix: pfx("198.18.1.0/24")},
			{Field: FieldRemoteAddress, Op: OpEqual, Prefix: pfx("198.18.2.0/24")},
			port(FieldRemotePort, 443),
			{Field: FieldRemotePort, Op: OpRange, Low: 8000, High: 8080},
		}},
		// Same weight as a permit: the block wins where WFP leaves the
		// order open.
		{Layer: LayerConnectV4, Action: ActionBlock, Weight: 10, Conditions: []Condition{{Field: FieldRemoteAddress, Op: OpEqual, Prefix: pfx("198.18.2.66/32")}}},
		{Layer: LayerRecvAcceptV4, Action: ActionPermit, Weight: 10, Conditions: []Condition{{Field: FieldFlags, Op: OpFlagsAllSet, Flags: FlagIsLoopback}}},
	}
	a := netip.MustParseAddr
	out := func(remote string, rport uint16) isolation.Flow {
		return isolation.Flow{Initiator: isolation.DirectionOut, Protocol: isolation.ProtocolTCP, Remote: a(remote), RemotePort: rport, LocalPort: 50000}
	}
	cases := []struct {
		name string
		f    isolation.Flow
		want bool
	}{
		{"first address, first port", out("198.18.1.7", 443), true},
		{"second address (OR), range port", out("198.18.2.7", 8080), true},
		{"port outside (AND)", out("198.18.1.7", 8081), false},
		{"address outside", out("198.18.3.7", 443), false},
		{"udp", isolation.Flow{Initiator: isolation.DirectionOut, Protocol: isolation.ProtocolUDP, Remote: a("198.18.1.7"), RemotePort: 443}, false},
		{"equal-weight block wins", out("198.18.2.66", 443), false},
		{"inbound: only a non-matching loopback filter at that layer", isolation.Flow{Initiator: isolation.DirectionIn, Protocol: isolation.ProtocolTCP, Remote: a("198.18.1.7"), LocalPort: 22}, true},
		{"inbound loopback", isolation.Flow{Initiator: isolation.DirectionIn, Protocol: isolation.ProtocolTCP, Remote: a("127.0.0.1"), LocalPort: 22}, true},
		{"IPv6: no filter at that layer", isolation.Flow{Initiator: isolation.DirectionOut, Protocol: isolation.ProtocolTCP, Remote: a("2001:db8::1"), RemotePort: 443}, true},
	}
	for _, c := range cases {
		if got := permitted(fs, c.f, ""); got != c.want {
			t.Errorf("%s: permitted = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestFlowPacketICMPTypeInLocalPort(t *testing.T) {
	pk := flowPacket(isolation.Flow{Initiator: isolation.DirectionIn, Protocol: isolation.ProtocolICMPv6, Remote: netip.MustParseAddr("fe80::1"), ICMPType: 135}, "")
	if pk.layer != LayerRecvAcceptV6 || pk.lport != 135 || pk.proto != protoICMPv6 || pk.loopback {
		t.Fatalf("packet %+v", pk)
	}
}
