package consolecmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/cordonsec/cordon/bus"
	"github.com/cordonsec/cordon/examples/internal/pipeline"
	"github.com/cordonsec/cordon/ioc"
	"github.com/cordonsec/cordon/isolation"
)

// common are the flags every bus command has.
type common struct {
	bus, creds, nkey, key string
}

func (c *common) register(fs *flag.FlagSet, withKey bool) {
	fs.StringVar(&c.bus, "bus", os.Getenv("CORDON_BUS"), "NATS URLs, comma separated (default $CORDON_BUS)")
	fs.StringVar(&c.creds, "creds", "", "NATS .creds file")
	fs.StringVar(&c.nkey, "nkey", "", "NATS NKey user seed file")
	if withKey {
		fs.StringVar(&c.key, "key", os.Getenv("CORDON_KEY"), "operator signing key seed file, from keygen (default $CORDON_KEY)")
	}
}

func (c *common) open(ctx context.Context) (*bus.Bus, error) {
	if c.bus == "" {
		return nil, usageErr("--bus (or $CORDON_BUS) is required")
	}
	var urls []string
	for _, u := range strings.Split(c.bus, ",") {
		if u = strings.TrimSpace(u); u != "" {
			urls = append(urls, u)
		}
	}
	octx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return bus.Open(octx, bus.Config{URLs: urls, CredsFile: c.creds, NKeySeedFile: c.nkey, Name: "cordon-console",
		Logger: slog.New(slog.DiscardHandler)})
}

func closeBus(b *bus.Bus) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b.Close(ctx)
}

// loadKey reads an operator seed file.
func loadKey(path string) (nkeys.KeyPair, error) {
	if path == "" {
		return nil, usageErr("--key (or $CORDON_KEY) is required: the operator's seed file, made by keygen")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	kp, err := nkeys.FromSeed(bytes.TrimSpace(b))
	if err != nil {
		return nil, fmt.Errorf("%s: not an NKey seed: %v", path, err)
	}
	return kp, nil
}

func newFlags(name string, stderr io.Writer, args string) *flag.FlagSet {
	fs := flag.NewFlagSet("console "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: console %s %s\n", name, args)
		fs.PrintDefaults()
	}
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	// Flags may follow the positional argument: "isolate h-1 --duration 2h".
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return &exitError{code: 2}
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	return fs.Parse(append([]string{"--"}, pos...))
}

func cmdKeygen(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("keygen", stderr, "[--out FILE]")
	out := fs.String("out", "", "file to write the seed to (mode 0600; must not exist); without it the seed is printed")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return &exitError{code: 2}
	}
	kp, err := nkeys.CreateAccount()
	if err != nil {
		return err
	}
	seed, err := kp.Seed()
	if err != nil {
		return err
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return err
	}
	if *out == "" {
		// A try-out: the seed on standard output, for the operator to
		// keep in a file of their own.
		fmt.Fprintf(stderr, "console: keep the seed secret: save it in a file only you can read (mode 0600) and sign with --key FILE; --out FILE writes it there\n")
		fmt.Fprintf(stdout, "public key: %s\nseed:       %s\n", pub, seed)
		return nil
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(seed, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "console: seed written to %s; trust this public key in the agents' configuration:\n", *out)
	fmt.Fprintln(stdout, pub)
	return nil
}

func cmdIsolate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("isolate", stderr, "HOST [flags]")
	var c common
	c.register(fs, true)
	duration := fs.Duration("duration", 0, "how long; 0 means the host's default for manual isolation (8h)")
	untilReleased := fs.Bool("until-released", false, "no deadline: isolated until released")
	exclFile := fs.String("exclusions", "", "JSON file of the exclusions for this manual isolation")
	reason := fs.String("reason", "", "why, for the audit trail")
	ttl := fs.Duration("ttl", time.Hour, "how long the command stays valid for a host that is offline")
	wait := fs.Duration("wait", 30*time.Second, "wait this long for the host to report the isolation; 0: do not wait")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return &exitError{code: 2}
	}
	if *duration < 0 || (*untilReleased && *duration != 0) {
		return usageErr("--duration must be positive, and not given with --until-released")
	}
	a := &pipeline.CommandArgs{Mode: isolation.ModeManual, Duration: isolation.Duration(*duration), UntilReleased: *untilReleased, Reason: *reason}
	if *exclFile != "" {
		x, err := loadExclusions(*exclFile)
		if err != nil {
			return err
		}
		a.Exclusions = &x
	}
	return send(ctx, &c, fs.Arg(0), bus.ActionIsolate, a, *ttl, *wait, stdout, stderr)
}

// loadExclusions reads a JSON isolation.Exclusions file strictly.
func loadExclusions(path string) (isolation.Exclusions, error) {
	var x isolation.Exclusions
	b, err := os.ReadFile(path)
	if err != nil {
		return x, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&x); err != nil {
		return x, fmt.Errorf("%s: %v", path, err)
	}
	if err := x.Validate(); err != nil {
		return x, fmt.Errorf("%s: %v", path, err)
	}
	return x, nil
}

func cmdRelease(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("release", stderr, "HOST [flags]")
	var c common
	c.register(fs, true)
	reason := fs.String("reason", "", "why, for the audit trail")
	ttl := fs.Duration("ttl", time.Hour, "how long the command stays valid for a host that is offline")
	wait := fs.Duration("wait", 30*time.Second, "wait this long for the host to report the release; 0: do not wait")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return &exitError{code: 2}
	}
	var a *pipeline.CommandArgs
	if *reason != "" {
		a = &pipeline.CommandArgs{Reason: *reason}
	}
	return send(ctx, &c, fs.Arg(0), bus.ActionRelease, a, *ttl, *wait, stdout, stderr)
}

// send signs and publishes a command, then waits for the host's audit
// event that names it.
func send(ctx context.Context, c *common, host string, action bus.Action, a *pipeline.CommandArgs, ttl, wait time.Duration, stdout, stderr io.Writer) error {
	if _, err := bus.CommandSubject(host); err != nil {
		return usageErr("host %q: %v", host, err)
	}
	kp, err := loadKey(c.key)
	if err != nil {
		return err
	}
	b, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer closeBus(b)
	cmd, err := pipeline.NewCommand(host, action, a, time.Now().UTC(), ttl)
	if err != nil {
		return err
	}
	sc, err := bus.SignCommand(kp, cmd)
	if err != nil {
		return err
	}
	// Subscribe before publishing, so that a fast answer is not missed;
	// to the isolation events and the command result only, so that a
	// host busy with decisions cannot crowd the answer out.
	events := make(chan *nats.Msg, 256)
	if wait > 0 {
		for _, subj := range []string{bus.PrefixEvents + host + "." + pipeline.IsolationEventSource + ".>", bus.PrefixEvents + host + "." + pipeline.CommandResultKind} {
			sub, err := b.Conn().ChanSubscribe(subj, events)
			if err != nil {
				return err
			}
			defer sub.Unsubscribe()
		}
	}
	if _, err := b.PublishCommand(ctx, sc); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "sent %s %s to %s (command %s, valid until %s)\n", action, describeArgs(a), host, sc.ID, cmd.Expires.Format(time.RFC3339))
	if wait <= 0 {
		return nil
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case m := <-events:
			e, err := bus.DecodeEvent(m.Subject, m.Data)
			if err != nil {
				continue
			}
			// The host's answer: it follows the isolation events the
			// command caused, and is the only one when the command was
			// refused or changed nothing.
			if res, ok, err := pipeline.DecodeCommandResult(e); ok && err == nil && res.CommandID == sc.ID {
				if !res.OK {
					return &exitError{code: 1, err: fmt.Errorf("%s refused command %s: %s", host, sc.ID, res.Error)}
				}
				fmt.Fprintln(stdout, resultSummary(host, res))
				return nil
			}
			ie, ok, err := pipeline.DecodeIsolationEvent(e)
			if !ok || err != nil || ie.CommandID != sc.ID {
				continue
			}
			fmt.Fprintf(stdout, "%s\n", isolationSummary(host, ie))
			switch ie.Kind {
			case isolation.EventEnabled, isolation.EventExtended, isolation.EventReleased:
				return nil
			case isolation.EventFailed:
				return &exitError{code: 1, err: fmt.Errorf("%s reports failure: %s", host, ie.Error)}
			}
		case <-timer.C:
			return &exitError{code: 1, err: fmt.Errorf("no answer from %s within %v (the command stays queued until it expires)", host, wait)}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func describeArgs(a *pipeline.CommandArgs) string {
	if a == nil {
		return ""
	}
	var parts []string
	if a.Mode != 0 {
		parts = append(parts, a.Mode.String())
	}
	if a.UntilReleased {
		parts = append(parts, "until released")
	} else if a.Duration > 0 {
		parts = append(parts, "for "+time.Duration(a.Duration).String())
	}
	if a.Exclusions != nil {
		parts = append(parts, fmt.Sprintf("with %d profiles and %d rules excluded", len(a.Exclusions.EffectiveProfiles()), len(a.Exclusions.Rules)))
	}
	if len(parts) == 0 {
		return ""
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

func isolationSummary(host string, e isolation.Event) string {
	s := fmt.Sprintf("%s %s isolation %s", e.Time.UTC().Format(time.RFC3339), host, e.Kind)
	if e.Mode != 0 {
		s += " mode=" + e.Mode.String()
	}
	if !e.Deadline.IsZero() {
		s += " until=" + e.Deadline.UTC().Format(time.RFC3339)
	}
	if e.UntilReleased {
		s += " until-released"
	}
	if e.Requester != "" {
		s += " by=" + e.Requester
	}
	if e.Reason != "" {
		s += fmt.Sprintf(" reason=%q", e.Reason)
	}
	if e.Error != "" {
		s += fmt.Sprintf(" error=%q", e.Error)
	}
	return s
}

// resultSummary describes a command carried out without an isolation
// event: nothing changed, or the command was a duplicate.
func resultSummary(host string, r isolation.Result) string {
	s := fmt.Sprintf("%s answered command %s: nothing changed, %s", host, r.CommandID, r.Status.State)
	if r.Duplicate {
		s = fmt.Sprintf("%s answered command %s: already carried out, %s", host, r.CommandID, r.Status.State)
	}
	if r.Status.Mode != 0 {
		s += " mode=" + r.Status.Mode.String()
	}
	if !r.Status.Deadline.IsZero() {
		s += " until=" + r.Status.Deadline.UTC().Format(time.RFC3339)
	}
	if r.Status.UntilReleased {
		s += " until-released"
	}
	return s
}

func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("status", stderr, "[HOST] [flags]")
	var c common
	c.register(fs, false)
	asJSON := fs.Bool("json", false, "print the stored states as JSON lines")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		fs.Usage()
		return &exitError{code: 2}
	}
	b, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer closeBus(b)
	var hosts []string
	if fs.NArg() == 1 {
		hosts = []string{fs.Arg(0)}
	} else {
		kv, err := b.JetStream().KeyValue(ctx, bus.BucketIsolation)
		if err != nil {
			return err
		}
		keys, err := kv.Keys(ctx)
		if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
			return err
		}
		sort.Strings(keys)
		hosts = keys
		if len(hosts) == 0 {
			fmt.Fprintln(stdout, "no host has reported an isolation state")
			return nil
		}
	}
	for _, h := range hosts {
		st, err := b.IsolationState(ctx, h)
		if errors.Is(err, bus.ErrNotFound) {
			fmt.Fprintf(stdout, "%s: no state reported\n", h)
			if len(hosts) == 1 {
				return &exitError{code: 1}
			}
			continue
		}
		if err != nil {
			return err
		}
		if *asJSON {
			fmt.Fprintf(stdout, "%s\n", bytes.TrimSpace(st.Value))
			continue
		}
		var s isolation.Status
		if err := json.Unmarshal(st.Value, &s); err != nil {
			fmt.Fprintf(stdout, "%s: unreadable state (%v)\n", h, err)
			continue
		}
		fmt.Fprintln(stdout, statusLine(h, s, st.Updated))
	}
	return nil
}

func statusLine(host string, s isolation.Status, updated time.Time) string {
	l := fmt.Sprintf("%s: %s", host, s.State)
	if s.Mode != 0 {
		l += " mode=" + s.Mode.String()
	}
	if !s.Deadline.IsZero() {
		l += fmt.Sprintf(" until=%s (in %s)", s.Deadline.UTC().Format(time.RFC3339), time.Until(s.Deadline).Round(time.Second))
	}
	if s.UntilReleased {
		l += " until-released"
	}
	if s.Reason != "" {
		l += fmt.Sprintf(" reason=%q", s.Reason)
	}
	if len(s.Exclusions) > 0 {
		l += fmt.Sprintf(" exclusions=%d", len(s.Exclusions))
	}
	if s.LastError != "" {
		l += fmt.Sprintf(" error=%q", s.LastError)
	}
	l += " reported=" + updated.UTC().Format(time.RFC3339)
	return l
}

func cmdWatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("watch", stderr, "[flags]")
	var c common
	c.register(fs, false)
	asJSON := fs.Bool("json", false, "print the messages as JSON lines")
	all := fs.Bool("all", false, "start from the oldest stored message instead of new ones")
	host := fs.String("host", "", "only this host")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return &exitError{code: 2}
	}
	hostTok := "*"
	if *host != "" {
		if _, err := bus.DetectionSubject(*host); err != nil {
			return usageErr("--host: %v", err)
		}
		hostTok = *host
	}
	b, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer closeBus(b)
	return Watch(ctx, b, hostTok, *all, *asJSON, stdout, nil)
}

// Watch prints detections and audit events until ctx ends. ready, when
// set, is closed once both consumers are in place.
func Watch(ctx context.Context, b *bus.Bus, hostTok string, all, asJSON bool, stdout io.Writer, ready chan<- struct{}) error {
	policy := jetstream.DeliverNewPolicy
	if all {
		policy = jetstream.DeliverAllPolicy
	}
	out := make(chan string, 256)
	var ccs []jetstream.ConsumeContext
	defer func() {
		for _, cc := range ccs {
			cc.Stop()
		}
	}()
	for _, s := range []struct{ stream, filter string }{
		{bus.StreamDetections, bus.PrefixDetections + hostTok},
		{bus.StreamEvents, bus.PrefixEvents + hostTok + ".>"},
	} {
		cons, err := b.JetStream().OrderedConsumer(ctx, s.stream, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{s.filter}, DeliverPolicy: policy})
		if err != nil {
			return err
		}
		cc, err := cons.Consume(func(m jetstream.Msg) {
			line := formatMessage(m.Subject(), m.Data(), asJSON)
			select {
			case out <- line:
			case <-ctx.Done():
			}
		})
		if err != nil {
			return err
		}
		ccs = append(ccs, cc)
	}
	if ready != nil {
		close(ready)
	}
	for {
		select {
		case l := <-out:
			fmt.Fprintln(stdout, l)
		case <-ctx.Done():
			return nil
		}
	}
}

// formatMessage renders a detection or an audit event for people (or as
// its JSON).
func formatMessage(subject string, data []byte, asJSON bool) string {
	if asJSON {
		return string(bytes.TrimSpace(data))
	}
	if strings.HasPrefix(subject, bus.PrefixDetections) {
		d, err := bus.DecodeDetection(subject, data)
		if err != nil {
			return fmt.Sprintf("%s: undecodable detection: %v", subject, err)
		}
		return detectionSummary(d)
	}
	e, err := bus.DecodeEvent(subject, data)
	if err != nil {
		return fmt.Sprintf("%s: undecodable event: %v", subject, err)
	}
	if ie, ok, err := pipeline.DecodeIsolationEvent(e); ok && err == nil {
		return isolationSummary(e.Host, ie)
	}
	if e.Kind == "decision" {
		var d struct {
			DetectionID string `json:"detection_id"`
			Result      string `json:"result"`
			Rules       []struct {
				Rule   string `json:"rule"`
				Result string `json:"result"`
			} `json:"rules"`
		}
		if json.Unmarshal(e.Data, &d) == nil {
			var rs []string
			for _, r := range d.Rules {
				rs = append(rs, r.Rule+"="+r.Result)
			}
			return fmt.Sprintf("%s %s decision %s on %s [%s]", e.Time.UTC().Format(time.RFC3339), e.Host, d.Result, d.DetectionID, strings.Join(rs, " "))
		}
	}
	return fmt.Sprintf("%s %s %s %s", e.Time.UTC().Format(time.RFC3339), e.Host, e.Kind, bytes.TrimSpace(e.Data))
}

func detectionSummary(d ioc.Detection) string {
	var inds []string
	for _, i := range d.Indicators {
		inds = append(inds, i.Kind.String()+":"+i.Value)
	}
	s := fmt.Sprintf("%s %s detection %s engine=%s severity=%s", d.Time.UTC().Format(time.RFC3339), d.Host.ID, d.ID, d.Engine, d.Severity)
	if d.Rule != "" {
		s += " rule=" + d.Rule
	}
	if len(inds) > 0 {
		s += " indicators=" + strings.Join(inds, ",")
	}
	return s
}
