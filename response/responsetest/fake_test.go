package responsetest

import (
	"testing"
	"time"
)

func TestFakeIsolator(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	TestIsolator(t, func(t *testing.T) IsolatorHarness {
		iso := NewIsolator(func() time.Time { return now })
		return IsolatorHarness{Isolator: iso, Now: now, Deadline: func(t *testing.T, host string) (time.Time, bool) {
			return iso.Deadline(host)
		}}
	})
}
