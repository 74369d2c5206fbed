//go:build !windows

package wfp

import (
	"fmt"

	"github.com/cordonsec/cordon/isolation"
)

func platformOpen() (Session, error) {
	return nil, fmt.Errorf("WFP session: %w (set Config.Open)", isolation.ErrUnsupported)
}

func platformConns() (ConnTable, error) {
	return nil, fmt.Errorf("TCP table: %w (set Config.Conns)", isolation.ErrUnsupported)
}
