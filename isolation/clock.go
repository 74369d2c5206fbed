package isolation

import "time"

// Clock is the Manager's source of time: the current time, and timers for
// its deadlines, refreshes and retries. The default is the system clock
// (the time package, so testing/synctest bubbles work); a program that
// replays hours of activity in milliseconds, such as a rule test runner,
// injects a clock whose time it advances itself.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// NewTimer returns a channel that receives once d has passed on this
	// clock, and a function that stops the timer (reporting whether it
	// was still running). A d of zero or less fires at once.
	NewTimer(d time.Duration) (c <-chan time.Time, stop func() bool)
}

// SystemClock is the Clock of the time package.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// NewTimer wraps time.NewTimer.
func (SystemClock) NewTimer(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}
