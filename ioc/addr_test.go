package ioc

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// refAddrMatches is what matching an address must report, computed by brute
// force over inds (in the order added): the exact indicators of the
// address in force at now, then the CIDR indicators in force of every
// prefix that contains it, longest prefix first, each prefix's (and the
// exact ones) newest first.
func refAddrMatches(t *testing.T, inds []Indicator, field, v string, now time.Time) []string {
	t.Helper()
	a, err := netip.ParseAddr(strings.Trim(v, "[]"))
	if err != nil {
		return nil
	}
	a = a.WithZone("").Unmap()
	inForce := func(ind Indicator) bool {
		return (ind.ValidFrom.IsZero() || !now.Before(ind.ValidFrom)) && (ind.ValidUntil.IsZero() || now.Before(ind.ValidUntil))
	}
	var exact []string
	var cidr [129][]string // by prefix length
	for i := len(inds) - 1; i >= 0; i-- {
		ind := inds[i]
		n, err := ind.Normalized()
		require.NoError(t, err)
		if !inForce(ind) {
			continue
		}
		line := n.ID + " " + field + " " + a.String() + " " + n.Value
		switch n.Kind {
		case KindIPv4, KindIPv6:
			if netip.MustParseAddr(n.Value) == a {
				exact = append(exact, line)
			}
		case KindCIDR:
			if p := netip.MustParsePrefix(n.Value); p.Contains(a) {
				cidr[p.Bits()] = append(cidr[p.Bits()], line)
			}
		}
	}
	for bits := len(cidr) - 1; bits >= 0; bits-- {
		exact = append(exact, cidr[bits]...)
	}
	return exact
}

func addrMatchLines(ms []Match) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Indicator.ID+" "+m.Field+" "+m.Observable+" "+m.Indicator.Value)
	}
	return out
}

// TestAddrNestedCIDRs: an exact address inside nested prefixes, some of
// them (and some of its own indicators) out of force, reports its exact
// indicators and those of every containing prefix in force, longest
// first, as a CIDR lookup of an address the set does not list does.
func TestAddrNestedCIDRs(t *testing.T) {
	past, future := t0.Add(-time.Hour), t0.Add(time.Hour)
	inds := []Indicator{
		{ID: "wide", Kind: KindCIDR, Value: "10.1.0.0/16"},
		{ID: "mid", Kind: KindCIDR, Value: "10.1.2.0/24", ValidUntil: past},
		{ID: "mid-dup", Kind: KindCIDR, Value: "10.1.2.0/24", ValidFrom: future},
		{ID: "narrow", Kind: KindCIDR, Value: "10.1.2.0/28", ValidUntil: past},
		{ID: "host", Kind: KindCIDR, Value: "10.1.2.3/32", ValidFrom: future},
		{ID: "addr", Kind: KindIPv4, Value: "10.1.2.3"},
		{ID: "addr-expired", Kind: KindIPv4, Value: "10.1.2.3", ValidUntil: past},
		{ID: "other", Kind: KindIPv4, Value: "10.1.2.4", ValidUntil: past},
		{ID: "outside", Kind: KindIPv4, Value: "10.2.0.1"},
		{ID: "v6-wide", Kind: KindCIDR, Value: "2001:db8::/32", ValidUntil: past},
		{ID: "v6-narrow", Kind: KindCIDR, Value: "2001:db8:1::/48"},
		{ID: "v6-addr", Kind: KindIPv6, Value: "2001:db8:1::1"},
		{ID: "v6-alone", Kind: KindIPv6, Value: "2001:db8:2::1"},
	}
	set, err := Compile(inds)
	require.NoError(t, err)
	for _, at := range []time.Time{t0.Add(-2 * time.Hour), t0, t0.Add(2 * time.Hour)} {
		for _, v := range []string{"10.1.2.3", "::ffff:10.1.2.3", "[10.1.2.3]", "10.1.2.4", "10.1.2.5", "10.1.3.1", "10.2.0.1",
			"2001:db8:1::1", "[2001:db8:1::1]", "2001:DB8:1::1", "2001:db8:2::1", "2001:db8:1::2"} {
			t.Run(fmt.Sprintf("%s@%s", v, at.Format("15h")), func(t *testing.T) {
				want := refAddrMatches(t, inds, "network.remote_address", v, at)
				assert.Equal(t, want, addrMatchLines(set.Match(netEv(v), at)))
			})
		}
	}
	got := addrMatchLines(set.Match(netEv("10.1.2.3"), t0.Add(2*time.Hour)))
	assert.Equal(t, []string{
		"addr network.remote_address 10.1.2.3 10.1.2.3",
		"host network.remote_address 10.1.2.3 10.1.2.3/32",
		"mid-dup network.remote_address 10.1.2.3 10.1.2.0/24",
		"wide network.remote_address 10.1.2.3 10.1.0.0/16",
	}, got, "the reference itself")
	got = addrMatchLines(set.Match(netEv("10.1.2.5"), t0.Add(-2*time.Hour)))
	assert.Equal(t, []string{
		"narrow network.remote_address 10.1.2.5 10.1.2.0/28",
		"mid network.remote_address 10.1.2.5 10.1.2.0/24",
		"wide network.remote_address 10.1.2.5 10.1.0.0/16",
	}, got, "the reference itself, without an exact entry")
}

// TestAddrEveryContainingPrefix: an address inside a wide prefix of one
// feed and a narrow one of another reports both, narrow first, whether
// the set lists the address itself or not; the wide one's severity is not
// hidden by the narrow one's.
func TestAddrEveryContainingPrefix(t *testing.T) {
	set, err := Compile([]Indicator{
		{ID: "a-wide", Kind: KindCIDR, Value: "10.0.0.0/8", Source: "feed-a", Severity: SeverityCritical},
		{ID: "b-narrow", Kind: KindCIDR, Value: "10.1.0.0/16", Source: "feed-b", Severity: SeverityLow},
		{ID: "c-other", Kind: KindCIDR, Value: "10.2.0.0/16", Source: "feed-c", Severity: SeverityLow},
		{ID: "d-addr", Kind: KindIPv4, Value: "10.1.9.9", Source: "feed-d", Severity: SeverityMedium},
		{ID: "a-v6-wide", Kind: KindCIDR, Value: "2001:db8::/32", Source: "feed-a", Severity: SeverityCritical},
		{ID: "b-v6-narrow", Kind: KindCIDR, Value: "2001:db8:1::/48", Source: "feed-b", Severity: SeverityLow},
		{ID: "all-v4", Kind: KindCIDR, Value: "0.0.0.0/0", Source: "feed-e", Severity: SeverityLow},
	})
	require.NoError(t, err)
	for _, tc := range []struct {
		addr string
		want []string
	}{
		{"10.1.2.3", []string{"b-narrow low", "a-wide critical", "all-v4 low"}},
		{"::ffff:10.1.2.3", []string{"b-narrow low", "a-wide critical", "all-v4 low"}},
		{"10.1.9.9", []string{"d-addr medium", "b-narrow low", "a-wide critical", "all-v4 low"}},
		{"10.3.0.1", []string{"a-wide critical", "all-v4 low"}},
		{"192.0.2.1", []string{"all-v4 low"}},
		{"2001:db8:1::1", []string{"b-v6-narrow low", "a-v6-wide critical"}},
		{"2001:db8:2::1", []string{"a-v6-wide critical"}},
		{"2001:db9::1", nil},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			var got []string
			for _, m := range set.Match(netEv(tc.addr), t0) {
				got = append(got, m.Indicator.ID+" "+m.Indicator.Severity.String())
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

// TestAddrMatchesBruteForce compares address matching, exact and by
// prefix, with refAddrMatches over random sets of nested prefixes and
// addresses with random validity windows.
func TestAddrMatchesBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	times := []time.Time{t0.Add(-3 * time.Hour), t0, t0.Add(3 * time.Hour)}
	window := func(ind *Indicator) {
		switch r.IntN(4) {
		case 0:
			ind.ValidUntil = times[r.IntN(3)].Add(time.Hour)
		case 1:
			ind.ValidFrom = times[r.IntN(3)].Add(-time.Hour)
		}
	}
	v4 := func() netip.Addr { return netip.AddrFrom4([4]byte{10, 1, byte(r.IntN(4)), byte(r.IntN(256))}) }
	v6 := func() netip.Addr {
		return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, byte(r.IntN(2)), 14: byte(r.IntN(2)), 15: byte(r.IntN(256))})
	}
	var exactHits, fallbacks, nested int
	for round := range 40 {
		var inds []Indicator
		var addrs []netip.Addr
		for i := range 60 {
			ind := Indicator{ID: fmt.Sprintf("r%d-%d", round, i)}
			a := v4()
			if r.IntN(4) == 0 {
				a = v6()
			}
			if len(addrs) > 0 && r.IntN(4) == 0 {
				a = addrs[r.IntN(len(addrs))] // duplicates
			}
			switch r.IntN(3) {
			case 0:
				ind.Kind, ind.Value = KindIPv4, a.String()
				if a.Is6() {
					ind.Kind = KindIPv6
				}
				addrs = append(addrs, a)
			default:
				bits := 16 + r.IntN(17)
				if a.Is6() {
					bits = 32 + r.IntN(97)
				}
				ind.Kind, ind.Value = KindCIDR, netip.PrefixFrom(a, bits).Masked().String()
				if a.Is4() && r.IntN(5) == 0 {
					ind.Value = netip.PrefixFrom(netip.AddrFrom16(a.As16()), bits+96).Masked().String() // IPv4-mapped
				}
			}
			window(&ind)
			inds = append(inds, ind)
		}
		set, err := Compile(inds)
		require.NoError(t, err)
		queries := append([]netip.Addr(nil), addrs...)
		for range 30 {
			queries = append(queries, v4(), v6())
		}
		for _, a := range queries {
			forms := []string{a.String()}
			if a.Is4() {
				forms = append(forms, netip.AddrFrom16(a.As16()).String())
			} else {
				forms = append(forms, "["+a.String()+"]", strings.ToUpper(a.StringExpanded()))
			}
			for _, at := range times {
				for _, v := range forms {
					want := refAddrMatches(t, inds, "network.remote_address", v, at)
					got := addrMatchLines(set.Match(netEv(v), at))
					require.Equal(t, want, got, "round %d, %s at %s", round, v, at)
					if len(got) > 0 && !strings.Contains(got[0], "/") && strings.Contains(got[len(got)-1], "/") {
						exactHits++
					}
					prefixes := map[string]bool{}
					for _, l := range got {
						if f := strings.Fields(l); strings.Contains(f[3], "/") {
							prefixes[f[3]] = true
						}
					}
					if len(prefixes) > 1 {
						nested++
					}
				}
				if head, ok := set.cidrs.Lookup(a); ok && !set.active(head, at.UnixNano()) && set.entries[head].next == 0 {
					fallbacks++
				}
			}
		}
	}
	assert.Greater(t, exactHits, 100, "exact hits inside a prefix")
	assert.Greater(t, fallbacks, 100, "longest prefixes out of force")
	assert.Greater(t, nested, 100, "matches of several prefixes")
}

// FuzzParseDottedQuad: the fast IPv4 parser accepts exactly the strings
// netip.ParseAddr parses to an IPv4 address that formats back to the same
// string, with the same address.
func FuzzParseDottedQuad(f *testing.F) {
	for _, s := range []string{"0.0.0.0", "255.255.255.255", "1.2.3.4", "01.2.3.4", "1.2.3.04", "1.2.3.256", "1.2.3", "1.2.3.4.",
		".1.2.3.4", "1..2.3", "1.2.3.-4", "1.2.3.4 ", "::ffff:1.2.3.4", "1.2.3.4%eth0", "1111.2.3.4", "0.0.0.00", "[1.2.3.4]", "1.2.3.+4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		b, ok := parseDottedQuad(v)
		a, err := netip.ParseAddr(v)
		want := err == nil && a.Is4() && a.String() == v
		if ok != want {
			t.Fatalf("parseDottedQuad(%q) ok %v, netip.ParseAddr: %v, %v", v, ok, a, err)
		}
		if ok && netip.AddrFrom4(b) != a {
			t.Fatalf("parseDottedQuad(%q) = %v, netip.ParseAddr: %v", v, netip.AddrFrom4(b), a)
		}
	})
}

// FuzzParseIPv6Groups: what the fast IPv6 parser accepts netip.ParseAddr
// parses to the same address, and it says canonical exactly when netip
// formats the address (unmapped) as v; it accepts every IPv6 address
// netip does that has no zone and no dotted quad.
func FuzzParseIPv6Groups(f *testing.F) {
	for _, s := range []string{"::", "::1", "1::", "2001:db8::1", "2001:DB8::1", "2001:0db8::1", "1:0:0:2:0:0:0:3", "1:0:0:2::3",
		"1::2:0:0:3", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", ":::", "1:::2",
		"1::2::3", ":1::", "1:", "12345::", "::ffff:102:304", "::ffff:1.2.3.4", "fe80::1%eth0", "1:0:2:3:4:5:6:7", "1::2:3:4:5:6:7",
		"0:0:1:0:0:1:0:0", "::1:0:0:1:0:0"} {
		f.Add(s)
	}
	f.Fuzz(checkIPv6Groups)
}

// TestParseIPv6GroupsForms checks parseIPv6Groups as the fuzz test does on
// random addresses with runs of zero groups, in the forms they are written
// in: canonical, expanded, upper case, padded, and with "::" for any run.
func TestParseIPv6GroupsForms(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 5))
	for range 20000 {
		var g [8]uint16
		for j := range g {
			switch r.IntN(3) {
			case 0:
			case 1:
				g[j] = uint16(r.IntN(16))
			default:
				g[j] = uint16(r.Uint32())
			}
		}
		if r.IntN(8) == 0 {
			g = [8]uint16{5: 0xffff, 6: g[6], 7: g[7]}
		}
		var b [16]byte
		for j, x := range g {
			b[2*j], b[2*j+1] = byte(x>>8), byte(x)
		}
		a := netip.AddrFrom16(b)
		forms := []string{a.String(), a.StringExpanded(), strings.ToUpper(a.String())}
		var padded, compressed []string
		for _, x := range g {
			padded = append(padded, fmt.Sprintf("%0*x", 1+r.IntN(4), x))
			compressed = append(compressed, fmt.Sprintf("%x", x))
		}
		forms = append(forms, strings.Join(padded, ":"), strings.Join(compressed, ":"))
		for start := range g {
			for end := start + 1; end <= len(g) && g[end-1] == 0; end++ {
				forms = append(forms, strings.Join(compressed[:start], ":")+"::"+strings.Join(compressed[end:], ":"))
			}
		}
		for _, v := range forms {
			checkIPv6Groups(t, v)
		}
	}
}

func checkIPv6Groups(t *testing.T, v string) {
	t.Helper()
	b, canonical, ok := parseIPv6Groups(v)
	a, err := netip.ParseAddr(v)
	if !ok {
		if err == nil && a.Is6() && a.Zone() == "" && !strings.Contains(v, ".") {
			t.Fatalf("parseIPv6Groups(%q) refused what netip.ParseAddr parses: %v", v, a)
		}
		return
	}
	if err != nil {
		t.Fatalf("parseIPv6Groups(%q) = %v, netip.ParseAddr: %v", v, netip.AddrFrom16(b), err)
	}
	if got := netip.AddrFrom16(b); got != a {
		t.Fatalf("parseIPv6Groups(%q) = %v, netip.ParseAddr: %v", v, got, a)
	}
	if want := a.Unmap().String() == v; canonical != want {
		t.Fatalf("parseIPv6Groups(%q): canonical %v, netip formats %q", v, canonical, a.Unmap().String())
	}
}
