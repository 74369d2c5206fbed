package ioc

import (
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"sync"
	"testing"
)

// benchIndicators makes n indicators of every kind, deterministically:
// 36% sha256, 10% md5, 10% sha1, 2% sha512, 15% IPv4, 5% IPv6, 5% CIDR,
// 8% domains, 2% host names, 2% URLs, and 1% each of file paths (a tenth
// of them globs), file names, process names, registry keys and mutexes; a
// few sources share metadata, as real feeds do.
func benchIndicators(n int) []Indicator {
	r := rand.New(rand.NewPCG(1, 2))
	inds := make([]Indicator, n)
	sources := []string{"feed-a", "feed-b", "feed-c", "feed-d"}
	digest := func(size int) string {
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return hex.EncodeToString(b)
	}
	for i := range inds {
		ind := Indicator{ID: fmt.Sprintf("ind-%07d", i), Source: sources[i%len(sources)], Severity: Severity(1 + i%4), Score: 50 + i%50}
		switch p := r.IntN(100); {
		case p < 36:
			ind.Kind, ind.Value = KindSHA256, digest(32)
		case p < 38:
			ind.Kind, ind.Value = KindSHA512, digest(64)
		case p < 40:
			ind.Kind, ind.Value = KindHostname, fmt.Sprintf("h%x.example%d.org", r.Uint64(), r.IntN(100))
		case p < 50:
			ind.Kind, ind.Value = KindMD5, digest(16)
		case p < 60:
			ind.Kind, ind.Value = KindSHA1, digest(20)
		case p < 75:
			ind.Kind, ind.Value = KindIPv4, netip.AddrFrom4([4]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())}).String()
		case p < 80:
			var a [16]byte
			for j := range a {
				a[j] = byte(r.Uint32())
			}
			a[0], a[1] = 0x20, 0x01
			ind.Kind, ind.Value = KindIPv6, netip.AddrFrom16(a).String()
		case p < 85:
			a := netip.AddrFrom4([4]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), 0})
			ind.Kind, ind.Value = KindCIDR, netip.PrefixFrom(a, 16+r.IntN(9)).Masked().String()
		case p < 93:
			ind.Kind, ind.Value = KindDomain, fmt.Sprintf("d%x.example%d.com", r.Uint64(), r.IntN(100))
		case p < 95:
			ind.Kind, ind.Value = KindURL, fmt.Sprintf("http://h%x.example.net/path/%x?q=%d", r.Uint32(), r.Uint64(), r.IntN(1000))
		case p < 96:
			if r.IntN(10) == 0 {
				ind.Kind, ind.Value = KindFilePath, fmt.Sprintf(`C:\Users\*\AppData\Roaming\%x\*.exe`, r.Uint32())
			} else {
				ind.Kind, ind.Value = KindFilePath, fmt.Sprintf(`C:\Users\Public\%x\%x.exe`, r.Uint32(), r.Uint32())
			}
		case p < 97:
			ind.Kind, ind.Value = KindFileName, fmt.Sprintf("%x.dll", r.Uint64())
		case p < 98:
			ind.Kind, ind.Value = KindProcessName, fmt.Sprintf("%x.exe", r.Uint32())
		case p < 99:
			ind.Kind, ind.Value = KindRegistryKey, fmt.Sprintf(`HKLM\Software\Microsoft\Windows\CurrentVersion\Run\%x`, r.Uint32())
		default:
			ind.Kind, ind.Value = KindMutex, fmt.Sprintf(`Global\%x`, r.Uint64())
		}
		inds[i] = ind
	}
	return inds
}

var (
	bigOnce sync.Once
	bigInds []Indicator
	bigSet  *Set
)

func bigFixture(b *testing.B) ([]Indicator, *Set) {
	bigOnce.Do(func() {
		bigInds = benchIndicators(1_000_000)
		s, err := Compile(bigInds)
		if err != nil {
			panic(err)
		}
		bigSet = s
	})
	return bigInds, bigSet
}

// BenchmarkBuild1M builds a Set of 1,000,000 mixed indicators and reports
// the heap it holds per indicator.
func BenchmarkBuild1M(b *testing.B) {
	inds := benchIndicators(1_000_000)
	var ms runtime.MemStats
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		before := ms.HeapAlloc
		b.StartTimer()
		s, err := Compile(inds)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapAlloc-before)/float64(s.Len()), "bytes/indicator")
		runtime.KeepAlive(s)
		b.StartTimer()
	}
}

// BenchmarkMatch1M matches single-observable events against the 1M set,
// each kind hit and miss, and reports lookups per second.
func BenchmarkMatch1M(b *testing.B) {
	inds, set := bigFixture(b)
	first := func(k Kind) string {
		for _, ind := range inds {
			if ind.Kind == k {
				return ind.Value
			}
		}
		b.Fatalf("no %s", k)
		return ""
	}
	// Many distinct hits of one kind, so that lookups miss the cache as
	// they would in production.
	values := func(k Kind, n int) []string {
		var out []string
		for _, ind := range inds {
			if ind.Kind == k {
				out = append(out, ind.Value)
				if len(out) == n {
					break
				}
			}
		}
		return out
	}
	// As values, but spread over the whole set rather than the first
	// added, so that their entries and keys are not next to each other
	// in memory either.
	spread := func(k Kind, n int) []string {
		var all []string
		for _, ind := range inds {
			if ind.Kind == k {
				all = append(all, ind.Value)
			}
		}
		out := make([]string, n)
		for i := range out {
			out[i] = all[i*len(all)/n]
		}
		return out
	}
	cidrHost := func() string {
		p := netip.MustParsePrefix(first(KindCIDR))
		return p.Addr().Next().String()
	}()
	cases := []struct {
		name   string
		events []*Event
		hit    bool
	}{
		{"sha256/hit", eventsOf(values(KindSHA256, 4096), func(v string) *Event { return fileEv("linux", FileEvent{SHA256: v}) }), true},
		{"sha256/miss", eventsOf(randomHex(4096, 32), func(v string) *Event { return fileEv("linux", FileEvent{SHA256: v}) }), false},
		{"md5/hit", eventsOf(values(KindMD5, 4096), func(v string) *Event { return fileEv("linux", FileEvent{MD5: v}) }), true},
		{"sha1/miss", eventsOf(randomHex(4096, 20), func(v string) *Event { return fileEv("linux", FileEvent{SHA1: v}) }), false},
		{"ipv4/hit", eventsOf(values(KindIPv4, 4096), netEv), true},
		{"sha256/hit-spread", eventsOf(spread(KindSHA256, 4096), func(v string) *Event { return fileEv("linux", FileEvent{SHA256: v}) }), true},
		{"ipv4/hit-spread", eventsOf(spread(KindIPv4, 4096), netEv), true},
		{"ipv4/miss", eventsOf([]string{"192.0.2.1", "198.18.7.7", "203.0.113.9"}, netEv), false},
		{"ipv6/hit", eventsOf(values(KindIPv6, 4096), netEv), true},
		{"cidr/hit", eventsOf([]string{cidrHost}, netEv), true},
		{"domain/hit-subdomain", eventsOf(prefixAll("a.b.", values(KindDomain, 4096)), func(v string) *Event { return dnsEv(v) }), true},
		{"domain/miss", eventsOf([]string{"www.good.example.org", "mail.example.com"}, func(v string) *Event { return dnsEv(v) }), false},
		{"url/hit", eventsOf(values(KindURL, 4096), httpEv), true},
		{"sha512/hit", eventsOf(values(KindSHA512, 4096), func(v string) *Event { return fileEv("linux", FileEvent{SHA512: v}) }), true},
		{"hostname/hit", eventsOf(values(KindHostname, 4096), func(v string) *Event { return dnsEv(v) }), true},
		{"file-path/hit", eventsOf(exactPaths(values(KindFilePath, 4096)), func(v string) *Event { return fileEv("windows", FileEvent{Path: v}) }), true},
		{"file-path/miss", eventsOf([]string{`C:\Windows\System32\kernel32.dll`, `C:\Users\bob\AppData\Roaming\x\a.dll`}, func(v string) *Event { return fileEv("windows", FileEvent{Path: v}) }), false},
		{"file-name/hit", eventsOf(values(KindFileName, 4096), func(v string) *Event { return fileEv("windows", FileEvent{Name: v}) }), true},
		{"process-name/hit", eventsOf(values(KindProcessName, 4096), func(v string) *Event { return procEv("windows", ProcessEvent{Name: v}) }), true},
		{"registry-key/hit", eventsOf(values(KindRegistryKey, 4096), func(v string) *Event { return regEv(v, "") }), true},
		{"mutex/hit", eventsOf(values(KindMutex, 4096), mutexEv), true},
		{"mutex/miss", eventsOf([]string{`Global\nope`, "other"}, mutexEv), false},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			var dst []Match
			n := 0
			for b.Loop() {
				dst = set.AppendMatches(dst[:0], tc.events[n%len(tc.events)], t0)
				if (len(dst) > 0) != tc.hit {
					b.Fatalf("%s: %d matches", tc.name, len(dst))
				}
				n++
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
		})
	}
}

// exactPaths drops the globs.
func exactPaths(vals []string) []string {
	var out []string
	for _, v := range vals {
		if !isGlob(v) {
			out = append(out, v)
		}
	}
	return out
}

func eventsOf(vals []string, mk func(string) *Event) []*Event {
	out := make([]*Event, len(vals))
	for i, v := range vals {
		out[i] = mk(v)
	}
	return out
}

func randomHex(n, size int) []string {
	r := rand.New(rand.NewPCG(9, 9))
	out := make([]string, n)
	b := make([]byte, size)
	for i := range out {
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		out[i] = hex.EncodeToString(b)
	}
	return out
}

func prefixAll(p string, vals []string) []string {
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = p + v
	}
	return out
}
