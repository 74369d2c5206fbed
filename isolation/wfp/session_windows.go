//go:build windows

package wfp

import (
	"fmt"
	"net/netip"
	"reflect"
	"unsafe"

	"github.com/tailscale/wf"
	"golang.org/x/sys/windows"
)

// The transaction calls of fwpuclnt.dll. github.com/tailscale/wf (at the
// version in go.mod) binds them but does not export them.
var (
	modfwpuclnt           = windows.NewLazySystemDLL("fwpuclnt.dll")
	procTransactionBegin  = modfwpuclnt.NewProc("FwpmTransactionBegin0")
	procTransactionCommit = modfwpuclnt.NewProc("FwpmTransactionCommit0")
	procTransactionAbort  = modfwpuclnt.NewProc("FwpmTransactionAbort0")
)

// wfSession implements Session over a wf.Session.
type wfSession struct {
	s      *wf.Session
	handle windows.Handle
}

// OpenSession opens a persistent (not dynamic) WFP session, so that the
// objects it adds outlive the process, over github.com/tailscale/wf.
// It needs administrator rights.
func OpenSession() (Session, error) {
	s, err := wf.New(&wf.Options{
		Name:        "cordon",
		Description: "cordon network isolation",
		Dynamic:     false,
	})
	if err != nil {
		return nil, fmt.Errorf("open WFP engine: %w", err)
	}
	h, err := engineHandle(s)
	if err != nil {
		s.Close()
		return nil, err
	}
	return &wfSession{s: s, handle: h}, nil
}

func platformOpen() (Session, error) { return OpenSession() }

// engineHandle returns the engine handle a wf.Session holds in its first,
// unexported field, after checking by reflection that the field is where
// and what this code expects; otherwise it returns ErrSessionLayout.
func engineHandle(s *wf.Session) (windows.Handle, error) {
	t := reflect.TypeOf(*s)
	if t.NumField() == 0 {
		return 0, ErrSessionLayout
	}
	f := t.Field(0)
	if f.Name != "handle" || f.Offset != 0 || f.Type != reflect.TypeOf(windows.Handle(0)) {
		return 0, fmt.Errorf("%w: first field %s %s", ErrSessionLayout, f.Name, f.Type)
	}
	h := *(*windows.Handle)(unsafe.Pointer(s))
	if h == 0 {
		return 0, fmt.Errorf("%w: zero engine handle", ErrSessionLayout)
	}
	return h, nil
}

func callFwpm(p *windows.LazyProc, args ...uintptr) error {
	if err := p.Find(); err != nil {
		return err
	}
	r, _, _ := p.Call(args...)
	if r != 0 {
		return fmt.Errorf("%s: %w", p.Name, windows.Errno(r))
	}
	return nil
}

func (w *wfSession) Begin() error  { return callFwpm(procTransactionBegin, uintptr(w.handle), 0) }
func (w *wfSession) Commit() error { return callFwpm(procTransactionCommit, uintptr(w.handle)) }
func (w *wfSession) Abort() error  { return callFwpm(procTransactionAbort, uintptr(w.handle)) }

func (w *wfSession) Providers() ([]Provider, error) {
	ps, err := w.s.Providers()
	if err != nil {
		return nil, err
	}
	out := make([]Provider, 0, len(ps))
	for _, p := range ps {
		out = append(out, Provider{ID: GUID(p.ID), Name: p.Name, Description: p.Description, Persistent: p.Persistent})
	}
	return out, nil
}

func (w *wfSession) AddProvider(p Provider) error {
	return w.s.AddProvider(&wf.Provider{ID: wf.ProviderID(p.ID), Name: p.Name, Description: p.Description, Persistent: p.Persistent})
}

func (w *wfSession) DeleteProvider(id GUID) error { return w.s.DeleteProvider(wf.ProviderID(id)) }

func (w *wfSession) Sublayers(provider GUID) ([]Sublayer, error) {
	var (
		ss  []*wf.Sublayer
		err error
	)
	if provider.IsZero() {
		ss, err = w.s.Sublayers()
	} else {
		ss, err = w.s.Sublayers(wf.ProviderID(provider))
	}
	if err != nil {
		return nil, err
	}
	out := make([]Sublayer, 0, len(ss))
	for _, s := range ss {
		out = append(out, Sublayer{ID: GUID(s.ID), Provider: GUID(s.Provider), Name: s.Name,
			Description: s.Description, Persistent: s.Persistent, Weight: s.Weight})
	}
	return out, nil
}

func (w *wfSession) AddSublayer(s Sublayer) error {
	return w.s.AddSublayer(&wf.Sublayer{ID: wf.SublayerID(s.ID), Provider: wf.ProviderID(s.Provider), Name: s.Name,
		Description: s.Description, Persistent: s.Persistent, Weight: s.Weight})
}

func (w *wfSession) DeleteSublayer(id GUID) error { return w.s.DeleteSublayer(wf.SublayerID(id)) }

func (w *wfSession) AppID(path string) (string, error) { return wf.AppID(path) }

func (w *wfSession) Close() error { return w.s.Close() }

var layerIDs = map[Layer]wf.LayerID{
	LayerConnectV4:    wf.LayerALEAuthConnectV4,
	LayerConnectV6:    wf.LayerALEAuthConnectV6,
	LayerRecvAcceptV4: wf.LayerALEAuthRecvAcceptV4,
	LayerRecvAcceptV6: wf.LayerALEAuthRecvAcceptV6,
}

var fieldIDs = map[Field]wf.FieldID{
	FieldFlags:         wf.FieldFlags,
	FieldProtocol:      wf.FieldIPProtocol,
	FieldRemoteAddress: wf.FieldIPRemoteAddress,
	FieldLocalPort:     wf.FieldIPLocalPort,
	FieldRemotePort:    wf.FieldIPRemotePort,
	FieldAppID:         wf.FieldALEAppID,
}

func (w *wfSession) AddFilter(f Filter) error {
	r, err := toRule(f)
	if err != nil {
		return err
	}
	return w.s.AddRule(r)
}

func (w *wfSession) DeleteFilter(id GUID) error { return w.s.DeleteRule(wf.RuleID(id)) }

// Filters lists every filter of the engine (wf has no enumeration
// template) and keeps those of sublayer. A filter that cannot be
// translated back is returned with a zero Layer and its problem as
// Description, so that read-back fails on it and Clear still deletes it.
func (w *wfSession) Filters(sublayer GUID) ([]Filter, error) {
	rules, err := w.s.Rules()
	if err != nil {
		return nil, err
	}
	var out []Filter
	for _, r := range rules {
		if GUID(r.Sublayer) != sublayer {
			continue
		}
		f, err := fromRule(r)
		if err != nil {
			f = Filter{ID: GUID(r.ID), Name: r.Name, Description: "untranslatable filter: " + err.Error()}
		}
		out = append(out, f)
	}
	return out, nil
}

func toRule(f Filter) (*wf.Rule, error) {
	layer, ok := layerIDs[f.Layer]
	if !ok {
		return nil, fmt.Errorf("filter %s: unknown layer %s", f.ID, f.Layer)
	}
	r := &wf.Rule{
		ID:          wf.RuleID(f.ID),
		Name:        f.Name,
		Description: f.Description,
		Layer:       layer,
		Sublayer:    wf.SublayerID(f.Sublayer),
		Provider:    wf.ProviderID(f.Provider),
		Weight:      f.Weight,
		HardAction:  f.Hard,
		Persistent:  f.Persistent,
	}
	switch f.Action {
	case ActionBlock:
		r.Action = wf.ActionBlock
	case ActionPermit:
		r.Action = wf.ActionPermit
	default:
		return nil, fmt.Errorf("filter %s: unknown action %s", f.ID, f.Action)
	}
	for _, c := range f.Conditions {
		m := &wf.Match{Field: fieldIDs[c.Field]}
		switch c.Field {
		case FieldFlags:
			m.Op, m.Value = wf.MatchTypeFlagsAllSet, wf.ConditionFlag(c.Flags)
		case FieldProtocol:
			m.Op, m.Value = wf.MatchTypeEqual, wf.IPProto(c.Low)
		case FieldRemoteAddress:
			m.Op, m.Value = wf.MatchTypeEqual, c.Prefix
		case FieldLocalPort, FieldRemotePort:
			if c.Op == OpRange {
				m.Op, m.Value = wf.MatchTypeRange, wf.Range{From: c.Low, To: c.High}
			} else {
				m.Op, m.Value = wf.MatchTypeEqual, c.Low
			}
		case FieldAppID:
			m.Op, m.Value = wf.MatchTypeEqual, c.AppID
		default:
			return nil, fmt.Errorf("filter %s: unknown field %s", f.ID, c.Field)
		}
		r.Conditions = append(r.Conditions, m)
	}
	return r, nil
}

func fromRule(r *wf.Rule) (Filter, error) {
	f := Filter{ID: GUID(r.ID), Name: r.Name, Description: r.Description, Provider: GUID(r.Provider),
		Sublayer: GUID(r.Sublayer), Weight: r.Weight, Hard: r.HardAction, Persistent: r.Persistent}
	for l, id := range layerIDs {
		if id == r.Layer {
			f.Layer = l
		}
	}
	if f.Layer == 0 {
		return f, fmt.Errorf("layer %s", r.Layer)
	}
	switch r.Action {
	case wf.ActionBlock:
		f.Action = ActionBlock
	case wf.ActionPermit:
		f.Action = ActionPermit
	default:
		return f, fmt.Errorf("action %#x", uint32(r.Action))
	}
	for _, m := range r.Conditions {
		c, err := fromMatch(m)
		if err != nil {
			return f, err
		}
		f.Conditions = append(f.Conditions, c)
	}
	return f, nil
}

func fromMatch(m *wf.Match) (Condition, error) {
	var c Condition
	for fld, id := range fieldIDs {
		if id == m.Field {
			c.Field = fld
		}
	}
	bad := func() (Condition, error) {
		return Condition{}, fmt.Errorf("condition %s %s %v (%T)", m.Field, m.Op, m.Value, m.Value)
	}
	switch {
	case c.Field == FieldFlags && m.Op == wf.MatchTypeFlagsAllSet:
		c.Op = OpFlagsAllSet
		switch v := m.Value.(type) {
		case uint32:
			c.Flags = v
		case wf.ConditionFlag:
			c.Flags = uint32(v)
		default:
			return bad()
		}
	case c.Field == FieldProtocol && m.Op == wf.MatchTypeEqual:
		c.Op = OpEqual
		switch v := m.Value.(type) {
		case uint8:
			c.Low = uint16(v)
		case wf.IPProto:
			c.Low = uint16(v)
		default:
			return bad()
		}
	case c.Field == FieldRemoteAddress && m.Op == wf.MatchTypeEqual:
		c.Op = OpEqual
		switch v := m.Value.(type) {
		case netip.Prefix:
			c.Prefix = v
		case netip.Addr:
			c.Prefix = netip.PrefixFrom(v, v.BitLen())
		default:
			return bad()
		}
	case (c.Field == FieldLocalPort || c.Field == FieldRemotePort) && m.Op == wf.MatchTypeEqual:
		v, ok := m.Value.(uint16)
		if !ok {
			return bad()
		}
		c.Op, c.Low, c.High = OpEqual, v, v
	case (c.Field == FieldLocalPort || c.Field == FieldRemotePort) && m.Op == wf.MatchTypeRange:
		v, ok := m.Value.(wf.Range)
		if !ok {
			return bad()
		}
		lo, ok1 := v.From.(uint16)
		hi, ok2 := v.To.(uint16)
		if !ok1 || !ok2 {
			return bad()
		}
		c.Op, c.Low, c.High = OpRange, lo, hi
	case c.Field == FieldAppID && m.Op == wf.MatchTypeEqual:
		v, ok := m.Value.(string)
		if !ok {
			return bad()
		}
		c.Op, c.AppID = OpEqual, v
	default:
		return bad()
	}
	return c, nil
}
