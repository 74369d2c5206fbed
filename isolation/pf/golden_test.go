package pf

import (
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cordonsec/cordon/isolation"
	"github.com/cordonsec/cordon/isolation/isolationtest"
	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// goldenPlans are the representative plans whose rulesets are kept in
// testdata; the wfp package keeps its filter sets for the same plans.
func goldenPlans(t testing.TB) map[string]isolation.Plan {
	t.Helper()
	mgmt := isolation.Endpoint{Name: "bus.example:4222", Protocol: isolation.ProtocolTCP, Port: 4222,
		Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")}}
	base := func() isolation.Plan {
		return isolation.Plan{Management: []isolation.Endpoint{mgmt}, Rules: []isolation.Rule{isolation.NeighborDiscoveryRule()}}
	}
	parse := func(lines ...string) []isolation.Rule {
		var out []isolation.Rule
		for _, l := range lines {
			r, err := isolation.ParseRule(l)
			if err != nil {
				t.Fatalf("%s: %v", l, err)
			}
			out = append(out, r)
		}
		return out
	}
	defaults := base()
	x, err := isolation.Exclusions{}.AllRules()
	if err != nil {
		t.Fatal(err)
	}
	defaults.Rules = append(defaults.Rules, x...)
	custom := base()
	custom.Rules = append(custom.Rules, parse(
		"out tcp remote=192.0.2.0/24,2001:db8:100::/48 rport=443,8000-8080 name=proxy",
		"in tcp remote=198.18.2.5 lport=22 name=ssh",
		"both icmp remote=198.18.3.0/24 icmp=0,8 name=ping4",
		"both icmpv6 remote=2001:db8::/32 icmp=128,129 name=ping6",
		"out udp remote=2001:db8:53::53 rport=53 lport=1024-65535 name=dns6",
		"in any remote=198.18.0.0/15 name=lab",
	)...)
	apps := base()
	apps.Rules = append(apps.Rules, parse(
		`out tcp rport=443 app=/Applications/Backup.app/Contents/MacOS/backup name=backup`,
		`both udp remote=192.0.2.50 app=/usr/local/bin/sync name=sync`,
	)...)
	return map[string]isolation.Plan{
		"no-exclusions":     base(),
		"default-profiles":  defaults,
		"custom-rules":      custom,
		"application-rules": apps,
	}
}

func TestGoldenRulesets(t *testing.T) {
	for name, p := range goldenPlans(t) {
		t.Run(name, func(t *testing.T) {
			got := Ruleset(p)
			// The generated text is valid for the parser pfctl's fake uses,
			// and expands to the rules the golden file's comments describe.
			if _, err := parseRules(got); err != nil {
				t.Fatalf("generated ruleset does not parse: %v\n%s", err, got)
			}
			var plan strings.Builder
			for _, l := range strings.Split(strings.TrimSuffix(p.String(), "\n"), "\n") {
				plan.WriteString("# | " + l + "\n")
			}
			got = plan.String() + got
			path := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if d := cmp.Diff(string(want), got); d != "" {
				t.Fatalf("ruleset differs from %s (-want +got):\n%s", path, d)
			}
		})
	}
}

// Every golden plan loads through pfctl and reads back equal, and pf then
// decides the suite's sample flows as the plan does.
func TestGoldenPlansApplyAndProbe(t *testing.T) {
	for name, p := range goldenPlans(t) {
		if p.HasApplicationRules() {
			continue
		}
		t.Run(name, func(t *testing.T) {
			pfctl := newFakePfctl()
			e := newTestEnforcer(t, pfctl, t.TempDir())
			defer e.Close()
			if err := e.Apply(t.Context(), p); err != nil {
				t.Fatal(err)
			}
			o, err := e.Observe(t.Context())
			if err != nil || !o.Active || !o.Plan.Equal(p) {
				t.Fatalf("observed %+v, %v", o, err)
			}
			for _, f := range isolationtest.ProbeFlowsFor(p) {
				if got, want := pfctl.probe(DefaultAnchor, f), p.Allows(f); got != want {
					t.Errorf("flow %+v: pf passes=%v, plan allows=%v", f, got, want)
				}
			}
		})
	}
}
