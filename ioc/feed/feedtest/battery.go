package feedtest

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"unicode"

	"github.com/cordonsec/cordon/ioc"
	"github.com/cordonsec/cordon/ioc/feed/logic"
)

// A Probe is one event of a Battery, named for messages.
type Probe struct {
	Name  string
	Event ioc.Event
}

// Battery returns valid events (each passes ioc.Event.Validate) that put
// value, and variants of it, in every event field some atomic indicator
// kind or logic field reads, on a Windows and on a Linux host: the
// differential tests of the parsers run an indicator compiled atomic and
// the same one as a logic tree against them and require the same result.
//
// The variants: value as given, in upper case, in lower case, with the
// case of its letters swapped, with "s" and "k" replaced by the characters
// Unicode case folding equates with them ("ſ" U+017F, "K" U+212A), padded
// with spaces, with a trailing dot, in its IDNA ASCII form, and, for a
// CIDR prefix, an address inside it. The fields: file path, name and
// digests; process name, path, parent name, command line and sha256;
// remote and local addresses; DNS query and answers; the URL, and URLs
// with value as host (one well-formed, one with a space, one with a
// port); the registry key alone, split into key and value name at its
// last backslash (also with a padded value name), and with a value name,
// and so again under each other name Windows reports the key under (see
// keyNames); the mutex name, bare and under Global\.
func Battery(value string) []Probe {
	var out []Probe
	for _, os := range []string{"windows", "linux"} {
		for _, v := range variants(value) {
			for _, s := range slots(v.text) {
				ev := Event(s.kind, os)
				s.fill(&ev)
				if ev.Validate() != nil {
					continue
				}
				out = append(out, Probe{Name: os + "/" + s.name + "/" + v.name + " " + quote(v.text), Event: ev})
			}
		}
	}
	return out
}

func quote(s string) string { return "«" + s + "»" }

type variant struct{ name, text string }

func variants(v string) []variant {
	out := []variant{{"as-is", v}, {"upper", strings.ToUpper(v)}, {"lower", strings.ToLower(v)}, {"swapped", swapCase(v)},
		{"folds", strings.NewReplacer("s", "ſ", "k", "\u212a").Replace(v)}, {"padded", " " + v + " "}, {"dot", v + "."}}
	if n, err := ioc.Normalize(ioc.KindHostname, v); err == nil && n != v {
		out = append(out, variant{"idna", n})
	}
	if p, err := netip.ParsePrefix(v); err == nil {
		out = append(out, variant{"inside", p.Masked().Addr().Next().String()})
	}
	seen := map[string]bool{}
	var uniq []variant
	for _, x := range out {
		if !seen[x.text] {
			seen[x.text] = true
			uniq = append(uniq, x)
		}
	}
	return uniq
}

func swapCase(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsUpper(r) {
			return unicode.ToLower(r)
		}
		return unicode.ToUpper(r)
	}, s)
}

type slot struct {
	name string
	kind ioc.EventKind
	fill func(*ioc.Event)
}

func slots(v string) []slot {
	key, valueName := v, ""
	if i := strings.LastIndexByte(v, '\\'); i > 0 {
		key, valueName = v[:i], v[i+1:]
	}
	file := func(name string, f ioc.FileEvent) slot {
		return slot{"file." + name, ioc.EventFile, func(e *ioc.Event) { e.File = &f }}
	}
	proc := func(name string, p ioc.ProcessEvent) slot {
		return slot{"process." + name, ioc.EventProcess, func(e *ioc.Event) { e.Process = &p }}
	}
	net := func(name string, n ioc.NetworkEvent) slot {
		return slot{"network." + name, ioc.EventNetwork, func(e *ioc.Event) { e.Network = &n }}
	}
	dns := func(name string, d ioc.DNSEvent) slot {
		return slot{"dns." + name, ioc.EventDNS, func(e *ioc.Event) { e.DNS = &d }}
	}
	http := func(name, u string) slot {
		return slot{"http." + name, ioc.EventHTTP, func(e *ioc.Event) { e.HTTP = &ioc.HTTPEvent{URL: u, Method: "GET"} }}
	}
	reg := func(name string, r ioc.RegistryEvent) slot {
		return slot{"registry." + name, ioc.EventRegistry, func(e *ioc.Event) { e.Registry = &r }}
	}
	mutex := func(name, m string) slot {
		return slot{"mutex." + name, ioc.EventMutex, func(e *ioc.Event) { e.Mutex = &ioc.MutexEvent{Name: m} }}
	}
	host := v
	if a, err := netip.ParseAddr(strings.TrimSpace(v)); err == nil && a.Is6() {
		host = "[" + v + "]"
	}
	return append([]slot{
		file("path", ioc.FileEvent{Path: v, Size: 10}),
		file("path-in-posix-dir", ioc.FileEvent{Path: "/srv/drop/" + v}),
		file("path-in-windows-dir", ioc.FileEvent{Path: `C:\Users\Public\` + v}),
		file("name", ioc.FileEvent{Name: v, Path: "/srv/drop/other.bin"}),
		file("md5", ioc.FileEvent{MD5: v}),
		file("sha1", ioc.FileEvent{SHA1: v}),
		file("sha256", ioc.FileEvent{SHA256: v}),
		file("sha512", ioc.FileEvent{SHA512: v}),
		proc("name", ioc.ProcessEvent{PID: 7, Name: v}),
		proc("path", ioc.ProcessEvent{PID: 7, Path: v}),
		proc("path-in-posix-dir", ioc.ProcessEvent{PID: 7, Path: "/usr/bin/" + v}),
		proc("path-in-windows-dir", ioc.ProcessEvent{PID: 7, Path: `C:\Windows\` + v}),
		proc("parent_name", ioc.ProcessEvent{PID: 7, Name: "sh", ParentName: v}),
		proc("command_line", ioc.ProcessEvent{PID: 7, Name: "sh", CommandLine: v}),
		proc("sha256", ioc.ProcessEvent{PID: 7, Name: "sh", SHA256: v}),
		net("remote_address", ioc.NetworkEvent{Protocol: "tcp", RemoteAddress: v, RemotePort: 443}),
		net("local_address", ioc.NetworkEvent{Protocol: "tcp", LocalAddress: v, RemoteAddress: "198.51.100.9", RemotePort: 443}),
		dns("query", ioc.DNSEvent{Query: v}),
		dns("answers", ioc.DNSEvent{Query: "q.example", Answers: []string{"198.51.100.1", v}}),
		http("url", v),
		http("host", "http://"+host+"/x"),
		http("host-with-space", "http://"+host+"/a b"),
		http("host-with-port", "https://"+host+":8443/x?q=1"),
		reg("key", ioc.RegistryEvent{Key: v}),
		reg("key-and-value", ioc.RegistryEvent{Key: key, ValueName: valueName, Data: "x"}),
		reg("key-and-padded-value", ioc.RegistryEvent{Key: key, ValueName: valueName + " "}),
		reg("key-with-value", ioc.RegistryEvent{Key: v, ValueName: "x"}),
		mutex("name", v),
		mutex("global", `Global\`+v),
	}, regSlots(v, reg)...)
}

// regSlots returns the registry slots of v's other names (keyNames).
func regSlots(v string, reg func(string, ioc.RegistryEvent) slot) []slot {
	var out []slot
	for _, n := range keyNames(v) {
		key, valueName := n.text, ""
		if i := strings.LastIndexByte(key, '\\'); i > 0 {
			key, valueName = key[:i], key[i+1:]
		}
		out = append(out,
			reg("key/"+n.name, ioc.RegistryEvent{Key: n.text}),
			reg("key-and-value/"+n.name, ioc.RegistryEvent{Key: key, ValueName: valueName, Data: "x"}),
			reg("key-with-value/"+n.name, ioc.RegistryEvent{Key: n.text, ValueName: "x"}))
	}
	return out
}

// sid is the user the registry probes put HKEY_CURRENT_USER keys under.
const sid = "S-1-5-21-1004336348-1177238915-682003330-1001"

// keyNames returns other names of the registry key v (a hive, "\" and the
// rest), as drivers and Sysmon report keys: an HKEY_CURRENT_USER key under
// HKEY_USERS\<SID> (also in the kernel's form, and under .DEFAULT, which
// is no user's hive and so another key), under <SID>_Classes when it is
// under Software\Classes; an HKEY_CLASSES_ROOT key under the Software\Classes
// of HKLM, of HKCU and of HKEY_USERS\<SID>, and under <SID>_Classes; and,
// as other keys, an HKEY_LOCAL_MACHINE key under HKEY_USERS\<SID> and,
// when it is under Software\Classes, under HKEY_CLASSES_ROOT. Padding
// around v is kept. It returns nil when v does not start with one of
// these hives.
func keyNames(v string) []variant {
	trimmed := strings.TrimLeft(v, " ")
	lead := v[:len(v)-len(trimmed)]
	hive, rest, ok := strings.Cut(trimmed, `\`)
	if !ok {
		return nil
	}
	const classes = `Software\Classes\`
	underClasses := len(rest) > len(classes) && strings.EqualFold(rest[:len(classes)], classes)
	var out []variant
	switch strings.ToLower(hive) {
	case "hkcu", "hkey_current_user":
		out = []variant{
			{"hku-sid", `HKEY_USERS\` + sid + `\` + rest},
			{"kernel-user-sid", `\REGISTRY\USER\` + sid + `\` + rest},
			{"hku-default", `HKU\.DEFAULT\` + rest},
		}
		if underClasses {
			out = append(out, variant{"hku-sid-classes", `HKU\` + sid + `_Classes\` + rest[len(classes):]})
		}
	case "hkcr", "hkey_classes_root":
		out = []variant{
			{"hklm-classes", `HKLM\SOFTWARE\Classes\` + rest},
			{"hkcu-classes", `HKCU\Software\Classes\` + rest},
			{"hku-sid-classes", `HKEY_USERS\` + sid + `_Classes\` + rest},
			{"hku-sid-software-classes", `HKU\` + sid + `\Software\Classes\` + rest},
		}
	case "hklm", "hkey_local_machine":
		out = []variant{{"hku-sid", `HKU\` + sid + `\` + rest}}
		if underClasses {
			out = append(out, variant{"hkcr", `HKCR\` + rest[len(classes):]})
		}
	}
	for i := range out {
		out[i].text = lead + out[i].text
	}
	return out
}

// Matcher compiles what a parser returned, its atomic indicators and its
// trees, and returns whether they match an event at T0 (any match of
// either). It fails tb when they do not compile.
func Matcher(tb testing.TB, inds []ioc.Indicator, trees []*logic.Tree) func(*ioc.Event) bool {
	tb.Helper()
	set, err := ioc.Compile(inds)
	if err != nil {
		tb.Fatalf("indicators: %v", err)
	}
	ts, err := logic.Compile(trees)
	if err != nil {
		tb.Fatalf("trees: %v", err)
	}
	return func(ev *ioc.Event) bool {
		return len(set.Match(ev, T0)) > 0 || len(ts.Eval(ev, T0, nil)) > 0
	}
}

// Differences returns the probes on which a and b disagree, each named
// with what a and b said.
func Differences(probes []Probe, a, b func(*ioc.Event) bool) []string {
	var diffs []string
	for i := range probes {
		p := &probes[i]
		if x, y := a(&p.Event), b(&p.Event); x != y {
			diffs = append(diffs, fmt.Sprintf("%s: %v, %v", p.Name, x, y))
		}
	}
	return diffs
}
