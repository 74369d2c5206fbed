package responsetest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/cordonsec/cordon/ioc"
	"github.com/cordonsec/cordon/response"
)

// ErrInjected is the error the fakes return when told to fail.
var ErrInjected = errors.New("responsetest: injected failure")

// Isolator is a fake response.Isolator keeping each host's deadline in
// memory: Isolate keeps the later deadline, Release forgets the host.
type Isolator struct {
	mu        sync.Mutex
	deadlines map[string]time.Time
	requests  []response.IsolateRequest
	releases  []response.ReleaseRequest
	seen      map[string]bool
	// Fail, when set, makes every call fail with ErrInjected.
	Fail bool
	now  func() time.Time
}

// NewIsolator returns a fake isolator; now decides whether a deadline has
// passed (nil: time.Now).
func NewIsolator(now func() time.Time) *Isolator {
	if now == nil {
		now = time.Now
	}
	return &Isolator{deadlines: map[string]time.Time{}, seen: map[string]bool{}, now: now}
}

// Isolate implements response.Isolator.
func (f *Isolator) Isolate(_ context.Context, req response.IsolateRequest) (time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Fail {
		return time.Time{}, ErrInjected
	}
	f.requests = append(f.requests, req)
	cur, ok := f.deadlines[req.Host]
	if ok && !f.now().Before(cur) {
		ok = false // expired: released by itself
	}
	if f.seen[req.ID] && ok {
		return cur, nil
	}
	f.seen[req.ID] = true
	if !ok || req.Until.After(cur) {
		cur = req.Until
	}
	f.deadlines[req.Host] = cur
	return cur, nil
}

// Release implements response.Isolator.
func (f *Isolator) Release(_ context.Context, req response.ReleaseRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Fail {
		return ErrInjected
	}
	f.releases = append(f.releases, req)
	delete(f.deadlines, req.Host)
	return nil
}

// Deadline returns the host's deadline in force, and whether it is
// isolated now.
func (f *Isolator) Deadline(host string) (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.deadlines[host]
	if ok && !f.now().Before(d) {
		return time.Time{}, false
	}
	return d, ok
}

// Requests returns the isolate requests received.
func (f *Isolator) Requests() []response.IsolateRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

// Releases returns the release requests received.
func (f *Isolator) Releases() []response.ReleaseRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.releases)
}

// Message is one published message.
type Message struct {
	Subject string
	Data    []byte
}

// Publisher is a fake response.Publisher recording messages.
type Publisher struct {
	mu   sync.Mutex
	msgs []Message
	// Fail, when set, makes Publish fail with ErrInjected.
	Fail bool
}

// Publish implements response.Publisher.
func (p *Publisher) Publish(_ context.Context, subject string, data []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.Fail {
		return ErrInjected
	}
	p.msgs = append(p.msgs, Message{subject, slices.Clone(data)})
	return nil
}

// Messages returns the messages published.
func (p *Publisher) Messages() []Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.msgs)
}

// Tagger is a fake response.Tagger keeping tags with their expiry.
type Tagger struct {
	mu   sync.Mutex
	tags map[[2]string]time.Time
}

// Tag implements response.Tagger: the later expiry wins.
func (t *Tagger) Tag(_ context.Context, host, tag string, until time.Time) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.tags == nil {
		t.tags = map[[2]string]time.Time{}
	}
	k := [2]string{host, tag}
	if cur, ok := t.tags[k]; !ok || until.After(cur) {
		t.tags[k] = until
	}
	return nil
}

// Until returns the expiry of host's tag, and whether it has one.
func (t *Tagger) Until(host, tag string) (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	u, ok := t.tags[[2]string{host, tag}]
	return u, ok
}

// Sink is a fake response.Sink recording decisions; FailNext makes the
// next n Record calls fail with ErrInjected.
type Sink struct {
	mu        sync.Mutex
	decisions []*response.Decision
	failNext  int
}

// Record implements response.Sink.
func (s *Sink) Record(_ context.Context, d *response.Decision) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failNext > 0 {
		s.failNext--
		return ErrInjected
	}
	s.decisions = append(s.decisions, d)
	return nil
}

// FailNext makes the next n calls fail.
func (s *Sink) FailNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext = n
}

// Decisions returns the decisions recorded.
func (s *Sink) Decisions() []*response.Decision {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.decisions)
}

// Source is a fake response.DetectionSource with at-least-once delivery:
// a detection whose handler fails is delivered again, up to MaxDeliver
// times (0: 5), and Acked lists the ids acknowledged.
type Source struct {
	Detections []ioc.Detection
	MaxDeliver int

	mu     sync.Mutex
	acked  []string
	failed []string
}

// Consume implements response.DetectionSource: it delivers every
// detection in order, then returns nil.
func (s *Source) Consume(ctx context.Context, h func(ctx context.Context, d ioc.Detection) error) error {
	maxd := s.MaxDeliver
	if maxd == 0 {
		maxd = 5
	}
	for _, d := range s.Detections {
		for attempt := 1; ; attempt++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			err := h(ctx, d)
			s.mu.Lock()
			if err == nil {
				s.acked = append(s.acked, d.ID)
			} else if attempt >= maxd {
				s.failed = append(s.failed, d.ID)
			}
			s.mu.Unlock()
			if err == nil || attempt >= maxd {
				break
			}
		}
	}
	return nil
}

// Acked returns the ids acknowledged, in order.
func (s *Source) Acked() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.acked)
}

// Failed returns the ids given up after MaxDeliver failures.
func (s *Source) Failed() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.failed)
}
