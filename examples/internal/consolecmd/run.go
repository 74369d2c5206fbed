package consolecmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
)

// Usage is the console's usage text.
const Usage = `usage:
  console keygen [--out FILE]
  console isolate HOST [--duration D | --until-released] [--exclusions FILE] [--reason TEXT] [--wait D]
  console release HOST [--reason TEXT] [--wait D]
  console status [HOST]
  console watch [--json] [--all] [--host HOST]
Common flags: --bus URLS (default $CORDON_BUS), --creds FILE, --nkey FILE, --key FILE (default $CORDON_KEY).
Run "console COMMAND --help" for a command's flags.
`

// exitError carries an exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

// Run runs the console with args (the command and its flags) and returns
// the exit status: 0, 1 on failure, 2 on a usage error.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, Usage)
		return 2
	}
	var err error
	switch args[0] {
	case "keygen":
		err = cmdKeygen(args[1:], stdout, stderr)
	case "isolate":
		err = cmdIsolate(ctx, args[1:], stdout, stderr)
	case "release":
		err = cmdRelease(ctx, args[1:], stdout, stderr)
	case "status":
		err = cmdStatus(ctx, args[1:], stdout, stderr)
	case "watch":
		err = cmdWatch(ctx, args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, Usage)
		return 0
	default:
		fmt.Fprintf(stderr, "console: unknown command %q\n%s", args[0], Usage)
		return 2
	}
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(stderr, "console: %v\n", ee.err)
		}
		return ee.code
	}
	fmt.Fprintf(stderr, "console: %v\n", err)
	return 1
}

func usageErr(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}
