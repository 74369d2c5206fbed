package pipeline

import (
	"context"
	"time"

	"github.com/cordonsec/cordon/isolation"
	"github.com/cordonsec/cordon/response"
)

// ManagerIsolator is a response.Isolator over the local isolation
// Manager: a response engine running on the host itself isolates it
// directly, without a command over the bus. Now is the clock the request's
// absolute deadline is turned into a duration with (nil: time.Now).
type ManagerIsolator struct {
	Manager *isolation.Manager
	Now     func() time.Time
}

// Isolate implements response.Isolator: automatic mode, until the later of
// req.Until and the deadline in force.
func (mi ManagerIsolator) Isolate(ctx context.Context, req response.IsolateRequest) (time.Time, error) {
	now := time.Now
	if mi.Now != nil {
		now = mi.Now
	}
	d := req.Until.Sub(now())
	if d < time.Second {
		d = time.Second
	}
	st, err := mi.Manager.Isolate(ctx, isolation.Request{Mode: isolation.ModeAutomatic, Duration: d, Reason: req.Reason,
		Requester: "rule", CommandID: req.ID})
	if err != nil {
		return time.Time{}, err
	}
	return st.Deadline, nil
}

// Release implements response.Isolator.
func (mi ManagerIsolator) Release(ctx context.Context, req response.ReleaseRequest) error {
	_, err := mi.Manager.Release(ctx, isolation.ReleaseRequest{Reason: req.Reason, Requester: "rule", CommandID: req.ID})
	return err
}
