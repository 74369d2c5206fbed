package wfp

import (
	"net/netip"

	"github.com/cordonsec/cordon/isolation"
)

// packet is what the ALE layers classify for one flow: the values of the
// fields cordon's filters test.
type packet struct {
	layer    Layer
	loopback bool
	proto    uint8
	remote   netip.Addr
	lport    uint16 // the ICMP type for ICMP and ICMPv6
	rport    uint16
	appID    string
}

// flowPacket returns the classification of flow f: the connect layer for a
// host-initiated flow, the receive/accept layer otherwise, of f's family.
func flowPacket(f isolation.Flow, appID string) packet {
	remote := f.Remote.Unmap()
	pk := packet{loopback: remote.IsLoopback(), proto: protoNumber(f.Protocol), remote: remote, appID: appID}
	v6 := remote.Is6()
	switch {
	case f.Initiator == isolation.DirectionOut && !v6:
		pk.layer = LayerConnectV4
	case f.Initiator == isolation.DirectionOut:
		pk.layer = LayerConnectV6
	case !v6:
		pk.layer = LayerRecvAcceptV4
	default:
		pk.layer = LayerRecvAcceptV6
	}
	if f.Protocol.IsICMP() {
		pk.lport = uint16(f.ICMPType)
	} else {
		pk.lport, pk.rport = f.LocalPort, f.RemotePort
	}
	return pk
}

// decide returns the action of the highest-weight filter among fs (one
// sublayer) that matches pk, and false when none matches (the sublayer
// then has no opinion and the flow passes as far as cordon is concerned).
// Among equal weights a block wins, the conservative choice where WFP's
// order is unspecified.
func decide(fs []Filter, pk packet) (Action, bool) {
	var best *Filter
	for i := range fs {
		f := &fs[i]
		if f.Layer != pk.layer || !f.matches(pk) {
			continue
		}
		if best == nil || f.Weight > best.Weight || f.Weight == best.Weight && f.Action == ActionBlock {
			best = f
		}
	}
	if best == nil {
		return 0, false
	}
	return best.Action, true
}

// matches applies WFP's condition semantics: conditions on the same field
// are OR'ed, different fields AND'ed.
func (f *Filter) matches(pk packet) bool {
	byField := map[Field]bool{}
	for _, c := range f.Conditions {
		byField[c.Field] = byField[c.Field] || c.matches(pk)
	}
	for _, ok := range byField {
		if !ok {
			return false
		}
	}
	return true
}

func (c Condition) matches(pk packet) bool {
	inRange := func(v uint16) bool {
		if c.Op == OpRange {
			return v >= c.Low && v <= c.High
		}
		return c.Op == OpEqual && v == c.Low
	}
	switch c.Field {
	case FieldFlags:
		var flags uint32
		if pk.loopback {
			flags |= FlagIsLoopback
		}
		return c.Op == OpFlagsAllSet && flags&c.Flags == c.Flags
	case FieldProtocol:
		return inRange(uint16(pk.proto))
	case FieldRemoteAddress:
		return c.Op == OpEqual && c.Prefix.IsValid() && c.Prefix.Contains(pk.remote)
	case FieldLocalPort:
		return inRange(pk.lport)
	case FieldRemotePort:
		return inRange(pk.rport)
	case FieldAppID:
		return c.Op == OpEqual && pk.appID != "" && c.AppID == pk.appID
	}
	return false
}

// permitted reports whether cordon's filters fs let flow f pass.
func permitted(fs []Filter, f isolation.Flow, appID string) bool {
	a, ok := decide(fs, flowPacket(f, appID))
	return !ok || a == ActionPermit
}
