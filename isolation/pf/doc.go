// Package pf is the macOS isolation.Enforcer: it isolates the host with
// the packet filter pf, through pfctl.
//
// The rules live in one anchor, DefaultAnchor ("com.apple/cordon"), which
// the stock /etc/pf.conf already evaluates through its anchor
// "com.apple/*", so pf.conf is never edited. The anchor's ruleset (see
// Ruleset and testdata/*.golden) is generated from the Plan:
//
//	pass quick on lo0 all no state                      # loopback
//	pass out quick inet proto tcp from any to 192.0.2.1 port 4222 keep state   # management
//	pass ... quick ... keep state                       # one per rule, direction and family
//	block drop quick inet all
//	block drop quick inet6 all
//
// Only the allowed flows keep state, so their replies pass; there is no
// rule passing established traffic in general. A "quick" match inside the
// anchor ends the evaluation of the whole ruleset, so the main ruleset's
// later rules cannot reopen the host. Anchors that pf.conf evaluates
// before this one, such as other "com.apple/*" anchors whose names sort
// first, can still pass traffic with their own "quick" rules; set
// Config.Anchor to a name that sorts first (e.g. "com.apple/000.cordon")
// where that matters. pf cannot match an application: Apply fails with
// isolation.ErrUnsupported for a plan with application rules, and
// Capabilities says so. Unlike the Enforcer contract asks, forwarded
// traffic is blocked too: pf has no match for "not to or from this host"
// that also covers broadcast, multicast and the unconfigured source a
// DHCP client sends from, so the block rules apply to every packet, and a
// Mac sharing its connection stops forwarding while isolated.
//
// Apply runs, through the Runner:
//
//	pfctl -a ANCHOR -s rules          (skip loading when already the plan's)
//	pfctl -s info / -s References     (is pf enabled with our token?)
//	pfctl -E                          (if not: take a reference, keep the token)
//	pfctl -a ANCHOR -n -f -           (syntax check, ruleset on stdin)
//	pfctl -a ANCHOR -f -              (load: pfctl replaces the anchor atomically)
//	pfctl -a ANCHOR -s rules          (read back, compared rule by rule)
//	pfctl -s rules                    (the main ruleset evaluates the anchor: an
//	                                   unconditional anchor "com.apple/*" or
//	                                   anchor "ANCHOR", no "pass quick" before it)
//	pfctl -s states, pfctl -k SRC -k DST   (kill states the plan does not allow)
//
// and Clear runs "pfctl -a ANCHOR -F all" and "pfctl -X TOKEN". pf is
// never disabled with "pfctl -d": releasing the token leaves pf enabled
// for the other holders of references. The token and the plan are kept in
// Config.StateDir so that a restarted agent can release the token and
// Observe the plan. States are killed by host pair, the finest selector
// pfctl -k has: an allowed state between the same two hosts is killed too
// and set up again. pf keeps no state for the rules cordon loads with a
// reboot: the isolation Manager re-applies the plan on start.
//
// # Usage
//
//	e, err := pf.New(pf.Config{Logger: log})
//	if err != nil { ... }
//	defer e.Close()
//	err = e.Apply(ctx, plan)
//	...
//	err = e.Clear(ctx)
//
// # Concurrency
//
// An Enforcer is safe for concurrent use; its calls are serialized. The
// Runner is called by one goroutine at a time.
//
// # Platform support
//
// Verified here, on Linux, against a fake pfctl that parses the rulesets
// it is given (rejecting what the parser cannot read, as "stdin:N: syntax
// error"), expands their lists and prints them back the way "pfctl -s
// rules" does (hosts without masks, "port = N", ICMP type names, "flags
// S/SA keep state"), keeps reference tokens and a state table, and decides
// sample flows by pf's first-quick-match rule: the isolation conformance
// suite with probes against isolation.Plan.Allows, the exact pfctl command
// sequence, failed syntax check and failed load keeping the previous
// rules, token taking and release across a restart and a reboot, which
// states are killed, read-back of a foreign rule, golden rulesets
// (testdata/*.golden; go test -update rewrites them), and fuzzing of the
// rule and state parsers. For macOS the package is only built and vetted
// (GOOS=darwin go vet, go test -c).
//
// Only on a real macOS host (not done here): that pfctl accepts the
// generated rulesets; the exact text "pfctl -s rules", "-s states", "-s
// References" and "-E" print (the parsers accept the forms described
// above; the main ruleset check expects anchor lines as `anchor
// "com.apple/*" all`); token semantics; and that killing states ends the
// flows.
package pf
