package main

import (
	"log/slog"

	"github.com/cordonsec/cordon/isolation"
	"github.com/cordonsec/cordon/isolation/nftables"
)

// newEnforcer returns the nftables enforcer, or the fake one when
// isolation.enforce is false.
func newEnforcer(cfg *Config, log *slog.Logger) (isolation.Enforcer, error) {
	if !cfg.Isolation.Enforce {
		return fakeEnforcer(log), nil
	}
	return nftables.New(nftables.Config{Logger: log.With("component", "nftables")})
}
