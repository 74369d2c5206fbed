package openioc

import (
	"testing"

	"github.com/cordonsec/cordon/ioc"
	"github.com/cordonsec/cordon/ioc/feed/feedtest"
	"github.com/cordonsec/cordon/ioc/feed/logic"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// keyEv is a registry write of value valueName under key.
func keyEv(key, valueName string) *ioc.Event { return regEv(key, valueName, "") }

// TestRegistryPathViewsInTree is the regression of RegistryItem/Path in a
// tree: an HKCU item matches the key as drivers and Sysmon report it,
// under HKEY_USERS\<SID>, whether it compiles atomic alone or is a tree
// beside an Md5sum item; an HKCR item matches the <SID>_Classes and
// Software\Classes keys. The result names the view that matched.
func TestRegistryPathViewsInTree(t *testing.T) {
	hku := `HKEY_USERS\` + feedtest.UserSID + `\Software\Evil`
	cases := []struct {
		name, path  string
		match, miss []*ioc.Event
		observed    string // of the tree's result on match[0]
	}{
		{"HKCU", `HKCU\Software\Evil`,
			[]*ioc.Event{keyEv(hku, ""), keyEv(`\REGISTRY\USER\`+feedtest.UserSID+`\Software`, "Evil"), keyEv(`HKCU\Software\Evil`, "")},
			[]*ioc.Event{keyEv(`HKU\.DEFAULT\Software\Evil`, ""), keyEv(`HKLM\Software\Evil`, "")},
			`hkey_current_user\software\evil`},
		{"HKCR", `HKEY_CLASSES_ROOT\Evil.File\shell\open\command`,
			[]*ioc.Event{keyEv(`HKU\`+feedtest.UserSID+`_Classes\Evil.File\shell\open\command`, ""),
				keyEv(`HKLM\SOFTWARE\Classes\Evil.File\shell\open`, "command"),
				keyEv(`HKCU\Software\Classes\Evil.File\shell\open\command`, ""),
				keyEv(`HKU\`+feedtest.UserSID+`\Software\Classes\Evil.File\shell\open\command`, "")},
			[]*ioc.Event{keyEv(`HKLM\Software\Evil.File\shell\open\command`, "")},
			`hkey_classes_root\evil.file\shell\open\command`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			alone, err := Parse([]byte(oneItem("RegistryItem/Path", c.path, false)), Config{})
			require.NoError(t, err)
			require.Len(t, alone.Indicators, 1, "compiles atomic")
			doc := head11 + `<Indicator operator="OR">` + "\n" + itemXML("RegistryItem/Path", c.path, false) +
				itemXML("FileItem/Md5sum", "44D88612FEA8A8F36DE82E1278ABB02F", false) + "</Indicator></criteria></OpenIOC>"
			ored, err := Parse([]byte(doc), Config{})
			require.NoError(t, err)
			require.Empty(t, ored.Indicators)
			require.Len(t, ored.Trees, 1, "a tree")
			atomic := feedtest.Matcher(t, alone.Indicators, alone.Trees)
			tree := feedtest.Matcher(t, nil, ored.Trees)
			for _, ev := range c.match {
				assert.True(t, atomic(ev), "atomic: %s %q", ev.Registry.Key, ev.Registry.ValueName)
				assert.True(t, tree(ev), "tree: %s %q", ev.Registry.Key, ev.Registry.ValueName)
			}
			for _, ev := range c.miss {
				assert.False(t, atomic(ev), "atomic: %s", ev.Registry.Key)
				assert.False(t, tree(ev), "tree: %s", ev.Registry.Key)
			}
			set, err := logic.Compile(ored.Trees)
			require.NoError(t, err)
			res := set.Eval(c.match[0], t0, nil)
			require.Len(t, res, 1)
			assert.Equal(t, logic.RegKey, res[0].Field)
			assert.Equal(t, c.observed, res[0].Observable, "the view that matched")
		})
	}
}

// TestRegistryItemNegatedViews: "isnot" on a registry path holds only
// when no view of the event's key is the path.
func TestRegistryItemNegatedViews(t *testing.T) {
	doc := head11 + `<Indicator operator="AND">` + "\n" +
		`<IndicatorItem condition="isnot"><Context search="RegistryItem/Path"/><Content>HKCU\Software\Evil</Content></IndicatorItem>` + "\n" +
		`<IndicatorItem condition="contains"><Context search="RegistryItem/Path"/><Content>\Software\</Content></IndicatorItem>` + "\n" +
		"</Indicator></criteria></OpenIOC>"
	res, err := Parse([]byte(doc), Config{})
	require.NoError(t, err)
	m := feedtest.Matcher(t, res.Indicators, res.Trees)
	assert.False(t, m(keyEv(`HKEY_USERS\`+feedtest.UserSID+`\Software\Evil`, "")))
	assert.True(t, m(keyEv(`HKEY_USERS\`+feedtest.UserSID+`\Software\Good`, "")))
}
