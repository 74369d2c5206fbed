//go:build !darwin

package pf

import (
	"fmt"

	"github.com/cordonsec/cordon/isolation"
)

func platformRunner() (Runner, error) {
	return nil, fmt.Errorf("pfctl runner: %w (set Config.Runner)", isolation.ErrUnsupported)
}
