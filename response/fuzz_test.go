package response_test

import (
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/cordonsec/cordon/response"
)

// FuzzCompile: any bytes give rules or LoadErrors, never a panic, and a
// compiled file's rules evaluate and explain without panicking.
func FuzzCompile(f *testing.F) {
	if data, err := os.ReadFile("testdata/rules.yaml"); err == nil {
		f.Add(data)
	}
	for _, s := range []string{
		"",
		"[]",
		"- name: a\n  when: 'true'\n  actions: [ {log: {message: x}} ]\n",
		"- name: a\n  when: |\n    indicator.kind == \"md5\" &&\n      detection.severity >= \"high\"\n  actions: [ {isolate: {duration: 1h, reason: \"{{ indicator.value }}\"}} ]\n  suppress: {key: host.id, period: 1h}\n",
		"- name: a\n  when: '\"x\" in indicator.tags'\n  actions: [ {tag: {name: \"t-{{ host.id }}\"}} ]\n  tests: {match: [ {host: {id: h}, engine: atomic, indicators: [{kind: md5, value: aa, tags: [x]}]} ]}\n",
		"- &a {name: a}\n- *a\n",
		"- name: a\n  when: \"{{\"\n",
		"- name: a\n  when: 1..100000000 | len() > 0\n  actions: [ {log: {message: x}} ]\n",
		"---\n- a\n---\n- b\n",
		"- name: a\n  when: 'true'\n  actions: [ {notify: {subject: a.b, message: \"{{ detection.indicators[9].value }}\"}} ]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// An input that takes this long is a bug (a parser or expression
		// that does not terminate in reasonable time): crash with it, so
		// the fuzzer keeps it.
		watchdog := time.AfterFunc(30*time.Second, func() { panic(fmt.Sprintf("input takes over 30s: %q", data)) })
		defer watchdog.Stop()
		file, err := response.Compile(response.LoadConfig{MaxExprNodes: 200}, "fuzz.yaml", data)
		if err != nil {
			var les response.LoadErrors
			if !errors.As(err, &les) || len(les) == 0 {
				t.Fatalf("error %T %v is not LoadErrors", err, err)
			}
			for _, e := range les {
				if e.Err == nil || e.File != "fuzz.yaml" {
					t.Fatalf("bad load error %#v", e)
				}
				_ = e.Error()
			}
			return
		}
		rs, err := response.NewRuleSet(file)
		if err != nil {
			t.Fatal(err)
		}
		d := detection("d", "h", "atomic", ind{id: "i", kind: "md5", value: "00112233445566778899aabbccddeeff", tags: []string{"x"}})
		a, b := rs.Evaluate(&d, t0), rs.EvaluateAll(&d, t0)
		if len(a) != len(b) {
			t.Fatalf("index changed the outcome: %d vs %d", len(a), len(b))
		}
		_ = rs.Explain(&d, t0).Text()
	})
}
