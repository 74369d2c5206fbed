package main

import (
	"log/slog"

	"github.com/cordonsec/cordon/isolation"
	"github.com/cordonsec/cordon/isolation/wfp"
)

// newEnforcer returns the Windows Filtering Platform enforcer (persistent
// filters in cordon's own sublayer), or the fake when enforcement is off.
func newEnforcer(cfg *Config, log *slog.Logger) (isolation.Enforcer, error) {
	if !cfg.Isolation.Enforce {
		return fakeEnforcer(log), nil
	}
	return wfp.New(wfp.Config{Logger: log.With("component", "wfp")})
}
