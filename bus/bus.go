package bus

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Bus is a connection to NATS JetStream with the cordon streams and bucket
// in place. It is safe for concurrent use.
type Bus struct {
	cfg Config
	log *slog.Logger
	srv *server.Server // nil unless embedded
	nc  *nats.Conn
	js  jetstream.JetStream
	kv  jetstream.KeyValue

	replicas int

	closeOnce sync.Once
	closeErr  error
	closed    chan struct{}
	connDone  chan struct{}
}

// Open validates cfg, starts the embedded server when cfg.URLs is empty or
// connects to cfg.URLs otherwise, and creates or updates the streams
// CORDON_DETECTIONS, CORDON_COMMANDS, CORDON_EVENTS, CORDON_DEADLETTERS and
// the key-value bucket cordon-isolation. ctx bounds the whole setup. It
// fails with ErrInvalidConfig, or with the connection or JetStream error.
func Open(ctx context.Context, cfg Config) (*Bus, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	b := &Bus{cfg: cfg, log: cfg.Logger, closed: make(chan struct{}), connDone: make(chan struct{})}
	if len(cfg.URLs) == 0 {
		if err := b.startEmbedded(); err != nil {
			return nil, err
		}
	}
	if err := b.connect(ctx); err != nil {
		b.shutdownServer()
		return nil, err
	}
	if err := b.setup(ctx); err != nil {
		b.nc.Close()
		b.shutdownServer()
		return nil, err
	}
	return b, nil
}

func (b *Bus) startEmbedded() error {
	opts := &server.Options{
		ServerName: b.cfg.ServerName,
		JetStream:  true,
		StoreDir:   b.cfg.DataDir,
		NoSigs:     true,
		NoLog:      true,
		DontListen: b.cfg.Listen == "",
		MaxPayload: int32(max(b.cfg.MaxMessageBytes*2, 1<<20)),
	}
	if b.cfg.Listen != "" {
		host, port, _ := net.SplitHostPort(b.cfg.Listen) // checked by Validate
		p, _ := strconv.Atoi(port)
		if p == 0 {
			p = server.RANDOM_PORT
		}
		opts.Host, opts.Port = host, p
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("bus: embedded server: %w", err)
	}
	srv.SetLoggerV2(serverLogger{b.log.With("component", "nats-server")}, false, false, false)
	srv.Start()
	if !srv.ReadyForConnections(b.cfg.ConnectTimeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return fmt.Errorf("bus: embedded server not ready within %v (data dir %s)", b.cfg.ConnectTimeout, b.cfg.DataDir)
	}
	b.srv = srv
	return nil
}

func (b *Bus) shutdownServer() {
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
	}
}

func (b *Bus) connect(ctx context.Context) error {
	cfg := b.cfg
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.Timeout(cfg.ConnectTimeout),
		nats.MaxReconnects(-1),
		nats.CustomReconnectDelay(b.backoff),
		nats.ReconnectBufSize(8 << 20),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			b.log.Warn("bus: disconnected", "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			b.log.Info("bus: reconnected", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			b.log.Error("bus: async error", "subject", subj, "err", err)
		}),
		nats.ClosedHandler(func(*nats.Conn) { close(b.connDone) }),
	}
	url := ""
	if b.srv != nil {
		opts = append(opts, nats.InProcessServer(b.srv))
	} else {
		url = joinURLs(cfg.URLs)
		if cfg.CredsFile != "" {
			opts = append(opts, nats.UserCredentials(cfg.CredsFile))
		}
		if cfg.NKeySeedFile != "" {
			o, err := nats.NkeyOptionFromSeed(cfg.NKeySeedFile)
			if err != nil {
				return fmt.Errorf("bus: nkey seed %s: %w", cfg.NKeySeedFile, err)
			}
			opts = append(opts, o)
		}
		if cfg.TLS != nil {
			// TLS is required whatever the files: without Secure the
			// client would talk plain text to a server that does not
			// ask for TLS (CAFile empty means the system roots, not
			// "no TLS").
			opts = append(opts, nats.Secure(&tls.Config{MinVersion: tls.VersionTLS12}))
			if cfg.TLS.CAFile != "" {
				opts = append(opts, nats.RootCAs(cfg.TLS.CAFile))
			}
			if cfg.TLS.CertFile != "" {
				opts = append(opts, nats.ClientCert(cfg.TLS.CertFile, cfg.TLS.KeyFile))
			}
		}
	}
	nc, err := b.dial(ctx, url, opts)
	if err != nil {
		return err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return fmt.Errorf("bus: jetstream: %w", err)
	}
	b.nc, b.js = nc, js
	return nil
}

// dial makes the first connection. While the servers cannot be reached
// (refused, unreachable, timed out, name not resolved) it tries again
// with the reconnect backoff until ctx is done, so an agent that starts
// before its network or its servers does not give up; an error the
// servers answer with (authorization, TLS) is returned at once.
func (b *Bus) dial(ctx context.Context, url string, opts []nats.Option) (*nats.Conn, error) {
	for attempt := 1; ; attempt++ {
		o := opts
		if d, ok := ctx.Deadline(); ok {
			if t := time.Until(d); t < b.cfg.ConnectTimeout {
				o = append(slices.Clip(opts), nats.Timeout(max(t, time.Millisecond)))
			}
		}
		nc, err := nats.Connect(url, o...)
		if err == nil {
			return nc, nil
		}
		if b.srv != nil || !unreachable(err) {
			return nil, fmt.Errorf("bus: connect %s: %w", url, err)
		}
		wait := b.backoff(attempt)
		b.log.Warn("bus: servers unreachable, trying again", "url", url, "attempt", attempt, "in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("bus: connect %s: %w (%d attempts, last: %v)", url, ctx.Err(), attempt, err)
		case <-t.C:
		}
	}
}

// unreachable reports whether a connection error means that no server
// could be reached, which trying again may mend.
func unreachable(err error) bool {
	var dns *net.DNSError
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true // refused, unreachable, timed out, on every platform
	}
	return errors.Is(err, nats.ErrNoServers) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) ||
		errors.Is(err, syscall.ETIMEDOUT) || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.As(err, &dns)
}

// backoff is the wait before the attempt-th try to (re)connect: doubling
// from ReconnectMin to ReconnectMax, less up to 20% jitter so that a fleet
// does not reconnect in step.
func (b *Bus) backoff(attempt int) time.Duration {
	d := b.cfg.ReconnectMin
	for i := 1; i < attempt && d < b.cfg.ReconnectMax; i++ {
		d *= 2
	}
	d = min(d, b.cfg.ReconnectMax)
	return d - time.Duration(rand.Int64N(int64(d)/5+1))
}

func joinURLs(urls []string) string {
	s := ""
	for i, u := range urls {
		if i > 0 {
			s += ","
		}
		s += u
	}
	return s
}

// setup creates or updates the streams and the bucket.
func (b *Bus) setup(ctx context.Context) error {
	b.replicas = b.cfg.Replicas
	if b.replicas == 0 {
		b.replicas = 1
		if b.srv == nil && b.nc.ConnectedClusterName() != "" {
			b.replicas = 3
		}
	}
	streams := []struct {
		name, subjects string
		limits         StreamLimits
		ttl            bool
	}{
		{StreamDetections, PrefixDetections + ">", b.cfg.Detections, false},
		{StreamCommands, PrefixCommands + ">", b.cfg.Commands, true},
		{StreamEvents, PrefixEvents + ">", b.cfg.Events, false},
		{StreamDeadLetters, PrefixDeadLetters + ">", b.cfg.DeadLetters, false},
	}
	for _, s := range streams {
		sc := jetstream.StreamConfig{
			Name:        s.name,
			Description: "cordon " + s.subjects,
			Subjects:    []string{s.subjects},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Discard:     jetstream.DiscardOld,
			MaxAge:      s.limits.MaxAge,
			MaxBytes:    s.limits.MaxBytes,
			MaxMsgs:     -1,
			Duplicates:  s.limits.Duplicates,
			Replicas:    b.replicas,
			AllowMsgTTL: s.ttl,
		}
		if err := retryAPI(ctx, func(ctx context.Context) error {
			_, err := b.js.CreateOrUpdateStream(ctx, sc)
			return err
		}); err != nil {
			return fmt.Errorf("bus: stream %s: %w%s", s.name, err, b.placementHint(err))
		}
	}
	var kv jetstream.KeyValue
	err := retryAPI(ctx, func(ctx context.Context) error {
		var err error
		kv, err = b.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:       BucketIsolation,
			Description:  "cordon: last isolation state per host",
			History:      uint8(b.cfg.IsolationHistory),
			MaxValueSize: int32(b.cfg.MaxMessageBytes),
			Storage:      jetstream.FileStorage,
			Replicas:     b.replicas,
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("bus: bucket %s: %w%s", BucketIsolation, err, b.placementHint(err))
	}
	b.kv = kv
	return nil
}

// placementHint says, for an error that no servers could hold the
// replicas, how many were asked for and how to ask for fewer.
func (b *Bus) placementHint(err error) string {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != errCodeClusterNoPeers {
		return ""
	}
	return fmt.Sprintf(" (%d replicas need %d JetStream servers up; a smaller cluster needs Config.Replicas)", b.replicas, b.replicas)
}

// Conn is the underlying NATS connection, for uses this package does not
// cover. Do not close it; close the Bus.
func (b *Bus) Conn() *nats.Conn { return b.nc }

// JetStream is the underlying JetStream context.
func (b *Bus) JetStream() jetstream.JetStream { return b.js }

// Replicas is the replica count used for the streams and the bucket.
func (b *Bus) Replicas() int { return b.replicas }

// ClientURL is the URL other processes use to join the embedded server, or
// "" when there is no embedded server or it does not listen.
func (b *Bus) ClientURL() string {
	if b.srv == nil || b.cfg.Listen == "" {
		return ""
	}
	return b.srv.ClientURL()
}

// Close drains the connection: subscriptions stop taking new messages,
// handlers in progress finish and their acks are flushed, pending
// publishes are flushed; then it shuts the embedded server down. ctx bounds
// the drain; when it ends first the connection is closed at once. Close is
// idempotent and returns the first result.
func (b *Bus) Close(ctx context.Context) error {
	b.closeOnce.Do(func() {
		close(b.closed)
		if err := b.nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			b.closeErr = fmt.Errorf("bus: drain: %w", err)
			b.nc.Close()
		}
		select {
		case <-b.connDone:
		case <-ctx.Done():
			b.nc.Close()
			<-b.connDone
			if b.closeErr == nil {
				b.closeErr = fmt.Errorf("bus: drain: %w", ctx.Err())
			}
		}
		b.shutdownServer()
	})
	return b.closeErr
}

func (b *Bus) isClosed() bool {
	select {
	case <-b.closed:
		return true
	default:
		return false
	}
}

// pubCtx bounds ctx by the publish timeout when it has no deadline.
func (b *Bus) pubCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, b.cfg.PublishTimeout)
}

// serverLogger sends the embedded server's logs to slog.
type serverLogger struct{ l *slog.Logger }

func (s serverLogger) Noticef(f string, v ...any) { s.l.Info(fmt.Sprintf(f, v...)) }
func (s serverLogger) Warnf(f string, v ...any)   { s.l.Warn(fmt.Sprintf(f, v...)) }
func (s serverLogger) Fatalf(f string, v ...any)  { s.l.Error(fmt.Sprintf(f, v...)) }
func (s serverLogger) Errorf(f string, v ...any)  { s.l.Error(fmt.Sprintf(f, v...)) }
func (s serverLogger) Debugf(f string, v ...any)  { s.l.Debug(fmt.Sprintf(f, v...)) }
func (s serverLogger) Tracef(f string, v ...any)  { s.l.Debug(fmt.Sprintf(f, v...)) }

// apiAttemptTimeout bounds one JetStream API request during setup. Right
// after a cluster forms or a leader changes, a request can go unanswered;
// retryAPI asks again.
const apiAttemptTimeout = 2 * time.Second

// retryAPI runs f with a per-attempt timeout until it succeeds, fails with
// an error that another attempt cannot fix, or ctx ends.
func retryAPI(ctx context.Context, f func(ctx context.Context) error) error {
	delay := 50 * time.Millisecond
	var prev error // the last answer, should the deadline cut the next attempt short
	for {
		actx, cancel := context.WithTimeout(ctx, apiAttemptTimeout)
		err := f(actx)
		cancel()
		if err != nil && ctx.Err() != nil && prev != nil && errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%w; the last answer: %w", err, prev)
		}
		if err == nil || ctx.Err() != nil || !transient(err) {
			return err
		}
		prev = err
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		delay = min(delay*2, time.Second)
	}
}

// errCodeClusterNoPeers is the server's JSClusterNoPeersErr.
const errCodeClusterNoPeers jetstream.ErrorCode = 10005

// transient reports errors that a later attempt may not meet: no answer,
// no JetStream responder yet, no leader yet.
func transient(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		// 10005: no suitable peers, while a cluster is still forming.
		return apiErr.Code == 503 || apiErr.Code == 408 || apiErr.ErrorCode == errCodeClusterNoPeers
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, jetstream.ErrJetStreamNotEnabled)
}
