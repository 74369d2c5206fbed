//go:build darwin

package pf

import (
	"bytes"
	"context"
	"os/exec"
)

// Pfctl is the pfctl program ExecRunner runs.
const Pfctl = "/sbin/pfctl"

// ExecRunner runs /sbin/pfctl. It needs root.
type ExecRunner struct{}

// Run implements Runner.
func (ExecRunner) Run(ctx context.Context, stdin []byte, args ...string) ([]byte, []byte, error) {
	cmd := exec.CommandContext(ctx, Pfctl, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.Bytes(), errb.Bytes(), err
}

func platformRunner() (Runner, error) { return ExecRunner{}, nil }
