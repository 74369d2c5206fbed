package ioc

import (
	"fmt"
	"net/netip"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Normalize returns value in the canonical form of kind k, the form in
// which Sets store and compare values, or an error wrapping ErrInvalidValue
// (ErrInvalidKind for an invalid k) that says why the value is not of the
// kind's form. Normalizing a normalized value returns it unchanged.
//
// The forms: hashes in lower-case hex of the exact length; addresses
// unmapped (::ffff:192.0.2.1 is 192.0.2.1) and without zone; prefixes
// masked; domain names in lower-case ASCII (IDNA) without trailing dot;
// URLs with lower-case scheme and host, no default port, no fragment, and
// "/" for an empty path; file paths cleaned, and Windows paths in lower
// case with "\" separators; registry keys in lower case with the long
// hive name; mutexes without object-manager prefixes.
func Normalize(k Kind, value string) (string, error) {
	if !k.Valid() {
		return "", fmt.Errorf("%w: %d", ErrInvalidKind, uint8(k))
	}
	if strings.IndexByte(value, 0) >= 0 {
		return "", invalid("contains a NUL byte")
	}
	if !utf8.ValidString(value) {
		return "", invalid("is not valid UTF-8")
	}
	v := strings.TrimSpace(value)
	if v == "" {
		return "", invalid("is empty")
	}
	switch k {
	case KindMD5, KindSHA1, KindSHA256, KindSHA512:
		return normalizeHash(k, v)
	case KindIPv4, KindIPv6:
		a, err := parseAddr(v)
		if err != nil {
			return "", err
		}
		if k == KindIPv4 && !a.Is4() {
			return "", invalid("is an IPv6 address, not IPv4")
		}
		if k == KindIPv6 && a.Is4() {
			return "", invalid("is an IPv4 address, not IPv6")
		}
		return a.String(), nil
	case KindCIDR:
		p, err := parsePrefix(v)
		if err != nil {
			return "", err
		}
		return p.String(), nil
	case KindDomain, KindHostname:
		if k == KindDomain {
			v = strings.TrimPrefix(v, "*.")
		}
		return normalizeDomain(v)
	case KindURL:
		return normalizeURL(v)
	case KindFilePath:
		if len(v) > maxPathLen {
			return "", invalid("is %d bytes long, a path has at most %d", len(v), maxPathLen)
		}
		return normalizePath(v), nil
	case KindFileName:
		if strings.ContainsAny(v, `/\`) {
			return "", invalid("contains a path separator (use kind file-path)")
		}
		if v == "." || v == ".." {
			return "", invalid("is not a file name")
		}
		return v, nil
	case KindProcessName:
		return v, nil
	case KindRegistryKey:
		return normalizeRegistry(v)
	case KindMutex:
		m := normalizeMutex(v)
		if m == "" {
			return "", invalid("is only an object-manager prefix")
		}
		return m, nil
	}
	return "", fmt.Errorf("%w: %d", ErrInvalidKind, uint8(k))
}

// invalidValue is the error Normalize returns; the Builder turns it into an
// IndicatorError carrying the indicator's identity.
type invalidValue struct{ reason string }

func (e *invalidValue) Error() string { return "ioc: invalid indicator value: " + e.reason }
func (e *invalidValue) Unwrap() error { return ErrInvalidValue }

func invalid(format string, args ...any) error {
	return &invalidValue{reason: fmt.Sprintf(format, args...)}
}

// reasonOf returns the bare reason of an error from Normalize.
func reasonOf(err error) string {
	if iv, ok := err.(*invalidValue); ok {
		return iv.reason
	}
	return err.Error()
}

// hashSize is the digest size in bytes of each hash kind.
func hashSize(k Kind) int {
	switch k {
	case KindMD5:
		return 16
	case KindSHA1:
		return 20
	case KindSHA256:
		return 32
	case KindSHA512:
		return 64
	}
	return 0
}

func normalizeHash(k Kind, v string) (string, error) {
	want := 2 * hashSize(k)
	if len(v) != want {
		return "", invalid("has %d characters, a %s digest has %d hex digits", utf8.RuneCountInString(v), k, want)
	}
	for i := 0; i < len(v); i++ {
		if !isHex(v[i]) {
			return "", invalid("has a non-hex character %q at position %d", v[i], i+1)
		}
	}
	return strings.ToLower(v), nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// hexDigits maps a byte to its value as a hex digit, with upperHex set
// for 'A'-'F'; notHex for a byte that is not a hex digit. A table, as the
// digits of digests and addresses are unpredictable branches.
var hexDigits = func() (t [256]byte) {
	for c := range t {
		switch {
		case '0' <= c && c <= '9':
			t[c] = byte(c - '0')
		case 'a' <= c && c <= 'f':
			t[c] = byte(c - 'a' + 10)
		case 'A' <= c && c <= 'F':
			t[c] = byte(c-'A'+10) | upperHex
		default:
			t[c] = notHex
		}
	}
	return t
}()

const (
	upperHex = 0x10
	notHex   = 0xff
)

// decodeHash decodes a hex digest of kind k into dst (len hashSize(k)),
// reporting false for anything else, and whether v had no upper-case
// digit. It does not allocate, nor branch on the digits.
func decodeHash(dst []byte, v string) (ok, lower bool) {
	if len(v) != 2*len(dst) {
		return false, false
	}
	var flags byte // notHex or upperHex, if any digit is
	for i := range dst {
		hi, lo := hexDigits[v[2*i]], hexDigits[v[2*i+1]]
		flags |= hi | lo
		dst[i] = hi<<4 | lo&0xf
	}
	return flags&^(upperHex|0xf) == 0, flags&upperHex == 0
}

func parseAddr(v string) (netip.Addr, error) {
	// Accept the bracketed form IPv6 addresses take in URLs.
	if strings.HasPrefix(v, "[") && strings.HasSuffix(v, "]") {
		v = v[1 : len(v)-1]
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return netip.Addr{}, invalid("is not an IP address: %s", strings.TrimPrefix(err.Error(), "ParseAddr("+strconv.Quote(v)+"): "))
	}
	if a.Zone() != "" {
		return netip.Addr{}, invalid("has an IPv6 zone %q", a.Zone())
	}
	return a.Unmap(), nil
}

func parsePrefix(v string) (netip.Prefix, error) {
	if !strings.Contains(v, "/") {
		a, err := parseAddr(v)
		if err != nil {
			return netip.Prefix{}, err
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(v)
	if err != nil {
		return netip.Prefix{}, invalid("is not a CIDR prefix: %s", strings.TrimPrefix(err.Error(), "netip.ParsePrefix("+strconv.Quote(v)+"): "))
	}
	a := p.Addr()
	if a.Zone() != "" {
		return netip.Prefix{}, invalid("has an IPv6 zone %q", a.Zone())
	}
	if a.Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, invalid("is an IPv4-mapped prefix shorter than /96")
		}
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// idnaProfile converts internationalized names to their ASCII form. It is
// lenient about underscores, which real names (_dmarc, SRV) contain.
var idnaProfile = idna.New(idna.MapForLookup(), idna.Transitional(false), idna.StrictDomainName(false))

func normalizeDomain(v string) (string, error) {
	v = strings.TrimSuffix(v, ".")
	if v == "" {
		return "", invalid("is an empty domain name")
	}
	ascii := true
	for i := 0; i < len(v); i++ {
		if v[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if !ascii {
		a, err := idnaProfile.ToASCII(v)
		if err != nil {
			return "", invalid("is not a valid internationalized domain name: %v", err)
		}
		v = a
	}
	v = strings.ToLower(v)
	if len(v) > 253 {
		return "", invalid("is %d characters long, a domain name has at most 253", len(v))
	}
	if _, err := netip.ParseAddr(v); err == nil {
		return "", invalid("is an IP address, not a domain name")
	}
	for label := range strings.SplitSeq(v, ".") {
		if label == "" {
			return "", invalid("has an empty label")
		}
		if len(label) > 63 {
			return "", invalid("has a label of %d characters, at most 63 are allowed", len(label))
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return "", invalid("has the character %q, not allowed in a domain name", c)
			}
		}
	}
	return v, nil
}

// domainKey normalizes an observed host name for lookup, reporting false
// when it is not a domain name. It allocates only when it must lower-case.
func domainKey(v string) (string, bool) {
	v = strings.TrimSuffix(v, ".")
	if v == "" || len(v) > 253 {
		return "", false
	}
	lower := true
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c >= utf8.RuneSelf {
			n, err := normalizeDomain(v)
			return n, err == nil
		}
		if 'A' <= c && c <= 'Z' {
			lower = false
		}
	}
	if !lower {
		v = strings.ToLower(v)
	}
	return v, true
}

var defaultPorts = map[string]string{"http": "80", "https": "443", "ftp": "21", "ws": "80", "wss": "443"}

func normalizeURL(v string) (string, error) {
	for i := 0; i < len(v); i++ {
		if v[i] <= ' ' || v[i] == 0x7f {
			return "", invalid("contains a control or space character at position %d", i+1)
		}
	}
	u, err := url.Parse(v)
	if err != nil {
		return "", invalid("is not a URL: %s", strings.TrimPrefix(err.Error(), "parse "+strconv.Quote(v)+": "))
	}
	if u.Scheme == "" {
		return "", invalid("has no scheme (an absolute URL is needed)")
	}
	if u.Opaque != "" || u.Host == "" {
		return "", invalid("has no host")
	}
	scheme := strings.ToLower(u.Scheme)
	host := u.Hostname()
	port := u.Port()
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		if a.Zone() != "" {
			return "", invalid("has an IPv6 zone in its host")
		}
		host = a.Unmap().String()
		if a.Unmap().Is6() {
			host = "[" + host + "]"
		}
	} else {
		h, err := normalizeDomain(host)
		if err != nil {
			return "", invalid("has an invalid host %q: %s", u.Hostname(), reasonOf(err))
		}
		host = h
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 0 || n > 65535 {
			return "", invalid("has an invalid port %q", port)
		}
		port = strconv.Itoa(n)
		if defaultPorts[scheme] == port {
			port = ""
		}
	}
	var b strings.Builder
	b.Grow(len(v))
	b.WriteString(scheme)
	b.WriteString("://")
	if u.User != nil {
		b.WriteString(u.User.String())
		b.WriteByte('@')
	}
	b.WriteString(host)
	if port != "" {
		b.WriteByte(':')
		b.WriteString(port)
	}
	p := u.EscapedPath()
	if p == "" {
		p = "/"
	}
	b.WriteString(normalizePercent(p))
	if u.RawQuery != "" || u.ForceQuery {
		b.WriteByte('?')
		b.WriteString(normalizePercent(u.RawQuery))
	}
	return b.String(), nil
}

// normalizePercent puts the percent-encodings of s in the normal form of
// RFC 3986 section 6.2.2: an encoded unreserved character (letter, digit,
// "-", ".", "_", "~") is decoded, and the others have upper-case hex, so
// that "/%7euser/%2f" and "/~user/%2F" compare equal. It allocates only
// when s has a "%".
func normalizePercent(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' || i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			b.WriteByte(s[i])
			continue
		}
		c := (hexDigits[s[i+1]]&^upperHex)<<4 | hexDigits[s[i+2]]&^upperHex
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '.', c == '_', c == '~':
			b.WriteByte(c)
		default:
			const hexUpper = "0123456789ABCDEF"
			b.WriteByte('%')
			b.WriteByte(hexUpper[c>>4])
			b.WriteByte(hexUpper[c&15])
		}
		i += 2
	}
	return b.String()
}

// maxPathLen is the longest file path accepted: Windows' limit for
// extended-length paths (Linux's PATH_MAX is 4096).
const maxPathLen = 32767

// isWindowsPath reports whether p is written the Windows way: a drive
// letter, a UNC or device prefix, or a backslash anywhere.
func isWindowsPath(p string) bool {
	if len(p) >= 2 && p[1] == ':' && ('a' <= p[0]|0x20 && p[0]|0x20 <= 'z') {
		return true
	}
	return strings.IndexByte(p, '\\') >= 0
}

// normalizePath cleans a file path (or glob). Windows paths are lower-cased
// and use "\"; the \\?\ and \??\ prefixes are dropped; a UNC prefix stays.
// It repeats until the path no longer changes (cleaning can uncover a
// prefix), so that its result is a fixed point.
func normalizePath(p string) string {
	// Each round that changes the path shortens it (but for "c:" gaining
	// its "\"), so the bound is never reached in practice.
	for range len(p) + 8 {
		n := normalizePathOnce(p)
		if n == p {
			break
		}
		p = n
	}
	return p
}

func normalizePathOnce(p string) string {
	p = strings.TrimSpace(p)
	if !isWindowsPath(p) {
		c := path.Clean(p)
		if c == "." {
			return p
		}
		return c
	}
	p = strings.ReplaceAll(p, "/", `\`)
	for _, pre := range []string{`\\?\`, `\??\`, `\\.\`} {
		if strings.HasPrefix(p, pre) {
			p = p[len(pre):]
			if strings.HasPrefix(strings.ToLower(p), `unc\`) {
				p = `\\` + p[4:]
			}
			break
		}
	}
	unc := strings.HasPrefix(p, `\\`)
	c := path.Clean(strings.ReplaceAll(p, `\`, "/"))
	c = strings.ReplaceAll(c, "/", `\`)
	if unc {
		c = `\` + c
	}
	if len(c) == 2 && c[1] == ':' {
		c += `\`
	}
	return strings.ToLower(c)
}

var hives = map[string]string{
	"hklm": "hkey_local_machine", "hkey_local_machine": "hkey_local_machine",
	"hkcu": "hkey_current_user", "hkey_current_user": "hkey_current_user",
	"hkcr": "hkey_classes_root", "hkey_classes_root": "hkey_classes_root",
	"hku": "hkey_users", "hkey_users": "hkey_users",
	"hkcc": "hkey_current_config", "hkey_current_config": "hkey_current_config",
}

func normalizeRegistry(v string) (string, error) {
	k := strings.ToLower(v)
	// Kernel paths, as drivers report them.
	switch {
	case strings.HasPrefix(k, `\registry\machine`):
		k = "hkey_local_machine" + k[len(`\registry\machine`):]
	case strings.HasPrefix(k, `\registry\user`):
		k = "hkey_users" + k[len(`\registry\user`):]
	}
	k = strings.Trim(k, `\`)
	for strings.Contains(k, `\\`) {
		k = strings.ReplaceAll(k, `\\`, `\`)
	}
	hive, rest, _ := strings.Cut(k, `\`)
	long, ok := hives[hive]
	if !ok {
		return "", invalid("does not start with a registry hive (HKLM, HKCU, HKCR, HKU, HKCC or their long names)")
	}
	if rest == "" {
		return long, nil
	}
	return long + `\` + rest, nil
}

func normalizeMutex(v string) string {
	for {
		l := strings.ToLower(v)
		switch {
		case strings.HasPrefix(l, `\basenamedobjects\`):
			v = v[len(`\basenamedobjects\`):]
		case strings.HasPrefix(l, `\sessions\`):
			// \Sessions\<n>\BaseNamedObjects\name
			rest := v[len(`\sessions\`):]
			_, after, ok := strings.Cut(rest, `\`)
			if !ok {
				return v
			}
			v = `\` + after
		case strings.HasPrefix(l, `global\`):
			v = v[len(`global\`):]
		case strings.HasPrefix(l, `local\`):
			v = v[len(`local\`):]
		case strings.HasPrefix(l, `session\`):
			rest := v[len(`session\`):]
			_, after, ok := strings.Cut(rest, `\`)
			if !ok {
				return v
			}
			v = after
		default:
			return v
		}
	}
}

// RegistryKeyViews returns the other names under which Windows reports
// the registry key key, given in the form Normalize(KindRegistryKey, …)
// returns: a key under HKEY_USERS\<SID> is also the user's
// HKEY_CURRENT_USER key (and, under Software\Classes or <SID>_Classes,
// an HKEY_CLASSES_ROOT key), and a key under HKLM or HKCU Software\Classes
// is also an HKEY_CLASSES_ROOT key. Registry-key indicators match an event
// under any of its views; matchers of their own (logic trees) use this to
// agree with them. It returns nil when the key has no other name.
func RegistryKeyViews(key string) []string {
	alts, k := registryViews(key)
	if k == 0 {
		return nil
	}
	return slices.Clone(alts[:k])
}
