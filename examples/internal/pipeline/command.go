package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/cordonsec/cordon/bus"
	"github.com/cordonsec/cordon/isolation"
)

// CommandArgs are the arguments of an isolate command on the bus: those of
// isolation.Command (as responsebus.Commands sends them) plus, from the
// console, the exclusions to use for a manual isolation.
type CommandArgs struct {
	Mode          isolation.Mode        `json:"mode,omitzero"`
	Duration      isolation.Duration    `json:"duration,omitzero"`
	UntilReleased bool                  `json:"until_released,omitempty"`
	Reason        string                `json:"reason,omitempty"`
	Exclusions    *isolation.Exclusions `json:"exclusions,omitempty"`
}

// IsolationCommand turns a verified bus command into the isolation
// Manager's Command, and returns the manual-mode exclusions it carries
// (nil when none). The issuer becomes the requester. An unknown argument or
// action is an error wrapping ErrBadCommand.
func IsolationCommand(c bus.Command) (isolation.Command, *isolation.Exclusions, error) {
	out := isolation.Command{ID: c.ID, Requester: c.Issuer}
	switch c.Action {
	case bus.ActionIsolate:
		out.Action = isolation.ActionIsolate
	case bus.ActionRelease:
		out.Action = isolation.ActionRelease
	case bus.ActionStatus:
		out.Action = isolation.ActionStatus
	default:
		return out, nil, fmt.Errorf("%w: command %s: unknown action %q", ErrBadCommand, c.ID, c.Action)
	}
	var a CommandArgs
	if len(bytes.TrimSpace(c.Args)) > 0 && !bytes.Equal(bytes.TrimSpace(c.Args), []byte("null")) {
		dec := json.NewDecoder(bytes.NewReader(c.Args))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&a); err != nil {
			return out, nil, fmt.Errorf("%w: command %s: args: %v", ErrBadCommand, c.ID, err)
		}
	}
	if a.Exclusions != nil {
		if out.Action != isolation.ActionIsolate {
			return out, nil, fmt.Errorf("%w: command %s: args.exclusions: only for an isolate command", ErrBadCommand, c.ID)
		}
		if a.Mode != isolation.ModeManual {
			return out, nil, fmt.Errorf("%w: command %s: args.exclusions: only for a manual isolation", ErrBadCommand, c.ID)
		}
		if err := a.Exclusions.Validate(); err != nil {
			return out, nil, fmt.Errorf("%w: command %s: args.exclusions: %v", ErrBadCommand, c.ID, err)
		}
	}
	out.Mode, out.Duration, out.UntilReleased, out.Reason = a.Mode, a.Duration, a.UntilReleased, a.Reason
	return out, a.Exclusions, nil
}

// HandleCommand carries out a verified bus command on m: manual
// exclusions first (SetExclusions), then the command; an isolate request
// the Manager would refuse is refused before the exclusions are touched.
// A malformed command is answered with a failed Result and an error
// wrapping ErrBadCommand (the caller dead-letters it with bus.ErrRejected).
func HandleCommand(ctx context.Context, m *isolation.Manager, c bus.Command) (isolation.Result, error) {
	ic, excl, err := IsolationCommand(c)
	if err != nil {
		return isolation.Result{CommandID: c.ID, Error: err.Error(), Status: m.Status()}, err
	}
	if excl != nil {
		req := isolation.Request{Mode: ic.Mode, Duration: time.Duration(ic.Duration), UntilReleased: ic.UntilReleased}
		if err := req.Validate(); err != nil {
			return isolation.Result{CommandID: c.ID, Error: err.Error(), Status: m.Status()}, nil
		}
		if err := m.SetExclusions(ctx, isolation.ModeManual, *excl); err != nil {
			return isolation.Result{CommandID: c.ID, Error: err.Error(), Status: m.Status()}, nil
		}
	}
	return m.HandleCommand(ctx, ic), nil
}

// NewCommand builds an unsigned bus command for host from args, issued at
// now and valid for ttl.
func NewCommand(host string, action bus.Action, args *CommandArgs, now time.Time, ttl time.Duration) (bus.Command, error) {
	c := bus.Command{Host: host, Action: action, IssuedAt: now, Expires: now.Add(ttl)}
	if args != nil {
		b, err := json.Marshal(args)
		if err != nil {
			return c, err
		}
		c.Args = b
	}
	return c, nil
}
