package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/cordonsec/cordon/examples/internal/pipeline"
	"github.com/cordonsec/cordon/ioc"
)

var hostOS = runtime.GOOS

// stdin is the events source's standard input (tests replace it).
var stdin io.Reader = os.Stdin

func (a *agent) startSources(ctx context.Context) error {
	s := a.cfg.Sources
	if s.Events != "" {
		var r io.Reader = stdin
		if s.Events != "-" {
			f, err := os.Open(s.Events)
			if err != nil {
				return fmt.Errorf("sources.events: %w", err)
			}
			r = f
			defer func() {
				go func() { <-ctx.Done(); f.Close() }()
			}()
		}
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			a.readEvents(ctx, r, s.Events)
		}()
	}
	if s.Files != nil {
		if err := startFileWatcher(ctx, a, s.Files); err != nil {
			return fmt.Errorf("sources.files: %w", err)
		}
	}
	if s.Processes != nil {
		if err := startProcessScanner(ctx, a, s.Processes.interval); err != nil {
			return fmt.Errorf("sources.processes: %w", err)
		}
	}
	if s.Connections != nil {
		if err := startConnectionScanner(ctx, a, s.Connections.interval); err != nil {
			return fmt.Errorf("sources.connections: %w", err)
		}
	}
	return nil
}

// readEvents reads cordon.event/v1 JSON lines; a bad line is logged and
// skipped.
func (a *agent) readEvents(ctx context.Context, r io.Reader, name string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		ev, err := ioc.DecodeEvent(b)
		if err != nil {
			a.log.Warn("bad event", "source", name, "line", line, "err", err)
			continue
		}
		a.emit(ctx, item{source: "events", ev: ev})
		if ctx.Err() != nil {
			return
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		a.log.Error("reading events", "source", name, "line", line+1, "err", err)
	}
	a.log.Info("events source ended", "source", name, "lines", line)
}

// watchYARA reloads a YARA directory when its files change; a file that
// does not compile leaves the rules in force.
func watchYARA(ctx context.Context, m *pipeline.Matcher, dir string, log *slog.Logger) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		log.Error("yara watch", "dir", dir, "err", err)
		return
	}
	defer w.Close()
	if err := w.Add(dir); err != nil {
		log.Error("yara watch", "dir", dir, "err", err)
		return
	}
	var timer <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if pipeline.IsYARAFile(filepath.Base(ev.Name)) {
				timer = time.After(250 * time.Millisecond)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			log.Warn("yara watch", "dir", dir, "err", err)
		case <-timer:
			timer = nil
			if err := m.LoadYARADir(dir); err != nil {
				log.Error("yara rules rejected; the previous rules stay", "dir", dir, "err", err)
				continue
			}
			log.Info("yara rules reloaded", "dir", dir, "rules", m.YARARules())
		}
	}
}

// newEventID makes a unique event id for an event a source made.
func newEventID(kind string) string {
	return fmt.Sprintf("%s-%d-%d", kind, os.Getpid(), time.Now().UnixNano())
}
