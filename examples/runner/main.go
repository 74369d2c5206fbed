// Command runner tests response rules against example cases, and replays
// events through feeds, YARA rules and response rules.
//
//	runner test [-q] [CASE.yaml|DIR ...]
//	runner replay [--iocs DIR] [--yara DIR] [--rules DIR] --events FILE|- [--json] [--dry-run]
//
// `runner test` runs each case file through the real pipeline: the embedded
// bus (a fresh data directory per case), the feed and YARA matchers, the
// response engine consuming detections from the bus and sending signed
// commands, and the isolation Manager over the fake enforcer, on a virtual
// clock so that an 8-hour timeout is checked in milliseconds. With no
// argument it runs examples/cases (from the repository root):
//
//	go run ./examples/runner test
//
// Each case prints PASS or FAIL with what every step produced; a failing
// step shows a diff (-want +got) and the Explain output of the rules that
// did not do what the case expected. The exit status is 1 when any case
// fails, 2 on a usage error.
//
// `runner replay` reads cordon.event/v1 JSON lines and prints, per event,
// the detections and the decisions of the rules (isolation is recorded,
// never done); --json prints them as JSON lines (cordon.detection/v1 and
// cordon.decision/v1). Each event is evaluated at its own time.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
)

// DefaultCases is where `runner test` looks for cases when given none.
const DefaultCases = "examples/cases"

const usage = `usage:
  runner test [-q] [CASE.yaml|DIR ...]     run case files (default: ` + DefaultCases + `)
  runner replay [--iocs DIR] [--yara DIR] [--rules DIR] --events FILE|- [--json] [--dry-run]
  runner help
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the program; it returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "test":
		return cmdTest(ctx, args[1:], stdout, stderr)
	case "replay":
		return cmdReplay(ctx, args[1:], stdin, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "runner: unknown command %q\n%s", args[0], usage)
		return 2
	}
}

func cmdTest(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("runner test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quiet := fs.Bool("q", false, "print only the summary of passing cases (failures in full)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: runner test [-q] [CASE.yaml|DIR ...]\n\nRuns case files; a directory means its *.yaml and *.yml files.\nWith no argument: %s.\n", DefaultCases)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	paths := fs.Args()
	if len(paths) == 0 {
		paths = []string{DefaultCases}
	}
	files, err := caseFiles(paths)
	if err != nil {
		fmt.Fprintf(stderr, "runner: %v\n", err)
		return 2
	}
	tmp, err := os.MkdirTemp("", "cordon-runner-")
	if err != nil {
		fmt.Fprintf(stderr, "runner: %v\n", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	passed, failed := 0, 0
	for _, f := range files {
		c, err := LoadCase(f)
		var r caseResult
		if err != nil {
			r = caseResult{Name: filepath.Base(f), File: f, Err: err}
		} else {
			r = runCase(ctx, c, tmp)
		}
		report(stdout, r, !*quiet)
		if r.Passed {
			passed++
		} else {
			failed++
		}
		if ctx.Err() != nil {
			break
		}
	}
	fmt.Fprintf(stdout, "%d passed, %d failed\n", passed, failed)
	if failed > 0 || ctx.Err() != nil {
		return 1
	}
	return 0
}

// caseFiles expands directories into their case files, sorted.
func caseFiles(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			if p == DefaultCases && errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("%s not found: run from the repository root or name the cases", p)
			}
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, p)
			continue
		}
		ents, err := os.ReadDir(p)
		if err != nil {
			return nil, err
		}
		var found []string
		for _, e := range ents {
			n := e.Name()
			if !e.IsDir() && (strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")) {
				found = append(found, filepath.Join(p, n))
			}
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("%s: no case files (*.yaml)", p)
		}
		sort.Strings(found)
		out = append(out, found...)
	}
	return out, nil
}
