// Package isolation isolates a host from the network, after the "network
// isolation" of endpoint protection products: the Manager state machine
// (off, isolating, on, releasing, failed), its modes (automatic, manual)
// with their deadlines and their own exclusion lists, the standard network
// profiles, persistence of the state with its absolute deadline, the
// handler for verified bus commands, and the local control socket with its
// password-protected release.
//
// What stays allowed while the host is isolated is a Plan: loopback and the
// management endpoints (the bus, resolved to addresses before the block
// goes in and every minute after), always; plus allow Rules (the mode's
// exclusions and the ICMPv6 that IPv6 neighbour discovery needs). An
// Enforcer, the interface each platform adapter implements (nftables on
// Linux, WFP on Windows, pf on macOS), puts a plan into effect, ending the
// connections it does not allow, and reads its rules back before it reports
// success. The Manager reports "on" only then: an Apply that fails (rules
// that read back wrong, ErrReadBack; rules in force but connections left
// open, ErrConnectionsLeft) leaves the state failed, and retried.
// isolation/isolationtest holds a fake Enforcer and the
// conformance suite every adapter runs.
//
// # Usage
//
// An agent builds one Manager at start, restores the persisted state, and
// feeds it verified commands:
//
//	m, err := isolation.New(isolation.Config{
//		Host:       hostID,
//		Enforcer:   enforcer, // the platform adapter
//		Store:      isolation.FileStore{Path: "/var/lib/cordon/isolation.json"},
//		Sink:       auditSink, // the bus
//		Management: []isolation.ManagementEndpoint{{Address: "nats.example.com:4222"}},
//		Automatic:  isolation.ModeConfig{Exclusions: policyExclusions},
//		Manual:     isolation.ModeConfig{Exclusions: hostExclusions},
//	})
//	...
//	err = m.Restore(ctx) // re-applies an isolation whose deadline has not passed
//	...
//	result := m.HandleCommand(ctx, verifiedCommand)
//
// Durations: zero means the mode's default (8h unless configured), never
// "forever"; Request.UntilReleased exists for manual mode only. Isolating
// an isolated host extends the deadline to the later one, never earlier,
// and re-applies if the mode (so the exclusion list) changes; an automatic
// request on a manual isolation held until released changes nothing but
// the audit trail (until released stays manual, with the host's list). The Manager
// releases by itself at the deadline, and optionally (Config.DeadMan) when
// the management channel has been reported down for a period.
//
// Rules have a one-line text form, used in configuration and plan text:
//
//	out tcp remote=192.0.2.0/24,2001:db8::/32 lport=1024-65535 rport=443 app=/usr/bin/curl name=proxy
//
// ParseRule reports a bad rule with its column and field. A Plan's String
// is canonical (Equal compares it); Plan.Allows is the reference semantics
// of a plan.
//
// The local control socket (ListenControl, ControlClient) serves status,
// release with the password whose argon2id hash is configured (see
// HashPassword), and the list of exclusions in force while isolated. Wrong
// passwords are refused, audited and rate limited.
//
// # Concurrency
//
// Manager is safe for concurrent use: transitions (Isolate, Release,
// SetExclusions, Restore and the Manager's own deadline, refresh, retry
// and dead-man work) are serialized, and Status never waits for one.
// Close waits for a transition in progress, so it must not be called from
// the Enforcer, Store or Sink while the Manager is calling them.
// ControlServer, ControlClient, FileStore and MemoryStore are safe for
// concurrent use. Plan, Rule, Endpoint and Exclusions are values, safe to
// share when not mutated. Time comes from the time package, so tests run
// the Manager inside testing/synctest bubbles; the control socket's rate
// limiter takes an injected clock.
//
// # Platform support
//
// The Manager, plans and persistence are portable. The control socket
// checks its peer's credentials with SO_PEERCRED on Linux and
// LOCAL_PEERCRED on macOS; on other platforms (Windows included)
// ListenControl returns an error wrapping ErrUnsupported rather than serve
// an unchecked socket. Rules matching an application path are put in force
// only when the Enforcer reports Capabilities.Applications; otherwise the
// Manager leaves them out (fewer flows allowed, never more) and lists them
// in Status.Skipped.
package isolation
