package wfp

import (
	"crypto/sha256"
	"fmt"
	"net/netip"
	"slices"

	"github.com/cordonsec/cordon/isolation"
)

// Filter weights inside cordon's sublayer. The highest-weight matching
// filter of a sublayer decides; every permit is weighted above the
// block-all filters.
const (
	WeightLoopback   uint64 = 0xf000
	WeightManagement uint64 = 0xe000
	WeightAgent      uint64 = 0xe000
	WeightRule       uint64 = 0xd000
	WeightBlock      uint64 = 0x0000
)

// Sources of the filters that do not come from a plan line.
const (
	sourceLoopback = "loopback"
	sourceAgent    = "agent"
	sourceBlock    = "block"
)

// setSpec says how to build a filter set.
type setSpec struct {
	Provider   GUID
	Sublayer   GUID
	AgentAppID string                            // app id of the agent's executable; empty: no agent filters
	AppID      func(path string) (string, error) // resolves a rule's application path to its app id
}

// item is one plan item (loopback, an endpoint, the agent, a rule, the
// block) and the filters it becomes.
type item struct {
	source  string
	filters []Filter
}

// buildItems returns the items of the normalized plan p, in the order
// loopback, management endpoints, agent, rules, block.
func buildItems(p isolation.Plan, s setSpec) ([]item, error) {
	n := p.Normalize()
	var items []item
	add := func(source, name string, fs []Filter) {
		for i := range fs {
			fs[i].Description = source
			fs[i].Name = name
			fs[i].Provider = s.Provider
			fs[i].Sublayer = s.Sublayer
			fs[i].Persistent = true
			fs[i].ID = filterID(fs[i])
		}
		items = append(items, item{source: source, filters: fs})
	}

	var loop []Filter
	for _, l := range Layers {
		loop = append(loop, Filter{Layer: l, Action: ActionPermit, Weight: WeightLoopback,
			Conditions: []Condition{{Field: FieldFlags, Op: OpFlagsAllSet, Flags: FlagIsLoopback}}})
	}
	add(sourceLoopback, "cordon: loopback", loop)

	type protoPort struct {
		proto uint8
		port  uint16
	}
	var mgmtPorts []protoPort
	for _, e := range n.Management {
		fs := endpointFilters(e)
		add(e.String(), "cordon: management "+e.Name, fs)
		pp := protoPort{protoNumber(e.Protocol), e.Port}
		if !slices.Contains(mgmtPorts, pp) {
			mgmtPorts = append(mgmtPorts, pp)
		}
	}
	if s.AgentAppID != "" && len(mgmtPorts) > 0 {
		slices.SortFunc(mgmtPorts, func(a, b protoPort) int {
			if a.proto != b.proto {
				return int(a.proto) - int(b.proto)
			}
			return int(a.port) - int(b.port)
		})
		var fs []Filter
		for _, l := range []Layer{LayerConnectV4, LayerConnectV6} {
			for _, pp := range mgmtPorts {
				fs = append(fs, Filter{Layer: l, Action: ActionPermit, Weight: WeightAgent, Conditions: []Condition{
					{Field: FieldAppID, Op: OpEqual, AppID: s.AgentAppID},
					{Field: FieldProtocol, Op: OpEqual, Low: uint16(pp.proto)},
					{Field: FieldRemotePort, Op: OpEqual, Low: pp.port, High: pp.port},
				}})
			}
		}
		add(sourceAgent, "cordon: agent", fs)
	}

	for _, r := range n.Rules {
		appID := ""
		if r.Application != "" {
			if s.AppID == nil {
				return nil, fmt.Errorf("rule %q: application rules need an app id resolver: %w", r.String(), isolation.ErrUnsupported)
			}
			id, err := s.AppID(r.Application)
			if err != nil {
				return nil, fmt.Errorf("rule %q: app id of %q: %w", r.String(), r.Application, err)
			}
			appID = id
		}
		name := "cordon: rule"
		if r.Name != "" {
			name += " " + r.Name
		}
		add("rule "+r.String(), name, ruleFilters(r, appID))
	}

	var block []Filter
	for _, l := range Layers {
		block = append(block, Filter{Layer: l, Action: ActionBlock, Weight: WeightBlock, Hard: true})
	}
	add(sourceBlock, "cordon: block all", block)
	return items, nil
}

// buildFilters returns the complete filter set for p.
func buildFilters(p isolation.Plan, s setSpec) ([]Filter, error) {
	items, err := buildItems(p, s)
	if err != nil {
		return nil, err
	}
	var out []Filter
	for _, it := range items {
		out = append(out, it.filters...)
	}
	return out, nil
}

// filterID derives a filter's GUID from its content, so that the same plan
// always yields the same filter keys.
func filterID(f Filter) GUID {
	f.ID = GUID{}
	sum := sha256.Sum256([]byte("cordon-wfp-filter\x00" + f.String()))
	var b [16]byte
	copy(b[:], sum[:16])
	return guidFrom(b)
}

func protoNumber(p isolation.Protocol) uint8 {
	switch p {
	case isolation.ProtocolTCP:
		return protoTCP
	case isolation.ProtocolUDP:
		return protoUDP
	case isolation.ProtocolICMP:
		return protoICMP
	case isolation.ProtocolICMPv6:
		return protoICMPv6
	}
	return 0
}

func endpointFilters(e isolation.Endpoint) []Filter {
	var v4, v6 []Condition
	for _, a := range e.Addrs {
		a = a.Unmap()
		c := Condition{Field: FieldRemoteAddress, Op: OpEqual, Prefix: netip.PrefixFrom(a, a.BitLen())}
		if a.Is4() {
			v4 = append(v4, c)
		} else {
			v6 = append(v6, c)
		}
	}
	var fs []Filter
	for _, fam := range []struct {
		layer Layer
		addrs []Condition
	}{{LayerConnectV4, v4}, {LayerConnectV6, v6}} {
		if len(fam.addrs) == 0 {
			continue
		}
		conds := []Condition{{Field: FieldProtocol, Op: OpEqual, Low: uint16(protoNumber(e.Protocol))}}
		conds = append(conds, fam.addrs...)
		conds = append(conds, Condition{Field: FieldRemotePort, Op: OpEqual, Low: e.Port, High: e.Port})
		fs = append(fs, Filter{Layer: fam.layer, Action: ActionPermit, Weight: WeightManagement, Conditions: conds})
	}
	return fs
}

// ruleFilters turns a normalized rule into one permit filter per layer it
// needs: connect layers for "out", receive/accept layers for "in", and one
// per address family it covers.
func ruleFilters(r isolation.Rule, appID string) []Filter {
	v4 := r.Protocol != isolation.ProtocolICMPv6
	v6 := r.Protocol != isolation.ProtocolICMP
	var v4addrs, v6addrs []Condition
	if len(r.Remote) > 0 {
		for _, p := range r.Remote {
			c := Condition{Field: FieldRemoteAddress, Op: OpEqual, Prefix: p}
			if p.Addr().Is4() {
				v4addrs = append(v4addrs, c)
			} else {
				v6addrs = append(v6addrs, c)
			}
		}
		v4 = v4 && len(v4addrs) > 0
		v6 = v6 && len(v6addrs) > 0
	}
	var common []Condition
	if r.Protocol != isolation.ProtocolAny {
		common = append(common, Condition{Field: FieldProtocol, Op: OpEqual, Low: uint16(protoNumber(r.Protocol))})
	}
	common = append(common, portConditions(FieldLocalPort, r.LocalPorts)...)
	common = append(common, portConditions(FieldRemotePort, r.RemotePorts)...)
	for _, t := range r.ICMPTypes {
		common = append(common, Condition{Field: FieldLocalPort, Op: OpEqual, Low: uint16(t), High: uint16(t)})
	}
	if appID != "" {
		common = append(common, Condition{Field: FieldAppID, Op: OpEqual, AppID: appID})
	}
	var fs []Filter
	for _, l := range Layers {
		if l.Outbound() && !r.Direction.Includes(isolation.DirectionOut) ||
			!l.Outbound() && !r.Direction.Includes(isolation.DirectionIn) {
			continue
		}
		addrs := v4addrs
		if l.V6() {
			if !v6 {
				continue
			}
			addrs = v6addrs
		} else if !v4 {
			continue
		}
		conds := append(slices.Clone(common), addrs...)
		fs = append(fs, Filter{Layer: l, Action: ActionPermit, Weight: WeightRule, Conditions: conds})
	}
	return fs
}

func portConditions(f Field, ps []isolation.PortRange) []Condition {
	var out []Condition
	for _, p := range ps {
		op := OpEqual
		if p.First != p.Last {
			op = OpRange
		}
		out = append(out, Condition{Field: f, Op: op, Low: p.First, High: p.Last})
	}
	return out
}
