package pipeline

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/cordonsec/cordon/response"
)

// LocalIsolator is a response.Isolator that isolates nothing: it keeps,
// per host, the deadline asked for (the later of the one in force and the
// new one, never shortening it), for replaying detections to see what the
// rules would do. It is safe for concurrent use.
type LocalIsolator struct {
	mu        sync.Mutex
	deadlines map[string]time.Time
}

// Isolate implements response.Isolator.
func (l *LocalIsolator) Isolate(_ context.Context, req response.IsolateRequest) (time.Time, error) {
	if req.Host == "" {
		return time.Time{}, fmt.Errorf("isolate: no host")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.deadlines == nil {
		l.deadlines = map[string]time.Time{}
	}
	d := l.deadlines[req.Host]
	if req.Until.After(d) {
		d = req.Until
	}
	l.deadlines[req.Host] = d
	return d, nil
}

// Release implements response.Isolator.
func (l *LocalIsolator) Release(_ context.Context, req response.ReleaseRequest) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.deadlines, req.Host)
	return nil
}

// Deadline returns host's deadline, and whether the host is isolated at now.
func (l *LocalIsolator) Deadline(host string, now time.Time) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	d, ok := l.deadlines[host]
	return d, ok && now.Before(d)
}
