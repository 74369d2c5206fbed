package nftables

import "errors"

// Errors of this package. Apply, Clear and Observe also return errors
// wrapping the isolation package's sentinels: isolation.ErrInvalidRule for
// an invalid plan, isolation.ErrUnsupported for application rules,
// isolation.ErrReadBack when the rules read back differ from the plan,
// isolation.ErrConnectionsLeft when the rules are in force but connections
// the plan does not allow could not be ended, and isolation.ErrClosed after
// Close.
var (
	// ErrNamespace marks a network namespace that cannot be opened or
	// entered (Config.NetNSPath or Config.NetNSFile).
	ErrNamespace = errors.New("nftables: network namespace unavailable")

	// ErrNetlink marks a failure to talk to the kernel over netlink
	// (nftables, sock_diag or conntrack); the wrapped error has the detail.
	ErrNetlink = errors.New("nftables: netlink request failed")
)
