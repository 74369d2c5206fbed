package isolation

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Action is what a Command asks for.
type Action string

// The command actions.
const (
	ActionIsolate Action = "isolate"
	ActionRelease Action = "release"
	ActionStatus  Action = "status"
)

// Command is an isolate, release or status command whose signature,
// expiry and replay protection the bus has already verified. Requester is
// the verified signer.
type Command struct {
	ID            string   `json:"id"`                       // unique; a redelivered id is answered without acting again
	Action        Action   `json:"action"`                   // isolate, release or status
	Mode          Mode     `json:"mode,omitzero"`            // isolate: automatic or manual
	Duration      Duration `json:"duration,omitzero"`        // isolate: zero means the mode's default
	UntilReleased bool     `json:"until_released,omitempty"` // isolate, manual only
	Reason        string   `json:"reason,omitempty"`
	Requester     string   `json:"requester,omitempty"`
}

// Result answers a Command with the resulting status.
type Result struct {
	CommandID string `json:"command_id"`
	OK        bool   `json:"ok"`
	Duplicate bool   `json:"duplicate,omitempty"` // the id was seen recently; nothing was done again
	Error     string `json:"error,omitempty"`
	Status    Status `json:"status"`
}

// HandleCommand carries out a verified command and answers with the
// resulting status. Errors are in Result.Error (and Result.OK is false);
// an isolate or release command whose id was handled recently (the last 64
// ids, persisted) is not carried out again.
func (m *Manager) HandleCommand(ctx context.Context, c Command) Result {
	res := Result{CommandID: c.ID}
	fail := func(err error) Result {
		res.Error = err.Error()
		res.Status = m.Status()
		return res
	}
	switch c.Action {
	case ActionStatus:
		res.OK, res.Status = true, m.Status()
		return res
	case ActionIsolate, ActionRelease:
	default:
		return fail(fmt.Errorf("isolation: %w: unknown action %q (want isolate, release or status)", ErrInvalidConfig, c.Action))
	}
	if c.ID == "" {
		return fail(fmt.Errorf("isolation: %w: command without id", ErrInvalidConfig))
	}
	m.mu.Lock()
	dup := slices.Contains(m.cmds, c.ID)
	if !dup {
		m.cmds = append(m.cmds, c.ID)
		if len(m.cmds) > maxRecentCommands {
			m.cmds = slices.Delete(m.cmds, 0, len(m.cmds)-maxRecentCommands)
		}
	}
	m.mu.Unlock()
	if dup {
		res.OK, res.Duplicate, res.Status = true, true, m.Status()
		return res
	}
	var st Status
	var err error
	if c.Action == ActionIsolate {
		st, err = m.Isolate(ctx, Request{Mode: c.Mode, Duration: time.Duration(c.Duration), UntilReleased: c.UntilReleased,
			Reason: c.Reason, Requester: c.Requester, CommandID: c.ID})
	} else {
		st, err = m.Release(ctx, ReleaseRequest{Reason: c.Reason, Requester: c.Requester, CommandID: c.ID})
	}
	if err != nil {
		var ae *ApplyError
		if !errors.As(err, &ae) && !errors.Is(err, ErrResolve) {
			// Not carried out (invalid, not restored, cancelled): a
			// redelivery may try again.
			m.mu.Lock()
			m.cmds = slices.DeleteFunc(m.cmds, func(id string) bool { return id == c.ID })
			m.mu.Unlock()
		}
		return fail(err)
	}
	res.OK, res.Status = true, st
	return res
}
