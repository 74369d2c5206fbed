package main

import (
	"log/slog"

	"github.com/cordonsec/cordon/isolation"
	"github.com/cordonsec/cordon/isolation/pf"
)

// newEnforcer returns the pf enforcer (anchor com.apple/cordon), or the
// fake when enforcement is off.
func newEnforcer(cfg *Config, log *slog.Logger) (isolation.Enforcer, error) {
	if !cfg.Isolation.Enforce {
		return fakeEnforcer(log), nil
	}
	return pf.New(pf.Config{Logger: log.With("component", "pf")})
}
