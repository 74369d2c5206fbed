package ioc

import (
	"encoding/binary"
	"encoding/hex"
	"iter"
	"math"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/gaissmai/bart"
)

// A Set is an immutable, compiled set of atomic indicators, built by a
// Builder (or Compile) and matched against events with Match. Values are
// stored normalized, in compact tables: a Set of a million indicators
// takes on the order of 100 bytes per indicator.
//
// A Set is safe for concurrent use: it is never modified after Build.
type Set struct {
	entries []entry
	metas   []meta
	arena   string // ids and values' texts, each a uvarint length and bytes

	hashes   [KindSHA512 + 1]*fixedTable // by kind: md5, sha1, sha256, sha512
	addrs    *fixedTable                 // exact addresses, 16-byte keys; extra: the head entry of the address's longest CIDR prefix + 1, 0 if none
	prefixes []netip.Prefix
	cidrs    bart.Table[uint32] // prefix -> head entry
	cidrUp   []uint32           // by prefix index: the head entry of the longest stored prefix strictly containing it + 1, 0 if none
	strs     [kindEnd]*keyTable // the other kinds, variable-size keys
	globs    globIndex
	windows  []window // validity windows, interned; entry.win indexes it + 1
}

// window is a validity window: the bounds as given (for reporting) and as
// Unix nanoseconds clamped to int64 (for comparing), so that a bound
// outside 1678–2262, such as a feed's "valid until 9999-12-31", keeps its
// meaning instead of overflowing.
type window struct {
	from, until   int64 // clamped; math.MinInt64 / math.MaxInt64 when unbounded
	fromT, untilT time.Time
}

// entry is one indicator, as compactly as its fields allow.
type entry struct {
	key  uint32 // index of its key in its kind's table (CIDR: in prefixes; glob: in globs)
	orig uint32 // arena offset+1 of the value's text, when it is not the key's (a name's case, a CIDR's text); 0 otherwise
	id   uint32 // arena offset+1 of the id; 0: derived "<kind>:<value>"
	meta uint32 // index in metas
	next uint32 // next entry with the same key, +1; 0 ends the chain
	win  uint32 // index in Set.windows + 1; 0: always valid
	kind Kind
	glob bool
}

// meta holds what indicators of one feed usually share; it is interned.
type meta struct {
	source, description string
	tags                []string
	severity            Severity
	score, confidence   uint8
}

// Len returns the number of indicators in the set.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.entries)
}

// SizeBytes estimates the memory the set holds, for capacity planning.
func (s *Set) SizeBytes() int {
	if s == nil {
		return 0
	}
	n := int(unsafe.Sizeof(entry{}))*cap(s.entries) + len(s.arena) + 24*cap(s.prefixes) + 4*cap(s.cidrUp) +
		int(unsafe.Sizeof(window{}))*cap(s.windows)
	for _, m := range s.metas {
		n += 64 + len(m.source) + len(m.description) + 16*len(m.tags)
	}
	for _, t := range s.hashes {
		if t != nil {
			n += t.bytes()
		}
	}
	for _, t := range s.strs {
		if t != nil {
			n += t.bytes()
		}
	}
	if s.addrs != nil {
		n += s.addrs.bytes()
	}
	// bart's own nodes are not counted: roughly 50 bytes per prefix.
	return n + 50*len(s.prefixes) + s.globs.bytes()
}

// All yields every indicator in the set, in the order they were added,
// with normalized values.
func (s *Set) All() iter.Seq[Indicator] {
	return func(yield func(Indicator) bool) {
		if s == nil {
			return
		}
		for i := range s.entries {
			if !yield(s.indicator(uint32(i))) {
				return
			}
		}
	}
}

// indicator rebuilds the Indicator of entry i.
func (s *Set) indicator(i uint32) Indicator {
	return s.indicatorWithValue(i, s.value(&s.entries[i]))
}

// indicatorWithValue rebuilds the Indicator of entry i whose normalized
// value the caller already has.
func (s *Set) indicatorWithValue(i uint32, value string) Indicator {
	var ind Indicator
	s.fill(&ind, i, value)
	return ind
}

// fill sets the fields of the zero Indicator *ind to those of entry i
// with the normalized value.
func (s *Set) fill(ind *Indicator, i uint32, value string) {
	e := &s.entries[i]
	m := &s.metas[e.meta]
	ind.Kind, ind.Value = e.kind, value
	ind.Source, ind.Description = m.source, m.description
	ind.Severity, ind.Score, ind.Confidence = m.severity, int(m.score), int(m.confidence)
	if len(m.tags) > 0 {
		ind.Tags = append([]string(nil), m.tags...)
	}
	if e.id != 0 {
		ind.ID = s.str(e.id)
	} else {
		ind.ID = e.kind.String() + ":" + ind.Value
	}
	if e.win != 0 {
		w := &s.windows[e.win-1]
		ind.ValidFrom, ind.ValidUntil = w.fromT, w.untilT
	}
}

func (s *Set) value(e *entry) string {
	if e.orig != 0 {
		return s.str(e.orig)
	}
	switch e.kind {
	case KindMD5, KindSHA1, KindSHA256, KindSHA512:
		return hex.EncodeToString(s.hashes[e.kind].key(e.key))
	case KindIPv4, KindIPv6:
		return netip.AddrFrom16([16]byte(s.addrs.key(e.key))).Unmap().String()
	case KindCIDR:
		return s.prefixes[e.key].String()
	}
	if e.glob {
		return s.globs.all[e.key].pattern
	}
	return string(s.strs[e.kind].key(e.key))
}

func (s *Set) str(off uint32) string {
	n, w := uvarint(s.arena[off-1:])
	return s.arena[off-1+uint32(w) : off-1+uint32(w)+uint32(n)]
}

// uvarint decodes a uvarint at the start of s (binary.Uvarint for strings).
func uvarint(s string) (uint64, int) {
	var x uint64
	var shift uint
	for i := 0; i < len(s) && i < binary.MaxVarintLen64; i++ {
		c := s[i]
		if c < 0x80 {
			return x | uint64(c)<<shift, i + 1
		}
		x |= uint64(c&0x7f) << shift
		shift += 7
	}
	return 0, 0
}

// active reports whether entry i's validity window holds now.
func (s *Set) active(i uint32, now int64) bool {
	e := &s.entries[i]
	if e.win == 0 {
		return true
	}
	w := &s.windows[e.win-1]
	return now >= w.from && now < w.until
}

// Unix nanoseconds fit an int64 between these instants.
var (
	minNanoTime = time.Unix(0, math.MinInt64)
	maxNanoTime = time.Unix(0, math.MaxInt64)
)

// clampNanos returns t in Unix nanoseconds, clamped to the int64 range
// (time.UnixNano is undefined outside it).
func clampNanos(t time.Time) int64 {
	switch {
	case t.Before(minNanoTime):
		return math.MinInt64
	case t.After(maxNanoTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// Match returns the indicators of the set that match ev at time now (an
// indicator outside its validity window never matches). See AppendMatches.
func (s *Set) Match(ev *Event, now time.Time) []Match {
	return s.AppendMatches(nil, ev, now)
}

// AppendMatches appends to dst the matches of ev at time now and returns
// the extended slice. Every field of the event that some kind applies to
// is looked up (see the Kind constants); a field that is not of the form
// its kind needs (a malformed digest, a non-address) is skipped. It does
// not allocate when nothing matches.
func (s *Set) AppendMatches(dst []Match, ev *Event, now time.Time) []Match {
	if s == nil || len(s.entries) == 0 || ev == nil {
		return dst
	}
	m := matching{s: s, dst: dst, now: clampNanos(now), windows: strings.EqualFold(ev.Host.OS, "windows")}
	switch ev.Kind {
	case EventFile:
		if f := ev.File; f != nil {
			m.hash(KindMD5, "file.md5", f.MD5)
			m.hash(KindSHA1, "file.sha1", f.SHA1)
			m.hash(KindSHA256, "file.sha256", f.SHA256)
			m.hash(KindSHA512, "file.sha512", f.SHA512)
			m.path("file.path", f.Path)
			name, field := f.Name, "file.name"
			if name == "" {
				name, field = baseName(f.Path), "file.path"
			}
			m.name(KindFileName, field, name)
		}
	case EventProcess:
		if p := ev.Process; p != nil {
			m.hash(KindSHA256, "process.sha256", p.SHA256)
			m.path("process.path", p.Path)
			name, field := p.Name, "process.name"
			if name == "" {
				name, field = baseName(p.Path), "process.path"
			}
			m.name(KindProcessName, field, name)
			m.name(KindFileName, field, name)
			m.name(KindProcessName, "process.parent_name", p.ParentName)
		}
	case EventNetwork:
		if n := ev.Network; n != nil {
			m.addr("network.remote_address", n.RemoteAddress)
		}
	case EventDNS:
		if d := ev.DNS; d != nil {
			m.host("dns.query", d.Query)
			for i, a := range d.Answers {
				field := "dns.answers[" + strconv.Itoa(i) + "]"
				if !m.addr(field, a) {
					m.host(field, a)
				}
			}
		}
	case EventHTTP:
		if h := ev.HTTP; h != nil {
			m.url("http.url", h.URL)
		}
	case EventRegistry:
		if r := ev.Registry; r != nil {
			m.registry(r.Key, r.ValueName)
		}
	case EventMutex:
		if x := ev.Mutex; x != nil && x.Name != "" {
			n := normalizeMutex(strings.TrimSpace(x.Name))
			m.lookup(KindMutex, "mutex.name", n, n)
		}
	}
	return m.dst
}

// matching carries one AppendMatches call.
type matching struct {
	s       *Set
	dst     []Match
	now     int64
	windows bool // the host is a Windows host
}

// emit appends the active entries of the chain starting at head. For kinds
// matched by equality, exact says the observable is the indicators' value.
// It reports whether it appended any.
func (m *matching) emit(head uint32, field, observable string, exact bool, keep func(*entry) bool) bool {
	n := len(m.dst)
	for i := head; ; {
		e := &m.s.entries[i]
		if m.s.active(i, m.now) && (keep == nil || keep(e)) {
			value := observable
			if !exact || e.orig != 0 {
				value = m.s.value(e)
			}
			// Built in place: a Match is some 200 bytes to copy.
			m.dst = append(m.dst, Match{Field: field, Observable: observable})
			m.s.fill(&m.dst[len(m.dst)-1].Indicator, i, value)
		}
		if e.next == 0 {
			return len(m.dst) > n
		}
		i = e.next - 1
	}
}

func (m *matching) hash(k Kind, field, v string) {
	t := m.s.hashes[k]
	if v == "" || t == nil {
		return
	}
	var buf [64]byte
	key := buf[:hashSize(k)]
	ok, lower := decodeHash(key, v)
	if !ok {
		return
	}
	if slot, ok := t.find(key); ok {
		if !lower {
			v = strings.ToLower(v)
		}
		m.emit(t.value(slot), field, v, true, nil)
	}
}

// addr looks an address up, exactly and in every prefix that contains
// it, and reports whether v was an address at all. The exact indicators
// come first, then those of each containing prefix, longest first (each
// prefix's newest first).
func (m *matching) addr(field, v string) bool {
	var (
		a   netip.Addr
		obs string
	)
	if b, ok := parseDottedQuad(v); ok {
		a, obs = netip.AddrFrom4(b), v // v is how a formats
	} else if b, canonical, ok := parseIPv6Groups(v); ok {
		a = netip.AddrFrom16(b).Unmap()
		if canonical {
			obs = v
		}
	} else {
		var err error
		if a, err = netip.ParseAddr(strings.Trim(v, "[]")); err != nil {
			return false
		}
		a = a.WithZone("").Unmap()
	}
	observable := func() string {
		if obs == "" {
			var buf [48]byte
			if b := a.AppendTo(buf[:0]); string(b) == v {
				obs = v
			} else {
				obs = string(b)
			}
		}
		return obs
	}
	// An exact address knows its longest CIDR prefix (computed at Build),
	// so a hit needs no prefix lookup; each prefix knows the next longest
	// one containing it, so the others need none either.
	cidr, known := uint32(0), false
	if t := m.s.addrs; t != nil {
		k := a.As16()
		if slot, ok := t.find(k[:]); ok {
			m.emit(t.value(slot), field, observable(), true, nil)
			cidr, known = t.extra(slot), true
		}
	}
	if len(m.s.prefixes) > 0 {
		head, ok := cidr-1, cidr != 0
		if !known {
			head, ok = m.s.cidrs.Lookup(a)
		}
		for ok {
			// A prefix whose indicators are all out of their validity
			// window reports nothing, and hides no wider one.
			m.emit(head, field, observable(), false, nil)
			up := m.s.cidrUp[m.s.entries[head].key]
			head, ok = up-1, up != 0
		}
	}
	return true
}

// parseDottedQuad parses v when it is an IPv4 address in the form
// netip.Addr.String gives (four decimal fields 0-255 without leading
// zeros), the common case, faster than netip.ParseAddr. For anything else
// it reports false, and netip.ParseAddr decides.
func parseDottedQuad(v string) (a [4]byte, ok bool) {
	if len(v) < len("0.0.0.0") || len(v) > len("255.255.255.255") {
		return a, false
	}
	i := 0
	for f := range a {
		if f > 0 {
			if i >= len(v) || v[i] != '.' {
				return a, false
			}
			i++
		}
		start, n := i, 0
		for i < len(v) && i-start < 3 && v[i]-'0' <= 9 {
			n = n*10 + int(v[i]-'0')
			i++
		}
		if i == start || n > 255 || v[start] == '0' && i-start > 1 {
			return a, false
		}
		a[f] = byte(n)
	}
	return a, i == len(v)
}

// parseIPv6Groups parses v when it is an IPv6 address of hex groups, with
// or without "::" (no zone, no trailing dotted quad), faster than
// netip.ParseAddr; canonical reports whether v is how netip.Addr.String
// formats the address (RFC 5952) and the address is not IPv4-mapped. For
// anything else it reports false, and netip.ParseAddr decides.
func parseIPv6Groups(v string) (a [16]byte, canonical, ok bool) {
	if len(v) < len("::") || len(v) > len("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff") {
		return a, false, false
	}
	const groups = 8
	n, ell := 0, -1 // groups parsed; the group index of "::", -1 if none
	var (
		flags  byte // upperHex: an upper-case digit
		padded bool // a group with a leading zero
		zeros  bool // two zero groups in a row
		zero   bool // the last group was zero
	)
	i := 0
	if v[0] == ':' {
		if v[1] != ':' {
			return a, false, false
		}
		ell, i = 0, 2
	}
	for i < len(v) {
		start := i
		var x uint16
		for ; i < len(v) && i-start < 4; i++ {
			d := hexDigits[v[i]]
			if d == notHex {
				break
			}
			flags |= d
			x = x<<4 | uint16(d&0xf)
		}
		if i == start || n == groups {
			return a, false, false
		}
		padded = padded || v[start] == '0' && i-start > 1
		zeros = zeros || zero && x == 0
		zero = x == 0
		a[2*n], a[2*n+1] = byte(x>>8), byte(x)
		n++
		if i == len(v) {
			break
		}
		if v[i] != ':' || i+1 == len(v) {
			return a, false, false // a dot, a zone, a fifth digit, a trailing colon
		}
		if i++; v[i] == ':' {
			if ell >= 0 {
				return a, false, false
			}
			ell = n
			i++
		}
	}
	if ell < 0 && n != groups || ell >= 0 && n == groups {
		return a, false, false
	}
	canonical = flags&upperHex == 0 && !padded
	if ell >= 0 {
		// Move the groups after "::" to the end.
		gap := 2 * (groups - n)
		copy(a[2*ell+gap:], a[2*ell:2*n])
		clear(a[2*ell : 2*ell+gap])
		canonical = canonical && canonicalEllipsis(&a, ell, groups-n)
	} else if zeros {
		canonical = false // netip would write "::"
	}
	mapped := string(a[:10]) == "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" && a[10] == 0xff && a[11] == 0xff
	return a, canonical && !mapped, true
}

// canonicalEllipsis reports whether "::" for the zero groups ell to
// ell+k of the IPv6 address a is where netip writes it: the first longest
// run of two or more zero groups.
func canonicalEllipsis(a *[16]byte, ell, k int) bool {
	zs, zl := -1, 1
	for j := 0; j < 8; {
		l := j
		for l < 8 && a[2*l]|a[2*l+1] == 0 {
			l++
		}
		if l-j > zl {
			zs, zl = j, l-j
		}
		j = l + 1
	}
	return zs == ell && zl == k
}

// host looks a host name up as a hostname (exactly) and as a domain (it
// and each parent domain).
func (m *matching) host(field, v string) {
	d, ok := domainKey(v)
	if !ok {
		return
	}
	m.lookup(KindHostname, field, d, d)
	if t := m.s.strs[KindDomain]; t != nil {
		for rest := d; ; {
			if head, ok := t.findString(rest); ok {
				m.emit(head, field, d, rest == d, nil)
			}
			i := strings.IndexByte(rest, '.')
			if i < 0 {
				break
			}
			rest = rest[i+1:]
		}
	}
}

func (m *matching) url(field, v string) {
	if v == "" {
		return
	}
	n, err := normalizeURL(strings.TrimSpace(v))
	if err != nil {
		// A URL the normalizer refuses (a space or a control byte in its
		// path, a bad escape, as a raw HTTP client may send) still names
		// its host: a malformed path must not hide a known domain or
		// address.
		if i := strings.Index(v, "://"); i > 0 {
			m.urlHost(field, v[i+3:], `/?#\ `)
		}
		return
	}
	m.lookup(KindURL, field, n, n)
	m.urlHost(field, n[strings.Index(n, "://")+3:], "/?")
}

// urlHost looks up the host of a URL, as a name or an address, given the
// URL after its "://" and the bytes that end the authority.
func (m *matching) urlHost(field, rest, end string) {
	if i := strings.IndexAny(rest, end); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		rest = rest[i+1:]
	}
	if strings.HasPrefix(rest, "[") {
		if i := strings.IndexByte(rest, ']'); i >= 0 {
			m.addr(field, rest[1:i])
		}
		return
	}
	if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		rest = rest[:i]
	}
	if !m.addr(field, rest) {
		m.host(field, rest)
	}
}

func (m *matching) path(field, v string) {
	if v == "" {
		return
	}
	n := normalizePath(strings.TrimSpace(v))
	m.lookup(KindFilePath, field, n, n)
	m.s.globs.match(n, func(i uint32) { m.emit(i, field, n, false, nil) })
}

// name looks a file or process name up; on a Windows host case is
// ignored, elsewhere the indicator's case must be the event's.
func (m *matching) name(k Kind, field, v string) {
	if v = strings.TrimSpace(v); v == "" {
		return
	}
	t := m.s.strs[k]
	if t == nil {
		return
	}
	key := lowerASCIIOrFold(v)
	head, ok := t.findString(key)
	if !ok {
		return
	}
	if m.windows {
		// The name's normalized form on Windows is its lower case, so that
		// "EVIL.EXE" and "evil.exe" are one observable (one fingerprint).
		m.emit(head, field, key, false, nil)
		return
	}
	m.emit(head, field, v, true, func(e *entry) bool { return m.s.value(e) == v })
}

func (m *matching) registry(key, valueName string) {
	n, err := normalizeRegistry(strings.TrimSpace(key))
	if err != nil {
		return
	}
	if m.s.strs[KindRegistryKey] == nil {
		return
	}
	m.registryKey("registry.key", n)
	if valueName != "" {
		m.registryKey("registry.value_name", n+`\`+strings.ToLower(valueName))
	}
}

// registryKey looks the normalized key n up under its own name and under
// the names the same key has in the per-user and merged views: a key under
// HKEY_USERS\<SID> (as drivers and Sysmon report it) is the user's
// HKEY_CURRENT_USER key, and one under HKLM\Software\Classes, HKCU\Software\Classes
// or HKEY_USERS\<SID>_Classes is seen through HKEY_CLASSES_ROOT.
func (m *matching) registryKey(field, n string) {
	m.lookup(KindRegistryKey, field, n, n)
	alts, k := registryViews(n)
	for _, alt := range alts[:k] {
		m.lookup(KindRegistryKey, field, alt, n)
	}
}

// registryViews returns the other names of the normalized key n.
func registryViews(n string) (alts [2]string, k int) {
	const (
		users   = `hkey_users\`
		hkcu    = "hkey_current_user"
		hkcr    = "hkey_classes_root"
		classes = `\software\classes`
	)
	under := func(key, prefix string) (string, bool) {
		if key == prefix {
			return "", true
		}
		if strings.HasPrefix(key, prefix) && key[len(prefix)] == '\\' {
			return key[len(prefix):], true
		}
		return "", false
	}
	if rest, ok := strings.CutPrefix(n, users); ok {
		sid, sub, _ := strings.Cut(rest, `\`)
		if sub != "" {
			sub = `\` + sub
		}
		if !strings.HasPrefix(sid, "s-1-") {
			return alts, 0 // .default: not a user's hive
		}
		if strings.HasSuffix(sid, "_classes") {
			alts[0], alts[1] = hkcr+sub, hkcu+classes+sub
			return alts, 2
		}
		alts[0] = hkcu + sub
		if c, ok := under(sub, classes); ok {
			alts[1] = hkcr + c
			return alts, 2
		}
		return alts, 1
	}
	for _, p := range [...]string{"hkey_local_machine" + classes, hkcu + classes} {
		if c, ok := under(n, p); ok {
			alts[0] = hkcr + c
			return alts, 1
		}
	}
	return alts, 0
}

func (m *matching) lookup(k Kind, field, key, observable string) {
	if t := m.s.strs[k]; t != nil {
		if head, ok := t.findString(key); ok {
			m.emit(head, field, observable, key == observable, nil)
		}
	}
}

func baseName(p string) string {
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		return p[i+1:]
	}
	return p
}

// lowerASCIIOrFold lower-cases v, without allocating when it already is.
func lowerASCIIOrFold(v string) string {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if 'A' <= c && c <= 'Z' || c >= 0x80 {
			return strings.ToLower(v)
		}
	}
	return v
}

// globIndex holds the file-path indicators that are globs. A glob with a
// literal path element (one without "*" or "?") is found through it: its
// last element when that is literal, else its longest literal one, so a
// path event tries only the globs that name one of its elements. Globs
// without any literal element are tried one by one.
type globIndex struct {
	all       []glob
	byPattern map[string]uint32   // pattern -> index in all
	byElem    map[string][]uint32 // literal element -> indices in all
	rest      []uint32
}

type glob struct {
	pattern string
	re      *regexp.Regexp
	entry   uint32 // head entry; further entries chain from it
	windows bool
}

func isGlob(p string) bool { return strings.ContainsAny(p, "*?") }

// add compiles the glob p (normalized) for entry i, or, if the same pattern
// is there already, returns its index with existed true. It fails when the
// pattern does not compile (one too large for the regexp engine).
func (g *globIndex) add(p string, i uint32) (idx uint32, prevHead uint32, existed bool, err error) {
	if j, ok := g.byPattern[p]; ok {
		prev := g.all[j].entry
		g.all[j].entry = i
		return j, prev, true, nil
	}
	win := isWindowsPath(p)
	sep := "/"
	if win {
		sep = `\`
	}
	var re strings.Builder
	re.WriteString(`^`)
	runes := []rune(p)
	for k := 0; k < len(runes); k++ {
		switch c := runes[k]; {
		case c == '*' && k+1 < len(runes) && runes[k+1] == '*':
			k++
			if k+1 < len(runes) && string(runes[k+1]) == sep && (k == 1 || string(runes[k-2]) == sep) {
				// "a/**/b": any number of elements between, none included.
				re.WriteString(`(?:.*` + regexp.QuoteMeta(sep) + `)?`)
				k++
				break
			}
			re.WriteString(`.*`)
		case c == '*':
			re.WriteString(`[^` + regexp.QuoteMeta(sep) + `]*`)
		case c == '?':
			re.WriteString(`[^` + regexp.QuoteMeta(sep) + `]`)
		default:
			re.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	re.WriteString(`$`)
	rx, err := regexp.Compile(re.String())
	if err != nil {
		return 0, 0, false, err
	}
	idx = uint32(len(g.all))
	g.all = append(g.all, glob{pattern: p, re: rx, entry: i, windows: win})
	if g.byPattern == nil {
		g.byPattern = map[string]uint32{}
	}
	g.byPattern[p] = idx
	if key := globKey(p, sep); key != "" {
		if g.byElem == nil {
			g.byElem = map[string][]uint32{}
		}
		g.byElem[key] = append(g.byElem[key], idx)
	} else {
		g.rest = append(g.rest, idx)
	}
	return idx, 0, false, nil
}

// globKey returns the literal element of the glob p through which it is
// indexed: the last element when literal, else the longest literal one
// (a drive "c:" aside), else "".
func globKey(p, sep string) string {
	elems := strings.Split(p, sep)
	if last := elems[len(elems)-1]; last != "" && !isGlob(last) {
		return last
	}
	key := ""
	for _, el := range elems {
		if isGlob(el) || len(el) <= len(key) || len(el) == 2 && el[1] == ':' {
			continue
		}
		key = el
	}
	return key
}

// match calls found with the head entry of every glob that matches the
// normalized path p, once each.
func (g *globIndex) match(p string, found func(head uint32)) {
	if len(g.all) == 0 {
		return
	}
	win := isWindowsPath(p)
	sep := byte('/')
	if win {
		sep = '\\'
	}
	try := func(j uint32) {
		gl := &g.all[j]
		if gl.windows == win && gl.re.MatchString(p) {
			found(gl.entry)
		}
	}
	if len(g.byElem) > 0 {
		for start := 0; start <= len(p); {
			end := strings.IndexByte(p[start:], sep)
			if end < 0 {
				end = len(p)
			} else {
				end += start
			}
			if js, ok := g.byElem[p[start:end]]; ok && !hasElem(p[:start], p[start:end], sep) {
				for _, j := range js {
					try(j)
				}
			}
			start = end + 1
		}
	}
	for _, j := range g.rest {
		try(j)
	}
}

// hasElem reports whether the path prefix p has the element el.
func hasElem(p, el string, sep byte) bool {
	for p != "" {
		i := strings.IndexByte(p, sep)
		if i < 0 {
			return p == el
		}
		if p[:i] == el {
			return true
		}
		p = p[i+1:]
	}
	return false
}

func (g *globIndex) bytes() int { return len(g.all) * 400 }
