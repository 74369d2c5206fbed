// Command quickstart matches host events against atomic indicators and
// prints the detections as JSON lines (cordon.detection/v1).
//
// With no flags it uses the sample indicators and events embedded in it:
//
//	go run ./examples/quickstart
//	go run ./examples/quickstart --indicators my.json --events events.jsonl
//	tail -f events.jsonl | go run ./examples/quickstart --events -
package main

import (
	"bufio"
	"bytes"
	_ "embed"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/cordonsec/cordon/ioc"
)

var (
	//go:embed indicators.json
	sampleIndicators []byte
	//go:embed events.jsonl
	sampleEvents []byte
)

func main() {
	indFile := flag.String("indicators", "", "JSON array of indicators (default: the embedded sample)")
	evFile := flag.String("events", "", "JSON lines of cordon.event/v1 events, - for standard input (default: the embedded sample)")
	flag.Parse()
	if err := run(*indFile, *evFile, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(indFile, evFile string, stdin io.Reader, stdout, stderr io.Writer) error {
	indData := sampleIndicators
	if indFile != "" {
		b, err := os.ReadFile(indFile)
		if err != nil {
			return err
		}
		indData = b
	}
	var inds []ioc.Indicator
	if err := json.Unmarshal(indData, &inds); err != nil {
		return fmt.Errorf("indicators: %w", err)
	}
	set, err := ioc.Compile(inds)
	if err != nil {
		return err
	}
	var events io.Reader = bytes.NewReader(sampleEvents)
	switch evFile {
	case "":
	case "-":
		events = stdin
	default:
		f, err := os.Open(evFile)
		if err != nil {
			return err
		}
		defer f.Close()
		events = f
	}
	fmt.Fprintf(stderr, "quickstart: %d indicators loaded\n", set.Len())
	m := ioc.NewMatcher(ioc.MatcherConfig{Set: set})
	enc := json.NewEncoder(stdout)
	sc := bufio.NewScanner(events)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	line, detections := 0, 0
	for sc.Scan() {
		line++
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		ev, err := ioc.DecodeEvent(sc.Bytes())
		if err != nil {
			fmt.Fprintf(stderr, "quickstart: events line %d: %v\n", line, err)
			continue
		}
		matches := m.Match(&ev)
		if len(matches) == 0 {
			continue
		}
		det, err := ioc.NewDetection(ev, ioc.EngineAtomic, "", ioc.SeverityUnknown, matches, time.Now().UTC())
		if err != nil {
			return err
		}
		if err := enc.Encode(det); err != nil {
			return err
		}
		detections++
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("events line %d: %w", line+1, err)
	}
	fmt.Fprintf(stderr, "quickstart: %d events, %d detections\n", line, detections)
	return nil
}
