// Command agent is a reference cordon EDR agent: it matches the host's
// events against indicator feeds and YARA rules, publishes the detections
// on the bus, runs the response rules, obeys signed isolation commands and
// isolates the host.
//
//	agent run --config FILE
//	agent check --config FILE
//	agent status [--config FILE | --socket PATH]
//	agent exclusions [--config FILE | --socket PATH]
//	agent release [--config FILE | --socket PATH] [--reason TEXT] [--password-file FILE]
//	agent hash-password [--password-file FILE]
//
// run connects to the bus (embedded, or bus.urls), loads and watches the
// feed and YARA directories, runs the event sources (on Linux: a file
// watcher that hashes and YARA-scans new and changed files, a /proc process
// scanner, a /proc/net connection scanner; on every OS: JSON lines of
// cordon.event/v1 from a file or standard input), runs the response rules
// locally (rules.mode: local) or only publishes detections (publish),
// executes verified commands, and enforces isolation with nftables on
// Linux, or records it with the fake enforcer when isolation.enforce is
// false (the default of the sample configuration, agent.yaml). Prometheus
// metrics are served on metrics.listen, a loopback address.
//
// A try-out on any OS, with the embedded bus and the example feeds and rules:
//
//	go run ./examples/agent run --config examples/agent/agent.yaml < examples/agent/events.jsonl
//
// status, exclusions and release talk to the local control socket (root
// only); release asks for the local password, whose argon2id hash
// hash-password makes for isolation.password_hash.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/cordonsec/cordon/isolation"
)

const usage = `usage:
  agent run --config FILE              run the agent
  agent check --config FILE            validate a configuration file
  agent status [--config FILE | --socket PATH]
  agent exclusions [--config FILE | --socket PATH]
  agent release [--config FILE | --socket PATH] [--reason TEXT] [--password-file FILE]
  agent hash-password [--password-file FILE]
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, in io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "run":
		err = cmdRun(ctx, args[1:], stderr, nil)
	case "check":
		err = cmdCheck(args[1:], stdout, stderr)
	case "status", "exclusions", "release":
		err = cmdControl(ctx, args[0], args[1:], in, stdout, stderr)
	case "hash-password":
		err = cmdHashPassword(args[1:], in, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "agent: unknown command %q\n%s", args[0], usage)
		return 2
	}
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		if ue.msg != "" {
			fmt.Fprintf(stderr, "agent: %s\n", ue.msg)
		}
		return 2
	default:
		fmt.Fprintf(stderr, "agent: %v\n", err)
		return 1
	}
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func flags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("agent "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

func cmdRun(ctx context.Context, args []string, stderr io.Writer, ready chan<- *agent) error {
	fs := flags("run", stderr)
	path := fs.String("config", "", "configuration file (YAML)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" {
		return usageError{"--config is required"}
	}
	cfg, err := LoadConfig(*path)
	if err != nil {
		return err
	}
	return runAgent(ctx, cfg, newLogger(cfg.Log, stderr), ready)
}

func newLogger(c LogConfig, w io.Writer) *slog.Logger {
	var lvl slog.Level
	switch c.Level {
	case "debug":
		lvl = slog.LevelDebug
	case "warn":
		lvl = slog.LevelWarn
	case "error":
		lvl = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if c.JSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func cmdCheck(args []string, stdout, stderr io.Writer) error {
	fs := flags("check", stderr)
	path := fs.String("config", "", "configuration file (YAML)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" {
		return usageError{"--config is required"}
	}
	cfg, err := LoadConfig(*path)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: ok (host %s, bus %s, rules %s, enforce %v)\n", *path, cfg.Host.ID, busDesc(cfg), cfg.Rules.Mode, cfg.Isolation.Enforce)
	return nil
}

func busDesc(c *Config) string {
	if len(c.Bus.URLs) == 0 {
		return "embedded in " + c.Bus.DataDir
	}
	return strings.Join(c.Bus.URLs, ",")
}

func cmdControl(ctx context.Context, op string, args []string, in io.Reader, stdout, stderr io.Writer) error {
	fs := flags(op, stderr)
	path := fs.String("config", "", "configuration file, for the control socket's path")
	sock := fs.String("socket", "", "control socket path (instead of --config)")
	var reason, pwFile *string
	if op == "release" {
		reason = fs.String("reason", "local release", "why, for the audit trail")
		pwFile = fs.String("password-file", "", "read the password from this file instead of asking")
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if (*path == "") == (*sock == "") {
		return usageError{"one of --config and --socket is required"}
	}
	if *path != "" {
		cfg, err := LoadConfig(*path)
		if err != nil {
			return err
		}
		if cfg.Isolation.ControlSocket == "off" {
			return errors.New("the control socket is off in this configuration")
		}
		*sock = cfg.Isolation.ControlSocket
	}
	c := isolation.ControlClient{Path: *sock, Timeout: 30 * time.Second}
	switch op {
	case "status":
		st, err := c.Status(ctx)
		if err != nil {
			return err
		}
		printStatus(stdout, st)
	case "exclusions":
		r, err := c.Exclusions(ctx)
		if errors.Is(err, isolation.ErrNotIsolated) {
			fmt.Fprintln(stdout, "not isolated: no exclusions in force")
			return nil
		}
		if err != nil {
			return err
		}
		for _, m := range r.Management {
			fmt.Fprintf(stdout, "management  %s\n", m)
		}
		for _, x := range r.Exclusions {
			fmt.Fprintf(stdout, "exclusion   %s\n", x)
		}
		for _, x := range r.Skipped {
			fmt.Fprintf(stdout, "skipped     %s (not enforceable on this platform)\n", x)
		}
	case "release":
		pw, err := readPassword(*pwFile, in, stderr)
		if err != nil {
			return err
		}
		st, err := c.Release(ctx, pw, *reason)
		if err != nil {
			return err
		}
		printStatus(stdout, st)
	}
	return nil
}

func printStatus(w io.Writer, st isolation.Status) {
	fmt.Fprintf(w, "host:     %s\nstate:    %s\n", st.Host, st.State)
	if st.Mode != 0 {
		fmt.Fprintf(w, "mode:     %s\n", st.Mode)
	}
	if !st.Since.IsZero() {
		fmt.Fprintf(w, "since:    %s\n", st.Since.Local().Format(time.RFC3339))
	}
	if !st.Deadline.IsZero() {
		fmt.Fprintf(w, "deadline: %s (in %s)\n", st.Deadline.Local().Format(time.RFC3339), time.Until(st.Deadline).Round(time.Second))
	}
	if st.UntilReleased {
		fmt.Fprintln(w, "deadline: none (until released)")
	}
	if st.Reason != "" {
		fmt.Fprintf(w, "reason:   %s\n", st.Reason)
	}
	if st.LastError != "" {
		fmt.Fprintf(w, "error:    %s\n", st.LastError)
	}
}

// readPassword reads the password from a file, or one line of in (with
// the terminal's echo off when in is one).
func readPassword(file string, in io.Reader, stderr io.Writer) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	fmt.Fprint(stderr, "password: ")
	restore := noEcho(in)
	line, err := bufio.NewReader(in).ReadString('\n')
	restore()
	fmt.Fprintln(stderr)
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", fmt.Errorf("reading the password: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func cmdHashPassword(args []string, in io.Reader, stdout, stderr io.Writer) error {
	fs := flags("hash-password", stderr)
	pwFile := fs.String("password-file", "", "read the password from this file instead of asking")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	pw, err := readPassword(*pwFile, in, stderr)
	if err != nil {
		return err
	}
	if len(pw) < 8 {
		return errors.New("the password must have at least 8 characters")
	}
	h, err := isolation.HashPassword(pw, isolation.Argon2Params{})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, h)
	return nil
}
