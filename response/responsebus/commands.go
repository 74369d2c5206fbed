package responsebus

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/cordonsec/cordon/bus"
	"github.com/cordonsec/cordon/response"
)

// CommandPublisher publishes signed commands; *bus.Bus is one.
type CommandPublisher interface {
	PublishCommand(ctx context.Context, sc bus.SignedCommand) (bus.PubAck, error)
}

// CommandsConfig configures Commands.
type CommandsConfig struct {
	// Bus publishes the commands; required.
	Bus CommandPublisher
	// Key signs the commands (an NKey pair with its seed); required. The
	// agents must trust its public key.
	Key nkeys.KeyPair
	// TTL is how long a command stays valid: a host offline longer never
	// gets it. Zero: 1 hour.
	TTL time.Duration
	// Clock gives the time. Nil: time.Now.
	Clock func() time.Time
}

// Commands is a response.Isolator that sends signed isolate and release
// commands on cordon.commands.<host>. The command's args are those of
// isolation.Command: mode, duration and reason; the agent's
// isolation.Manager applies the automatic mode's exclusions from its own
// policy and extends, never
// shortens. Commands also never asks for less than it asked before: it
// remembers the latest deadline it sent per host until that passes or
// the host is released.
type Commands struct {
	cfg CommandsConfig

	mu   sync.Mutex
	last map[string]time.Time
}

// NewCommands checks cfg and returns the isolator. It fails with
// response.ErrInvalidConfig.
func NewCommands(cfg CommandsConfig) (*Commands, error) {
	if cfg.Bus == nil || cfg.Key == nil {
		return nil, fmt.Errorf("%w: responsebus: Commands needs Bus and Key", response.ErrInvalidConfig)
	}
	if _, err := cfg.Key.Seed(); err != nil {
		return nil, fmt.Errorf("%w: responsebus: Key cannot sign: %v", response.ErrInvalidConfig, err)
	}
	if cfg.TTL < 0 {
		return nil, fmt.Errorf("%w: responsebus: TTL %v is negative", response.ErrInvalidConfig, cfg.TTL)
	}
	if cfg.TTL == 0 {
		cfg.TTL = time.Hour
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	return &Commands{cfg: cfg, last: map[string]time.Time{}}, nil
}

// isolateArgs and releaseArgs are the JSON args of isolation.Command.
type isolateArgs struct {
	Mode     string `json:"mode"`
	Duration string `json:"duration"`
	Reason   string `json:"reason,omitempty"`
}

type releaseArgs struct {
	Reason string `json:"reason,omitempty"`
}

// Isolate implements response.Isolator: it sends an isolate command for
// the later of req.Until and the last deadline it sent for the host, and
// returns that deadline.
func (c *Commands) Isolate(ctx context.Context, req response.IsolateRequest) (time.Time, error) {
	now := c.cfg.Clock()
	c.mu.Lock()
	until := req.Until
	if prev, ok := c.last[req.Host]; ok && prev.After(now) && prev.After(until) {
		until = prev
	}
	c.mu.Unlock()
	d := until.Sub(now)
	if d <= 0 {
		return time.Time{}, fmt.Errorf("responsebus: isolate %s: deadline %v has passed", req.Host, until)
	}
	mode := req.Mode
	if mode == "" {
		mode = response.ModeAutomatic
	}
	args, err := json.Marshal(isolateArgs{Mode: mode, Duration: d.String(), Reason: req.Reason})
	if err != nil {
		return time.Time{}, err
	}
	if err := c.send(ctx, req.ID, req.Host, bus.ActionIsolate, args, now); err != nil {
		return time.Time{}, err
	}
	c.mu.Lock()
	if prev, ok := c.last[req.Host]; !ok || until.After(prev) || !prev.After(now) {
		c.last[req.Host] = until
	}
	for h, t := range c.last { // forget what has passed
		if !t.After(now) {
			delete(c.last, h)
		}
	}
	c.mu.Unlock()
	return until, nil
}

// Release implements response.Isolator.
func (c *Commands) Release(ctx context.Context, req response.ReleaseRequest) error {
	now := c.cfg.Clock()
	args, err := json.Marshal(releaseArgs{Reason: req.Reason})
	if err != nil {
		return err
	}
	if err := c.send(ctx, req.ID, req.Host, bus.ActionRelease, args, now); err != nil {
		return err
	}
	c.mu.Lock()
	delete(c.last, req.Host)
	c.mu.Unlock()
	return nil
}

func (c *Commands) send(ctx context.Context, id, host string, action bus.Action, args []byte, now time.Time) error {
	sc, err := bus.SignCommand(c.cfg.Key, bus.Command{ID: id, IssuedAt: now, Expires: now.Add(c.cfg.TTL), Host: host, Action: action, Args: args})
	if err != nil {
		return fmt.Errorf("responsebus: %s %s: %w", action, host, err)
	}
	if _, err := c.cfg.Bus.PublishCommand(ctx, sc); err != nil {
		return fmt.Errorf("responsebus: %s %s: %w", action, host, err)
	}
	return nil
}
