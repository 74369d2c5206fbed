package stix

import (
	"testing"

	"github.com/cordonsec/cordon/ioc"
	"github.com/cordonsec/cordon/ioc/feed/feedtest"
	"github.com/cordonsec/cordon/ioc/feed/logic"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRegistryKeyViews is the regression of windows-registry-key:key,
// always a tree: a pattern on an HKCU key matches the key as drivers and
// Sysmon report it, under HKEY_USERS\<SID>, as the atomic registry-key
// set does, by every operator; one on an HKCR key matches it under the
// Software\Classes keys and <SID>_Classes; a negation holds only when no
// view of the key satisfies the comparison. The result names the view
// that matched.
func TestRegistryKeyViews(t *testing.T) {
	hku := feedtest.RegistryEvent(`HKEY_USERS\`+feedtest.UserSID+`\Software\Evil`, "")
	kernel := feedtest.RegistryEvent(`\REGISTRY\USER\`+feedtest.UserSID+`\Software\Evil`, "Run")
	def := feedtest.RegistryEvent(`HKU\.DEFAULT\Software\Evil`, "")
	classes := feedtest.RegistryEvent(`HKU\`+feedtest.UserSID+`_Classes\Evil.File\shell\open\command`, "")
	machineClasses := feedtest.RegistryEvent(`HKLM\SOFTWARE\Classes\Evil.File\shell\open\command`, "")
	cases := []struct {
		pattern     string
		match, miss []*ioc.Event
		observed    string // of the result on match[0]; "" for none
	}{
		{`[windows-registry-key:key = 'HKCU\\Software\\Evil']`, []*ioc.Event{hku, kernel}, []*ioc.Event{def},
			`hkey_current_user\software\evil`},
		{`[windows-registry-key:key IN ('HKLM\\Software\\Evil', 'HKEY_CURRENT_USER\\Software\\Evil')]`, []*ioc.Event{hku}, []*ioc.Event{def},
			`hkey_current_user\software\evil`},
		{`[windows-registry-key:key LIKE 'HKCU\\Software\\%']`, []*ioc.Event{hku, kernel}, []*ioc.Event{def},
			`hkey_current_user\software\evil`},
		{`[windows-registry-key:key MATCHES '^hkey_current_user\\\\software\\\\evil$']`, []*ioc.Event{hku}, []*ioc.Event{def},
			`hkey_current_user\software\evil`},
		{`[windows-registry-key:key = 'HKCR\\Evil.File\\shell\\open\\command']`, []*ioc.Event{classes, machineClasses},
			[]*ioc.Event{hku}, `hkey_classes_root\evil.file\shell\open\command`},
		{`[windows-registry-key:key != 'HKCU\\Software\\Evil']`, []*ioc.Event{def, classes}, []*ioc.Event{hku, kernel}, ""},
		{`[windows-registry-key:key NOT LIKE 'HKCU\\%']`, []*ioc.Event{def, machineClasses}, []*ioc.Event{hku, classes}, ""},
	}
	for _, c := range cases {
		t.Run(c.pattern, func(t *testing.T) {
			res, err := Parse(bundleOf(c.pattern), Config{})
			require.NoError(t, err)
			require.Empty(t, res.Indicators)
			require.Len(t, res.Trees, 1)
			m := feedtest.Matcher(t, nil, res.Trees)
			for _, ev := range c.match {
				assert.True(t, m(ev), "%s %q", ev.Registry.Key, ev.Registry.ValueName)
			}
			for _, ev := range c.miss {
				assert.False(t, m(ev), "%s %q", ev.Registry.Key, ev.Registry.ValueName)
			}
			if c.observed == "" {
				return
			}
			set, err := logic.Compile(res.Trees)
			require.NoError(t, err)
			rs := set.Eval(c.match[0], feedtest.T0, nil)
			require.Len(t, rs, 1)
			assert.Equal(t, logic.RegKey, rs[0].Field)
			assert.Equal(t, c.observed, rs[0].Observable, "the view that matched")
		})
	}
}

// TestRegistryKeyTreeAgreesWithAtomic: on an event under HKEY_USERS, the
// equality tree on windows-registry-key:key matches as the atomic
// registry-key set of the same value does (the set matches more only
// through the key joined with a value name, which the path is not).
func TestRegistryKeyTreeAgreesWithAtomic(t *testing.T) {
	res, err := Parse(bundleOf(`[windows-registry-key:key = 'HKCU\\Software\\Evil']`), Config{})
	require.NoError(t, err)
	ind, err := ioc.Indicator{ID: "x", Kind: ioc.KindRegistryKey, Value: `HKCU\Software\Evil`}.Normalized()
	require.NoError(t, err)
	tree := feedtest.Matcher(t, nil, res.Trees)
	atomic := feedtest.Matcher(t, []ioc.Indicator{ind}, nil)
	for _, ev := range []*ioc.Event{feedtest.RegistryEvent(`HKEY_USERS\`+feedtest.UserSID+`\Software\Evil`, ""), feedtest.RegistryEvent(`HKEY_USERS\`+feedtest.UserSID+`\Software\Evil`, "x"),
		feedtest.RegistryEvent(`HKEY_USERS\`+feedtest.UserSID+`\Software\Evil\Sub`, ""), feedtest.RegistryEvent(`HKU\.DEFAULT\Software\Evil`, "")} {
		assert.Equal(t, atomic(ev), tree(ev), "%s %q", ev.Registry.Key, ev.Registry.ValueName)
	}
	assert.True(t, tree(feedtest.RegistryEvent(`HKEY_USERS\`+feedtest.UserSID+`\Software\Evil`, "")))
}
