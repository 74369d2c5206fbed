package openioc

import (
	"fmt"
	"html"
	"testing"

	"github.com/cordonsec/cordon/ioc"
	"github.com/cordonsec/cordon/ioc/feed/feedtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// kindValues are values of each kind a term can hold, chosen to have
// letters of both cases, "s" and "k" (which Unicode case folding equates
// with "ſ" and the Kelvin sign), Windows and POSIX forms, an
// internationalized name and a CIDR prefix. The registry keys are a
// machine key, a user's (reported also under HKEY_USERS\<SID>) and class
// keys (reported also under the Software\Classes keys and <SID>_Classes),
// so that the battery tries each view of a key.
var kindValues = map[ioc.Kind][]string{
	ioc.KindMD5:         {"44D88612FEA8A8F36DE82E1278ABB02F"},
	ioc.KindSHA1:        {"3395856ce81f2b7382dee72602f798b642f14140"},
	ioc.KindSHA256:      {"275A021BBFB6489E54D471899F7DB9D1663FC695EC2FE2A2C4538AABF651FD0F"},
	ioc.KindFilePath:    {`C:\Users\Public\Desk.exe`, "/tmp/Kit/Desk.ELF"},
	ioc.KindFileName:    {"Desk.exe", "Kit.ELF"},
	ioc.KindProcessName: {"Desk.exe"},
	ioc.KindMutex:       {`Global\SkMutex`, "sk-Mutex"},
	ioc.KindIPv4:        {"192.0.2.7", "2001:db8::7", "192.0.2.0/24"},
	ioc.KindHostname:    {"Stage-k.example", "bücher.example"},
	ioc.KindURL:         {"http://Stage-k.example/Kit/Desk.bin", "https://bücher.example:443/a%7eb?Q=s"},
	ioc.KindRegistryKey: {`HKLM\Software\Microsoft\Windows\CurrentVersion\Run\Desk`, `HKCU\Software\Kit\Desk`,
		`HKEY_CLASSES_ROOT\Kit.File\shell\open\command`, `HKCU\Software\Classes\Kit.File\Shell`},
}

func itemXML(search, value string, preserve bool) string {
	return fmt.Sprintf(`<IndicatorItem condition="is" preserve-case="%v"><Context search="%s"/><Content>%s</Content></IndicatorItem>`+"\n",
		preserve, search, html.EscapeString(value))
}

// oneItem is an IOC of one "is" item: the form that may compile atomic.
func oneItem(search, value string, preserve bool) string {
	return head11 + `<Indicator operator="OR">` + "\n" + itemXML(search, value, preserve) + "</Indicator></criteria></OpenIOC>"
}

// asTree is the same condition forced into a tree: the item twice under
// AND (x AND x is x).
func asTree(search, value string, preserve bool) string {
	it := itemXML(search, value, preserve)
	return head11 + `<Indicator operator="AND">` + "\n" + it + it + "</Indicator></criteria></OpenIOC>"
}

type termCase struct {
	term, value string
	preserve    bool
	tm          term
}

func termCases(t *testing.T) []termCase {
	var cs []termCase
	for _, name := range Terms() {
		tm := terms[name]
		if tm.kind == 0 {
			continue
		}
		vals := kindValues[tm.kind]
		require.NotEmpty(t, vals, "no test values for %s (kind %s)", name, tm.kind)
		for _, v := range vals {
			for _, preserve := range []bool{false, true} {
				cs = append(cs, termCase{name, v, preserve, tm})
			}
		}
	}
	return cs
}

func (c termCase) String() string {
	return fmt.Sprintf("%s=%s/preserve-case=%v", c.term, c.value, c.preserve)
}

// TestAtomicIsTree is the differential test of the atomic compilation:
// for every term with an atomic kind, with and without preserve-case, an
// IOC of one "is" item (compiled atomic where the term allows it) and the
// same condition as a tree must match exactly the same events of a
// battery that puts the value and its case, Unicode-folding, padding and
// IDNA variants in every event field, on Windows and Linux hosts.
func TestAtomicIsTree(t *testing.T) {
	atomic := 0
	for _, c := range termCases(t) {
		t.Run(c.String(), func(t *testing.T) {
			normal, err := Parse([]byte(oneItem(c.term, c.value, c.preserve)), Config{})
			require.NoError(t, err)
			forced, err := Parse([]byte(asTree(c.term, c.value, c.preserve)), Config{})
			require.NoError(t, err)
			require.Empty(t, forced.Indicators)
			require.Len(t, forced.Trees, 1)
			if c.tm.atomicOK(c.preserve) {
				require.Len(t, normal.Indicators, 1, "%s compiles atomic", c)
				require.Empty(t, normal.Trees)
				atomic++
			} else {
				require.Empty(t, normal.Indicators, "%s stays a tree", c)
			}
			probes := feedtest.Battery(c.value)
			a := feedtest.Matcher(t, normal.Indicators, normal.Trees)
			b := feedtest.Matcher(t, nil, forced.Trees)
			assert.Empty(t, feedtest.Differences(probes, a, b), "one item (atomic %v), as a tree", len(normal.Indicators) > 0)
			hits := 0
			for i := range probes {
				if b(&probes[i].Event) {
					hits++
				}
			}
			assert.NotZero(t, hits, "no probe matches: the battery proves nothing for %s", c)
			assert.Less(t, hits, len(probes), "every probe matches")
		})
	}
	assert.NotZero(t, atomic, "no term compiled atomic")
}

// TestTreeTermsNeedTheTree proves each term the parser keeps a tree (see
// terms) needs it: the atomic set of its kind, built from the same value,
// matches some probe of the battery differently from the tree. A term
// that the atomic set matches exactly must be made atomic instead.
func TestTreeTermsNeedTheTree(t *testing.T) {
	type key struct {
		term     string
		preserve bool
	}
	witness := map[key]string{}
	exact := map[key]bool{}
	for _, c := range termCases(t) {
		forced, err := Parse([]byte(asTree(c.term, c.value, c.preserve)), Config{})
		require.NoError(t, err)
		ind, err := ioc.Indicator{ID: "x", Kind: atomicKind(c.tm.kind, c.value), Value: c.value}.Normalized()
		require.NoError(t, err, c.String())
		a := feedtest.Matcher(t, []ioc.Indicator{ind}, nil)
		b := feedtest.Matcher(t, nil, forced.Trees)
		diffs := feedtest.Differences(feedtest.Battery(c.value), a, b)
		k := key{c.term, c.preserve}
		if _, ok := exact[k]; !ok {
			exact[k] = true
		}
		if len(diffs) > 0 {
			exact[k] = false
			if witness[k] == "" {
				witness[k] = fmt.Sprintf("%s: %s (and %d more)", c.value, diffs[0], len(diffs)-1)
			}
		}
	}
	for k, ok := range exact {
		name := fmt.Sprintf("%s preserve-case=%v", k.term, k.preserve)
		if terms[k.term].atomicOK(k.preserve) {
			assert.True(t, ok, "%s is atomic but differs from its tree: %s", name, witness[k])
		} else {
			assert.False(t, ok, "%s stays a tree, yet its atomic set matches as the tree does on every probe", name)
			t.Logf("%s needs the tree; atomic, tree: %s", name, witness[k])
		}
	}
}
