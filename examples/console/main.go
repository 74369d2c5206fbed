// Command console is the operator's side of cordon: it signs isolation
// commands with the operator's key and sends them to hosts over the bus,
// shows the hosts' isolation state and follows the audit trail.
//
//	console keygen [--out FILE]
//	console isolate HOST [--duration 8h | --until-released] [--exclusions FILE] [--reason TEXT] [--wait 30s]
//	console release HOST [--reason TEXT] [--wait 30s]
//	console status [HOST]
//	console watch [--json] [--all] [--host HOST]
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
	"io"
	"os"
	"os/signal"

	"github.com/cordonsec/cordon/examples/internal/consolecmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return consolecmd.Run(ctx, args, stdout, stderr)
}
