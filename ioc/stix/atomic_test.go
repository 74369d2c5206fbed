package stix

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/cordonsec/cordon/ioc"
	"github.com/cordonsec/cordon/ioc/feed/feedtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// written are the object paths with a kind as a pattern writes them.
var written = map[string]string{
	"file:hashes.md5":               "file:hashes.MD5",
	"file:hashes.sha1":              "file:hashes.'SHA-1'",
	"file:hashes.sha256":            "file:hashes.'SHA-256'",
	"file:hashes.sha512":            "file:hashes.'SHA-512'",
	"file:name":                     "file:name",
	"ipv4-addr:value":               "ipv4-addr:value",
	"ipv6-addr:value":               "ipv6-addr:value",
	"domain-name:value":             "domain-name:value",
	"url:value":                     "url:value",
	"network-traffic:dst_ref.value": "network-traffic:dst_ref.value",
	"process:name":                  "process:name",
	"windows-registry-key:key":      "windows-registry-key:key",
	"mutex:name":                    "mutex:name",
}

// pathValues are values for each kind, chosen as in the openioc test:
// both cases, "s" and "k", an internationalized name, a CIDR prefix,
// registry keys with other views.
var pathValues = map[ioc.Kind][]string{
	ioc.KindMD5:         {"44D88612FEA8A8F36DE82E1278ABB02F"},
	ioc.KindSHA1:        {"3395856ce81f2b7382dee72602f798b642f14140"},
	ioc.KindSHA256:      {"275A021BBFB6489E54D471899F7DB9D1663FC695EC2FE2A2C4538AABF651FD0F"},
	ioc.KindSHA512:      {strings.Repeat("Ab", 64)},
	ioc.KindFileName:    {"Desk.exe", "Kit.ELF"},
	ioc.KindIPv4:        {"192.0.2.7", "192.0.2.0/24"},
	ioc.KindIPv6:        {"2001:db8::7", "2001:db8::/32"},
	ioc.KindHostname:    {"Stage-k.example", "bücher.example"},
	ioc.KindURL:         {"http://Stage-k.example/Kit/Desk.bin", "https://bücher.example:443/a%7eb?Q=s"},
	ioc.KindProcessName: {"Desk.exe"},
	ioc.KindMutex:       {`Global\SkMutex`, "sk-Mutex"},
	ioc.KindRegistryKey: {`HKLM\Software\Microsoft\Windows\CurrentVersion\Run\Desk`, `HKCU\Software\Kit\Desk`,
		`HKEY_CLASSES_ROOT\Kit.File\shell\open\command`, `HKCU\Software\Classes\Kit.File\Shell`},
}

func bundleOf(pattern string) []byte {
	obj := map[string]any{"type": "indicator", "spec_version": "2.1", "id": "indicator--1", "pattern_type": "stix",
		"valid_from": "2026-01-01T00:00:00Z", "pattern": pattern}
	b, _ := json.Marshal(map[string]any{"type": "bundle", "id": "bundle--1", "objects": []any{obj}})
	return b
}

func stixString(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

type pathCase struct {
	key, value string
	pi         pathInfo
}

func pathCases(t *testing.T) []pathCase {
	var cs []pathCase
	keys := make([]string, 0, len(paths))
	for k := range paths {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		pi := paths[k]
		if pi.kind == 0 {
			continue
		}
		require.Contains(t, written, k, "no written form of %s", k)
		vals := pathValues[pi.kind]
		require.NotEmpty(t, vals, "no values of kind %s", pi.kind)
		for _, v := range vals {
			cs = append(cs, pathCase{k, v, pi})
		}
	}
	return cs
}

// TestAtomicIsTree is the differential test of the atomic compilation:
// for every object path with a kind, [path = 'v'] (atomic where the path
// allows it) and the same comparison as a tree ([path = 'v' AND path =
// 'v']) must match exactly the same events of a battery that puts v and
// its variants in every event field, on Windows and Linux hosts.
func TestAtomicIsTree(t *testing.T) {
	atomic := 0
	for _, c := range pathCases(t) {
		t.Run(c.key+"="+c.value, func(t *testing.T) {
			cmp := written[c.key] + " = " + stixString(c.value)
			normal, err := Parse(bundleOf("["+cmp+"]"), Config{})
			require.NoError(t, err)
			forced, err := Parse(bundleOf("["+cmp+" AND "+cmp+"]"), Config{})
			require.NoError(t, err)
			require.Empty(t, forced.Indicators)
			require.Len(t, forced.Trees, 1)
			if c.pi.atomic {
				require.Len(t, normal.Indicators, 1)
				require.Empty(t, normal.Trees)
				atomic++
			} else {
				require.Empty(t, normal.Indicators)
				require.Len(t, normal.Trees, 1)
				assert.Len(t, normal.Trees[0].Indicators, 1, "the tree reports the indicator")
			}
			probes := feedtest.Battery(c.value)
			a := feedtest.Matcher(t, normal.Indicators, normal.Trees)
			b := feedtest.Matcher(t, nil, forced.Trees)
			assert.Empty(t, feedtest.Differences(probes, a, b))
			hits := 0
			for i := range probes {
				if b(&probes[i].Event) {
					hits++
				}
			}
			assert.NotZero(t, hits, "no probe matches: the battery proves nothing")
			assert.Less(t, hits, len(probes), "every probe matches")
		})
	}
	assert.NotZero(t, atomic, "no path compiled atomic")
}

// TestTreePathsNeedTheTree proves that each path kept a tree needs it:
// the atomic set of its kind matches some probe differently from the
// tree. A path whose atomic set matches exactly must be made atomic.
func TestTreePathsNeedTheTree(t *testing.T) {
	witness := map[string]string{}
	exact := map[string]bool{}
	for _, c := range pathCases(t) {
		cmp := written[c.key] + " = " + stixString(c.value)
		forced, err := Parse(bundleOf("["+cmp+" AND "+cmp+"]"), Config{})
		require.NoError(t, err)
		ind, err := ioc.Indicator{ID: "x", Kind: refineKind(c.pi.kind, c.value), Value: c.value}.Normalized()
		require.NoError(t, err)
		a := feedtest.Matcher(t, []ioc.Indicator{ind}, nil)
		b := feedtest.Matcher(t, nil, forced.Trees)
		diffs := feedtest.Differences(feedtest.Battery(c.value), a, b)
		if _, ok := exact[c.key]; !ok {
			exact[c.key] = true
		}
		if len(diffs) > 0 {
			exact[c.key] = false
			if witness[c.key] == "" {
				witness[c.key] = fmt.Sprintf("%s: %s (and %d more)", c.value, diffs[0], len(diffs)-1)
			}
		}
	}
	for k, ok := range exact {
		if paths[k].atomic {
			assert.True(t, ok, "%s is atomic but differs from its tree: %s", k, witness[k])
		} else {
			assert.False(t, ok, "%s stays a tree, yet its atomic set matches as the tree does on every probe", k)
			t.Logf("%s needs the tree; atomic, tree: %s", k, witness[k])
		}
	}
}

// TestProcessNameIsNotParentName: [process:name = 'x'] is a tree that
// never matches the parent's name, which the atomic process-name set
// would, and compares case on every host.
func TestProcessNameIsNotParentName(t *testing.T) {
	res, err := Parse(bundleOf("[process:name = 'dropper.exe']"), Config{})
	require.NoError(t, err)
	require.Empty(t, res.Indicators)
	m := feedtest.Matcher(t, res.Indicators, res.Trees)
	for _, os := range []string{"windows", "linux"} {
		ev := feedtest.Event(ioc.EventProcess, os)
		ev.Process = &ioc.ProcessEvent{PID: 7, Name: "dropper.exe", ParentName: "explorer.exe"}
		assert.True(t, m(&ev), os)
		ev.Process = &ioc.ProcessEvent{PID: 7, Name: "cmd.exe", ParentName: "dropper.exe"}
		assert.False(t, m(&ev), os)
		ev.Process = &ioc.ProcessEvent{PID: 7, Name: "Dropper.exe"}
		assert.False(t, m(&ev), os)
	}
}

// TestTreeValueChecked: an equality that stays a tree still needs a value
// of its path's form, as it would atomic.
func TestTreeValueChecked(t *testing.T) {
	_, err := Parse(bundleOf("[file:hashes.'SHA-256' = 'b94d27b9']"), Config{})
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrSyntax)
}
