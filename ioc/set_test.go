package ioc

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

const (
	md5Hex    = "44d88612fea8a8f36de82e1278abb02f"
	sha1Hex   = "3395856ce81f2b7382dee72602f798b642f14140"
	sha256Hex = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"
	sha512Hex = "cc805d5fab1fd71a4ab352a9c533e65fb2d5b885518f4e565e68847223b8e6b85cb48f3afad842726d99239c9e36505c64b0dc9a061d9e507d833277ada336ab"
)

func ev(kind EventKind, os string) Event {
	return Event{Schema: EventSchema, ID: "e-1", Time: t0, Host: Host{ID: "h-1", OS: os}, Kind: kind}
}

func fileEv(os string, f FileEvent) *Event {
	e := ev(EventFile, os)
	e.File = &f
	return &e
}

func procEv(os string, p ProcessEvent) *Event {
	e := ev(EventProcess, os)
	e.Process = &p
	return &e
}

func netEv(remote string) *Event {
	e := ev(EventNetwork, "linux")
	e.Network = &NetworkEvent{Protocol: "tcp", Direction: "out", RemoteAddress: remote, RemotePort: 443}
	return &e
}

func dnsEv(q string, answers ...string) *Event {
	e := ev(EventDNS, "linux")
	e.DNS = &DNSEvent{Query: q, Answers: answers}
	return &e
}

func httpEv(u string) *Event {
	e := ev(EventHTTP, "windows")
	e.HTTP = &HTTPEvent{URL: u, Method: "GET"}
	return &e
}

func regEv(key, value string) *Event {
	e := ev(EventRegistry, "windows")
	e.Registry = &RegistryEvent{Key: key, ValueName: value}
	return &e
}

func mutexEv(name string) *Event {
	e := ev(EventMutex, "windows")
	e.Mutex = &MutexEvent{Name: name}
	return &e
}

// TestSetMatch covers every kind: a match (with the value normalized on
// the event side differently from the indicator side) and a near miss.
func TestSetMatch(t *testing.T) {
	tests := []struct {
		name      string
		ind       Indicator
		event     *Event
		wantField string // "" means no match expected
		wantObs   string
	}{
		{"md5 upper-case event", Indicator{Kind: KindMD5, Value: md5Hex}, fileEv("linux", FileEvent{MD5: strings.ToUpper(md5Hex)}), "file.md5", md5Hex},
		{"md5 miss", Indicator{Kind: KindMD5, Value: md5Hex}, fileEv("linux", FileEvent{MD5: "54d88612fea8a8f36de82e1278abb02f"}), "", ""},
		{"sha1 upper-case indicator", Indicator{Kind: KindSHA1, Value: strings.ToUpper(sha1Hex)}, fileEv("linux", FileEvent{SHA1: sha1Hex}), "file.sha1", sha1Hex},
		{"sha1 not in the md5 field", Indicator{Kind: KindSHA1, Value: sha1Hex}, fileEv("linux", FileEvent{MD5: md5Hex}), "", ""},
		{"sha256 file", Indicator{Kind: KindSHA256, Value: sha256Hex}, fileEv("linux", FileEvent{SHA256: sha256Hex}), "file.sha256", sha256Hex},
		{"sha256 process image", Indicator{Kind: KindSHA256, Value: sha256Hex}, procEv("linux", ProcessEvent{Name: "x", SHA256: sha256Hex}), "process.sha256", sha256Hex},
		{"sha256 miss by one digit", Indicator{Kind: KindSHA256, Value: sha256Hex}, fileEv("linux", FileEvent{SHA256: sha256Hex[:63] + "e"}), "", ""},
		{"sha512", Indicator{Kind: KindSHA512, Value: sha512Hex}, fileEv("linux", FileEvent{SHA512: sha512Hex}), "file.sha512", sha512Hex},
		{"ipv4", Indicator{Kind: KindIPv4, Value: "192.0.2.7"}, netEv("192.0.2.7"), "network.remote_address", "192.0.2.7"},
		{"ipv4 from mapped event", Indicator{Kind: KindIPv4, Value: "192.0.2.7"}, netEv("::ffff:192.0.2.7"), "network.remote_address", "192.0.2.7"},
		{"ipv4 mapped indicator", Indicator{Kind: KindIPv4, Value: "::ffff:192.0.2.7"}, netEv("192.0.2.7"), "network.remote_address", "192.0.2.7"},
		{"ipv4 miss", Indicator{Kind: KindIPv4, Value: "192.0.2.7"}, netEv("192.0.2.8"), "", ""},
		{"ipv6 written differently", Indicator{Kind: KindIPv6, Value: "2001:DB8:0:0::1"}, netEv("2001:db8::1"), "network.remote_address", "2001:db8::1"},
		{"ipv6 miss", Indicator{Kind: KindIPv6, Value: "2001:db8::1"}, netEv("2001:db8::2"), "", ""},
		{"cidr v4", Indicator{Kind: KindCIDR, Value: "198.18.0.0/15"}, netEv("198.19.255.255"), "network.remote_address", "198.19.255.255"},
		{"cidr v4 host bits masked", Indicator{Kind: KindCIDR, Value: "198.18.3.4/15"}, netEv("198.18.0.1"), "network.remote_address", "198.18.0.1"},
		{"cidr v4 miss", Indicator{Kind: KindCIDR, Value: "198.18.0.0/15"}, netEv("198.20.0.1"), "", ""},
		{"cidr v6", Indicator{Kind: KindCIDR, Value: "2001:db8:aa::/48"}, netEv("2001:db8:aa:1::5"), "network.remote_address", "2001:db8:aa:1::5"},
		{"cidr mapped v4 prefix", Indicator{Kind: KindCIDR, Value: "::ffff:192.0.2.0/120"}, netEv("192.0.2.200"), "network.remote_address", "192.0.2.200"},
		{"cidr v6 miss", Indicator{Kind: KindCIDR, Value: "2001:db8:aa::/48"}, netEv("2001:db8:ab::1"), "", ""},
		{"cidr in dns answer", Indicator{Kind: KindCIDR, Value: "192.0.2.0/24"}, dnsEv("a.example", "192.0.2.9"), "dns.answers[0]", "192.0.2.9"},
		{"domain itself", Indicator{Kind: KindDomain, Value: "Evil.Example."}, dnsEv("evil.example"), "dns.query", "evil.example"},
		{"domain subdomain", Indicator{Kind: KindDomain, Value: "evil.example"}, dnsEv("A.B.EVIL.example."), "dns.query", "a.b.evil.example"},
		{"domain wildcard form", Indicator{Kind: KindDomain, Value: "*.evil.example"}, dnsEv("x.evil.example"), "dns.query", "x.evil.example"},
		{"domain suffix is not a label boundary", Indicator{Kind: KindDomain, Value: "evil.example"}, dnsEv("notevil.example"), "", ""},
		{"domain in CNAME answer", Indicator{Kind: KindDomain, Value: "evil.example"}, dnsEv("good.example", "cdn.evil.example"), "dns.answers[0]", "cdn.evil.example"},
		{"domain of URL host", Indicator{Kind: KindDomain, Value: "evil.example"}, httpEv("https://www.evil.example:8443/a"), "http.url", "www.evil.example"},
		{"domain idna", Indicator{Kind: KindDomain, Value: "bücher.example"}, dnsEv("xn--bcher-kva.example"), "dns.query", "xn--bcher-kva.example"},
		{"hostname exact", Indicator{Kind: KindHostname, Value: "c2.example"}, dnsEv("C2.example"), "dns.query", "c2.example"},
		{"hostname not subdomain", Indicator{Kind: KindHostname, Value: "c2.example"}, dnsEv("x.c2.example"), "", ""},
		{"url scheme host case and default port", Indicator{Kind: KindURL, Value: "HTTP://Evil.Example:80/Payload?x=1"}, httpEv("http://evil.example/Payload?x=1#frag"), "http.url", "http://evil.example/Payload?x=1"},
		{"url empty path", Indicator{Kind: KindURL, Value: "https://evil.example"}, httpEv("https://EVIL.example:443/"), "http.url", "https://evil.example/"},
		{"url percent-encoding normalized", Indicator{Kind: KindURL, Value: "http://evil.example/%7Euser/a%2fb?q=%41%3d"}, httpEv("http://evil.example/~user/a%2Fb?q=A%3D"), "http.url", "http://evil.example/~user/a%2Fb?q=A%3D"},
		{"url host trailing dot", Indicator{Kind: KindURL, Value: "http://evil.example./x"}, httpEv("HTTP://EVIL.EXAMPLE/x"), "http.url", "http://evil.example/x"},
		{"url malformed path still names its domain", Indicator{Kind: KindDomain, Value: "evil.example"}, httpEv("http://user@WWW.Evil.Example.:8080/a b\tc"), "http.url", "www.evil.example"},
		{"url bad escape still names its address", Indicator{Kind: KindIPv4, Value: "192.0.2.9"}, httpEv("http://192.0.2.9/%zz?x"), "http.url", "192.0.2.9"},
		{"url malformed path, authority ends at the first slash", Indicator{Kind: KindDomain, Value: "evil.example"}, httpEv("http://good.example/a b@evil.example/"), "", ""},
		{"url path case matters", Indicator{Kind: KindURL, Value: "http://evil.example/Payload"}, httpEv("http://evil.example/payload"), "", ""},
		{"url ip host", Indicator{Kind: KindIPv6, Value: "2001:db8::9"}, httpEv("http://[2001:db8::9]:8080/x"), "http.url", "2001:db8::9"},
		{"path unix exact", Indicator{Kind: KindFilePath, Value: "/tmp/x.bin"}, fileEv("linux", FileEvent{Path: "/tmp//./x.bin"}), "file.path", "/tmp/x.bin"},
		{"path unix case matters", Indicator{Kind: KindFilePath, Value: "/tmp/x.bin"}, fileEv("linux", FileEvent{Path: "/tmp/X.bin"}), "", ""},
		{"path windows case and separators", Indicator{Kind: KindFilePath, Value: `C:\Users\Public\evil.exe`}, fileEv("windows", FileEvent{Path: `c:/users/public/EVIL.EXE`}), "file.path", `c:\users\public\evil.exe`},
		{"path windows long prefix", Indicator{Kind: KindFilePath, Value: `C:\Temp\a.dll`}, fileEv("windows", FileEvent{Path: `\\?\C:\Temp\A.dll`}), "file.path", `c:\temp\a.dll`},
		{"path dot-dot resolved", Indicator{Kind: KindFilePath, Value: "/usr/bin/evil"}, fileEv("linux", FileEvent{Path: "/tmp/../usr/bin/evil"}), "file.path", "/usr/bin/evil"},
		{"path glob star", Indicator{Kind: KindFilePath, Value: `C:\Users\*\AppData\Roaming\evil.exe`}, fileEv("windows", FileEvent{Path: `C:\Users\bob\AppData\Roaming\Evil.exe`}), "file.path", `c:\users\bob\appdata\roaming\evil.exe`},
		{"path glob star stays in one element", Indicator{Kind: KindFilePath, Value: `C:\Users\*\evil.exe`}, fileEv("windows", FileEvent{Path: `C:\Users\bob\x\evil.exe`}), "", ""},
		{"path glob double star", Indicator{Kind: KindFilePath, Value: "/home/**/.cache/*.so"}, fileEv("linux", FileEvent{Path: "/home/bob/a/b/.cache/x.so"}), "file.path", "/home/bob/a/b/.cache/x.so"},
		{"path glob double star, no element between", Indicator{Kind: KindFilePath, Value: "/home/**/x.so"}, fileEv("linux", FileEvent{Path: "/home/x.so"}), "file.path", "/home/x.so"},
		{"path glob double star, windows", Indicator{Kind: KindFilePath, Value: `C:\**\Evil.exe`}, fileEv("windows", FileEvent{Path: `c:/EVIL.EXE`}), "file.path", `c:\evil.exe`},
		{"path glob double star needs the separator", Indicator{Kind: KindFilePath, Value: "/home/**/x.so"}, fileEv("linux", FileEvent{Path: "/homex.so"}), "", ""},
		{"path glob question mark", Indicator{Kind: KindFilePath, Value: "/tmp/?.sh"}, fileEv("linux", FileEvent{Path: "/tmp/ab.sh"}), "", ""},
		{"process path", Indicator{Kind: KindFilePath, Value: "/opt/miner/xmrig"}, procEv("linux", ProcessEvent{Path: "/opt/miner/xmrig"}), "process.path", "/opt/miner/xmrig"},
		{"file name", Indicator{Kind: KindFileName, Value: "mimikatz.exe"}, fileEv("linux", FileEvent{Path: "/tmp/mimikatz.exe"}), "file.path", "mimikatz.exe"},
		{"file name windows case", Indicator{Kind: KindFileName, Value: "mimikatz.exe"}, fileEv("windows", FileEvent{Name: "MimiKatz.EXE"}), "file.name", "mimikatz.exe"},
		{"file name linux case matters", Indicator{Kind: KindFileName, Value: "mimikatz.exe"}, fileEv("linux", FileEvent{Name: "MimiKatz.EXE"}), "", ""},
		{"process name", Indicator{Kind: KindProcessName, Value: "xmrig"}, procEv("linux", ProcessEvent{Name: "xmrig"}), "process.name", "xmrig"},
		{"process name windows case", Indicator{Kind: KindProcessName, Value: "PsExec.exe"}, procEv("windows", ProcessEvent{Name: "psexec.exe"}), "process.name", "psexec.exe"},
		{"parent process name", Indicator{Kind: KindProcessName, Value: "winword.exe"}, procEv("windows", ProcessEvent{Name: "cmd.exe", ParentName: "WINWORD.EXE"}), "process.parent_name", "winword.exe"},
		{"process name miss", Indicator{Kind: KindProcessName, Value: "xmrig"}, procEv("linux", ProcessEvent{Name: "xmrig2"}), "", ""},
		{"registry hive alias", Indicator{Kind: KindRegistryKey, Value: `HKLM\Software\Microsoft\Windows\CurrentVersion\Run`}, regEv(`HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Run\`, ""), "registry.key", `hkey_local_machine\software\microsoft\windows\currentversion\run`},
		{"registry kernel path", Indicator{Kind: KindRegistryKey, Value: `HKLM\System\Evil`}, regEv(`\REGISTRY\MACHINE\SYSTEM\Evil`, ""), "registry.key", `hkey_local_machine\system\evil`},
		{"registry key with value", Indicator{Kind: KindRegistryKey, Value: `HKCU\Software\Run\updater`}, regEv(`HKEY_CURRENT_USER\Software\Run`, "Updater"), "registry.value_name", `hkey_current_user\software\run\updater`},
		{"registry per-user hive is HKCU", Indicator{Kind: KindRegistryKey, Value: `HKCU\Software\Microsoft\Windows\CurrentVersion\Run`}, regEv(`\REGISTRY\USER\S-1-5-21-1-2-3-1001\Software\Microsoft\Windows\CurrentVersion\Run`, ""), "registry.key", `hkey_users\s-1-5-21-1-2-3-1001\software\microsoft\windows\currentversion\run`},
		{"registry per-user hive with value", Indicator{Kind: KindRegistryKey, Value: `HKCU\Software\Run\updater`}, regEv(`HKU\S-1-5-21-9\Software\Run`, "Updater"), "registry.value_name", `hkey_users\s-1-5-21-9\software\run\updater`},
		{"registry default user is not HKCU", Indicator{Kind: KindRegistryKey, Value: `HKCU\Software\X`}, regEv(`HKU\.DEFAULT\Software\X`, ""), "", ""},
		{"registry HKCR through HKLM classes", Indicator{Kind: KindRegistryKey, Value: `HKCR\exefile\shell\open\command`}, regEv(`HKEY_LOCAL_MACHINE\SOFTWARE\Classes\exefile\shell\open\command`, ""), "registry.key", `hkey_local_machine\software\classes\exefile\shell\open\command`},
		{"registry user classes hive", Indicator{Kind: KindRegistryKey, Value: `HKCU\Software\Classes\ms-settings\shell\open\command`}, regEv(`\REGISTRY\USER\S-1-5-21-9_Classes\ms-settings\Shell\Open\command`, ""), "registry.key", `hkey_users\s-1-5-21-9_classes\ms-settings\shell\open\command`},
		{"registry HKCR through user classes", Indicator{Kind: KindRegistryKey, Value: `HKCR\ms-settings`}, regEv(`HKU\S-1-5-21-9\Software\Classes\ms-settings`, ""), "registry.key", `hkey_users\s-1-5-21-9\software\classes\ms-settings`},
		{"registry classes prefix needs a boundary", Indicator{Kind: KindRegistryKey, Value: `HKCR\x`}, regEv(`HKLM\Software\ClassesX\x`, ""), "", ""},
		{"registry other key", Indicator{Kind: KindRegistryKey, Value: `HKLM\Software\Evil`}, regEv(`HKLM\Software\Evil2`, ""), "", ""},
		{"mutex", Indicator{Kind: KindMutex, Value: "Global\\DCPERSFWBP"}, mutexEv(`\BaseNamedObjects\DCPERSFWBP`), "mutex.name", "DCPERSFWBP"},
		{"mutex case-sensitive", Indicator{Kind: KindMutex, Value: "DCPERSFWBP"}, mutexEv("dcpersfwbp"), "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.ind.ID = "ind-1"
			tc.ind.Source = "feed-a"
			set, err := Compile([]Indicator{tc.ind})
			require.NoError(t, err)
			got := set.Match(tc.event, t0)
			if tc.wantField == "" {
				assert.Empty(t, got)
				return
			}
			require.Len(t, got, 1, "matches: %+v", got)
			assert.Equal(t, tc.wantField, got[0].Field)
			assert.Equal(t, tc.wantObs, got[0].Observable)
			assert.Equal(t, "ind-1", got[0].Indicator.ID)
			assert.Equal(t, tc.ind.Kind, got[0].Indicator.Kind)
			want, err := Normalize(tc.ind.Kind, tc.ind.Value)
			require.NoError(t, err)
			assert.Equal(t, want, got[0].Indicator.Value)
		})
	}
}

func TestSetExpiry(t *testing.T) {
	inds := []Indicator{
		{ID: "current", Kind: KindIPv4, Value: "192.0.2.1", ValidFrom: t0.Add(-time.Hour), ValidUntil: t0.Add(time.Hour)},
		{ID: "expired", Kind: KindIPv4, Value: "192.0.2.1", ValidUntil: t0},
		{ID: "future", Kind: KindIPv4, Value: "192.0.2.1", ValidFrom: t0.Add(time.Second)},
	}
	set, err := Compile(inds)
	require.NoError(t, err)
	ids := func(at time.Time) []string {
		var out []string
		for _, m := range set.Match(netEv("192.0.2.1"), at) {
			out = append(out, m.Indicator.ID)
		}
		return out
	}
	assert.ElementsMatch(t, []string{"current"}, ids(t0))
	assert.ElementsMatch(t, []string{"current", "expired"}, ids(t0.Add(-time.Minute)))
	assert.ElementsMatch(t, []string{"current", "future"}, ids(t0.Add(time.Minute)))
	assert.ElementsMatch(t, []string{"future"}, ids(t0.Add(2*time.Hour)))

	// The Matcher uses its clock.
	now := t0.Add(2 * time.Hour)
	m := NewMatcher(MatcherConfig{Set: set, Now: func() time.Time { return now }})
	got := m.Match(netEv("192.0.2.1"))
	require.Len(t, got, 1)
	assert.Equal(t, "future", got[0].Indicator.ID)
}

func TestSetDuplicatesAndMetadata(t *testing.T) {
	inds := []Indicator{
		{ID: "a", Kind: KindSHA256, Value: sha256Hex, Source: "feed-a", Severity: SeverityHigh, Score: 80, Tags: []string{"ransomware", " ransomware ", ""}},
		{ID: "b", Kind: KindSHA256, Value: strings.ToUpper(sha256Hex), Source: "feed-b", Severity: SeverityLow, Confidence: 30, Description: "seen in phishing"},
		{Kind: KindCIDR, Value: "192.0.2.0/24", Source: "feed-a"},
		{Kind: KindCIDR, Value: "192.0.2.0/24", Source: "feed-b"},
		{Kind: KindCIDR, Value: "192.0.2.128/25", Source: "feed-c"},
		{Kind: KindIPv4, Value: "192.0.2.200", Source: "feed-d"},
	}
	set, err := Compile(inds)
	require.NoError(t, err)
	assert.Equal(t, len(inds), set.Len())

	got := set.Match(fileEv("linux", FileEvent{SHA256: sha256Hex}), t0)
	require.Len(t, got, 2)
	byID := map[string]Indicator{}
	for _, m := range got {
		byID[m.Indicator.ID] = m.Indicator
	}
	assert.Equal(t, Indicator{ID: "a", Kind: KindSHA256, Value: sha256Hex, Source: "feed-a", Severity: SeverityHigh, Score: 80, Tags: []string{"ransomware"}}, byID["a"])
	assert.Equal(t, Indicator{ID: "b", Kind: KindSHA256, Value: sha256Hex, Source: "feed-b", Severity: SeverityLow, Confidence: 30, Description: "seen in phishing"}, byID["b"])

	// The exact address matches, then every containing prefix, longest
	// first (the indicators of one value newest first).
	var sources []string
	for _, m := range set.Match(netEv("192.0.2.200"), t0) {
		sources = append(sources, m.Indicator.Source)
	}
	assert.Equal(t, []string{"feed-d", "feed-c", "feed-b", "feed-a"}, sources)
	sources = nil
	for _, m := range set.Match(netEv("192.0.2.1"), t0) {
		sources = append(sources, m.Indicator.Source)
		assert.Equal(t, "cidr:192.0.2.0/24", m.Indicator.ID, "derived id")
	}
	assert.Equal(t, []string{"feed-b", "feed-a"}, sources)

	// All gives back every indicator, normalized.
	var all []Indicator
	for ind := range set.All() {
		all = append(all, ind)
	}
	require.Len(t, all, len(inds))
	assert.Equal(t, sha256Hex, all[1].Value)
}

func TestBuilderRejectsBadInput(t *testing.T) {
	tests := []struct {
		name   string
		ind    Indicator
		reason string
		err    error
	}{
		{"short sha256", Indicator{Kind: KindSHA256, Value: sha256Hex[:31]}, "has 31 characters, a sha256 digest has 64 hex digits", ErrInvalidValue},
		{"non-hex md5", Indicator{Kind: KindMD5, Value: "z4d88612fea8a8f36de82e1278abb02f"}, `non-hex character 'z' at position 1`, ErrInvalidValue},
		{"ipv4 octet", Indicator{Kind: KindIPv4, Value: "10.0.0.300"}, "is not an IP address", ErrInvalidValue},
		{"ipv4 kind with v6", Indicator{Kind: KindIPv4, Value: "2001:db8::1"}, "is an IPv6 address, not IPv4", ErrInvalidValue},
		{"ipv6 kind with v4", Indicator{Kind: KindIPv6, Value: "192.0.2.1"}, "is an IPv4 address, not IPv6", ErrInvalidValue},
		{"ipv6 zone", Indicator{Kind: KindIPv6, Value: "fe80::1%eth0"}, "zone", ErrInvalidValue},
		{"cidr bits", Indicator{Kind: KindCIDR, Value: "192.0.2.0/33"}, "is not a CIDR prefix", ErrInvalidValue},
		{"empty domain", Indicator{Kind: KindDomain, Value: "  "}, "is empty", ErrInvalidValue},
		{"domain only a dot", Indicator{Kind: KindDomain, Value: "."}, "is an empty domain name", ErrInvalidValue},
		{"domain empty label", Indicator{Kind: KindDomain, Value: "a..example"}, "has an empty label", ErrInvalidValue},
		{"domain bad char", Indicator{Kind: KindHostname, Value: "ev il.example"}, `has the character ' '`, ErrInvalidValue},
		{"domain is an address", Indicator{Kind: KindDomain, Value: "192.0.2.1"}, "is an IP address", ErrInvalidValue},
		{"domain label too long", Indicator{Kind: KindDomain, Value: strings.Repeat("a", 64) + ".example"}, "label of 64 characters", ErrInvalidValue},
		{"url without scheme", Indicator{Kind: KindURL, Value: "evil.example/x"}, "has no scheme", ErrInvalidValue},
		{"url without host", Indicator{Kind: KindURL, Value: "http:///x"}, "has no host", ErrInvalidValue},
		{"url with space", Indicator{Kind: KindURL, Value: "http://evil.example/a b"}, "space character at position 22", ErrInvalidValue},
		{"file name with separator", Indicator{Kind: KindFileName, Value: "a/b.exe"}, "path separator", ErrInvalidValue},
		{"registry without hive", Indicator{Kind: KindRegistryKey, Value: `Software\Evil`}, "does not start with a registry hive", ErrInvalidValue},
		{"mutex only prefix", Indicator{Kind: KindMutex, Value: `Global\`}, "only an object-manager prefix", ErrInvalidValue},
		{"nul byte", Indicator{Kind: KindMutex, Value: "a\x00b"}, "NUL", ErrInvalidValue},
		{"bad kind", Indicator{Kind: Kind(200), Value: "x"}, "the kind is not one of md5", ErrInvalidKind},
		{"score", Indicator{Kind: KindMutex, Value: "m", Score: 101}, "score 101 is outside 0-100", ErrInvalidIndicator},
		{"window", Indicator{Kind: KindMutex, Value: "m", ValidFrom: t0, ValidUntil: t0}, "is not after valid_from", ErrInvalidIndicator},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.ind.ID = "bad-1"
			b := NewBuilder(0)
			require.NoError(t, b.Add(Indicator{Kind: KindMD5, Value: md5Hex}))
			err := b.Add(tc.ind)
			require.Error(t, err)
			var ie *IndicatorError
			require.ErrorAs(t, err, &ie)
			assert.Equal(t, 1, ie.Index)
			assert.Equal(t, "bad-1", ie.ID)
			assert.Contains(t, ie.Reason, tc.reason)
			assert.Contains(t, err.Error(), `"bad-1"`)
			assert.True(t, errors.Is(err, tc.err), "errors.Is %v", tc.err)
			// The set is never built half.
			require.NoError(t, b.Add(Indicator{Kind: KindSHA1, Value: sha1Hex}))
			set, err := b.Build()
			assert.Nil(t, set)
			assert.ErrorAs(t, err, &ie)

			set, err = Compile([]Indicator{{Kind: KindMD5, Value: md5Hex}, tc.ind})
			assert.Nil(t, set)
			assert.Error(t, err)
		})
	}
}

func TestNormalizeIdempotent(t *testing.T) {
	cases := map[Kind][]string{
		KindMD5:         {strings.ToUpper(md5Hex)},
		KindIPv4:        {"::ffff:192.0.2.1", " 192.0.2.1 "},
		KindIPv6:        {"2001:DB8::0:1", "[2001:db8::1]"},
		KindCIDR:        {"192.0.2.77/24", "::ffff:198.18.0.0/111", "2001:db8::1"},
		KindDomain:      {"*.Evil.Example.", "bücher.example"},
		KindHostname:    {"A.Example"},
		KindURL:         {"HTTPS://user@Evil.Example:443", "http://[2001:DB8::1]:80/a?b", "http://evil.example/%7Euser?", "http://a.example/%2e%2E/%2f?%7e=%zz"},
		KindFilePath:    {`\\?\UNC\server\share\X.exe`, `\\Server\Share\a\..\b`, "C:", "/a/b/../c/", "relative/x", `C:\**\*.EXE`},
		KindRegistryKey: {`\REGISTRY\USER\S-1-5-21\Software`, `hkcu\\a\\b\`},
		KindMutex:       {`\Sessions\1\BaseNamedObjects\Foo`, `Session\2\Bar`},
	}
	for k, vals := range cases {
		for _, v := range vals {
			n, err := Normalize(k, v)
			require.NoError(t, err, "%s %q", k, v)
			n2, err := Normalize(k, n)
			require.NoError(t, err, "%s %q -> %q", k, v, n)
			assert.Equal(t, n, n2, "%s %q", k, v)
		}
	}
	n, _ := Normalize(KindFilePath, `\\?\UNC\server\share\X.exe`)
	assert.Equal(t, `\\server\share\x.exe`, n)
	n, _ = Normalize(KindRegistryKey, `\REGISTRY\USER\S-1-5-21\Software`)
	assert.Equal(t, `hkey_users\s-1-5-21\software`, n)
	n, _ = Normalize(KindURL, "HTTPS://user@Evil.Example:443")
	assert.Equal(t, "https://user@evil.example/", n)
}

func TestKindAndSeverityText(t *testing.T) {
	for _, k := range Kinds() {
		b, err := k.MarshalText()
		require.NoError(t, err)
		var back Kind
		require.NoError(t, back.UnmarshalText(b))
		assert.Equal(t, k, back)
	}
	k, err := ParseKind("FILE_PATH")
	require.NoError(t, err)
	assert.Equal(t, KindFilePath, k)
	_, err = ParseKind("sha3")
	assert.ErrorIs(t, err, ErrInvalidKind)
	_, err = Kind(0).MarshalText()
	assert.ErrorIs(t, err, ErrInvalidKind)

	assert.True(t, SeverityCritical > SeverityHigh && SeverityHigh > SeverityMedium && SeverityMedium > SeverityLow)
	s, err := ParseSeverity("High")
	require.NoError(t, err)
	assert.Equal(t, SeverityHigh, s)
	_, err = ParseSeverity("severe")
	assert.ErrorIs(t, err, ErrInvalidSeverity)
}

func TestMatcherSwap(t *testing.T) {
	a, err := Compile([]Indicator{{ID: "a", Kind: KindMutex, Value: "m1"}})
	require.NoError(t, err)
	b, err := Compile([]Indicator{{ID: "b", Kind: KindMutex, Value: "m2"}})
	require.NoError(t, err)
	m := NewMatcher(MatcherConfig{Set: a})
	assert.Len(t, m.Match(mutexEv("m1")), 1)
	assert.Same(t, a, m.Swap(b))
	assert.Empty(t, m.Match(mutexEv("m1")))
	assert.Len(t, m.Match(mutexEv("m2")), 1)
	m.Swap(nil)
	assert.Empty(t, m.Match(mutexEv("m2")))
	assert.Equal(t, 0, m.Set().Len())
}

// TestMatcherConcurrentSwap runs readers against a swapping writer; under
// -race it proves readers need no lock, and each read sees a whole set.
func TestMatcherConcurrentSwap(t *testing.T) {
	sets := make([]*Set, 4)
	for i := range sets {
		var inds []Indicator
		for j := 0; j < 50; j++ {
			inds = append(inds, Indicator{ID: "x", Kind: KindMutex, Value: "m" + string(rune('a'+j%26)) + strings.Repeat("z", i)})
		}
		inds = append(inds, Indicator{ID: "probe", Kind: KindMutex, Value: "probe"})
		s, err := Compile(inds)
		require.NoError(t, err)
		sets[i] = s
	}
	m := NewMatcher(MatcherConfig{Set: sets[0]})
	done := make(chan struct{})
	errs := make(chan string, 4)
	for r := 0; r < 4; r++ {
		go func() {
			for {
				select {
				case <-done:
					errs <- ""
					return
				default:
				}
				if got := m.Match(mutexEv("probe")); len(got) != 1 {
					errs <- "a reader saw a set without the probe"
					<-done
					errs <- ""
					return
				}
			}
		}()
	}
	for i := 0; i < 2000; i++ {
		m.Swap(sets[i%len(sets)])
	}
	close(done)
	for r := 0; r < 4; r++ {
		if e := <-errs; e != "" {
			t.Fatal(e)
		}
	}
}

func TestNoAllocOnMiss(t *testing.T) {
	set, err := Compile([]Indicator{{Kind: KindSHA256, Value: sha256Hex}, {Kind: KindIPv4, Value: "192.0.2.1"}, {Kind: KindDomain, Value: "evil.example"}})
	require.NoError(t, err)
	fe := fileEv("linux", FileEvent{SHA256: strings.Repeat("ab", 32)})
	ne := netEv("192.0.2.2")
	de := dnsEv("a.good.example")
	allocs := testing.AllocsPerRun(100, func() {
		set.AppendMatches(nil, fe, t0)
		set.AppendMatches(nil, ne, t0)
		set.AppendMatches(nil, de, t0)
	})
	assert.Zero(t, allocs)
}
