//go:build !linux && !windows && !darwin

package main

import (
	"fmt"
	"log/slog"
	"runtime"

	"github.com/cordonsec/cordon/isolation"
)

// newEnforcer returns the fake enforcer when isolation.enforce is false.
// The reference agent enforces with nftables on Linux, WFP on Windows and
// pf on macOS; other systems have no adapter.
func newEnforcer(cfg *Config, log *slog.Logger) (isolation.Enforcer, error) {
	if !cfg.Isolation.Enforce {
		return fakeEnforcer(log), nil
	}
	return nil, fmt.Errorf("%w: the reference agent enforces isolation on Linux (nftables), Windows (WFP) and macOS (pf) only (%s)", isolation.ErrUnsupported, runtime.GOOS)
}
