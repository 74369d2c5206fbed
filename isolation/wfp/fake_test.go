package wfp

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/cordonsec/cordon/isolation"
)

// Errors of the fake engine, named after the FWP_E_* codes WFP returns.
var (
	errAlreadyExists    = errors.New("FWP_E_ALREADY_EXISTS")
	errNotFound         = errors.New("FWP_E_NOT_FOUND")
	errInUse            = errors.New("FWP_E_IN_USE")
	errTxnInProgress    = errors.New("FWP_E_TXN_IN_PROGRESS")
	errNoTxnInProgress  = errors.New("FWP_E_NO_TXN_IN_PROGRESS")
	errInvalidCondition = errors.New("FWP_E_INVALID_CONDITION")
	errSessionClosed    = errors.New("fake engine: session closed")
)

// engineState is the fake engine's object store.
type engineState struct {
	providers map[GUID]Provider
	sublayers map[GUID]Sublayer
	filters   map[GUID]Filter
}

func (s engineState) clone() engineState {
	out := engineState{providers: maps.Clone(s.providers), sublayers: maps.Clone(s.sublayers), filters: map[GUID]Filter{}}
	for id, f := range s.filters {
		f.Conditions = slices.Clone(f.Conditions)
		out.filters[id] = f
	}
	return out
}

// fakeEngine is an in-memory Windows Filtering Platform engine: providers,
// sublayers and filters with WFP's referential rules, transactions that
// commit or abort as a whole, and the filter arbitration of eval.go to
// answer probes. Sessions opened on it share its committed state, as the
// processes of one host share the real engine.
type fakeEngine struct {
	mu        sync.Mutex
	committed engineState
	ops       []string       // every mutating call and transaction call, in order
	failAt    map[string]int // op name -> fail its n-th next call (1 = the next one)
	dropOnAdd bool           // silently drop the next filter added (for read-back tests)
	missing   map[string]bool
}

func newFakeEngine() *fakeEngine {
	return &fakeEngine{
		committed: engineState{providers: map[GUID]Provider{}, sublayers: map[GUID]Sublayer{}, filters: map[GUID]Filter{}},
		failAt:    map[string]int{},
		missing:   map[string]bool{},
	}
}

// failNext makes the n-th next call of op fail.
func (e *fakeEngine) failNext(op string, n int) {
	e.mu.Lock()
	e.failAt[op] = n
	e.mu.Unlock()
}

func (e *fakeEngine) opsLog() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.ops)
}

// snapshot returns the committed filters of sublayer, sorted by text.
func (e *fakeEngine) snapshot(sublayer GUID) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, f := range e.committed.filters {
		if f.Sublayer == sublayer {
			out = append(out, f.String())
		}
	}
	slices.Sort(out)
	return out
}

// deleteFilters removes committed filters of sublayer for which drop
// returns true, behind any session's back.
func (e *fakeEngine) deleteFilters(sublayer GUID, drop func(Filter) bool) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for id, f := range e.committed.filters {
		if f.Sublayer == sublayer && drop(f) {
			delete(e.committed.filters, id)
			n++
		}
	}
	return n
}

// probe evaluates flow f against the committed filters of sublayer.
func (e *fakeEngine) probe(sublayer GUID, f isolation.Flow) bool {
	e.mu.Lock()
	var fs []Filter
	for _, x := range e.committed.filters {
		if x.Sublayer == sublayer {
			fs = append(fs, x)
		}
	}
	e.mu.Unlock()
	appID := ""
	if f.Application != "" {
		appID, _ = fakeAppID(f.Application)
	}
	return permitted(fs, f, appID)
}

// fakeAppID mimics FwpmGetAppIdFromFileName0: the device path, lower case.
func fakeAppID(path string) (string, error) {
	if path == "" {
		return "", fmt.Errorf("app id: empty path: %w", errNotFound)
	}
	p := strings.ReplaceAll(path, "/", `\`)
	if len(p) >= 2 && p[1] == ':' {
		p = p[2:]
	}
	return strings.ToLower(`\device\harddiskvolume3` + p), nil
}

// fakeSession is one session on a fakeEngine. It implements Session.
type fakeSession struct {
	eng    *fakeEngine
	txn    *engineState
	closed bool
}

func (e *fakeEngine) open() (Session, error) {
	if err := e.check("Open"); err != nil {
		return nil, err
	}
	return &fakeSession{eng: e}, nil
}

// check records op and returns an injected failure for it, if due.
// Call without e.mu held.
func (e *fakeEngine) check(op string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.checkLocked(op)
}

func (e *fakeEngine) checkLocked(op string) error {
	e.ops = append(e.ops, op)
	if n, ok := e.failAt[op]; ok {
		if n <= 1 {
			delete(e.failAt, op)
			return fmt.Errorf("fake engine: %s: injected failure", op)
		}
		e.failAt[op] = n - 1
	}
	return nil
}

// do runs fn on the transaction's state, or on the committed state as an
// implicit transaction of its own when none is open.
func (s *fakeSession) do(op string, fn func(st *engineState) error) error {
	s.eng.mu.Lock()
	defer s.eng.mu.Unlock()
	if s.closed {
		return errSessionClosed
	}
	if err := s.eng.checkLocked(op); err != nil {
		return err
	}
	if s.txn != nil {
		return fn(s.txn)
	}
	st := s.eng.committed.clone()
	if err := fn(&st); err != nil {
		return err
	}
	s.eng.committed = st
	return nil
}

func (s *fakeSession) view() engineState {
	if s.txn != nil {
		return *s.txn
	}
	return s.eng.committed
}

func (s *fakeSession) Begin() error {
	s.eng.mu.Lock()
	defer s.eng.mu.Unlock()
	if err := s.eng.checkLocked("Begin"); err != nil {
		return err
	}
	if s.txn != nil {
		return errTxnInProgress
	}
	st := s.eng.committed.clone()
	s.txn = &st
	return nil
}

func (s *fakeSession) Commit() error {
	s.eng.mu.Lock()
	defer s.eng.mu.Unlock()
	if err := s.eng.checkLocked("Commit"); err != nil {
		return err // the transaction stays open; the caller aborts
	}
	if s.txn == nil {
		return errNoTxnInProgress
	}
	s.eng.committed = *s.txn
	s.txn = nil
	return nil
}

func (s *fakeSession) Abort() error {
	s.eng.mu.Lock()
	defer s.eng.mu.Unlock()
	if err := s.eng.checkLocked("Abort"); err != nil {
		return err
	}
	if s.txn == nil {
		return errNoTxnInProgress
	}
	s.txn = nil
	return nil
}

func (s *fakeSession) Providers() ([]Provider, error) {
	s.eng.mu.Lock()
	defer s.eng.mu.Unlock()
	if s.closed {
		return nil, errSessionClosed
	}
	if err := s.eng.checkLocked("Providers"); err != nil {
		return nil, err
	}
	return slices.Collect(maps.Values(s.view().providers)), nil
}

func (s *fakeSession) AddProvider(p Provider) error {
	return s.do("AddProvider", func(st *engineState) error {
		if _, ok := st.providers[p.ID]; ok {
			return fmt.Errorf("add provider %s: %w", p.ID, errAlreadyExists)
		}
		st.providers[p.ID] = p
		return nil
	})
}

func (s *fakeSession) DeleteProvider(id GUID) error {
	return s.do("DeleteProvider", func(st *engineState) error {
		if _, ok := st.providers[id]; !ok {
			return fmt.Errorf("delete provider %s: %w", id, errNotFound)
		}
		for _, sl := range st.sublayers {
			if sl.Provider == id {
				return fmt.Errorf("delete provider %s: sublayer %s: %w", id, sl.ID, errInUse)
			}
		}
		for _, f := range st.filters {
			if f.Provider == id {
				return fmt.Errorf("delete provider %s: filter %s: %w", id, f.ID, errInUse)
			}
		}
		delete(st.providers, id)
		return nil
	})
}

func (s *fakeSession) Sublayers(provider GUID) ([]Sublayer, error) {
	s.eng.mu.Lock()
	defer s.eng.mu.Unlock()
	if s.closed {
		return nil, errSessionClosed
	}
	if err := s.eng.checkLocked("Sublayers"); err != nil {
		return nil, err
	}
	var out []Sublayer
	for _, sl := range s.view().sublayers {
		if provider.IsZero() || sl.Provider == provider {
			out = append(out, sl)
		}
	}
	return out, nil
}

func (s *fakeSession) AddSublayer(sl Sublayer) error {
	return s.do("AddSublayer", func(st *engineState) error {
		if _, ok := st.sublayers[sl.ID]; ok {
			return fmt.Errorf("add sublayer %s: %w", sl.ID, errAlreadyExists)
		}
		if _, ok := st.providers[sl.Provider]; !sl.Provider.IsZero() && !ok {
			return fmt.Errorf("add sublayer %s: provider %s: %w", sl.ID, sl.Provider, errNotFound)
		}
		st.sublayers[sl.ID] = sl
		return nil
	})
}

func (s *fakeSession) DeleteSublayer(id GUID) error {
	return s.do("DeleteSublayer", func(st *engineState) error {
		if _, ok := st.sublayers[id]; !ok {
			return fmt.Errorf("delete sublayer %s: %w", id, errNotFound)
		}
		for _, f := range st.filters {
			if f.Sublayer == id {
				return fmt.Errorf("delete sublayer %s: filter %s: %w", id, f.ID, errInUse)
			}
		}
		delete(st.sublayers, id)
		return nil
	})
}

func (s *fakeSession) Filters(sublayer GUID) ([]Filter, error) {
	s.eng.mu.Lock()
	defer s.eng.mu.Unlock()
	if s.closed {
		return nil, errSessionClosed
	}
	if err := s.eng.checkLocked("Filters"); err != nil {
		return nil, err
	}
	var out []Filter
	for _, f := range s.view().filters {
		if f.Sublayer == sublayer {
			f.Conditions = slices.Clone(f.Conditions)
			out = append(out, f)
		}
	}
	return out, nil
}

// validFilter applies the checks FwpmFilterAdd0 makes that matter here.
func validFilter(st *engineState, f Filter) error {
	if f.ID.IsZero() {
		return errors.New("filter key cannot be zero")
	}
	if _, ok := st.filters[f.ID]; ok {
		return fmt.Errorf("filter %s: %w", f.ID, errAlreadyExists)
	}
	if !slices.Contains(Layers, f.Layer) {
		return fmt.Errorf("filter %s: layer %s: %w", f.ID, f.Layer, errNotFound)
	}
	if _, ok := st.sublayers[f.Sublayer]; !ok {
		return fmt.Errorf("filter %s: sublayer %s: %w", f.ID, f.Sublayer, errNotFound)
	}
	if _, ok := st.providers[f.Provider]; !f.Provider.IsZero() && !ok {
		return fmt.Errorf("filter %s: provider %s: %w", f.ID, f.Provider, errNotFound)
	}
	if f.Action != ActionBlock && f.Action != ActionPermit {
		return fmt.Errorf("filter %s: action %s: %w", f.ID, f.Action, errInvalidCondition)
	}
	for _, c := range f.Conditions {
		ok := true
		switch c.Field {
		case FieldFlags:
			ok = c.Op == OpFlagsAllSet
		case FieldProtocol:
			ok = c.Op == OpEqual && c.Low <= 255
		case FieldRemoteAddress:
			ok = c.Op == OpEqual && c.Prefix.IsValid() && c.Prefix.Addr().Is6() == f.Layer.V6()
		case FieldLocalPort, FieldRemotePort:
			ok = c.Op == OpEqual && c.Low == c.High || c.Op == OpRange && c.Low <= c.High
		case FieldAppID:
			ok = c.Op == OpEqual && c.AppID != ""
		default:
			ok = false
		}
		if !ok {
			return fmt.Errorf("filter %s at %s: condition %s: %w", f.ID, f.Layer, c, errInvalidCondition)
		}
	}
	return nil
}

func (s *fakeSession) AddFilter(f Filter) error {
	return s.do("AddFilter", func(st *engineState) error {
		if err := validFilter(st, f); err != nil {
			return err
		}
		if s.eng.dropOnAdd {
			s.eng.dropOnAdd = false
			return nil
		}
		f.Conditions = slices.Clone(f.Conditions)
		st.filters[f.ID] = f
		return nil
	})
}

func (s *fakeSession) DeleteFilter(id GUID) error {
	return s.do("DeleteFilter", func(st *engineState) error {
		if _, ok := st.filters[id]; !ok {
			return fmt.Errorf("delete filter %s: %w", id, errNotFound)
		}
		delete(st.filters, id)
		return nil
	})
}

func (s *fakeSession) AppID(path string) (string, error) {
	s.eng.mu.Lock()
	missing := s.eng.missing[path]
	s.eng.mu.Unlock()
	if missing {
		return "", fmt.Errorf("app id of %q: file not found", path)
	}
	return fakeAppID(path)
}

func (s *fakeSession) Close() error {
	s.eng.mu.Lock()
	defer s.eng.mu.Unlock()
	if s.txn != nil {
		s.txn = nil // closing a session aborts its open transaction
	}
	s.closed = true
	return nil
}

// fakeConns is an in-memory TCP table. It implements ConnTable.
type fakeConns struct {
	mu     sync.Mutex
	conns  []TCPConn
	ended  []TCPConn
	endErr error
}

func (c *fakeConns) TCP() ([]TCPConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.conns), nil
}

func (c *fakeConns) EndTCP(x TCPConn) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !x.Local.Addr().Unmap().Is4() {
		return fmt.Errorf("end %s: %w", x.Remote, isolation.ErrUnsupported)
	}
	if c.endErr != nil {
		return c.endErr
	}
	i := slices.Index(c.conns, x)
	if i < 0 {
		return fmt.Errorf("end %s -> %s: %w", x.Local, x.Remote, errNotFound)
	}
	c.conns = slices.Delete(c.conns, i, i+1)
	c.ended = append(c.ended, x)
	return nil
}

func (c *fakeConns) endedRemotes() []netip.AddrPort {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []netip.AddrPort
	for _, x := range c.ended {
		out = append(out, x.Remote)
	}
	return out
}
