// Package localiso is the response.Isolator of an agent that embeds the
// response engine: it calls the local isolation.Manager instead of
// sending a command over the bus.
//
// # Usage
//
//	iso := &localiso.Isolator{Manager: m} // m: the agent's *isolation.Manager, restored
//	eng, _ := response.New(response.Config{
//		Services: response.Services{Isolator: iso},
//	})
//
// # Concurrency
//
// Isolator is safe for concurrent use (the Manager serializes).
package localiso

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cordonsec/cordon/isolation"
	"github.com/cordonsec/cordon/response"
)

// ErrNotCarriedOut wraps the Manager's refusal or failure of a command.
var ErrNotCarriedOut = errors.New("localiso: isolation command not carried out")

// Isolator carries isolate and release requests out with a local
// isolation.Manager, through Manager.HandleCommand so that a request id
// already handled is not carried out again. The Manager isolates in
// automatic mode with that mode's exclusions from its own configuration
// (the policy), and extends, never shortens.
type Isolator struct {
	// Manager is the agent's Manager, restored; required.
	Manager *isolation.Manager
	// Requester is recorded as the requester. Empty: "response".
	Requester string
	// Clock gives the time the remaining duration is computed at. Nil:
	// time.Now (the Manager's own clock).
	Clock func() time.Time
}

func (l *Isolator) requester() string {
	if l.Requester == "" {
		return "response"
	}
	return l.Requester
}

// Isolate implements response.Isolator and returns the deadline in force.
func (l *Isolator) Isolate(ctx context.Context, req response.IsolateRequest) (time.Time, error) {
	now := time.Now
	if l.Clock != nil {
		now = l.Clock
	}
	d := req.Until.Sub(now())
	if d <= 0 {
		return time.Time{}, fmt.Errorf("localiso: isolate %s: deadline %v has passed", req.Host, req.Until)
	}
	res := l.Manager.HandleCommand(ctx, isolation.Command{ID: req.ID, Action: isolation.ActionIsolate,
		Mode: isolation.ModeAutomatic, Duration: isolation.Duration(d), Reason: req.Reason, Requester: l.requester()})
	if !res.OK {
		return time.Time{}, fmt.Errorf("%w: isolate %s: %s", ErrNotCarriedOut, req.Host, res.Error)
	}
	return res.Status.Deadline, nil
}

// Release implements response.Isolator.
func (l *Isolator) Release(ctx context.Context, req response.ReleaseRequest) error {
	res := l.Manager.HandleCommand(ctx, isolation.Command{ID: req.ID, Action: isolation.ActionRelease,
		Reason: req.Reason, Requester: l.requester()})
	if !res.OK {
		return fmt.Errorf("%w: release %s: %s", ErrNotCarriedOut, req.Host, res.Error)
	}
	return nil
}
