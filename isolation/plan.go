package isolation

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Direction says which side initiates the flows a rule allows.
//
// An allow rule permits the packets of a flow that matches it in its
// initiating direction and the replies of that flow (as tracked by the
// platform: conntrack, WFP ALE, pf state), and nothing else. Adapters must not
// add a blanket "accept established" rule: existing flows that no rule
// allows are ended when a plan is applied.
type Direction uint8

// The directions. The zero value is invalid so that a forgotten field is
// caught by Validate.
const (
	DirectionIn   Direction = iota + 1 // the remote side initiates (inbound)
	DirectionOut                       // the host initiates (outbound)
	DirectionBoth                      // either side initiates
)

var directionNames = [...]string{DirectionIn: "in", DirectionOut: "out", DirectionBoth: "both"}

// String returns "in", "out" or "both", or "direction(N)" for an invalid value.
func (d Direction) String() string {
	if int(d) < len(directionNames) && directionNames[d] != "" {
		return directionNames[d]
	}
	return "direction(" + strconv.Itoa(int(d)) + ")"
}

// Includes reports whether d allows flows initiated in direction x (which
// should be DirectionIn or DirectionOut).
func (d Direction) Includes(x Direction) bool {
	return d == DirectionBoth || d == x
}

// ParseDirection parses "in", "out" or "both".
func ParseDirection(s string) (Direction, error) {
	for i, n := range directionNames {
		if n != "" && n == s {
			return Direction(i), nil
		}
	}
	return 0, ruleErr("direction", s, "want in, out or both")
}

// Protocol is the transport protocol a rule matches.
type Protocol uint8

// The protocols. ProtocolAny matches every protocol (then the rule has no
// ports and no ICMP types).
const (
	ProtocolAny Protocol = iota
	ProtocolTCP
	ProtocolUDP
	ProtocolICMP   // ICMP for IPv4 only
	ProtocolICMPv6 // ICMPv6 (IPv6 only)
)

var protocolNames = [...]string{ProtocolAny: "any", ProtocolTCP: "tcp", ProtocolUDP: "udp", ProtocolICMP: "icmp", ProtocolICMPv6: "icmpv6"}

// String returns "any", "tcp", "udp", "icmp" or "icmpv6".
func (p Protocol) String() string {
	if int(p) < len(protocolNames) {
		return protocolNames[p]
	}
	return "protocol(" + strconv.Itoa(int(p)) + ")"
}

// HasPorts reports whether the protocol has ports (TCP and UDP).
func (p Protocol) HasPorts() bool { return p == ProtocolTCP || p == ProtocolUDP }

// IsICMP reports whether the protocol is ICMP or ICMPv6.
func (p Protocol) IsICMP() bool { return p == ProtocolICMP || p == ProtocolICMPv6 }

// ParseProtocol parses "any", "tcp", "udp", "icmp" or "icmpv6".
func ParseProtocol(s string) (Protocol, error) {
	for i, n := range protocolNames {
		if n == s {
			return Protocol(i), nil
		}
	}
	return 0, ruleErr("protocol", s, "want tcp, udp, icmp, icmpv6 or any")
}

// PortRange is an inclusive range of ports, First <= Last, both non-zero. A
// single port has First == Last.
type PortRange struct {
	First uint16 `json:"first"`
	Last  uint16 `json:"last"`
}

// Port returns the range holding the single port p.
func Port(p uint16) PortRange { return PortRange{p, p} }

// Contains reports whether p is in the range.
func (r PortRange) Contains(p uint16) bool { return p >= r.First && p <= r.Last }

// String returns "53" or "1024-65535".
func (r PortRange) String() string {
	if r.First == r.Last {
		return strconv.Itoa(int(r.First))
	}
	return strconv.Itoa(int(r.First)) + "-" + strconv.Itoa(int(r.Last))
}

func (r PortRange) valid() bool { return r.First != 0 && r.First <= r.Last }

// ParsePortRange parses "N" or "N-M" with 1 <= N <= M <= 65535.
func ParsePortRange(s string) (PortRange, error) {
	a, b, isRange := strings.Cut(s, "-")
	first, err := parsePort(a)
	if err != nil {
		return PortRange{}, ruleErr("port", s, "%v", err)
	}
	last := first
	if isRange {
		if last, err = parsePort(b); err != nil {
			return PortRange{}, ruleErr("port", s, "%v", err)
		}
	}
	r := PortRange{first, last}
	if !r.valid() {
		return PortRange{}, ruleErr("port", s, "range start is after its end")
	}
	return r, nil
}

func parsePort(s string) (uint16, error) {
	if s == "" || len(s) > 5 {
		return 0, fmt.Errorf("want a port number 1-65535")
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("want a port number 1-65535")
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("want a port number 1-65535")
	}
	return uint16(n), nil
}

// Rule is one allow rule. Empty lists mean "any": a rule with no Remote
// matches every remote address of both families (IPv4 only for ICMP, IPv6
// only for ICMPv6), no LocalPorts matches every local port, and so on.
//
// Constraints, checked by Validate: Direction is set; ports only with TCP or
// UDP; ICMPTypes only with ICMP or ICMPv6; ICMP rules name only IPv4
// prefixes and ICMPv6 rules only IPv6 prefixes; prefixes are valid (they are
// masked to their canonical form by Normalize); Application, when set, is an
// absolute path (Unix "/..." or Windows "C:\..." or "\\server\...") without
// control characters; Name uses only letters, digits and "._:-".
//
// The text form (String, ParseRule, MarshalText) is
//
//	<direction> <protocol> [remote=A,B/N] [lport=P,Q-R] [rport=...] [icmp=T,...] [app=PATH] [name=NAME]
//
// for example `out tcp remote=192.0.2.0/24,2001:db8::/32 rport=443 name=proxy`.
// A value holding spaces, quotes or commas that are not separators is
// written as a Go quoted string: app="C:\\Program Files\\x.exe".
type Rule struct {
	Name        string
	Direction   Direction
	Protocol    Protocol
	Remote      []netip.Prefix
	LocalPorts  []PortRange
	RemotePorts []PortRange
	ICMPTypes   []uint8
	Application string
}

// Validate checks the rule's constraints and returns a *RuleError wrapping
// ErrInvalidRule for the first one broken.
func (r Rule) Validate() error {
	if r.Name != "" && !validName(r.Name) {
		return ruleErr("name", r.Name, "use 1-64 letters, digits and . _ : -")
	}
	if r.Direction < DirectionIn || r.Direction > DirectionBoth {
		return ruleErr("direction", r.Direction.String(), "want in, out or both")
	}
	if r.Protocol > ProtocolICMPv6 {
		return ruleErr("protocol", r.Protocol.String(), "want tcp, udp, icmp, icmpv6 or any")
	}
	for _, p := range r.Remote {
		if !p.IsValid() {
			return ruleErr("remote", p.String(), "invalid address prefix")
		}
		if p.Addr().Zone() != "" {
			return ruleErr("remote", p.String(), "zoned addresses are not allowed")
		}
		if p.Addr().Is4In6() {
			return ruleErr("remote", p.String(), "use the plain IPv4 form, not IPv4-mapped IPv6")
		}
		if r.Protocol == ProtocolICMP && !p.Addr().Is4() {
			return ruleErr("remote", p.String(), "icmp rules take IPv4 addresses only (use icmpv6)")
		}
		if r.Protocol == ProtocolICMPv6 && !p.Addr().Is6() {
			return ruleErr("remote", p.String(), "icmpv6 rules take IPv6 addresses only (use icmp)")
		}
	}
	for _, f := range []struct {
		name  string
		ports []PortRange
	}{{"lport", r.LocalPorts}, {"rport", r.RemotePorts}} {
		if len(f.ports) > 0 && !r.Protocol.HasPorts() {
			return ruleErr(f.name, "", "ports need protocol tcp or udp, not %s", r.Protocol)
		}
		for _, pr := range f.ports {
			if !pr.valid() {
				return ruleErr(f.name, pr.String(), "ports are 1-65535 and a range's start is not after its end")
			}
		}
	}
	if len(r.ICMPTypes) > 0 && !r.Protocol.IsICMP() {
		return ruleErr("icmp", "", "icmp types need protocol icmp or icmpv6, not %s", r.Protocol)
	}
	if r.Application != "" {
		if msg := checkAppPath(r.Application); msg != "" {
			return ruleErr("app", r.Application, "%s", msg)
		}
	}
	return nil
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

func checkAppPath(s string) string {
	if len(s) > 4096 {
		return "path longer than 4096 bytes"
	}
	for _, c := range s {
		if c < 0x20 || c == 0x7f || c == '\uFFFD' {
			return "control or invalid characters in path"
		}
	}
	switch {
	case strings.HasPrefix(s, "/"):
		return ""
	case strings.HasPrefix(s, `\\`) && len(s) > 2:
		return ""
	case len(s) >= 3 && (s[0]|0x20) >= 'a' && (s[0]|0x20) <= 'z' && s[1] == ':' && (s[2] == '\\' || s[2] == '/'):
		return ""
	}
	return "want an absolute path"
}

// Normalize returns a copy of r in canonical form: prefixes masked, lists
// sorted and without duplicates. Two rules that allow the same flows with
// the same fields have equal normalized forms.
func (r Rule) Normalize() Rule {
	out := r
	out.Remote = make([]netip.Prefix, 0, len(r.Remote))
	for _, p := range r.Remote {
		if p.IsValid() {
			p = p.Masked()
		}
		out.Remote = append(out.Remote, p)
	}
	slices.SortFunc(out.Remote, comparePrefix)
	out.Remote = slices.Compact(out.Remote)
	out.LocalPorts = normPorts(r.LocalPorts)
	out.RemotePorts = normPorts(r.RemotePorts)
	out.ICMPTypes = slices.Clone(r.ICMPTypes)
	slices.Sort(out.ICMPTypes)
	out.ICMPTypes = slices.Compact(out.ICMPTypes)
	if len(out.Remote) == 0 {
		out.Remote = nil
	}
	if len(out.ICMPTypes) == 0 {
		out.ICMPTypes = nil
	}
	return out
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

func normPorts(in []PortRange) []PortRange {
	if len(in) == 0 {
		return nil
	}
	out := slices.Clone(in)
	slices.SortFunc(out, func(a, b PortRange) int {
		if a.First != b.First {
			return int(a.First) - int(b.First)
		}
		return int(a.Last) - int(b.Last)
	})
	return slices.Compact(out)
}

// String returns the canonical text form of the normalized rule (see Rule).
func (r Rule) String() string {
	n := r.Normalize()
	var b strings.Builder
	b.WriteString(n.Direction.String())
	b.WriteByte(' ')
	b.WriteString(n.Protocol.String())
	if len(n.Remote) > 0 {
		b.WriteString(" remote=")
		for i, p := range n.Remote {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(prefixText(p))
		}
	}
	writePorts(&b, " lport=", n.LocalPorts)
	writePorts(&b, " rport=", n.RemotePorts)
	if len(n.ICMPTypes) > 0 {
		b.WriteString(" icmp=")
		for i, t := range n.ICMPTypes {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Itoa(int(t)))
		}
	}
	if n.Application != "" {
		b.WriteString(" app=")
		b.WriteString(quoteValue(n.Application))
	}
	if n.Name != "" {
		b.WriteString(" name=")
		b.WriteString(quoteValue(n.Name))
	}
	return b.String()
}

// prefixText writes a single-address prefix as the bare address.
func prefixText(p netip.Prefix) string {
	if p.IsValid() && p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

func writePorts(b *strings.Builder, key string, ps []PortRange) {
	if len(ps) == 0 {
		return
	}
	b.WriteString(key)
	for i, p := range ps {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(p.String())
	}
}

// quoteValue returns s bare when it holds no space, quote, comma, equals
// sign or non-printable byte, and Go-quoted otherwise.
func quoteValue(s string) string {
	if s == "" {
		return `""`
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f || c == '"' || c == ',' || c == '=' || c == '#' || c == '\\' {
			return strconv.Quote(s)
		}
	}
	return s
}

// MarshalText returns String. It fails for an invalid rule.
func (r Rule) MarshalText() ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return []byte(r.String()), nil
}

// UnmarshalText parses the rule text form with ParseRule.
func (r *Rule) UnmarshalText(b []byte) error {
	p, err := ParseRule(string(b))
	if err != nil {
		return err
	}
	*r = p
	return nil
}

// Equal reports whether r and o have the same normalized form.
func (r Rule) Equal(o Rule) bool { return r.String() == o.String() }

// Matches reports whether the rule allows flow f (see Flow). The loopback
// exception is not a rule; see Plan.Allows.
func (r Rule) Matches(f Flow) bool {
	if !r.Direction.Includes(f.Initiator) {
		return false
	}
	if r.Protocol != ProtocolAny && r.Protocol != f.Protocol {
		return false
	}
	remote := f.Remote.Unmap()
	if len(r.Remote) > 0 {
		ok := false
		for _, p := range r.Remote {
			if p.Contains(remote) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if f.Protocol.HasPorts() {
		if !portsMatch(r.LocalPorts, f.LocalPort) || !portsMatch(r.RemotePorts, f.RemotePort) {
			return false
		}
	}
	if f.Protocol.IsICMP() && len(r.ICMPTypes) > 0 && !slices.Contains(r.ICMPTypes, f.ICMPType) {
		return false
	}
	if r.Application != "" && r.Application != f.Application {
		return false
	}
	return true
}

func portsMatch(ps []PortRange, p uint16) bool {
	if len(ps) == 0 {
		return true
	}
	for _, r := range ps {
		if r.Contains(p) {
			return true
		}
	}
	return false
}

// Flow describes one network flow for Plan.Allows: the reference semantics
// an Enforcer implements, used by the fake enforcer and by conformance
// probes.
type Flow struct {
	Initiator   Direction  // DirectionIn (remote initiates) or DirectionOut (host initiates)
	Protocol    Protocol   // a concrete protocol, not ProtocolAny
	Remote      netip.Addr // the remote address
	LocalPort   uint16     // TCP and UDP only
	RemotePort  uint16     // TCP and UDP only
	ICMPType    uint8      // ICMP and ICMPv6 only
	Application string     // the local program's path, if known
}

// Endpoint is one management endpoint (a bus server), resolved to
// addresses. The host may always open Protocol connections to Addrs on
// Port, and receive their replies.
type Endpoint struct {
	Name     string       `json:"name"`     // what was configured, e.g. "nats.example.com:4222"; free text, for people
	Protocol Protocol     `json:"protocol"` // ProtocolTCP or ProtocolUDP
	Addrs    []netip.Addr `json:"addrs"`    // at least one; IPv4 and IPv6 as resolved
	Port     uint16       `json:"port"`     // non-zero
}

// Validate checks the endpoint; it returns a *RuleError.
func (e Endpoint) Validate() error {
	if e.Protocol != ProtocolTCP && e.Protocol != ProtocolUDP {
		return ruleErr("proto", e.Protocol.String(), "management endpoints use tcp or udp")
	}
	if e.Port == 0 {
		return ruleErr("port", "0", "management endpoint needs a port")
	}
	if len(e.Addrs) == 0 {
		return ruleErr("addr", "", "management endpoint %q has no resolved address", e.Name)
	}
	for _, a := range e.Addrs {
		if !a.IsValid() || a.IsUnspecified() || a.Zone() != "" {
			return ruleErr("addr", a.String(), "want a specific address without zone")
		}
	}
	if len(e.Name) > 1024 || strings.ContainsAny(e.Name, "\n\r\x00") {
		return ruleErr("name", e.Name, "name too long or holds line breaks")
	}
	return nil
}

// Rule returns the outbound allow rule equivalent to the endpoint.
func (e Endpoint) Rule() Rule {
	r := Rule{Direction: DirectionOut, Protocol: e.Protocol, RemotePorts: []PortRange{Port(e.Port)}}
	for _, a := range e.Addrs {
		a = a.Unmap()
		r.Remote = append(r.Remote, netip.PrefixFrom(a, a.BitLen()))
	}
	return r.Normalize()
}

func (e Endpoint) normalize() Endpoint {
	out := e
	out.Addrs = make([]netip.Addr, 0, len(e.Addrs))
	for _, a := range e.Addrs {
		out.Addrs = append(out.Addrs, a.Unmap())
	}
	slices.SortFunc(out.Addrs, netip.Addr.Compare)
	out.Addrs = slices.Compact(out.Addrs)
	return out
}

// String returns the endpoint's canonical text form, as used in plan text:
// `mgmt tcp addr=192.0.2.1,2001:db8::1 port=4222 name=bus`.
func (e Endpoint) String() string {
	n := e.normalize()
	var b strings.Builder
	b.WriteString("mgmt ")
	b.WriteString(n.Protocol.String())
	b.WriteString(" addr=")
	for i, a := range n.Addrs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(a.String())
	}
	b.WriteString(" port=")
	b.WriteString(strconv.Itoa(int(n.Port)))
	if n.Name != "" {
		b.WriteString(" name=")
		b.WriteString(quoteValue(n.Name))
	}
	return b.String()
}

// Plan is the complete desired state of an isolated host, handed to an
// Enforcer: everything not allowed here is blocked, in both directions, for
// IPv4 and IPv6. Forwarded (transit) traffic is not touched.
//
// Always allowed, whatever the plan holds:
//   - loopback traffic (the loopback interface, 127.0.0.0/8 and ::1); it is
//     implicit and appears as the line "loopback allow" in the text form;
//   - the Management endpoints (outbound to each address and port, with
//     replies).
//
// Rules are the exclusions in force (standard profiles expanded, custom
// rules) plus the fixed rules the Manager always adds (the ICMPv6 needed for
// IPv6 neighbour discovery, see NeighborDiscoveryRule). A Plan is a value:
// the order of Rules and Management does not matter, Normalize gives the
// canonical order, and String the canonical text:
//
//	cordon-plan v1
//	loopback allow
//	mgmt tcp addr=192.0.2.1 port=4222 name=bus
//	rule both icmpv6 icmp=133,134,135,136 name=icmpv6-nd
//	rule out udp rport=53 name=dns-client
type Plan struct {
	Management []Endpoint
	Rules      []Rule
}

// PlanHeader is the first line of a plan's text form.
const PlanHeader = "cordon-plan v1"

// Validate checks every endpoint and rule; it returns a *RuleError that
// names the line of the offending item in the canonical text and wraps
// ErrInvalidRule.
func (p Plan) Validate() error {
	n := p.Normalize()
	line := 3 // after the header and the loopback line
	for _, e := range n.Management {
		if err := e.Validate(); err != nil {
			re := err.(*RuleError)
			re.Line = line
			return re
		}
		line++
	}
	for _, r := range n.Rules {
		if err := r.Validate(); err != nil {
			re := err.(*RuleError)
			re.Line = line
			return re
		}
		line++
	}
	return nil
}

// Normalize returns a copy in canonical form: endpoints and rules
// normalized, sorted by their text and without duplicates.
func (p Plan) Normalize() Plan {
	return Plan{
		Management: sortedByText(p.Management, Endpoint.normalize, Endpoint.String),
		Rules:      sortedByText(p.Rules, Rule.Normalize, Rule.String),
	}
}

// sortedByText normalizes items, sorts them by their text and drops
// duplicates, printing each item once (not in every comparison).
func sortedByText[T any](items []T, normalize func(T) T, text func(T) string) []T {
	if len(items) == 0 {
		return nil
	}
	type keyed struct {
		key string
		v   T
	}
	ks := make([]keyed, len(items))
	for i, it := range items {
		n := normalize(it)
		ks[i] = keyed{text(n), n}
	}
	slices.SortStableFunc(ks, func(a, b keyed) int { return strings.Compare(a.key, b.key) })
	ks = slices.CompactFunc(ks, func(a, b keyed) bool { return a.key == b.key })
	out := make([]T, len(ks))
	for i, k := range ks {
		out[i] = k.v
	}
	return out
}

// String returns the canonical, deterministic text form (see Plan). Two
// plans are Equal exactly when their String forms are equal.
func (p Plan) String() string {
	n := p.Normalize()
	var b strings.Builder
	b.WriteString(PlanHeader)
	b.WriteString("\nloopback allow\n")
	for _, e := range n.Management {
		b.WriteString(e.String())
		b.WriteByte('\n')
	}
	for _, r := range n.Rules {
		b.WriteString("rule ")
		b.WriteString(r.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// Equal reports whether p and o hold the same endpoints and rules, names
// included, in any order.
func (p Plan) Equal(o Plan) bool { return p.String() == o.String() }

// Equivalent reports whether p and o hold the same allow rules, rule for
// rule, once management endpoints are turned into their outbound rules
// (Endpoint.Rule) and names are dropped. An adapter that reads its rules
// back from the platform, where names and the endpoint/rule distinction
// may be lost, compares with Equivalent (and may report everything it
// reads back as Rules).
func (p Plan) Equivalent(o Plan) bool {
	return slices.Equal(p.unnamedRuleTexts(), o.unnamedRuleTexts())
}

func (p Plan) unnamedRuleTexts() []string {
	all := p.AllRules()
	out := make([]string, 0, len(all))
	for _, r := range all {
		r.Name = ""
		out = append(out, r.String())
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Unnamed returns a copy with all rule and endpoint names removed.
func (p Plan) Unnamed() Plan {
	var out Plan
	for _, e := range p.Management {
		e.Name = ""
		out.Management = append(out.Management, e)
	}
	for _, r := range p.Rules {
		r.Name = ""
		out.Rules = append(out.Rules, r)
	}
	return out.Normalize()
}

// AllRules returns the management endpoints as outbound rules (named
// "mgmt" or "mgmt:<name>" when the name is a valid rule name) followed by
// the plan's rules, all normalized. Loopback is not included. Adapters
// that only need a flat list of allow rules use this.
func (p Plan) AllRules() []Rule {
	n := p.Normalize()
	out := make([]Rule, 0, len(n.Management)+len(n.Rules))
	for _, e := range n.Management {
		r := e.Rule()
		r.Name = "mgmt"
		if validName("mgmt:" + e.Name) {
			r.Name = "mgmt:" + e.Name
		}
		out = append(out, r)
	}
	return append(out, n.Rules...)
}

// Allows reports whether the plan allows flow f: loopback, a management
// endpoint or a rule. It is the reference semantics of a plan.
func (p Plan) Allows(f Flow) bool {
	if f.Remote.Unmap().IsLoopback() {
		return true
	}
	for _, e := range p.Management {
		if f.Initiator == DirectionOut && f.Protocol == e.Protocol && f.RemotePort == e.Port &&
			slices.ContainsFunc(e.Addrs, func(a netip.Addr) bool { return a.Unmap() == f.Remote.Unmap() }) {
			return true
		}
	}
	for _, r := range p.Rules {
		if r.Matches(f) {
			return true
		}
	}
	return false
}

// HasApplicationRules reports whether any rule matches by application.
func (p Plan) HasApplicationRules() bool {
	return slices.ContainsFunc(p.Rules, func(r Rule) bool { return r.Application != "" })
}

// MarshalText returns String; it fails for an invalid plan.
func (p Plan) MarshalText() ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return []byte(p.String()), nil
}

// UnmarshalText parses the text form with ParsePlan.
func (p *Plan) UnmarshalText(b []byte) error {
	q, err := ParsePlan(string(b))
	if err != nil {
		return err
	}
	*p = q
	return nil
}
