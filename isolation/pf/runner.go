package pf

import "context"

// Runner runs pfctl. Args are pfctl's arguments (without the program
// name); stdin is its standard input (nil for none). A non-nil error means
// pfctl failed (for exec: a non-zero exit); stdout and stderr are returned
// in every case. The Enforcer serializes its calls.
type Runner interface {
	Run(ctx context.Context, stdin []byte, args ...string) (stdout, stderr []byte, err error)
}
