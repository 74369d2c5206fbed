package response_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cordonsec/cordon/response"
)

func TestLoadErrors(t *testing.T) {
	const okActions = "  actions: [ {log: {message: x}} ]\n"
	tests := []struct {
		name      string
		src       string
		cfg       response.LoadConfig
		want      error
		line, col int
		contains  string
	}{
		{"unknown rule key", "- name: a\n  whn: 'true'\n" + okActions, response.LoadConfig{}, response.ErrUnknownKey, 2, 3, `did you mean "when"`},
		{"unknown action key", "- name: a\n  when: 'true'\n  actions: [ {isolate: {durtion: 1h}} ]\n", response.LoadConfig{}, response.ErrUnknownKey, 3, 25, "durtion"},
		{"unknown suppress key", "- name: a\n  when: 'true'\n" + okActions + "  suppress: {key: host.id, perid: 1h}\n", response.LoadConfig{}, response.ErrUnknownKey, 4, 28, "perid"},
		{"unknown tests key", "- name: a\n  when: 'true'\n" + okActions + "  tests: {matches: []}\n", response.LoadConfig{}, response.ErrUnknownKey, 4, 11, "matches"},
		{"unknown detection field in test", "- name: a\n  when: 'true'\n" + okActions + "  tests:\n    match:\n      - {host: {id: h}, engine: atomic, rule: r, bogus: 1}\n", response.LoadConfig{}, response.ErrUnknownKey, 6, 9, "bogus"},
		{"field typo", "- name: a\n  when: detection.severty >= \"high\"\n" + okActions, response.LoadConfig{}, response.ErrExpression, 2, 19, "severty"},
		{"field typo in block scalar", "- name: a\n  when: |\n    indicator.kind == \"md5\" &&\n      host.nme == \"x\"\n" + okActions, response.LoadConfig{}, response.ErrExpression, 4, 12, "nme"},
		{"not a boolean", "- name: a\n  when: indicator.score + 1\n" + okActions, response.LoadConfig{}, response.ErrExpression, 2, 9, "bool"},
		{"type error", "- name: a\n  when: indicator.score == \"high\" || indicator.tags > 3\n" + okActions, response.LoadConfig{}, response.ErrExpression, 2, 0, ""},
		{"bad severity name", "- name: a\n  when: 'detection.severity >= \"hihg\"'\n" + okActions, response.LoadConfig{}, response.ErrExpression, 2, 32, "hihg"},
		{"bad kind name", "- name: a\n  when: indicator.kind == \"SHA256\"\n" + okActions, response.LoadConfig{}, response.ErrExpression, 2, 27, "SHA256"},
		{"bad engine name", "- name: a\n  when: detection.engine in [\"atomic\", \"yarra\"]\n" + okActions, response.LoadConfig{}, response.ErrExpression, 2, 40, "yarra"},
		{"bad duration", "- name: a\n  when: 'true'\n  actions: [ {isolate: {duration: soon}} ]\n", response.LoadConfig{}, response.ErrInvalidRule, 3, 35, "not a duration"},
		{"zero duration", "- name: a\n  when: 'true'\n  actions: [ {isolate: {duration: 0s}} ]\n", response.LoadConfig{}, response.ErrInvalidRule, 3, 35, "not in (0"},
		{"duration above max", "- name: a\n  when: 'true'\n  actions: [ {isolate: {duration: 25h}} ]\n", response.LoadConfig{MaxIsolation: 24 * time.Hour}, response.ErrInvalidRule, 3, 35, "24h0m0s"},
		{"per-rule exclusions", "- name: a\n  when: 'true'\n  actions: [ {isolate: {exclusions: [dns-client]}} ]\n", response.LoadConfig{}, response.ErrUnknownKey, 3, 25, "exclusions"},
		{"bad suppress period", "- name: a\n  when: 'true'\n" + okActions + "  suppress: {key: host.id, period: -1h}\n", response.LoadConfig{}, response.ErrInvalidRule, 4, 36, "not in"},
		{"bad suppress key", "- name: a\n  when: 'true'\n" + okActions + "  suppress: {key: host.idd, period: 1h}\n", response.LoadConfig{}, response.ErrExpression, 4, 24, "idd"},
		{"failing match test", "- name: a\n  when: indicator.kind == \"md5\"\n" + okActions + "  tests:\n    match:\n      - {host: {id: h}, engine: atomic, indicators: [{kind: sha1, value: x}]}\n", response.LoadConfig{}, response.ErrRuleTest, 6, 9, `indicator.kind == "md5" → false`},
		{"failing non_match test", "- name: a\n  when: indicator.kind == \"md5\"\n" + okActions + "  tests:\n    non_match:\n      - {host: {id: h}, engine: atomic, indicators: [{kind: md5, value: x}]}\n", response.LoadConfig{}, response.ErrRuleTest, 6, 9, "matches"},
		{"unknown action", "- name: a\n  when: 'true'\n  actions: [ {isloate: {}} ]\n", response.LoadConfig{}, response.ErrUnknownAction, 3, 15, `did you mean "isolate"`},
		{"template typo", "- name: a\n  when: 'true'\n  actions:\n    - log: {message: \"x {{ indicator.valu }}\"}\n", response.LoadConfig{}, response.ErrExpression, 4, 38, "valu"},
		{"template unclosed", "- name: a\n  when: 'true'\n  actions:\n    - log: {message: \"x {{ indicator.value\"}\n", response.LoadConfig{}, response.ErrExpression, 4, 25, "not closed"},
		{"expression too long", "- name: a\n  when: '" + strings.Repeat("true && ", 600) + "true'\n" + okActions, response.LoadConfig{}, response.ErrTooLarge, 2, 9, "limit 4096"},
		{"too many nodes", "- name: a\n  when: '" + strings.Repeat("true && ", 30) + "true'\n" + okActions, response.LoadConfig{MaxExprNodes: 20}, response.ErrExpression, 2, 0, "exceeds maximum"},
		{"missing when", "- name: a\n" + okActions, response.LoadConfig{}, response.ErrInvalidRule, 1, 0, "required"},
		{"missing actions", "- name: a\n  when: 'true'\n", response.LoadConfig{}, response.ErrInvalidRule, 1, 0, "required"},
		{"bad name", "- name: 'a b'\n  when: 'true'\n" + okActions, response.LoadConfig{}, response.ErrInvalidRule, 1, 9, "not a rule name"},
		{"duplicate name", "- name: a\n  when: 'true'\n" + okActions + "- name: a\n  when: 'true'\n" + okActions, response.LoadConfig{}, response.ErrDuplicateRule, 4, 0, "line 1"},
		{"duplicate key", "- name: a\n  when: 'true'\n  when: 'false'\n" + okActions, response.LoadConfig{}, response.ErrSyntax, 3, 0, ""},
		{"not a list", "name: a\n", response.LoadConfig{}, response.ErrSyntax, 1, 0, "list of rules"},
		{"yaml syntax", "- name: a\n  when: [\n", response.LoadConfig{}, response.ErrSyntax, 0, 0, ""},
		{"anchor", "- &x\n  name: a\n  when: 'true'\n" + okActions + "- *x\n", response.LoadConfig{}, response.ErrSyntax, 0, 0, "anchors"},
		{"string wanted", "- name: a\n  when: 'true'\n  description: 3\n" + okActions, response.LoadConfig{}, response.ErrInvalidRule, 3, 16, "want a string"},
		{"bool wanted", "- name: a\n  when: 'true'\n  stop: yes please\n" + okActions, response.LoadConfig{}, response.ErrInvalidRule, 0, 0, ""},
		{"file too large", "# " + strings.Repeat("x", 200) + "\n", response.LoadConfig{MaxFileBytes: 100}, response.ErrTooLarge, 0, 0, "limit 100"},
		{"now disabled", "- name: a\n  when: now() > match.time\n" + okActions, response.LoadConfig{}, response.ErrExpression, 2, 0, "now"},
		{"notify bad subject", "- name: a\n  when: 'true'\n  actions: [ {notify: {subject: 'soc.*'}} ]\n", response.LoadConfig{}, response.ErrInvalidRule, 3, 33, "not a subject"},
		{"log bad level", "- name: a\n  when: 'true'\n  actions: [ {log: {message: x, level: loud}} ]\n", response.LoadConfig{}, response.ErrInvalidRule, 3, 40, "loud"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := response.Compile(tc.cfg, "bad.yaml", []byte(tc.src))
			if err == nil {
				t.Fatalf("compiled %d rules, want an error", len(f.Rules))
			}
			if f != nil {
				t.Fatal("a file with an error returned rules")
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v\nis not %v", err, tc.want)
			}
			var les response.LoadErrors
			if !errors.As(err, &les) || len(les) == 0 {
				t.Fatalf("error %T is not LoadErrors", err)
			}
			var le *response.LoadError
			for _, e := range les {
				if errors.Is(e, tc.want) {
					le = e
					break
				}
			}
			if le.File != "bad.yaml" {
				t.Errorf("file %q", le.File)
			}
			if tc.line != 0 && le.Line != tc.line {
				t.Errorf("line %d, want %d\n%v", le.Line, tc.line, le)
			}
			if tc.col != 0 && le.Column != tc.col {
				t.Errorf("column %d, want %d\n%v", le.Column, tc.col, le)
			}
			if le.Line > 0 && le.Snippet == "" {
				t.Errorf("no snippet: %v", le)
			}
			if !strings.Contains(le.Error(), tc.contains) {
				t.Errorf("error %q does not say %q", le.Error(), tc.contains)
			}
			if le.Line > 0 && !strings.HasPrefix(le.Error(), "bad.yaml:") {
				t.Errorf("error does not start with the position: %q", le.Error())
			}
		})
	}
}

func TestLoadExample(t *testing.T) {
	eng, err := response.New(response.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.LoadFile("testdata/rules.yaml"); err != nil {
		t.Fatal(err)
	}
	rules := eng.Rules().Rules()
	var names []string
	for _, r := range rules {
		names = append(names, r.Name)
	}
	if got := strings.Join(names, ","); got != "isolate-on-ransomware,tag-suspicious-domains,watch-c2" {
		t.Fatalf("rules %s", got)
	}
	r := rules[0]
	if r.Line != 2 || !r.Stop || r.Suppress == nil || r.Suppress.Period != time.Hour || len(r.Actions) != 2 {
		t.Fatalf("rule %+v", r)
	}
	if !rules[2].DryRun {
		t.Fatal("watch-c2 is dry-run")
	}
}

// A file with a bad rule is rejected whole, and the rules in force stay.
func TestBadFileKeepsRules(t *testing.T) {
	f := newFixture(t, nil, "- name: good\n  when: indicator.kind == \"md5\"\n  actions: [ {log: {message: x}} ]\n")
	d := detection("d1", "h1", "atomic", ind{id: "i", kind: "md5", value: "00112233445566778899aabbccddeeff"})
	if got := f.eng.Evaluate(&d); len(got) != 1 {
		t.Fatalf("fired %d", len(got))
	}
	bad := "- name: good2\n  when: indicator.kind == \"sha1\"\n  actions: [ {log: {message: x}} ]\n- name: broken\n  when: indicator.knd == \"md5\"\n  actions: [ {log: {message: x}} ]\n"
	if err := f.eng.LoadBytes("rules.yaml", []byte(bad)); err == nil {
		t.Fatal("bad file loaded")
	}
	if err := f.eng.LoadBytes("other.yaml", []byte(bad)); err == nil {
		t.Fatal("bad file loaded")
	}
	got := f.eng.Evaluate(&d)
	if len(got) != 1 || got[0].Rule.Name != "good" || f.eng.Rules().Len() != 1 {
		t.Fatalf("rules in force changed: %d rules, fired %v", f.eng.Rules().Len(), got)
	}
	// A second file whose rule name clashes is rejected too.
	err := f.eng.LoadBytes("other.yaml", []byte("- name: good\n  when: 'true'\n  actions: [ {log: {message: x}} ]\n"))
	if !errors.Is(err, response.ErrDuplicateRule) {
		t.Fatalf("clash: %v", err)
	}
	// Files run in name order; removing one takes its rules out.
	if err := f.eng.LoadBytes("a-first.yaml", []byte("- name: first\n  when: 'true'\n  actions: [ {log: {message: x}} ]\n")); err != nil {
		t.Fatal(err)
	}
	if got := f.eng.Evaluate(&d); len(got) != 2 || got[0].Rule.Name != "first" {
		t.Fatalf("order: %v", got)
	}
	f.eng.RemoveFile("a-first.yaml")
	if f.eng.Rules().Len() != 1 {
		t.Fatal("remove")
	}
}
