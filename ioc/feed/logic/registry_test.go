package logic

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cordonsec/cordon/ioc"
)

const userSID = `S-1-5-21-1004336348-1177238915-682003330-1001`

func regEvent(key, valueName string) *ioc.Event {
	ev := base(ioc.EventRegistry, "windows")
	ev.Registry = &ioc.RegistryEvent{Key: key, ValueName: valueName, Data: "x"}
	return &ev
}

// TestRegistryViews: the registry-key fields observe the event's key under
// each of its views (ioc.RegistryKeyViews), as the atomic registry-key
// sets match it: a positive condition holds if a view satisfies it, a
// negated one if none does, and the result names the view that matched.
func TestRegistryViews(t *testing.T) {
	hku := `HKEY_USERS\` + userSID + `\Software\Evil`
	hkuClasses := `HKEY_USERS\` + userSID + `_Classes\Evil.File\shell\open\command`
	cases := []struct {
		name      string
		cond      Cond
		ev        *ioc.Event
		match     bool
		field     Field
		observed  string
		negatives bool // only negated conditions held: no field, no observable
	}{
		{"HKCU equality, HKU event", Cond{Fields: []Field{RegKey}, Op: OpEq, Values: []string{`HKCU\Software\Evil`}},
			regEvent(hku, ""), true, RegKey, `hkey_current_user\software\evil`, false},
		{"HKCU equality, kernel HKU event", Cond{Fields: []Field{RegKey}, Op: OpEq, Values: []string{`HKCU\Software\Evil`}},
			regEvent(`\REGISTRY\USER\`+userSID+`\Software\Evil`, ""), true, RegKey, `hkey_current_user\software\evil`, false},
		{"HKCU equality, .DEFAULT event", Cond{Fields: []Field{RegKey}, Op: OpEq, Values: []string{`HKCU\Software\Evil`}},
			regEvent(`HKU\.DEFAULT\Software\Evil`, ""), false, 0, "", false},
		{"HKU equality, HKU event: its own key", Cond{Fields: []Field{RegKey}, Op: OpEq, Values: []string{hku}},
			regEvent(hku, ""), true, RegKey, strings.ToLower(hku), false},
		{"HKU equality, HKCU event: no view back", Cond{Fields: []Field{RegKey}, Op: OpEq, Values: []string{hku}},
			regEvent(`HKCU\Software\Evil`, ""), false, 0, "", false},
		{"HKCU in, HKU event", Cond{Fields: []Field{RegKey}, Op: OpIn, Values: []string{`HKLM\Software\Evil`, `HKCU\Software\Evil`}},
			regEvent(hku, ""), true, RegKey, `hkey_current_user\software\evil`, false},
		{"HKCU prefix, HKU event", Cond{Fields: []Field{RegKey}, Op: OpPrefix, Values: []string{`HKCU\Software\`}},
			regEvent(hku, ""), true, RegKey, `hkey_current_user\software\evil`, false},
		{"HKCU contains, HKU event", Cond{Fields: []Field{RegKey}, Op: OpContains, Values: []string{`HKEY_CURRENT_USER\Software`}},
			regEvent(hku, ""), true, RegKey, `hkey_current_user\software\evil`, false},
		{"suffix, HKU event: its own key", Cond{Fields: []Field{RegKey}, Op: OpSuffix, Values: []string{`\software\evil`}},
			regEvent(hku, ""), true, RegKey, strings.ToLower(hku), false},
		{"HKCU LIKE, HKU event", Cond{Fields: []Field{RegKey}, Op: OpLike, Values: []string{`HKCU\%\Evil`}, CaseSensitive: true},
			regEvent(hku, ""), true, RegKey, `hkey_current_user\software\evil`, false},
		{"HKCU regex, HKU event", Cond{Fields: []Field{RegKey}, Op: OpRegex, Values: []string{`^hkey_current_user\\software\\evil$`}, CaseSensitive: true},
			regEvent(hku, ""), true, RegKey, `hkey_current_user\software\evil`, false},
		{"HKCR equality, <SID>_Classes event", Cond{Fields: []Field{RegKey}, Op: OpEq, Values: []string{`HKCR\Evil.File\shell\open\command`}},
			regEvent(hkuClasses, ""), true, RegKey, `hkey_classes_root\evil.file\shell\open\command`, false},
		{"HKCU Software\\Classes equality, <SID>_Classes event", Cond{Fields: []Field{RegKey}, Op: OpEq, Values: []string{`HKCU\Software\Classes\Evil.File\shell\open\command`}},
			regEvent(hkuClasses, ""), true, RegKey, `hkey_current_user\software\classes\evil.file\shell\open\command`, false},
		{"HKCR equality, HKLM Software\\Classes event", Cond{Fields: []Field{RegKey}, Op: OpEq, Values: []string{`HKCR\Evil.File`}},
			regEvent(`HKLM\SOFTWARE\Classes\Evil.File`, ""), true, RegKey, `hkey_classes_root\evil.file`, false},
		{"HKCR equality, HKU Software\\Classes event", Cond{Fields: []Field{RegKey}, Op: OpEq, Values: []string{`HKCR\Evil.File`}},
			regEvent(`HKU\`+userSID+`\Software\Classes\Evil.File`, ""), true, RegKey, `hkey_classes_root\evil.file`, false},
		{"HKLM Software\\Classes equality, HKCR event: no view back", Cond{Fields: []Field{RegKey}, Op: OpEq, Values: []string{`HKLM\Software\Classes\Evil.File`}},
			regEvent(`HKCR\Evil.File`, ""), false, 0, "", false},
		{"key path, HKU event", Cond{Fields: []Field{RegKeyPath}, Op: OpEq, Values: []string{`Software\Evil`}},
			regEvent(hku, ""), true, RegKeyPath, `software\evil`, false},
		{"key path of the HKCR view", Cond{Fields: []Field{RegKeyPath}, Op: OpEq, Values: []string{`Evil.File`}},
			regEvent(`HKCU\Software\Classes\Evil.File`, ""), true, RegKeyPath, `evil.file`, false},
		{"path, HKU event: the views of its key part", Cond{Fields: []Field{RegPath}, Op: OpEq, Values: []string{`HKCU\Software\Evil\Start`}},
			regEvent(hku, "Start"), true, RegPath, `hkey_current_user\software\evil\start`, false},
		{"path with a padded value name, HKU event", Cond{Fields: []Field{RegPath}, Op: OpEq, Values: []string{`HKCU\Software\Evil\Start`}},
			regEvent(hku, "Start "), false, 0, "", false},
		{"path prefix, HKU event", Cond{Fields: []Field{RegPath}, Op: OpPrefix, Values: []string{`HKCU\Software\Evil\St`}},
			regEvent(hku, "Start"), true, RegPath, `hkey_current_user\software\evil\start`, false},
		{"path, <SID>_Classes event", Cond{Fields: []Field{RegPath}, Op: OpEq, Values: []string{`HKCR\Evil.File\shell\open\command\Default`}},
			regEvent(hkuClasses, "Default"), true, RegPath, `hkey_classes_root\evil.file\shell\open\command\default`, false},
		{"negated equality: a view has the value", Cond{Fields: []Field{RegKey}, Op: OpEq, Values: []string{`HKCU\Software\Evil`}, Negate: true},
			regEvent(hku, ""), false, 0, "", false},
		{"negated prefix: a view has it", Cond{Fields: []Field{RegKey}, Op: OpPrefix, Values: []string{`HKCU\`}, Negate: true},
			regEvent(hku, ""), false, 0, "", false},
		{"negated path: a view has it", Cond{Fields: []Field{RegPath}, Op: OpEq, Values: []string{`HKCU\Software\Evil\Start`}, Negate: true},
			regEvent(hku, "Start"), false, 0, "", false},
		{"negated key path: a view has it", Cond{Fields: []Field{RegKeyPath}, Op: OpEq, Values: []string{`Software\Evil`}, Negate: true},
			regEvent(hku, ""), false, 0, "", false},
		{"negated equality: no view has the value", Cond{Fields: []Field{RegKey}, Op: OpEq, Values: []string{`HKCU\Software\Good`}, Negate: true},
			regEvent(hku, ""), true, 0, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := &Tree{ID: "t", Engine: ioc.EngineOpenIOC, Root: leaf(t, tc.cond)}
			set, err := Compile([]*Tree{tr})
			require.NoError(t, err)
			res := set.Eval(tc.ev, t0, nil)
			assert.Equal(t, resultIDs(evalAll(set, tc.ev)), resultIDs(res), "Eval differs from evaluating every tree")
			if !tc.match {
				assert.Empty(t, res, tr.Root.String())
				return
			}
			require.Len(t, res, 1, tr.Root.String())
			if tc.negatives {
				return
			}
			assert.Equal(t, tc.field, res[0].Field)
			assert.Equal(t, tc.observed, res[0].Observable)
		})
	}
}

// TestRegistryViewsDifferential: on trees of registry conditions (each
// operator, negations, AND and OR, values under each hive) and registry
// events under each view, Eval returns exactly what evaluating every
// tree returns (the index holds every view's keys), and a positive
// condition holds for an event exactly when it holds for the event's key
// or for one of its views reported as the event's key.
func TestRegistryViewsDifferential(t *testing.T) {
	rests := []string{`Software\Evil`, `Software\Classes\Evil.File`, `Evil.File`, `Software\Evil\Run`}
	hives := []string{`HKCU`, `HKCR`, `HKLM`, `HKU\` + userSID, `HKU\` + userSID + `_Classes`}
	ops := []Op{OpEq, OpIn, OpPrefix, OpSuffix, OpContains, OpLike, OpRegex}
	var trees []*Tree
	var leaves []*Node
	positive := map[string]bool{} // ids of the trees of one positive leaf
	for _, h := range hives {
		for _, r := range rests {
			v := h + `\` + r
			for _, op := range ops {
				for _, f := range []Field{RegKey, RegPath, RegKeyPath} {
					val := v
					if f == RegKeyPath {
						val = r
					}
					switch op {
					case OpLike:
						val += "%"
					case OpRegex:
						val = "(?i)evil"
					case OpSuffix:
						val = `\` + r
					}
					for _, neg := range []bool{false, true} {
						n := leaf(t, Cond{Fields: []Field{f}, Op: op, Values: []string{val}, Negate: neg})
						leaves = append(leaves, n)
						positive[fmt.Sprint(len(trees))] = !neg
						trees = append(trees, &Tree{ID: fmt.Sprint(len(trees)), Engine: ioc.EngineSTIX, Root: n})
					}
				}
			}
		}
	}
	for i := 0; i+2 < len(leaves); i += 3 {
		trees = append(trees, &Tree{ID: fmt.Sprint(len(trees)), Engine: ioc.EngineSTIX, Root: Or(leaves[i], And(leaves[i+1], leaves[i+2]))})
	}
	set, err := Compile(trees)
	require.NoError(t, err)
	matched := 0
	for _, h := range append(hives, `HKU\.DEFAULT`, `\REGISTRY\USER\`+userSID, `HKLM\SOFTWARE\Classes`, `HKCU\Software\Classes`) {
		for _, r := range rests {
			for _, vn := range []string{"", "Run", "Start "} {
				ev := regEvent(h+`\`+r, vn)
				want := resultIDs(evalAll(set, ev))
				got := resultIDs(set.Eval(ev, t0, nil))
				require.Empty(t, cmp.Diff(want, got), "%s %q: Eval differs from evaluating every tree (-want +got)", ev.Registry.Key, vn)
				matched += len(want)
				n, err := ioc.Normalize(ioc.KindRegistryKey, ev.Registry.Key)
				require.NoError(t, err)
				views := ioc.RegistryKeyViews(n)
				for _, tr := range trees {
					if !positive[tr.ID] {
						continue
					}
					one, err := Compile([]*Tree{tr})
					require.NoError(t, err)
					viewed := false
					for _, k := range append([]string{n}, views...) {
						// A view's own views are among the key's.
						viewed = viewed || len(one.Eval(regEvent(k, vn), t0, nil)) > 0
					}
					assert.Equal(t, viewed, len(one.Eval(ev, t0, nil)) > 0, "%s %q: %s", ev.Registry.Key, vn, tr.Root)
				}
			}
		}
	}
	require.Greater(t, matched, 1000, "too few matches to test anything")
}
