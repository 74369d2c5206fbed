//go:build !unix

package response_test

import "time"

// cpuTime is not measured here: 0 makes benchmarks report wall time only.
func cpuTime() time.Duration { return 0 }
