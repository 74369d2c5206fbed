package logic

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cordonsec/cordon/ioc"
)

// TestHostForms: DNS names and URL hosts are compared in the atomic sets'
// form: internationalized names in IDNA ASCII, a padded name or an
// address with a trailing dot equals nothing; registry value names are
// joined as they are.
func TestHostForms(t *testing.T) {
	eval := func(c Cond, ev ioc.Event) bool {
		s, err := Compile([]*Tree{{ID: "t", Engine: ioc.EngineSTIX, Root: leaf(t, c)}})
		require.NoError(t, err)
		return len(s.Eval(&ev, t0, nil)) > 0
	}
	dns := func(q string, answers ...string) ioc.Event {
		e := base(ioc.EventDNS, "linux")
		e.DNS = &ioc.DNSEvent{Query: q, Answers: answers}
		return e
	}
	web := func(u string) ioc.Event {
		e := base(ioc.EventHTTP, "linux")
		e.HTTP = &ioc.HTTPEvent{URL: u}
		return e
	}
	name := Cond{Fields: []Field{DNSQuery, DNSAnswer, HTTPHost}, Op: OpEq, Values: []string{"bücher.example"}, CaseSensitive: true}
	assert.True(t, eval(name, dns("BÜCHER.example")))
	assert.True(t, eval(name, dns("xn--bcher-kva.example")))
	assert.True(t, eval(name, dns("q.example", "xn--bcher-kva.example.")))
	assert.True(t, eval(name, web("http://bücher.example/x")), "the URL's host is IDNA-normalized with the URL")
	assert.False(t, eval(name, dns(" bücher.example")))
	assert.False(t, eval(name, dns("q.example", "bücher.example ")))

	addr := Cond{Fields: []Field{NetRemoteAddr, DNSAnswer, HTTPHost}, Op: OpEq, Values: []string{"192.0.2.7"}, CaseSensitive: true}
	assert.True(t, eval(addr, dns("q.example", "192.0.2.7")))
	assert.False(t, eval(addr, dns("q.example", "192.0.2.7.")), "a name, not the address")
	assert.False(t, eval(addr, dns("q.example", " 192.0.2.7")))
	assert.True(t, eval(Cond{Fields: []Field{DNSAnswer}, Op: OpContains, Values: []string{"192.0.2.7"}}, dns("q.example", " 192.0.2.7")),
		"a padded answer is still seen by a substring test")

	reg := base(ioc.EventRegistry, "windows")
	reg.Registry = &ioc.RegistryEvent{Key: `HKLM\Software\Run`, ValueName: "Evil "}
	path := Cond{Fields: []Field{RegPath}, Op: OpEq, Values: []string{`HKLM\Software\Run\evil`}}
	assert.False(t, eval(path, reg), `"Evil " is another value than "Evil"`)
	reg.Registry.ValueName = "EVIL"
	assert.True(t, eval(path, reg))
}
