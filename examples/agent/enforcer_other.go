//go:build !linux

package main

import (
	"fmt"
	"log/slog"
	"runtime"

	"github.com/cordonsec/cordon/isolation"
)

// newEnforcer returns the fake enforcer when isolation.enforce is false.
// The reference agent enforces with nftables on Linux only; isolation/wfp
// and isolation/pf are the Windows and macOS adapters a product wires in.
func newEnforcer(cfg *Config, log *slog.Logger) (isolation.Enforcer, error) {
	if !cfg.Isolation.Enforce {
		return fakeEnforcer(log), nil
	}
	return nil, fmt.Errorf("%w: the reference agent enforces isolation on Linux only (%s)", isolation.ErrUnsupported, runtime.GOOS)
}
