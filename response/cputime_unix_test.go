//go:build unix

package response_test

import (
	"syscall"
	"time"
)

// cpuTime is the process's user and system CPU time: benchmarks report
// throughput per CPU second as well, because wall time on a shared
// machine counts other processes' work.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
