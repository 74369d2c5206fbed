// Command console is the operator's side of cordon: it signs isolation
// commands with the operator's key and sends them to hosts over the bus,
// shows the hosts' isolation state and follows the audit trail.
//
//	console keygen --out FILE
//	console isolate HOST [--duration 8h | --until-released] [--exclusions FILE] [--reason TEXT] [--wait 30s]
//	console release HOST [--reason TEXT] [--wait 30s]
//	console status [HOST]
//	console watch [--json] [--all]
//
// Every command but keygen connects to the bus named by --bus (comma
// separated NATS URLs; default $CORDON_BUS), with --creds or --nkey for the
// servers' authentication. isolate and release sign with the seed in --key
// (default $CORDON_KEY); the agents must trust its public key, printed by
// keygen. --exclusions names a JSON file of isolation.Exclusions, the
// exclusions of a manual isolation:
//
//	{"profiles": ["dns-client"], "rules": ["out tcp remote=192.0.2.7 rport=443 name=proxy"]}
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
)

const usage = `usage:
  console keygen --out FILE
  console isolate HOST [--duration D | --until-released] [--exclusions FILE] [--reason TEXT] [--wait D]
  console release HOST [--reason TEXT] [--wait D]
  console status [HOST]
  console watch [--json] [--all]
Common flags: --bus URLS (default $CORDON_BUS), --creds FILE, --nkey FILE, --key FILE (default $CORDON_KEY).
Run "console COMMAND --help" for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// exitError carries an exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
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
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "console: unknown command %q\n%s", args[0], usage)
		return 2
	}
	if err == nil {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
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
