package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/cordonsec/cordon/examples/internal/pipeline"
	"github.com/cordonsec/cordon/ioc"
	"github.com/cordonsec/cordon/response"
)

// eventClock is the replay's clock: the time of the event being replayed.
type eventClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *eventClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *eventClock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// discardPublisher is the notify actions' publisher in a replay: the
// notification is in the decision record, nothing is sent.
type discardPublisher struct{}

func (discardPublisher) Publish(context.Context, string, []byte) error { return nil }

func cmdReplay(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("runner replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	iocs := fs.String("iocs", "", "directory of indicator feeds (any supported format)")
	yaraDir := fs.String("yara", "", "directory of YARA rule files (.yar, .yara)")
	rules := fs.String("rules", "", "directory of response rule files (.yaml, .yml)")
	events := fs.String("events", "", "file of cordon.event/v1 JSON lines, - for standard input (required)")
	asJSON := fs.Bool("json", false, "print detections and decisions as JSON lines")
	dryRun := fs.Bool("dry-run", false, "run every rule in dry-run")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: runner replay [--iocs DIR] [--yara DIR] [--rules DIR] --events FILE|- [--json] [--dry-run]\n\n"+
			"Matches each event against the feeds and YARA rules (a file event's file is scanned when it exists)\n"+
			"and prints its detections and the rules' decisions, evaluated at the event's time.\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *events == "" || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	if err := replay(ctx, replayConfig{IOCs: *iocs, YARA: *yaraDir, Rules: *rules, Events: *events, JSON: *asJSON, DryRun: *dryRun}, stdin, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "runner: replay: %v\n", err)
		return 1
	}
	return 0
}

type replayConfig struct {
	IOCs, YARA, Rules, Events string
	JSON, DryRun              bool
}

func replay(ctx context.Context, cfg replayConfig, stdin io.Reader, stdout, stderr io.Writer) error {
	clock := &eventClock{}
	m, err := pipeline.NewMatcher(pipeline.MatcherConfig{Now: clock.Now, ReadFiles: true})
	if err != nil {
		return err
	}
	if cfg.IOCs != "" {
		if err := m.LoadFeedDir(cfg.IOCs); err != nil {
			return err
		}
	}
	if cfg.YARA != "" {
		if err := m.LoadYARADir(cfg.YARA); err != nil {
			return err
		}
	}
	iso := &pipeline.LocalIsolator{}
	eng, err := response.New(response.Config{
		Services: response.Services{Isolator: iso, Publisher: discardPublisher{}},
		DryRun:   cfg.DryRun,
		Clock:    clock.Now,
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return err
	}
	if cfg.Rules != "" {
		if err := eng.LoadDir(cfg.Rules); err != nil {
			return err
		}
	}
	fmt.Fprintf(stderr, "runner: %d indicators, %d YARA rules, %d response rules\n", m.Indicators(), m.YARARules(), eng.Rules().Len())
	var in io.Reader = stdin
	if cfg.Events != "-" {
		f, err := os.Open(cfg.Events)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	enc := json.NewEncoder(stdout)
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	line, nEvents, nDet, nBad := 0, 0, 0, 0
	for sc.Scan() {
		line++
		if ctx.Err() != nil {
			return ctx.Err()
		}
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		ev, err := ioc.DecodeEvent(b)
		if err != nil {
			fmt.Fprintf(stderr, "runner: %s:%d: %v\n", cfg.Events, line, err)
			nBad++
			continue
		}
		nEvents++
		clock.set(ev.Time)
		dets, err := m.Match(ctx, &ev, nil)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(stderr, "runner: %s:%d: %v\n", cfg.Events, line, err)
		}
		if !cfg.JSON {
			fmt.Fprintf(stdout, "event %s %s %s%s\n", ev.ID, ev.Time.Format(time.RFC3339), ev.Kind, eventSummary(&ev))
		}
		for i := range dets {
			d := &dets[i]
			nDet++
			dec, err := eng.Handle(ctx, d)
			if err != nil {
				return fmt.Errorf("%s:%d: %w", cfg.Events, line, err)
			}
			if cfg.JSON {
				if err := enc.Encode(d); err != nil {
					return err
				}
				if err := enc.Encode(dec); err != nil {
					return err
				}
				continue
			}
			fmt.Fprintf(stdout, "  detection %s\n", detectionLine(*d))
			if len(dec.Rules) == 0 {
				fmt.Fprintf(stdout, "    no rule fired\n")
			}
			for _, rd := range dec.Rules {
				fmt.Fprintf(stdout, "    decision %s%s\n", decisionLine(rd, true), ruleAccount(rd))
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s:%d: %w", cfg.Events, line+1, err)
	}
	fmt.Fprintf(stderr, "runner: %d events (%d malformed), %d detections\n", nEvents, nBad, nDet)
	return nil
}

// eventSummary is the event's main observable, for people.
func eventSummary(ev *ioc.Event) string {
	var s string
	switch {
	case ev.File != nil:
		s = ev.File.Path
	case ev.Process != nil:
		s = ev.Process.Name
		if ev.Process.CommandLine != "" {
			s = ev.Process.CommandLine
		}
	case ev.Network != nil:
		s = fmt.Sprintf("%s %s:%d", ev.Network.Protocol, ev.Network.RemoteAddress, ev.Network.RemotePort)
	case ev.DNS != nil:
		s = ev.DNS.Query
	case ev.HTTP != nil:
		s = ev.HTTP.URL
	case ev.Registry != nil:
		s = ev.Registry.Key
	case ev.Mutex != nil:
		s = ev.Mutex.Name
	}
	if s == "" {
		return ""
	}
	return " " + strings.TrimSpace(s)
}
