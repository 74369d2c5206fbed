package wfp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// GUID is a Windows GUID with the memory layout of windows.GUID, so that
// the two convert into each other. It is defined here, and not taken from
// golang.org/x/sys/windows, so that the filter model builds and is tested
// on every platform.
type GUID struct {
	Data1 uint32
	Data2 uint16
	Data3 uint16
	Data4 [8]byte
}

// IsZero reports whether g is the zero GUID.
func (g GUID) IsZero() bool { return g == GUID{} }

// String returns g in the registry form without braces, lower case:
// "3f8c7a53-6a11-4c5e-9f3e-0c4d5e6f7a81".
func (g GUID) String() string {
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x", g.Data1, g.Data2, g.Data3, g.Data4[:2], g.Data4[2:])
}

// guidFrom builds a GUID from 16 bytes (big-endian fields), setting the
// version 8 ("custom") and RFC 4122 variant bits.
func guidFrom(b [16]byte) GUID {
	b[6] = b[6]&0x0f | 0x80
	b[8] = b[8]&0x3f | 0x80
	var g GUID
	g.Data1 = binary.BigEndian.Uint32(b[0:4])
	g.Data2 = binary.BigEndian.Uint16(b[4:6])
	g.Data3 = binary.BigEndian.Uint16(b[6:8])
	copy(g.Data4[:], b[8:])
	return g
}

// Layer is one of the four WFP Application Layer Enforcement (ALE)
// authorization layers cordon installs filters at.
type Layer uint8

// The layers. Connect layers authorize flows the host initiates (and, by
// the ALE flow state, their replies); receive/accept layers authorize flows
// a remote initiates.
const (
	LayerConnectV4    Layer = iota + 1 // FWPM_LAYER_ALE_AUTH_CONNECT_V4
	LayerConnectV6                     // FWPM_LAYER_ALE_AUTH_CONNECT_V6
	LayerRecvAcceptV4                  // FWPM_LAYER_ALE_AUTH_RECV_ACCEPT_V4
	LayerRecvAcceptV6                  // FWPM_LAYER_ALE_AUTH_RECV_ACCEPT_V6
)

// Layers lists every layer cordon uses, in a fixed order.
var Layers = []Layer{LayerConnectV4, LayerConnectV6, LayerRecvAcceptV4, LayerRecvAcceptV6}

var layerNames = [...]string{
	LayerConnectV4:    "ALE_AUTH_CONNECT_V4",
	LayerConnectV6:    "ALE_AUTH_CONNECT_V6",
	LayerRecvAcceptV4: "ALE_AUTH_RECV_ACCEPT_V4",
	LayerRecvAcceptV6: "ALE_AUTH_RECV_ACCEPT_V6",
}

// String returns the WFP name of the layer without its FWPM_LAYER_ prefix.
func (l Layer) String() string {
	if int(l) < len(layerNames) && layerNames[l] != "" {
		return layerNames[l]
	}
	return "layer(" + strconv.Itoa(int(l)) + ")"
}

// V6 reports whether the layer sees IPv6 traffic.
func (l Layer) V6() bool { return l == LayerConnectV6 || l == LayerRecvAcceptV6 }

// Outbound reports whether the layer authorizes host-initiated flows.
func (l Layer) Outbound() bool { return l == LayerConnectV4 || l == LayerConnectV6 }

// Field is a WFP filtering condition field.
type Field uint8

// The fields cordon's filters test. At the ALE layers the ICMP type of an
// ICMP or ICMPv6 flow is carried in the local port field
// (FWPM_CONDITION_ICMP_TYPE is FWPM_CONDITION_IP_LOCAL_PORT).
const (
	FieldFlags         Field = iota + 1 // FWPM_CONDITION_FLAGS
	FieldProtocol                       // FWPM_CONDITION_IP_PROTOCOL
	FieldRemoteAddress                  // FWPM_CONDITION_IP_REMOTE_ADDRESS
	FieldLocalPort                      // FWPM_CONDITION_IP_LOCAL_PORT (ICMP type for ICMP)
	FieldRemotePort                     // FWPM_CONDITION_IP_REMOTE_PORT
	FieldAppID                          // FWPM_CONDITION_ALE_APP_ID
)

var fieldNames = [...]string{
	FieldFlags:         "FLAGS",
	FieldProtocol:      "IP_PROTOCOL",
	FieldRemoteAddress: "IP_REMOTE_ADDRESS",
	FieldLocalPort:     "IP_LOCAL_PORT",
	FieldRemotePort:    "IP_REMOTE_PORT",
	FieldAppID:         "ALE_APP_ID",
}

// String returns the WFP name of the field without its FWPM_CONDITION_ prefix.
func (f Field) String() string {
	if int(f) < len(fieldNames) && fieldNames[f] != "" {
		return fieldNames[f]
	}
	return "field(" + strconv.Itoa(int(f)) + ")"
}

// Op is a condition's match type.
type Op uint8

// The match types cordon uses.
const (
	OpEqual       Op = iota + 1 // FWP_MATCH_EQUAL (for an address: the prefix contains it)
	OpRange                     // FWP_MATCH_RANGE (Low..High inclusive)
	OpFlagsAllSet               // FWP_MATCH_FLAGS_ALL_SET
)

var opNames = [...]string{OpEqual: "==", OpRange: "in", OpFlagsAllSet: "all-set"}

// String returns "==", "in" or "all-set".
func (o Op) String() string {
	if int(o) < len(opNames) && opNames[o] != "" {
		return opNames[o]
	}
	return "op(" + strconv.Itoa(int(o)) + ")"
}

// FlagIsLoopback is FWP_CONDITION_FLAG_IS_LOOPBACK.
const FlagIsLoopback uint32 = 0x00000001

// The IP protocol numbers cordon's filters use.
const (
	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
)

// Condition is one filtering condition. Conditions of a filter on the same
// field are OR'ed, conditions on different fields AND'ed (WFP semantics).
// Which value is used depends on Field: Flags for FieldFlags; Low (the
// protocol number) for FieldProtocol; Prefix for FieldRemoteAddress; Low
// and High (equal for OpEqual) for the port fields; AppID for FieldAppID.
type Condition struct {
	Field  Field
	Op     Op
	Flags  uint32
	Low    uint16
	High   uint16
	Prefix netip.Prefix
	AppID  string
}

// String returns the condition's text, e.g. "IP_REMOTE_PORT in 8000-8080".
func (c Condition) String() string {
	var v string
	switch c.Field {
	case FieldFlags:
		v = fmt.Sprintf("0x%08x", c.Flags)
		if c.Flags == FlagIsLoopback {
			v += " (IS_LOOPBACK)"
		}
	case FieldProtocol:
		v = strconv.Itoa(int(c.Low))
		switch c.Low {
		case protoICMP:
			v += " (icmp)"
		case protoTCP:
			v += " (tcp)"
		case protoUDP:
			v += " (udp)"
		case protoICMPv6:
			v += " (icmpv6)"
		}
	case FieldRemoteAddress:
		v = c.Prefix.String()
	case FieldAppID:
		v = strconv.Quote(c.AppID)
	default:
		v = strconv.Itoa(int(c.Low))
		if c.Op == OpRange {
			v += "-" + strconv.Itoa(int(c.High))
		}
	}
	return c.Field.String() + " " + c.Op.String() + " " + v
}

func compareCondition(a, b Condition) int {
	if a.Field != b.Field {
		return int(a.Field) - int(b.Field)
	}
	return strings.Compare(a.String(), b.String())
}

// Action is a filter's action.
type Action uint8

// The actions.
const (
	ActionBlock  Action = iota + 1 // FWP_ACTION_BLOCK
	ActionPermit                   // FWP_ACTION_PERMIT
)

// String returns "block" or "permit".
func (a Action) String() string {
	switch a {
	case ActionBlock:
		return "block"
	case ActionPermit:
		return "permit"
	}
	return "action(" + strconv.Itoa(int(a)) + ")"
}

// Filter is one WFP filter as cordon installs it and reads it back.
//
// Description holds the plan item the filter comes from, in the plan's
// text form ("rule out tcp rport=443 name=web", "mgmt tcp addr=... port=4222")
// or one of "loopback", "agent" and "block", so that the plan in force can
// be read back from the platform (see Enforcer.Observe).
type Filter struct {
	ID          GUID
	Name        string
	Description string
	Provider    GUID
	Sublayer    GUID
	Layer       Layer
	Weight      uint64
	Action      Action
	Hard        bool // the action cannot be overridden by lower-weight sublayers (FWPM_FILTER_FLAG_CLEAR_ACTION_RIGHT)
	Persistent  bool // FWPM_FILTER_FLAG_PERSISTENT
	Conditions  []Condition
}

// String returns the filter as one line of text. Two filters with the same
// String are the same filter; read-back compares these lines.
func (f Filter) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s weight=%#x", f.Layer, f.Action, f.Weight)
	if f.Hard {
		b.WriteString(" hard")
	}
	if f.Persistent {
		b.WriteString(" persistent")
	}
	fmt.Fprintf(&b, " id=%s provider=%s sublayer=%s name=%q source=%q", f.ID, f.Provider, f.Sublayer, f.Name, f.Description)
	conds := slices.Clone(f.Conditions)
	slices.SortStableFunc(conds, compareCondition)
	for _, c := range conds {
		b.WriteString("\n\t")
		b.WriteString(c.String())
	}
	return b.String()
}

// Readable returns the filter as indented text without the GUIDs and
// flags shared by every filter of a set, for golden files and logs.
func (f Filter) Readable() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-23s %-6s weight=%#06x", f.Layer, f.Action, f.Weight)
	if f.Hard {
		b.WriteString(" hard")
	}
	fmt.Fprintf(&b, "  # %s\n", f.Description)
	conds := slices.Clone(f.Conditions)
	slices.SortStableFunc(conds, compareCondition)
	for _, c := range conds {
		b.WriteString("    ")
		b.WriteString(c.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// FilterSetText returns the filters' Readable forms, one after the other,
// in the given order.
func FilterSetText(fs []Filter) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString(f.Readable())
	}
	return b.String()
}
