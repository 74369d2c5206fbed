package csvfeed

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/cordonsec/cordon/ioc"
	"github.com/cordonsec/cordon/ioc/feed/feedtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = feedtest.T0

func TestSampleFeed(t *testing.T) {
	f, err := os.Open("testdata/feed.csv")
	require.NoError(t, err)
	defer f.Close()
	inds, err := Parse(f, Config{Name: "feed.csv"})
	require.NoError(t, err)
	require.Len(t, inds, 11)
	assert.Equal(t, ioc.KindIPv4, inds[1].Kind)
	assert.Equal(t, "partner-feed", inds[1].Source)
	assert.Equal(t, "feed.csv", inds[0].Source)
	assert.Equal(t, ioc.KindIPv6, inds[2].Kind)
	assert.Equal(t, ioc.KindCIDR, inds[3].Kind)
	assert.Equal(t, []string{"phishing", "c2"}, inds[4].Tags)
	assert.Equal(t, ioc.SeverityCritical, inds[0].Severity)
	assert.Equal(t, 95, inds[0].Score)
	set, err := ioc.Compile(inds)
	require.NoError(t, err)

	type tc struct {
		name  string
		ev    func() ioc.Event
		field string
	}
	file := func(path, sha string) func() ioc.Event {
		return func() ioc.Event {
			e := feedtest.Event(ioc.EventFile, "windows")
			e.File = &ioc.FileEvent{Path: path, SHA256: sha}
			return e
		}
	}
	conn := func(addr string) func() ioc.Event {
		return func() ioc.Event {
			e := feedtest.Event(ioc.EventNetwork, "linux")
			e.Network = &ioc.NetworkEvent{Protocol: "tcp", RemoteAddress: addr, RemotePort: 443}
			return e
		}
	}
	dns := func(q string) func() ioc.Event {
		return func() ioc.Event {
			e := feedtest.Event(ioc.EventDNS, "linux")
			e.DNS = &ioc.DNSEvent{Query: q}
			return e
		}
	}
	mutex := func(n string) func() ioc.Event {
		return func() ioc.Event {
			e := feedtest.Event(ioc.EventMutex, "windows")
			e.Mutex = &ioc.MutexEvent{Name: n}
			return e
		}
	}
	reg := func(k, v string) func() ioc.Event {
		return func() ioc.Event {
			e := feedtest.Event(ioc.EventRegistry, "windows")
			e.Registry = &ioc.RegistryEvent{Key: k, ValueName: v}
			return e
		}
	}
	hits := []tc{
		{"sha256", file(`D:\drop\a.bin`, "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"), "file.sha256"},
		{"ipv4", conn("198.51.100.23"), "network.remote_address"},
		{"ipv6", conn("2001:db8:bad:0::1"), "network.remote_address"},
		{"cidr", conn("203.0.113.200"), "network.remote_address"},
		{"subdomain", dns("cdn.EVIL-updates.example"), "dns.query"},
		{"filename", file(`C:\Users\amy\Downloads\Invoice_2026.pdf.exe`, ""), "file.path"},
		{"glob", file(`c:/users/amy/appdata/roaming/svchost32.exe`, ""), "file.path"},
		{"registry", reg(`HKEY_CURRENT_USER\Software\Microsoft\Windows\CurrentVersion\Run`, "UpdSvc"), "registry.value_name"},
		{"mutex", mutex("cordon-test-mutex-31337"), "mutex.name"},
	}
	misses := []tc{
		{"sha256", file(`D:\drop\a.bin`, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a09"), ""},
		{"ipv4", conn("198.51.100.24"), ""},
		{"cidr", conn("203.0.114.1"), ""},
		{"lookalike domain", dns("evil-updates.example.net"), ""},
		{"filename", file(`C:\Users\amy\Downloads\invoice_2026.pdf`, ""), ""},
		{"glob, other folder", file(`C:\Users\amy\AppData\Local\svchost32.exe`, ""), ""},
		{"registry, other value", reg(`HKCU\Software\Microsoft\Windows\CurrentVersion\Run`, "OneDrive"), ""},
		{"mutex", mutex("cordon-test-mutex-31338"), ""},
	}
	for _, c := range hits {
		t.Run("match/"+c.name, func(t *testing.T) {
			ev := c.ev()
			m := set.Match(&ev, t0)
			require.Len(t, m, 1)
			assert.Equal(t, c.field, m[0].Field)
		})
	}
	for _, c := range misses {
		t.Run("miss/"+c.name, func(t *testing.T) {
			ev := c.ev()
			assert.Empty(t, set.Match(&ev, t0))
		})
	}
}

// TestParseTypeAliases: the aliases give the kinds their documented
// meaning; an FQDN is one host, not its subdomains.
func TestParseTypeAliases(t *testing.T) {
	for _, c := range []struct {
		typ, value string
		want       ioc.Kind
	}{
		{"fqdn", "mail.example", ioc.KindHostname},
		{"host", "mail.example", ioc.KindHostname},
		{"domain-name", "example", ioc.KindDomain},
		{"ip-dst", "2001:db8::1", ioc.KindIPv6},
		{"ip", "198.51.100.0/24", ioc.KindCIDR},
		{"SHA_256", "x", ioc.KindSHA256},
		{"mutant", "x", ioc.KindMutex},
	} {
		k, err := ParseType(c.typ, c.value)
		require.NoError(t, err, c.typ)
		assert.Equal(t, c.want, k, c.typ)
	}
	_, err := ParseType("sigma", "x")
	assert.ErrorContains(t, err, `"sigma" is not an indicator kind`)
}

func TestErrors(t *testing.T) {
	cases := []struct {
		name, in   string
		line, col  int
		wantReason string
	}{
		{"empty", "", 0, 0, "empty feed"},
		{"no value column", "type,indicator\nmd5,x\n", 1, 0, `no "value" column`},
		{"unknown type", "type,value\nmd5,44d88612fea8a8f36de82e1278abb02f\nbanana,x\n", 3, 1, `type "banana"`},
		{"bad digest", "# c\ntype,value\nsha1,abc\n", 3, 6, "sha1 \"abc\""},
		{"bad severity", "type,value,severity\ndomain,evil.example,extreme\n", 2, 21, "severity"},
		{"bad score", "type,value,score\ndomain,evil.example,101\n", 2, 21, "score"},
		{"bad date", "type,value,valid_until\ndomain,evil.example,yesterday\n", 2, 21, "valid_until"},
		{"field count", "type,value\ndomain,evil.example,extra\n", 2, 1, "wrong number of fields"},
		{"bare quote", "type,value\ndomain,ev\"il\n", 2, 10, "bare"},
		{"reversed window", "type,value,valid_from,valid_until\ndomain,evil.example,2026-02-01T00:00:00Z,2026-01-01T00:00:00Z\n", 2, 0, "valid_until"},
		{"duplicate column", "type,value,type\n", 1, 12, "twice"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			inds, err := Parse(strings.NewReader(c.in), Config{Name: "f.csv"})
			require.Error(t, err)
			assert.Nil(t, inds)
			var e *Error
			require.True(t, errors.As(err, &e), "%T", err)
			assert.ErrorIs(t, err, ErrSyntax)
			assert.Equal(t, "f.csv", e.File)
			assert.Equal(t, c.line, e.Line, err.Error())
			assert.Equal(t, c.col, e.Column, err.Error())
			assert.Contains(t, e.Reason, c.wantReason)
		})
	}
}

func FuzzParse(f *testing.F) {
	seed, _ := os.ReadFile("testdata/feed.csv")
	f.Add(seed)
	f.Add([]byte("type,value\nip,10.0.0.0/8\n"))
	f.Add([]byte("TYPE ,Value,Tags\n\"url\",\"http://a.example/\",\"a;b\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		inds, err := Parse(strings.NewReader(string(data)), Config{Name: "fuzz.csv"})
		if !feedtest.Accepted[*Error](t, err) {
			return
		}
		feedtest.Compiles(t, inds, nil)
	})
}
