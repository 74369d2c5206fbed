package pf

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/cordonsec/cordon/isolation"
	"github.com/cordonsec/cordon/isolation/isolationtest"
)

func newTestEnforcer(t *testing.T, pfctl *fakePfctl, dir string) *Enforcer {
	t.Helper()
	e, err := New(Config{Runner: pfctl, StateDir: dir})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

func TestConformance(t *testing.T) {
	isolationtest.RunHost(t, func(t *testing.T) isolationtest.Host {
		pfctl := newFakePfctl()
		dir := t.TempDir()
		t.Cleanup(func() { assertNeverDisabled(t, pfctl) })
		return isolationtest.Host{
			Enforcer: newTestEnforcer(t, pfctl, dir),
			// Observe through a separate enforcer, as another process would.
			Observe: func(ctx context.Context) (isolation.Observation, error) {
				o := newTestEnforcer(t, pfctl, dir)
				defer o.Close()
				return o.Observe(ctx)
			},
			Reopen: func(t *testing.T) isolation.Enforcer { return newTestEnforcer(t, pfctl, dir) },
			Tamper: func(ctx context.Context) error {
				// An administrator deletes some of the anchor's rules.
				_, _, err := pfctl.Run(ctx, []byte("block drop quick inet all\n"), "-a", DefaultAnchor, "-f", "-")
				return err
			},
			Probe: func(ctx context.Context, f isolation.Flow) (bool, error) {
				return pfctl.probe(DefaultAnchor, f), nil
			},
		}
	})
}

func assertNeverDisabled(t *testing.T, pfctl *fakePfctl) {
	t.Helper()
	for _, c := range pfctl.callLog() {
		if c == "-d" || strings.HasPrefix(c, "-F") {
			t.Errorf("pfctl %s: cordon must never disable pf or flush outside its anchor", c)
		}
	}
}

func TestNewUnsupportedOffDarwin(t *testing.T) {
	if runtime.GOOS == "darwin" {
		t.Skip("pfctl exists on macOS")
	}
	if _, err := New(Config{}); !errors.Is(err, isolation.ErrUnsupported) {
		t.Fatalf("New(Config{}) = %v, want ErrUnsupported", err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		cfg Config
		ok  bool
	}{
		{Config{}, true},
		{Config{Anchor: "com.apple/000.cordon", StateDir: "/var/db/x"}, true},
		{Config{Anchor: "com.apple/*"}, false},
		{Config{Anchor: "com.apple/../x"}, false},
		{Config{Anchor: "/abs"}, false},
		{Config{Anchor: "a b"}, false},
		{Config{StateDir: "relative"}, false},
	} {
		err := c.cfg.Validate()
		if (err == nil) != c.ok || err != nil && !errors.Is(err, isolation.ErrInvalidConfig) {
			t.Errorf("Validate(%+v) = %v, want ok=%v", c.cfg, err, c.ok)
		}
	}
}

func TestApplyCommandSequence(t *testing.T) {
	pfctl := newFakePfctl()
	e := newTestEnforcer(t, pfctl, t.TempDir())
	defer e.Close()
	if err := e.Apply(context.Background(), isolationtest.PlanA()); err != nil {
		t.Fatal(err)
	}
	calls := pfctl.callLog()
	want := []string{
		"-a com.apple/cordon -s rules",
		"-s info",
		"-E",
		"-a com.apple/cordon -n -f -",
		"-a com.apple/cordon -f -",
		"-a com.apple/cordon -s rules",
		"-s info",
		"-s References",
		"-s rules",
		"-s states",
	}
	if !slices.Equal(calls, want) {
		t.Fatalf("pfctl calls\n%s\nwant\n%s", strings.Join(calls, "\n"), strings.Join(want, "\n"))
	}
	// The same plan again loads nothing and takes no second token.
	if err := e.Apply(context.Background(), isolationtest.PlanA()); err != nil {
		t.Fatal(err)
	}
	for _, c := range pfctl.callLog()[len(want):] {
		if strings.Contains(c, "-f") || c == "-E" {
			t.Fatalf("second Apply of the same plan ran pfctl %s", c)
		}
	}
}

func TestSyntaxCheckFailureLoadsNothing(t *testing.T) {
	pfctl := newFakePfctl()
	e := newTestEnforcer(t, pfctl, t.TempDir())
	defer e.Close()
	ctx := context.Background()
	if err := e.Apply(ctx, isolationtest.PlanA()); err != nil {
		t.Fatal(err)
	}
	pfctl.failOn["-a com.apple/cordon -n -f -"] = "stdin:7: syntax error\n"
	err := e.Apply(ctx, isolationtest.PlanB())
	if !errors.Is(err, ErrPfctl) || !strings.Contains(err.Error(), "stdin:7: syntax error") {
		t.Fatalf("Apply = %v, want the pfctl syntax error", err)
	}
	calls := pfctl.callLog()
	i := lastIndex(calls, "-a com.apple/cordon -n -f -")
	if i < 0 || slices.Contains(calls[i+1:], "-a com.apple/cordon -f -") {
		t.Fatalf("the ruleset was loaded after its syntax check failed: %v", calls)
	}
	o, err := e.Observe(ctx)
	if err != nil || !o.Active || !o.Plan.Equivalent(isolationtest.PlanA()) {
		t.Fatalf("after a failed syntax check: %+v, %v; want plan A in force", o, err)
	}
}

func TestLoadFailureKeepsPreviousRules(t *testing.T) {
	pfctl := newFakePfctl()
	e := newTestEnforcer(t, pfctl, t.TempDir())
	defer e.Close()
	ctx := context.Background()
	if err := e.Apply(ctx, isolationtest.PlanA()); err != nil {
		t.Fatal(err)
	}
	pfctl.failOn["-a com.apple/cordon -f -"] = "pfctl: DIOCXCOMMIT: Device busy\n"
	err := e.Apply(ctx, isolationtest.PlanB())
	if err == nil || errors.Is(err, isolation.ErrReadBack) {
		t.Fatalf("Apply = %v, want a load error that is not ErrReadBack", err)
	}
	o, err := e.Observe(ctx)
	if err != nil || !o.Active || !o.Plan.Equivalent(isolationtest.PlanA()) {
		t.Fatalf("after a failed load: %+v, %v; want plan A in force", o, err)
	}
}

func TestApplicationRulesUnsupported(t *testing.T) {
	pfctl := newFakePfctl()
	e := newTestEnforcer(t, pfctl, t.TempDir())
	defer e.Close()
	p := isolationtest.PlanB()
	p.Rules = append(p.Rules, isolation.Rule{Direction: isolation.DirectionOut, Protocol: isolation.ProtocolTCP, Application: "/Applications/X.app/Contents/MacOS/X"})
	if err := e.Apply(context.Background(), p); !errors.Is(err, isolation.ErrUnsupported) {
		t.Fatalf("Apply = %v, want ErrUnsupported", err)
	}
	if calls := pfctl.callLog(); len(calls) != 0 {
		t.Fatalf("pfctl called for an unsupported plan: %v", calls)
	}
	if e.Capabilities().Applications {
		t.Fatal("pf reports application support")
	}
}

func TestTokenLifecycle(t *testing.T) {
	pfctl := newFakePfctl()
	// Another program already holds a reference.
	if _, _, err := pfctl.Run(context.Background(), nil, "-E"); err != nil {
		t.Fatal(err)
	}
	other := pfctl.tokens[0]
	dir := t.TempDir()
	ctx := context.Background()
	e := newTestEnforcer(t, pfctl, dir)
	if err := e.Apply(ctx, isolationtest.PlanA()); err != nil {
		t.Fatal(err)
	}
	if len(pfctl.tokens) != 2 {
		t.Fatalf("tokens %v, want the other program's and ours", pfctl.tokens)
	}
	ours := pfctl.tokens[1]
	e.Close()

	// A restarted agent releases the token the first one took.
	e2 := newTestEnforcer(t, pfctl, dir)
	defer e2.Close()
	if err := e2.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pfctl.tokens, []uint64{other}) || !pfctl.enabled {
		t.Fatalf("after Clear: tokens %v enabled %v; want only the other program's token, pf enabled", pfctl.tokens, pfctl.enabled)
	}
	if slices.Contains(pfctl.tokens, ours) {
		t.Fatal("our token still held")
	}
	if _, err := os.Stat(filepath.Join(dir, "token")); !os.IsNotExist(err) {
		t.Fatalf("token file left: %v", err)
	}
	if err := e2.Clear(ctx); err != nil {
		t.Fatalf("second Clear: %v", err)
	}
	assertNeverDisabled(t, pfctl)
}

func TestReapplyAfterReboot(t *testing.T) {
	pfctl := newFakePfctl()
	dir := t.TempDir()
	ctx := context.Background()
	e := newTestEnforcer(t, pfctl, dir)
	defer e.Close()
	if err := e.Apply(ctx, isolationtest.PlanA()); err != nil {
		t.Fatal(err)
	}
	pfctl.reboot()
	if o, err := e.Observe(ctx); err != nil || o.Active {
		t.Fatalf("after reboot: %+v, %v; want not active", o, err)
	}
	if err := e.Apply(ctx, isolationtest.PlanA()); err != nil {
		t.Fatalf("re-apply after reboot: %v", err)
	}
	if !pfctl.enabled || len(pfctl.tokens) != 1 {
		t.Fatalf("pf enabled %v tokens %v after re-apply", pfctl.enabled, pfctl.tokens)
	}
	pfctl.reboot()
	// The recorded token died with the reboot: Clear still succeeds.
	if err := e.Clear(ctx); err != nil {
		t.Fatalf("Clear with a stale token: %v", err)
	}
}

func TestKillStates(t *testing.T) {
	ap := netip.MustParseAddrPort
	pfctl := newFakePfctl()
	pfctl.states = []pfState{
		{proto: "tcp", local: ap("192.0.2.10:40000"), remote: ap("198.18.0.10:4222"), out: true},       // management: keep
		{proto: "tcp", local: ap("192.0.2.10:40001"), remote: ap("198.18.9.9:443"), out: true},         // not allowed: kill
		{proto: "tcp", local: ap("192.0.2.10:22"), remote: ap("198.18.2.5:40002"), out: false},         // ssh in from allowed host: keep
		{proto: "tcp", local: ap("192.0.2.10:22"), remote: ap("198.18.2.6:40002"), out: false},         // ssh from another: kill
		{proto: "udp", local: ap("192.0.2.10:40003"), remote: ap("198.18.4.4:53"), out: true},          // dns: keep
		{proto: "tcp", local: ap("[2001:db8::a]:40004"), remote: ap("[2001:db8:9::9]:443"), out: true}, // IPv6 not allowed: kill
		{proto: "icmp", local: ap("192.0.2.10:77"), remote: ap("198.18.5.5:77"), out: true},            // ping not allowed: kill
		{proto: "tcp", local: ap("127.0.0.1:5000"), remote: ap("127.0.0.1:40005"), out: false},         // loopback: keep
	}
	e := newTestEnforcer(t, pfctl, t.TempDir())
	defer e.Close()
	if err := e.Apply(context.Background(), isolationtest.PlanB()); err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, s := range pfctl.states {
		left = append(left, s.remote.String())
	}
	want := []string{"198.18.0.10:4222", "198.18.2.5:40002", "198.18.4.4:53", "127.0.0.1:40005"}
	if !slices.Equal(left, want) {
		t.Fatalf("states left %v, want %v", left, want)
	}
	var kills []string
	for _, c := range pfctl.callLog() {
		if strings.HasPrefix(c, "-k") {
			kills = append(kills, c)
		}
	}
	wantKills := []string{"-k 192.0.2.10 -k 198.18.9.9", "-k 198.18.2.6 -k 192.0.2.10", "-k 2001:db8::a -k 2001:db8:9::9", "-k 192.0.2.10 -k 198.18.5.5"}
	if !slices.Equal(kills, wantKills) {
		t.Fatalf("kills %q, want %q", kills, wantKills)
	}
}

func TestKillFailureIsReported(t *testing.T) {
	pfctl := newFakePfctl()
	pfctl.states = []pfState{{proto: "tcp", local: netip.MustParseAddrPort("192.0.2.10:40001"), remote: netip.MustParseAddrPort("198.18.9.9:443"), out: true}}
	pfctl.failOn["-k"] = "pfctl: DIOCKILLSTATES: Operation not permitted\n"
	e := newTestEnforcer(t, pfctl, t.TempDir())
	defer e.Close()
	err := e.Apply(context.Background(), isolationtest.PlanB())
	if !errors.Is(err, ErrStatesLeft) || !errors.Is(err, isolation.ErrReadBack) {
		t.Fatalf("Apply = %v, want ErrStatesLeft and ErrReadBack", err)
	}
}

func TestReadBackDetectsForeignRule(t *testing.T) {
	pfctl := newFakePfctl()
	e := newTestEnforcer(t, pfctl, t.TempDir())
	defer e.Close()
	// A pfctl that loads one rule more than it was given, as if something
	// else wrote to the anchor between load and read-back.
	r := &addRuleRunner{fakePfctl: pfctl, extra: "pass in quick inet proto tcp from any to any port 3389 keep state"}
	e.run = r
	err := e.Apply(context.Background(), isolationtest.PlanB())
	if !errors.Is(err, isolation.ErrReadBack) || !strings.Contains(err.Error(), "+ pass in quick inet proto tcp from any to any port = 3389") {
		t.Fatalf("Apply = %v, want ErrReadBack naming the extra rule", err)
	}
}

type addRuleRunner struct {
	*fakePfctl
	extra string
}

func (a *addRuleRunner) Run(ctx context.Context, stdin []byte, args ...string) ([]byte, []byte, error) {
	if strings.Join(args, " ") == "-a com.apple/cordon -f -" {
		stdin = append(append([]byte(nil), stdin...), []byte(a.extra+"\n")...)
	}
	return a.fakePfctl.Run(ctx, stdin, args...)
}

func lastIndex(s []string, v string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == v {
			return i
		}
	}
	return -1
}

// TestAnchorMustBeEvaluated: rules loaded into an anchor the main ruleset
// does not evaluate (a pf.conf without "com.apple/*"), or evaluates only
// for some packets or after a "pass quick", filter nothing or not
// everything: Apply must not report the host isolated.
func TestAnchorMustBeEvaluated(t *testing.T) {
	cases := []struct {
		name   string
		anchor string
		main   []string
		ok     bool
	}{
		{"stock pf.conf", "", stockMainRuleset, true},
		{"anchor named exactly", "", []string{`anchor "com.apple/cordon" all`}, true},
		{"custom anchor under com.apple", "com.apple/000.cordon", stockMainRuleset, true},
		{"no anchor rule", "", []string{`block drop in all`, `pass out all flags S/SA keep state`}, false},
		{"empty main ruleset", "", nil, false},
		{"only a scrub anchor", "", []string{`scrub-anchor "com.apple/*" all fragment reassemble`}, false},
		{"another anchor", "", []string{`anchor "org.example/*" all`}, false},
		{"conditional anchor", "", []string{`anchor "com.apple/*" on en0 all`}, false},
		{"pass quick before the anchor", "", []string{`pass in quick on en1 all flags S/SA keep state`, `anchor "com.apple/*" all`}, false},
		{"pass without quick before the anchor", "", []string{`pass out all flags S/SA keep state`, `anchor "com.apple/*" all`}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pfctl := newFakePfctl()
			pfctl.main = c.main
			e, err := New(Config{Runner: pfctl, StateDir: t.TempDir(), Anchor: c.anchor})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			err = e.Apply(context.Background(), isolationtest.PlanA())
			if c.ok {
				if err != nil {
					t.Fatalf("Apply: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrAnchorNotEvaluated) || !errors.Is(err, isolation.ErrReadBack) {
				t.Fatalf("Apply = %v, want an error wrapping ErrAnchorNotEvaluated and isolation.ErrReadBack", err)
			}
		})
	}
}
