// Package isolationtest holds a fake isolation.Enforcer and the
// conformance suite that every Enforcer implementation runs.
//
// # Usage
//
// An adapter's test runs the suite against fresh enforcers:
//
//	func TestConformance(t *testing.T) {
//		isolationtest.RunHost(t, func(t *testing.T) isolationtest.Host {
//			ns := newTestNamespace(t) // the adapter's own helper
//			e := newEnforcerIn(t, ns)
//			return isolationtest.Host{Enforcer: e, Probe: ns.probe, Tamper: ns.flush,
//				Reopen: func(t *testing.T) isolation.Enforcer { return newEnforcerIn(t, ns) }}
//		})
//	}
//
// Run(t, newEnforcer) is the short form when only the Enforcer (and, if it
// implements it, isolation.Observer) is available. The optional Host hooks
// make the suite check effects, not just return values: Observe (state read
// back), Reopen (rules outlive Close), Tamper (Apply repairs), Probe (the
// platform's verdict on sample flows equals Plan.Allows).
//
// The Manager's tests use Fake, which records every plan as canonical text
// and lets tests inject failures, read-back corruption and hooks.
//
// # Concurrency
//
// Fake and FakeHost are safe for concurrent use. Run starts its own
// subtests; it must not be called from parallel tests that share a host.
package isolationtest
