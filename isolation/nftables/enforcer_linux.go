package nftables

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"net/netip"
	"os"
	"slices"
	"sync"

	gnft "github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/cordonsec/cordon/isolation"
)

// Enforcer is the nftables isolation.Enforcer. It also implements
// isolation.Observer and isolation.Capable. It is safe for concurrent use:
// calls are serialized.
type Enforcer struct {
	log *slog.Logger
	ns  *os.File

	mu     sync.Mutex
	closed bool
	conn   *gnft.Conn      // nftables, in ns
	nl     *netlink.Handle // conntrack and addresses, in ns
	gen    *nfSocket       // ruleset generation, in ns

	// verified is the table this enforcer last read back and found to be
	// exactly its plan, with the ruleset generation read just before. While
	// the generation stays the same, nothing changed the table.
	verified struct {
		ok     bool
		gen    uint32
		layout layout
	}
}

var (
	_ isolation.Enforcer = (*Enforcer)(nil)
	_ isolation.Observer = (*Enforcer)(nil)
	_ isolation.Capable  = (*Enforcer)(nil)
)

// New returns an Enforcer for the network namespace cfg names. It opens
// its netlink sockets there and changes nothing. Errors wrap
// isolation.ErrInvalidConfig, ErrNamespace or ErrNetlink.
func New(cfg Config) (*Enforcer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ns, err := openNamespace(cfg)
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	conn, err := gnft.New(gnft.WithNetNSFd(int(ns.Fd())), gnft.AsLasting())
	if err != nil {
		_ = ns.Close()
		return nil, fmt.Errorf("nftables: %w: nftables socket: %w", ErrNetlink, err)
	}
	nl, err := netlink.NewHandleAt(netns.NsHandle(int(ns.Fd())), unix.NETLINK_NETFILTER, unix.NETLINK_ROUTE)
	if err != nil {
		_ = conn.CloseLasting()
		_ = ns.Close()
		return nil, fmt.Errorf("nftables: %w: netlink handle: %w", ErrNetlink, err)
	}
	gen, err := openNFSocket(ns)
	if err != nil {
		nl.Close()
		_ = conn.CloseLasting()
		_ = ns.Close()
		return nil, fmt.Errorf("nftables: %w", err)
	}
	return &Enforcer{log: cfg.logger(), ns: ns, conn: conn, nl: nl, gen: gen}, nil
}

// batchBuffer is the send buffer of the socket batches go through: a
// plan's whole table goes in one write (a thousand exclusions are about a
// megabyte), more than the default buffer (about 200 KiB) takes.
const batchBuffer = 64 << 20

// Capabilities implements isolation.Capable: nftables cannot match rules
// by application.
func (e *Enforcer) Capabilities() isolation.Capabilities { return isolation.Capabilities{} }

// Apply implements isolation.Enforcer. It writes the table in one netlink
// batch (nothing when the rules in force are already p's), ends the TCP
// connections and deletes the conntrack entries p does not allow, and
// reads the rules back.
//
// When this enforcer applied and verified p last and the ruleset
// generation has not moved since (no change to any nftables table of the
// namespace), Apply returns at once: the table is still p's, and every
// connection p does not allow was ended then.
//
// Errors wrap isolation.ErrInvalidRule, isolation.ErrUnsupported
// (application rules), isolation.ErrClosed, ctx.Err(), ErrNetlink, or
// isolation.ErrReadBack. A failure to end connections comes after the new
// rules are in force and verified; the error then wraps
// isolation.ErrConnectionsLeft (which implies isolation.ErrReadBack), and
// applying the same plan again retries.
func (e *Enforcer) Apply(ctx context.Context, p isolation.Plan) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return fmt.Errorf("nftables: apply: %w", isolation.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("nftables: apply: %w", err)
	}
	if err := p.Validate(); err != nil {
		return fmt.Errorf("nftables: apply: %w", err)
	}
	if p.HasApplicationRules() {
		return fmt.Errorf("nftables: apply: rules matching an application: %w", isolation.ErrUnsupported)
	}
	want := planLayout(p)
	gen, err := e.gen.generation()
	if err != nil {
		return fmt.Errorf("nftables: apply: %w", err)
	}
	var st state
	if e.verified.ok && e.verified.gen == gen {
		// Nothing changed the ruleset since this enforcer verified its
		// table: the table is exactly e.verified.layout.
		if e.verified.layout.equal(want) {
			// The same plan, verified in force, and every connection it
			// does not allow was ended when it was applied.
			return nil
		}
		st = state{exists: true, head: [2]bool{true, true}, layout: e.verified.layout}
		for _, s := range st.layout.sets {
			st.namedSets = append(st.namedSets, s.name)
		}
	} else if st, err = e.read(); err != nil {
		return fmt.Errorf("nftables: apply: read: %w", err)
	}
	e.verified.ok = false
	if !st.holds(want) {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("nftables: apply: %w", err)
		}
		if err := e.write(st, want); err != nil {
			return fmt.Errorf("nftables: apply: %w", err)
		}
		rules, elems := want.size()
		e.log.Info("nftables: isolation rules written", "rules", rules+2*len(headExprs(chainInput)), "sets", len(want.sets), "elements", elems)
	}
	// Ending connections and reading back touch different sockets and
	// neither changes what the other reads: run them side by side.
	sweepDone := make(chan error, 1)
	go func() { sweepDone <- e.sweep(p) }()
	gen, err = e.gen.generation()
	if err == nil {
		st, err = e.read()
	}
	sweepErr := <-sweepDone
	if err != nil {
		return fmt.Errorf("nftables: apply: read back: %w: %w", isolation.ErrReadBack, err)
	}
	if !st.holds(want) {
		return fmt.Errorf("nftables: apply: %w: %s", isolation.ErrReadBack, st.problem(want))
	}
	if sweepErr != nil {
		// Not marked verified: applying the same plan again retries.
		return fmt.Errorf("nftables: apply: rules in force, but %w: %w", isolation.ErrConnectionsLeft, sweepErr)
	}
	e.verified.ok, e.verified.gen, e.verified.layout = true, gen, want
	return nil
}

// Clear implements isolation.Enforcer: it deletes the table. Clearing a
// namespace without the table returns nil.
func (e *Enforcer) Clear(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return fmt.Errorf("nftables: clear: %w", isolation.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("nftables: clear: %w", err)
	}
	e.verified.ok = false
	if _, err := e.conn.ListTableOfFamily(tableName, gnft.TableFamilyINet); err != nil {
		if isNotFound(err) {
			return nil
		}
		return fmt.Errorf("nftables: clear: %w: %w", ErrNetlink, err)
	}
	e.conn.DelTable(table)
	if err := e.conn.Flush(); err != nil && !isNotFound(err) {
		return fmt.Errorf("nftables: clear: %w: %w", ErrNetlink, err)
	}
	e.log.Info("nftables: isolation rules removed")
	return nil
}

// Close implements isolation.Enforcer: it closes the enforcer's sockets and
// leaves the rules in force.
func (e *Enforcer) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	err := e.conn.CloseLasting()
	e.nl.Close()
	return errors.Join(err, e.gen.close(), e.ns.Close())
}

// Observe implements isolation.Observer: it reads the table back and
// decodes the plan in force. Remote prefixes and port ranges read back
// merged where they overlap or touch; names of management endpoints longer
// than fit in a rule comment are lost. A table whose content this adapter
// did not write gives an error wrapping isolation.ErrReadBack.
func (e *Enforcer) Observe(ctx context.Context) (isolation.Observation, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return isolation.Observation{}, fmt.Errorf("nftables: observe: %w", isolation.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return isolation.Observation{}, fmt.Errorf("nftables: observe: %w", err)
	}
	st, err := e.read()
	if err != nil {
		return isolation.Observation{}, fmt.Errorf("nftables: observe: %w", err)
	}
	if !st.exists {
		return isolation.Observation{}, nil
	}
	if msg := st.structural(); msg != "" {
		return isolation.Observation{Active: true}, fmt.Errorf("nftables: observe: %w: %s", isolation.ErrReadBack, msg)
	}
	p, err := layoutPlan(st.layout)
	if err != nil {
		return isolation.Observation{Active: true}, fmt.Errorf("nftables: observe: %w: %w", isolation.ErrReadBack, err)
	}
	return isolation.Observation{Active: true, Plan: p}, nil
}

// state is the table as read from the kernel.
type state struct {
	exists      bool
	badChains   []string // chains to delete: not ours, or ours with the wrong hook
	recreate    bool     // a base chain cannot be repaired in place
	chainIssue  string   // first structural problem of the chains
	head        [2]bool  // the fixed rules (headExprs) start the chain
	ruleIssue   string   // first rule or set that is not one this adapter writes
	namedSets   []string // the named sets in the table (Apply deletes them all)
	layout      layout
	inputExists bool
	outExists   bool
}

func (s state) structural() string {
	switch {
	case s.chainIssue != "":
		return s.chainIssue
	case !s.head[chainInput]:
		return "chain input does not start with the loopback and related-ICMP rules"
	case !s.head[chainOutput]:
		return "chain output does not start with the loopback and related-ICMP rules"
	case s.ruleIssue != "":
		return s.ruleIssue
	}
	return ""
}

// holds reports whether the table is exactly the one want describes.
func (s state) holds(want layout) bool {
	return s.exists && s.structural() == "" && s.layout.equal(want)
}

func (s state) problem(want layout) string {
	if !s.exists {
		return "table inet " + tableName + " is missing"
	}
	if m := s.structural(); m != "" {
		return m
	}
	return want.diff(s.layout)
}

// read reads the table, its chains and rules.
func (e *Enforcer) read() (state, error) {
	var st state
	t, err := e.conn.ListTableOfFamily(tableName, gnft.TableFamilyINet)
	if err != nil {
		if isNotFound(err) {
			return st, nil
		}
		return st, fmt.Errorf("%w: list table: %w", ErrNetlink, err)
	}
	st.exists = true
	// google/nftables v0.3.0 decodes the big-endian NFTA_TABLE_FLAGS in
	// host order; accept the bit either way.
	if (t.Flags|bits.ReverseBytes32(t.Flags))&unix.NFT_TABLE_F_DORMANT != 0 {
		// A dormant table keeps its rules but none of its hooks: nothing
		// is filtered. AddTable in the next batch wakes it.
		st.chainIssue = "table inet " + tableName + " is dormant (its chains filter nothing)"
	}
	chains, err := e.conn.ListChainsOfTableFamily(gnft.TableFamilyINet)
	if err != nil {
		return st, fmt.Errorf("%w: list chains: %w", ErrNetlink, err)
	}
	found := map[chainID]*gnft.Chain{}
	for _, c := range chains {
		if c.Table == nil || c.Table.Name != tableName {
			continue
		}
		id, ok := chainInput, false
		switch c.Name {
		case chainInputName:
			id, ok = chainInput, true
		case chainOutputName:
			id, ok = chainOutput, true
		}
		if !ok {
			st.badChains = append(st.badChains, c.Name)
			if st.chainIssue == "" {
				st.chainIssue = "foreign chain " + c.Name + " in the table"
			}
			continue
		}
		found[id] = c
		want := baseChain(id)
		if c.Hooknum == nil || *c.Hooknum != *want.Hooknum || c.Priority == nil || *c.Priority != *want.Priority || c.Type != want.Type {
			st.recreate = true
			if st.chainIssue == "" {
				st.chainIssue = "chain " + c.Name + " has the wrong type, hook or priority"
			}
		}
		if c.Policy == nil || *c.Policy != gnft.ChainPolicyDrop {
			if st.chainIssue == "" {
				st.chainIssue = "chain " + c.Name + " does not have policy drop"
			}
		}
	}
	dumped, err := e.gen.dumpSets()
	if err != nil {
		return st, fmt.Errorf("%w: %w", ErrNetlink, err)
	}
	setsByName := map[string]dumpedSet{}
	for _, s := range dumped {
		setsByName[s.name] = s
		if s.flags&unix.NFT_SET_ANONYMOUS == 0 {
			st.namedSets = append(st.namedSets, s.name)
		}
	}
	sets := e.setReader(setsByName)
	for _, id := range []chainID{chainInput, chainOutput} {
		if found[id] == nil {
			if st.chainIssue == "" {
				st.chainIssue = "chain " + id.String() + " is missing"
			}
			continue
		}
		rules, err := e.gen.dumpRules(id)
		if err != nil {
			return st, fmt.Errorf("%w: list rules of %s: %w", ErrNetlink, id, err)
		}
		head := headExprs(id)
		st.head[id] = len(rules) >= len(head)
		for i, r := range rules {
			if i < len(head) {
				if r.foreign == "" && slices.EqualFunc(r.exprs, head[i], exprEqual) {
					continue
				}
				st.head[id] = false
			}
			var a atom
			err := fmt.Errorf("expression %q is not one this adapter writes", r.foreign)
			if r.foreign == "" {
				a, err = decodeRule(id, r.exprs, r.userData, sets)
			}
			if err != nil {
				if st.ruleIssue == "" {
					st.ruleIssue = fmt.Sprintf("chain %s, rule %d (handle %d): %v", id, i+1, r.handle, err)
				}
				continue
			}
			if id == chainInput {
				st.layout.input = append(st.layout.input, a)
			} else {
				st.layout.output = append(st.layout.output, a)
			}
		}
	}
	if err := e.readSets(&st, setsByName); err != nil {
		return st, err
	}
	return st, nil
}

// readSets reads the named sets of the table into st.layout.sets: the
// shape of each comes from the lookup rules that use it, and its
// definition and elements must be the ones this adapter writes for that
// shape. A problem is recorded in st.ruleIssue.
func (e *Enforcer) readSets(st *state, byName map[string]dumpedSet) error {
	refs := map[string][]atom{}
	for _, a := range slices.Concat(st.layout.input, st.layout.output) {
		if a.set != "" {
			refs[a.set] = append(refs[a.set], a)
		}
	}
	issue := func(format string, args ...any) {
		if st.ruleIssue == "" {
			st.ruleIssue = fmt.Sprintf(format, args...)
		}
	}
	slices.Sort(st.namedSets)
	for _, name := range st.namedSets {
		ds := byName[name]
		sh, ok := refShape(refs[name])
		if !ok {
			issue("set %s is not looked up by the rules of one shape", name)
			continue
		}
		if ds.foreign != "" || ds.flags != unix.NFT_SET_INTERVAL|nftSetConcat || ds.keyType != keyTypeMagic(sh) ||
			ds.keyLen != uint32(keyLen(sh)) || !slices.Equal(ds.fieldLens, setFieldLens(sh)) {
			issue("set %s is not defined as this adapter defines sets of shape %s: flags %#x, key type %#x of %d bytes, fields %v, foreign %q",
				name, sh, ds.flags, ds.keyType, ds.keyLen, ds.fieldLens, ds.foreign)
			continue
		}
		elems, err := e.gen.dumpSetElems(name)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrNetlink, err)
		}
		ks := keySet{name: name, shape: sh, elems: make([]entry, 0, len(elems))}
		bad := false
		for _, de := range elems {
			tag, ok := parseComment(de.userData)
			var en entry
			err := fmt.Errorf("element with %s", de.foreign)
			switch {
			case de.foreign != "":
			case de.flags != 0:
				err = fmt.Errorf("element with flags %#x", de.flags)
			case !ok:
				err = errors.New("element without a cordon comment")
			default:
				en, err = keyEntry(sh, de.key, de.keyEnd, tag)
			}
			if err != nil {
				issue("set %s: %v", name, err)
				bad = true
				break
			}
			ks.elems = append(ks.elems, en)
		}
		if bad {
			continue
		}
		slices.SortFunc(ks.elems, entry.compare)
		st.layout.sets = append(st.layout.sets, ks)
	}
	return nil
}

// refShape returns the shape of the set that rules refs look up.
func refShape(refs []atom) (shape, bool) {
	switch len(refs) {
	case 1:
		a := refs[0]
		s := shape{family: a.family, chain: a.chain, role: roleInit, fields: a.fields}
		if a.reply {
			s.role = roleReply
		}
		return s, true
	case 2:
		ini, rep := refs[0], refs[1]
		if ini.reply {
			ini, rep = rep, ini
		}
		if ini.reply || !rep.reply || ini.family != rep.family || ini.fields != rep.fields || rep.chain != otherChain(ini.chain) {
			return shape{}, false
		}
		return shape{family: ini.family, chain: ini.chain, role: roleFlow, fields: ini.fields}, true
	}
	return shape{}, false
}

// setReader returns a reader of the elements of the anonymous sets in
// byName.
func (e *Enforcer) setReader(byName map[string]dumpedSet) setReader {
	return func(name string) ([]span, error) {
		s, ok := byName[name]
		if !ok {
			return nil, fmt.Errorf("set %s not found", name)
		}
		if s.foreign != "" || s.flags&(unix.NFT_SET_INTERVAL|unix.NFT_SET_ANONYMOUS) != unix.NFT_SET_INTERVAL|unix.NFT_SET_ANONYMOUS || s.flags&nftSetConcat != 0 {
			return nil, fmt.Errorf("set %s is not an anonymous interval set", name)
		}
		des, err := e.gen.dumpSetElems(name)
		if err != nil {
			return nil, fmt.Errorf("%w: elements of set %s: %w", ErrNetlink, name, err)
		}
		elems := make([]gnft.SetElement, 0, len(des))
		for _, d := range des {
			if d.foreign != "" || d.keyEnd != nil || d.flags&^unix.NFT_SET_ELEM_INTERVAL_END != 0 {
				return nil, fmt.Errorf("set %s: an element this adapter does not write", name)
			}
			elems = append(elems, gnft.SetElement{Key: d.key, IntervalEnd: d.flags&unix.NFT_SET_ELEM_INTERVAL_END != 0})
		}
		return elementSpans(elems, int(s.keyLen))
	}
}

// write replaces the table's content with want in one transaction.
// Flushing and refilling the chains inside one batch is atomic: packets
// see either the old rules or the new ones, never none.
func (e *Enforcer) write(st state, want layout) error {
	// The batch is built with the library and sent by sendBatch.
	capture := &batchSender{}
	c, err := gnft.New(gnft.WithTestDial(capture.dial))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNetlink, err)
	}
	c.AddTable(table)
	if st.recreate {
		// A base chain with the wrong hook or priority cannot be changed in
		// place: drop the table and build it again in this same batch.
		c.DelTable(table)
		c.AddTable(table)
	}
	chains := map[chainID]*gnft.Chain{}
	for _, id := range []chainID{chainInput, chainOutput} {
		chains[id] = c.AddChain(baseChain(id))
		if st.exists && !st.recreate {
			c.FlushChain(chains[id])
		}
	}
	if !st.recreate {
		// Foreign chains go after ours are flushed: a jump from ours to
		// one of them would keep it in use.
		for _, name := range st.badChains {
			ch := &gnft.Chain{Name: name, Table: table}
			c.FlushChain(ch)
			c.DelChain(ch)
		}
	}
	if !st.recreate {
		// Named sets go after the rules that use them are flushed; all
		// of them, ours too: the new ones are added below.
		for _, name := range st.namedSets {
			c.DelSet(&gnft.Set{Table: table, Name: name})
		}
	}
	b := &batch{conn: c}
	for _, s := range want.sets {
		b.addKeySet(s)
	}
	for _, id := range []chainID{chainInput, chainOutput} {
		for _, exprs := range headExprs(id) {
			c.AddRule(&gnft.Rule{Table: table, Chain: chains[id], Exprs: exprs})
		}
		atoms := want.input
		if id == chainOutput {
			atoms = want.output
		}
		for _, a := range atoms {
			b.addAtom(a)
		}
	}
	if b.err != nil {
		return fmt.Errorf("%w: encode: %w", ErrNetlink, b.err)
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("%w: encode batch: %w", ErrNetlink, err)
	}
	if err := e.gen.sendBatch(capture.msgs); err != nil {
		return fmt.Errorf("%w: write batch: %w", ErrNetlink, err)
	}
	return nil
}

// sweep ends the TCP connections and deletes the conntrack entries that p
// does not allow.
func (e *Enforcer) sweep(p isolation.Plan) error {
	local, err := e.localAddrs()
	if err != nil {
		return err
	}
	var errs []error
	if err := e.endConnections(p, local); err != nil {
		errs = append(errs, err)
	}
	if err := e.deleteConntrack(p, local); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// localAddrs returns the addresses of the namespace's interfaces.
func (e *Enforcer) localAddrs() (map[netip.Addr]bool, error) {
	addrs, err := e.nl.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("%w: list addresses: %w", ErrNetlink, err)
	}
	local := map[netip.Addr]bool{}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			local[ip.Unmap()] = true
		}
	}
	return local, nil
}

// isLocal reports whether traffic to a stays on the host (loopback
// interface): loopback addresses and the host's own addresses.
func isLocal(a netip.Addr, local map[netip.Addr]bool) bool {
	a = a.Unmap()
	return a.IsLoopback() || local[a]
}

// endConnections destroys the TCP sockets whose flow p does not allow.
func (e *Enforcer) endConnections(p isolation.Plan, local map[netip.Addr]bool) error {
	d, err := openDiag(e.ns)
	if err != nil {
		return err
	}
	defer d.close()
	var all []sockInfo
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		socks, err := d.dumpTCP(fam)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrNetlink, err)
		}
		all = append(all, socks...)
	}
	victims := connectionsToEnd(p, all, local)
	if len(victims) == 0 {
		return nil
	}
	n, err := d.destroy(victims)
	e.log.Info("nftables: ended TCP connections the plan does not allow", "ended", n, "found", len(victims))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNetlink, err)
	}
	return nil
}

// connectionsToEnd picks, from a sock_diag dump, the connections p does
// not allow. The initiator of a connection is told by the listening
// sockets (isolation.Listeners).
func connectionsToEnd(p isolation.Plan, socks []sockInfo, local map[netip.Addr]bool) []sockInfo {
	var listening isolation.Listeners
	for _, s := range socks {
		if s.state == tcpListen {
			listening.Add(netip.AddrPortFrom(s.src, s.sport))
		}
	}
	var out []sockInfo
	for _, s := range socks {
		if !destroyable(s.state) || isLocal(s.dst, local) {
			continue
		}
		f := listening.TCPFlow(netip.AddrPortFrom(s.src, s.sport), netip.AddrPortFrom(s.dst, s.dport), "")
		if !p.Allows(f) {
			out = append(out, s)
		}
	}
	return out
}

// deleteConntrack deletes the conntrack entries of flows to or from the
// host that p does not allow, so that no reply rule ("ct state
// established") can be matched by a flow tracked before the plan. Entries
// of forwarded flows are left alone.
func (e *Enforcer) deleteConntrack(p isolation.Plan, local map[netip.Addr]bool) error {
	f := conntrackFilter{plan: p, local: local}
	// One dump of both families (a dump walks the whole conntrack hash,
	// which takes milliseconds); the deleting pass, which dumps again,
	// runs only for a family that holds an entry to delete.
	flows, err := e.nl.ConntrackTableList(netlink.ConntrackTable, unix.AF_UNSPEC)
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("%w: conntrack: %w", ErrNetlink, err)
	}
	need := map[netlink.InetFamily]bool{}
	for _, fl := range flows {
		if f.MatchConntrackFlow(fl) {
			need[netlink.InetFamily(fl.FamilyType)] = true
		}
	}
	var errs []error
	total := uint(0)
	for _, fam := range []netlink.InetFamily{unix.AF_INET, unix.AF_INET6} {
		if !need[fam] {
			continue
		}
		n, err := e.nl.ConntrackDeleteFilters(netlink.ConntrackTable, fam, f)
		total += n
		if err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("%w: conntrack: %w", ErrNetlink, err))
		}
	}
	if total > 0 {
		e.log.Info("nftables: deleted conntrack entries the plan does not allow", "deleted", total)
	}
	return errors.Join(errs...)
}

type conntrackFilter struct {
	plan  isolation.Plan
	local map[netip.Addr]bool
}

// MatchConntrackFlow reports whether the entry must go.
func (c conntrackFilter) MatchConntrackFlow(fl *netlink.ConntrackFlow) bool {
	flow, ok := conntrackFlow(fl, c.local)
	return ok && !c.plan.Allows(flow)
}

// conntrackFlow turns a conntrack entry into a Flow seen from the host;
// ok is false for entries that neither start nor end at the host, and
// for loopback traffic.
func conntrackFlow(fl *netlink.ConntrackFlow, local map[netip.Addr]bool) (isolation.Flow, bool) {
	src, ok1 := netip.AddrFromSlice(fl.Forward.SrcIP)
	dst, ok2 := netip.AddrFromSlice(fl.Forward.DstIP)
	if !ok1 || !ok2 {
		return isolation.Flow{}, false
	}
	src, dst = src.Unmap(), dst.Unmap()
	if src.IsLoopback() || dst.IsLoopback() || local[src] && local[dst] {
		return isolation.Flow{}, false
	}
	var f isolation.Flow
	switch {
	case local[src]:
		f = isolation.Flow{Initiator: isolation.DirectionOut, Remote: dst, LocalPort: fl.Forward.SrcPort, RemotePort: fl.Forward.DstPort}
	case local[dst]:
		f = isolation.Flow{Initiator: isolation.DirectionIn, Remote: src, LocalPort: fl.Forward.DstPort, RemotePort: fl.Forward.SrcPort}
	default:
		return isolation.Flow{}, false
	}
	switch fl.Forward.Protocol {
	case unix.IPPROTO_TCP:
		f.Protocol = isolation.ProtocolTCP
	case unix.IPPROTO_UDP:
		f.Protocol = isolation.ProtocolUDP
	case unix.IPPROTO_ICMP:
		// The library does not decode ICMP tuples; conntrack tracks echo
		// (and a few other query) exchanges, judged here as echo.
		f.Protocol, f.ICMPType, f.LocalPort, f.RemotePort = isolation.ProtocolICMP, 8, 0, 0
	case unix.IPPROTO_ICMPV6:
		f.Protocol, f.ICMPType, f.LocalPort, f.RemotePort = isolation.ProtocolICMPv6, 128, 0, 0
	default:
		f.Protocol, f.LocalPort, f.RemotePort = isolation.ProtocolAny, 0, 0
	}
	return f, true
}
