// Package consolecmd is the console program (examples/console): its
// subcommands, shared with the agent's end-to-end test, which runs them in
// its network namespaces.
//
// # Usage
//
//	os.Exit(consolecmd.Run(ctx, os.Args[1:], os.Stdout, os.Stderr))
//
// # Concurrency
//
// Run may be called from several goroutines.
package consolecmd
