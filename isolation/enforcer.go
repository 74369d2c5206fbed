package isolation

import "context"

// Enforcer puts a Plan into effect on the host's firewall. Each platform
// has an adapter (nftables, WFP, pf); isolationtest has a fake and the
// conformance suite every adapter must pass.
//
// The contract:
//
//   - Apply(ctx, p) makes the host's state "isolated with exactly plan p":
//     every flow p does not allow (see Plan.Allows, the reference
//     semantics) is blocked in both directions, for IPv4 and IPv6;
//     loopback and p's management endpoints are always allowed; forwarded
//     traffic is not touched. It first calls p.Validate and returns that
//     error (wrapping ErrInvalidRule) without changing anything.
//   - Apply is idempotent: applying the same plan twice changes nothing.
//     Applying another plan replaces the previous one; rules are never
//     patched one by one but installed as one atomic batch, so that at no
//     moment is the host neither isolated under the old plan nor isolated
//     under the new one. On any error but ErrReadBack the previous state
//     stays in force; after ErrReadBack the state is unknown and the caller
//     retries or clears.
//   - Apply ends the existing connections that p does not allow (a blanket
//     "accept established" rule is forbidden). This can only happen once
//     the new rules are in force; when it fails, Apply returns an error
//     wrapping ErrConnectionsLeft (which implies ErrReadBack): p's rules
//     are then in force, the host is not yet reported isolated, and
//     applying p again retries ending the connections.
//   - Apply reads the rules back from the platform and returns nil only if
//     they are the plan's; otherwise it returns an error wrapping
//     ErrReadBack. It also repairs a state changed behind its back
//     (reconcile to the desired state).
//   - A rule with an Application that the platform cannot match makes
//     Apply fail with an error wrapping ErrUnsupported and change nothing
//     (the Manager drops such rules beforehand for an enforcer whose
//     Capabilities say so).
//   - Apply with a done ctx returns an error wrapping ctx.Err() and changes
//     nothing.
//   - Clear(ctx) removes everything the enforcer installed; the host is no
//     longer isolated. It is idempotent: clearing a host that is not
//     isolated returns nil.
//   - Close releases the enforcer's own resources (sockets, handles). It
//     does NOT clear the rules: isolation survives the agent process, and a
//     new Enforcer on the same host sees and replaces the state. After
//     Close, Apply and Clear return an error wrapping ErrClosed; Close
//     again returns nil.
//
// Implementations must be safe for concurrent use; the Manager serializes
// its own calls but does not assume exclusive use.
type Enforcer interface {
	Apply(ctx context.Context, p Plan) error
	Clear(ctx context.Context) error
	Close() error
}

// Observation is what an enforcer reads back from the platform.
type Observation struct {
	Active bool // the host is isolated by this enforcer's rules
	Plan   Plan // the plan in force, as read back; empty when not Active
}

// Observer is implemented by enforcers that can report the state in force
// on the platform, by reading it back (the same reading Apply verifies
// with). A plan read back may lose rule names and may report management
// endpoints as plain rules; the conformance suite compares with
// Plan.Equivalent, and uses Observe when present. After Close, Observe
// returns an error wrapping ErrClosed, like Apply and Clear.
type Observer interface {
	Observe(ctx context.Context) (Observation, error)
}

// Capabilities describes what an enforcer's platform can match.
type Capabilities struct {
	// Applications: rules may match by application path.
	Applications bool
}

// Capable is implemented by enforcers that report Capabilities. An
// enforcer that does not implement it is assumed unable to match
// applications.
type Capable interface {
	Capabilities() Capabilities
}

// EnforcerCapabilities returns e's Capabilities, or the zero value when e
// does not implement Capable.
func EnforcerCapabilities(e Enforcer) Capabilities {
	if c, ok := e.(Capable); ok {
		return c.Capabilities()
	}
	return Capabilities{}
}
