package isolation

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
)

// Profile names a standard network profile: a fixed set of rules that
// keeps a basic network service working while the host is isolated.
type Profile string

// The standard profiles. DefaultProfiles lists the ones in force when a
// mode's exclusion list is not configured.
const (
	// ProfileDNSClient: outbound DNS queries (UDP and TCP to port 53).
	ProfileDNSClient Profile = "dns-client"
	// ProfileDNSServer: inbound DNS queries (UDP and TCP to local port 53).
	ProfileDNSServer Profile = "dns-server"
	// ProfileDHCPClient: DHCPv4 (UDP 68<->67) and DHCPv6 (UDP 546<->547)
	// client traffic, both directions (servers answer by broadcast or
	// multicast, which no connection tracking relates to the request).
	ProfileDHCPClient Profile = "dhcp-client"
	// ProfileDHCPServer: DHCPv4 (UDP 67<->68) and DHCPv6 (UDP 547 from 546
	// or from relays on 547) server traffic, both directions.
	ProfileDHCPServer Profile = "dhcp-server"
)

// DefaultProfiles is the exclusion list used when none is configured: DNS
// and DHCP, client and server.
var DefaultProfiles = []Profile{ProfileDNSClient, ProfileDNSServer, ProfileDHCPClient, ProfileDHCPServer}

// NeighborDiscoveryTypes are the ICMPv6 types IPv6 needs on the link while
// the host is isolated: Multicast Listener Query, Report and Done (130-132),
// Router Solicitation and Advertisement (133, 134), Neighbour Solicitation
// and Advertisement (135, 136) and MLDv2 Report (143). Redirect (137) is
// left out on purpose. Without them the host loses IPv6 on the link, and
// with it a management channel reached over IPv6.
var NeighborDiscoveryTypes = []uint8{130, 131, 132, 133, 134, 135, 136, 143}

// NeighborDiscoveryRule returns the rule the Manager adds to every plan:
// ICMPv6 of NeighborDiscoveryTypes, both directions, any IPv6 remote.
func NeighborDiscoveryRule() Rule {
	return Rule{Name: "icmpv6-nd", Direction: DirectionBoth, Protocol: ProtocolICMPv6, ICMPTypes: slices.Clone(NeighborDiscoveryTypes)}.Normalize()
}

var (
	anyIPv4 = netip.MustParsePrefix("0.0.0.0/0")
	anyIPv6 = netip.MustParsePrefix("::/0")
)

// Rules returns the profile's rules, named "<profile>" (with a suffix per
// protocol family where a profile has several), or an error wrapping
// ErrInvalidConfig for an unknown profile.
func (p Profile) Rules() ([]Rule, error) {
	n := string(p)
	switch p {
	case ProfileDNSClient:
		return []Rule{
			{Name: n, Direction: DirectionOut, Protocol: ProtocolUDP, RemotePorts: []PortRange{Port(53)}},
			{Name: n, Direction: DirectionOut, Protocol: ProtocolTCP, RemotePorts: []PortRange{Port(53)}},
		}, nil
	case ProfileDNSServer:
		return []Rule{
			{Name: n, Direction: DirectionIn, Protocol: ProtocolUDP, LocalPorts: []PortRange{Port(53)}},
			{Name: n, Direction: DirectionIn, Protocol: ProtocolTCP, LocalPorts: []PortRange{Port(53)}},
		}, nil
	case ProfileDHCPClient:
		return []Rule{
			{Name: n + ":v4", Direction: DirectionBoth, Protocol: ProtocolUDP, Remote: []netip.Prefix{anyIPv4},
				LocalPorts: []PortRange{Port(68)}, RemotePorts: []PortRange{Port(67)}},
			{Name: n + ":v6", Direction: DirectionBoth, Protocol: ProtocolUDP, Remote: []netip.Prefix{anyIPv6},
				LocalPorts: []PortRange{Port(546)}, RemotePorts: []PortRange{Port(547)}},
		}, nil
	case ProfileDHCPServer:
		return []Rule{
			{Name: n + ":v4", Direction: DirectionBoth, Protocol: ProtocolUDP, Remote: []netip.Prefix{anyIPv4},
				LocalPorts: []PortRange{Port(67)}, RemotePorts: []PortRange{Port(68)}},
			{Name: n + ":v6", Direction: DirectionBoth, Protocol: ProtocolUDP, Remote: []netip.Prefix{anyIPv6},
				LocalPorts: []PortRange{Port(547)}, RemotePorts: []PortRange{{546, 547}}},
		}, nil
	}
	return nil, fmt.Errorf("isolation: %w: unknown profile %q (want dns-client, dns-server, dhcp-client or dhcp-server)", ErrInvalidConfig, string(p))
}

// Exclusions is one mode's exclusion list: standard profiles plus custom
// rules. In JSON, rules are their text form:
//
//	{"profiles": ["dns-client"], "rules": ["out tcp remote=192.0.2.7 rport=443 name=proxy"]}
//
// A nil Profiles slice means DefaultProfiles; an empty non-nil slice means
// no profile. The zero value is therefore "the default profiles, no custom
// rule".
type Exclusions struct {
	Profiles []Profile `json:"profiles"`
	Rules    []Rule    `json:"rules,omitempty"`
}

// UnmarshalJSON decodes Exclusions keeping the distinction between an
// absent "profiles" (default profiles) and an empty list (none).
func (x *Exclusions) UnmarshalJSON(b []byte) error {
	var raw struct {
		Profiles *[]Profile `json:"profiles"`
		Rules    []Rule     `json:"rules"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	x.Profiles = nil
	if raw.Profiles != nil {
		x.Profiles = *raw.Profiles
		if x.Profiles == nil {
			x.Profiles = []Profile{}
		}
	}
	x.Rules = raw.Rules
	return nil
}

// EffectiveProfiles returns the profiles in force: DefaultProfiles when
// Profiles is nil.
func (x Exclusions) EffectiveProfiles() []Profile {
	if x.Profiles == nil {
		return slices.Clone(DefaultProfiles)
	}
	return slices.Clone(x.Profiles)
}

// Validate checks every profile and custom rule. Errors wrap
// ErrInvalidConfig and, for rules, carry the *RuleError (with the rule's
// index in Field).
func (x Exclusions) Validate() error {
	seen := map[Profile]bool{}
	for _, p := range x.Profiles {
		if _, err := p.Rules(); err != nil {
			return err
		}
		if seen[p] {
			return fmt.Errorf("isolation: %w: profile %q listed twice", ErrInvalidConfig, string(p))
		}
		seen[p] = true
	}
	for i, r := range x.Rules {
		if err := r.Validate(); err != nil {
			return fmt.Errorf("isolation: %w: rules[%d]: %w", ErrInvalidConfig, i, err)
		}
	}
	return nil
}

// AllRules expands the profiles and appends the custom rules; custom rules
// without a name are named "custom:<index>".
func (x Exclusions) AllRules() ([]Rule, error) {
	if err := x.Validate(); err != nil {
		return nil, err
	}
	var out []Rule
	for _, p := range x.EffectiveProfiles() {
		rs, _ := p.Rules()
		out = append(out, rs...)
	}
	for i, r := range x.Rules {
		if r.Name == "" {
			r.Name = "custom:" + strconv.Itoa(i)
		}
		out = append(out, r.Normalize())
	}
	return out, nil
}

// Clone returns a deep copy.
func (x Exclusions) Clone() Exclusions {
	out := Exclusions{Rules: slices.Clone(x.Rules)}
	if x.Profiles != nil {
		out.Profiles = slices.Clone(x.Profiles)
	}
	return out
}

// Equal reports whether x and o name the same effective profiles (in any
// order) and the same custom rules (in order).
func (x Exclusions) Equal(o Exclusions) bool {
	a, b := x.EffectiveProfiles(), o.EffectiveProfiles()
	slices.Sort(a)
	slices.Sort(b)
	if !slices.Equal(a, b) || len(x.Rules) != len(o.Rules) {
		return false
	}
	for i := range x.Rules {
		if !x.Rules[i].Equal(o.Rules[i]) {
			return false
		}
	}
	return true
}
