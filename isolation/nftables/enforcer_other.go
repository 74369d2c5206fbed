//go:build !linux

package nftables

import (
	"context"
	"fmt"

	"github.com/cordonsec/cordon/isolation"
)

// Enforcer is the nftables isolation.Enforcer; nftables exists only on
// Linux, so on this platform every method fails with
// isolation.ErrUnsupported.
type Enforcer struct{}

// New returns an error wrapping isolation.ErrUnsupported: nftables is
// Linux-only.
func New(cfg Config) (*Enforcer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("nftables: %w", isolation.ErrUnsupported)
}

// Apply fails with isolation.ErrUnsupported.
func (e *Enforcer) Apply(ctx context.Context, p isolation.Plan) error {
	return fmt.Errorf("nftables: apply: %w", isolation.ErrUnsupported)
}

// Clear fails with isolation.ErrUnsupported.
func (e *Enforcer) Clear(ctx context.Context) error {
	return fmt.Errorf("nftables: clear: %w", isolation.ErrUnsupported)
}

// Close returns nil.
func (e *Enforcer) Close() error { return nil }

// Observe fails with isolation.ErrUnsupported.
func (e *Enforcer) Observe(ctx context.Context) (isolation.Observation, error) {
	return isolation.Observation{}, fmt.Errorf("nftables: observe: %w", isolation.ErrUnsupported)
}

// Capabilities reports no application matching.
func (e *Enforcer) Capabilities() isolation.Capabilities { return isolation.Capabilities{} }
