package wfp

import (
	"errors"

	"github.com/cordonsec/cordon/isolation"
)

// Sentinel errors. Errors from this package also wrap the isolation
// sentinels (isolation.ErrReadBack, isolation.ErrUnsupported,
// isolation.ErrClosed, isolation.ErrInvalidRule) where the Enforcer
// contract asks for them.
var (
	// ErrConnectionsLeft is isolation.ErrConnectionsLeft (kept under this
	// name for callers written against it): Apply wraps it when the
	// filters are in force but some existing TCP connections that the plan
	// does not allow could not be ended. It implies isolation.ErrReadBack.
	// The caller retries Apply, which tries again.
	ErrConnectionsLeft = isolation.ErrConnectionsLeft

	// ErrSessionLayout is returned on Windows when the wf.Session value does
	// not have the layout this package was written against, so that the
	// engine handle needed for transactions cannot be reached safely.
	ErrSessionLayout = errors.New("unexpected github.com/tailscale/wf Session layout")
)
