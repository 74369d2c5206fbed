package isolation_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cordonsec/cordon/isolation"
)

func TestErrConnectionsLeftImpliesReadBack(t *testing.T) {
	err := fmt.Errorf("adapter: apply: %w: %w", isolation.ErrConnectionsLeft, errors.New("EPERM"))
	if !errors.Is(err, isolation.ErrConnectionsLeft) || !errors.Is(err, isolation.ErrReadBack) {
		t.Fatalf("%v: want both ErrConnectionsLeft and ErrReadBack", err)
	}
	if errors.Is(fmt.Errorf("x: %w", isolation.ErrReadBack), isolation.ErrConnectionsLeft) {
		t.Fatal("ErrReadBack alone must not match ErrConnectionsLeft")
	}
	// The text says what is wrong, not the read-back text it implies.
	if msg := isolation.ErrConnectionsLeft.Error(); strings.Contains(msg, isolation.ErrReadBack.Error()) || !strings.Contains(msg, "connections") {
		t.Fatalf("ErrConnectionsLeft text %q", msg)
	}
}
