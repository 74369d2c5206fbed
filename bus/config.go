package bus

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"
)

// Stream and bucket names. They are part of the public contract.
const (
	StreamDetections  = "CORDON_DETECTIONS"
	StreamCommands    = "CORDON_COMMANDS"
	StreamEvents      = "CORDON_EVENTS"
	StreamDeadLetters = "CORDON_DEADLETTERS"
	BucketIsolation   = "cordon-isolation"
)

// Default limits; see Config and StreamLimits.
const (
	DefaultMaxMessageBytes = 256 << 10
	DefaultConnectTimeout  = 5 * time.Second
	DefaultReconnectMin    = 100 * time.Millisecond
	DefaultReconnectMax    = 10 * time.Second
	DefaultPublishTimeout  = 10 * time.Second
)

// StreamLimits bound one stream. A zero field takes the stream's default,
// listed in Config.
type StreamLimits struct {
	// MaxAge is how long a message is kept.
	MaxAge time.Duration
	// MaxBytes bounds the stream's storage; the oldest messages are
	// discarded first.
	MaxBytes int64
	// Duplicates is the window during which a message id is remembered
	// so that a retried publish is stored once.
	Duplicates time.Duration
}

// TLSConfig points at PEM files for a TLS connection to NATS servers.
type TLSConfig struct {
	// CAFile holds the certificate authorities that sign the servers'
	// certificates. Empty: the system roots.
	CAFile string
	// CertFile and KeyFile hold the client certificate and key for mutual
	// TLS. Both or neither.
	CertFile, KeyFile string
}

// Config configures Open. The zero value, plus a DataDir, runs an embedded
// in-process server with file storage.
type Config struct {
	// URLs of NATS servers to connect to ("nats://host:4222",
	// "tls://…"). Empty: start an embedded nats-server in this process.
	URLs []string

	// DataDir is the JetStream file storage directory of the embedded
	// server. Required when URLs is empty, ignored otherwise.
	DataDir string

	// Listen is an optional "host:port" on which the embedded server also
	// accepts TCP clients, so that other processes can join; port 0 picks
	// a free port (see Bus.ClientURL). Empty: in-process connection only.
	// Only loopback is accepted unless ListenAnyAddress is set.
	Listen string
	// ListenAnyAddress allows a non-loopback Listen address. The embedded
	// server has no authentication: only set it behind a firewall.
	ListenAnyAddress bool

	// ServerName names the embedded server. Empty: "cordon-embedded".
	ServerName string

	// Name is the client connection name shown by the servers. Empty:
	// "cordon".
	Name string

	// CredsFile is a NATS ".creds" file (user JWT and NKey seed).
	// NKeySeedFile is a file holding an NKey user seed. At most one.
	CredsFile    string
	NKeySeedFile string

	// TLS, when not nil, requires TLS (1.2 or later) to the servers,
	// even with every field empty: a server that does not offer TLS is
	// refused.
	TLS *TLSConfig

	// ConnectTimeout bounds each attempt at the first connection. Zero:
	// 5s. While no server can be reached Open keeps trying, with the
	// backoff below, until its context is done; an authorization or TLS
	// error ends it at once. After the
	// first connection the client reconnects forever with a backoff
	// doubling from ReconnectMin (zero: 100ms) to ReconnectMax (zero: 10s),
	// less up to 20% jitter.
	ConnectTimeout             time.Duration
	ReconnectMin, ReconnectMax time.Duration

	// PublishTimeout bounds each publish when the caller's context has no
	// deadline. Zero: 10s.
	PublishTimeout time.Duration

	// Replicas of every stream and of the bucket. Zero: 1 for the
	// embedded server or a single server, 3 when the connected server is
	// part of a cluster: a cluster of two needs Replicas set (the client
	// cannot count the servers reliably: one server may be known under
	// several names, and some not advertised), and Open then fails with
	// the JetStream placement error naming the count.
	Replicas int

	// MaxMessageBytes bounds a message: publishing a larger one fails
	// with ErrTooLarge and a consumer dead-letters a larger one unread.
	// Zero: 256 KiB. The servers' max_payload (1 MiB by default) must be
	// larger.
	MaxMessageBytes int

	// Limits of each stream. Zero fields take these defaults:
	//   Detections:  MaxAge 30 days,  MaxBytes 512 MiB, Duplicates 10 min
	//   Commands:    MaxAge 7 days,   MaxBytes 64 MiB,  Duplicates 10 min
	//   Events:      MaxAge 365 days, MaxBytes 1 GiB,   Duplicates 10 min
	//   DeadLetters: MaxAge 30 days,  MaxBytes 128 MiB, Duplicates 10 min
	// Open creates or updates the streams with these limits, so every
	// process opening the same servers should use the same ones. When
	// full, a stream drops its oldest messages. A single server
	// reserves the sum of MaxBytes (1.7 GiB by default) and refuses to
	// create a stream when its disk (75% of the free space, for the
	// embedded server) cannot hold it.
	Detections, Commands, Events, DeadLetters StreamLimits

	// IsolationHistory is how many past states per host the bucket keeps.
	// Zero: 5 (at most 64).
	IsolationHistory int

	// Logger receives connection and embedded server logs. Nil: discard.
	Logger *slog.Logger

	// Clock gives the time stamped on dead letters and events. Nil:
	// time.Now.
	Clock func() time.Time
}

var defaultLimits = map[string]StreamLimits{
	StreamDetections:  {MaxAge: 30 * 24 * time.Hour, MaxBytes: 512 << 20, Duplicates: 10 * time.Minute},
	StreamCommands:    {MaxAge: 7 * 24 * time.Hour, MaxBytes: 64 << 20, Duplicates: 10 * time.Minute},
	StreamEvents:      {MaxAge: 365 * 24 * time.Hour, MaxBytes: 1 << 30, Duplicates: 10 * time.Minute},
	StreamDeadLetters: {MaxAge: 30 * 24 * time.Hour, MaxBytes: 128 << 20, Duplicates: 10 * time.Minute},
}

func (l StreamLimits) withDefaults(stream string) StreamLimits {
	d := defaultLimits[stream]
	if l.MaxAge == 0 {
		l.MaxAge = d.MaxAge
	}
	if l.MaxBytes == 0 {
		l.MaxBytes = d.MaxBytes
	}
	if l.Duplicates == 0 {
		l.Duplicates = d.Duplicates
	}
	if l.Duplicates > l.MaxAge {
		l.Duplicates = l.MaxAge
	}
	return l
}

func (l StreamLimits) validate(field string) error {
	switch {
	case l.MaxAge < 0:
		return fmt.Errorf("%w: %s.MaxAge %v is negative", ErrInvalidConfig, field, l.MaxAge)
	case l.MaxBytes < 0:
		return fmt.Errorf("%w: %s.MaxBytes %d is negative", ErrInvalidConfig, field, l.MaxBytes)
	case l.Duplicates < 0:
		return fmt.Errorf("%w: %s.Duplicates %v is negative", ErrInvalidConfig, field, l.Duplicates)
	}
	return nil
}

// Validate reports the first invalid field of c, wrapping ErrInvalidConfig.
func (c Config) Validate() error {
	if len(c.URLs) == 0 {
		if c.DataDir == "" {
			return fmt.Errorf("%w: DataDir is required for the embedded server (no URLs)", ErrInvalidConfig)
		}
		if c.Listen != "" {
			host, port, err := net.SplitHostPort(c.Listen)
			if err != nil {
				return fmt.Errorf("%w: Listen %q: %v", ErrInvalidConfig, c.Listen, err)
			}
			if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
				return fmt.Errorf("%w: Listen %q: bad port", ErrInvalidConfig, c.Listen)
			}
			if !c.ListenAnyAddress && !isLoopback(host) {
				return fmt.Errorf("%w: Listen %q is not a loopback address (set ListenAnyAddress)", ErrInvalidConfig, c.Listen)
			}
		}
	} else {
		for i, u := range c.URLs {
			if u == "" {
				return fmt.Errorf("%w: URLs[%d] is empty", ErrInvalidConfig, i)
			}
		}
	}
	if c.CredsFile != "" && c.NKeySeedFile != "" {
		return fmt.Errorf("%w: CredsFile and NKeySeedFile are exclusive", ErrInvalidConfig)
	}
	if c.TLS != nil && (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return fmt.Errorf("%w: TLS.CertFile and TLS.KeyFile go together", ErrInvalidConfig)
	}
	switch {
	case c.ConnectTimeout < 0:
		return fmt.Errorf("%w: ConnectTimeout %v is negative", ErrInvalidConfig, c.ConnectTimeout)
	case c.ReconnectMin < 0 || c.ReconnectMax < 0:
		return fmt.Errorf("%w: ReconnectMin/ReconnectMax is negative", ErrInvalidConfig)
	case c.ReconnectMin > 0 && c.ReconnectMax > 0 && c.ReconnectMin > c.ReconnectMax:
		return fmt.Errorf("%w: ReconnectMin %v above ReconnectMax %v", ErrInvalidConfig, c.ReconnectMin, c.ReconnectMax)
	case c.PublishTimeout < 0:
		return fmt.Errorf("%w: PublishTimeout %v is negative", ErrInvalidConfig, c.PublishTimeout)
	case c.Replicas < 0 || c.Replicas > 5:
		return fmt.Errorf("%w: Replicas %d not in 0..5", ErrInvalidConfig, c.Replicas)
	case c.MaxMessageBytes < 0:
		return fmt.Errorf("%w: MaxMessageBytes %d is negative", ErrInvalidConfig, c.MaxMessageBytes)
	case c.IsolationHistory < 0 || c.IsolationHistory > 64:
		return fmt.Errorf("%w: IsolationHistory %d not in 0..64", ErrInvalidConfig, c.IsolationHistory)
	}
	for name, l := range map[string]StreamLimits{"Detections": c.Detections, "Commands": c.Commands, "Events": c.Events, "DeadLetters": c.DeadLetters} {
		if err := l.validate(name); err != nil {
			return err
		}
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (c Config) withDefaults() Config {
	if c.ServerName == "" {
		c.ServerName = "cordon-embedded"
	}
	if c.Name == "" {
		c.Name = "cordon"
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.ReconnectMin == 0 {
		c.ReconnectMin = DefaultReconnectMin
	}
	if c.ReconnectMax == 0 {
		c.ReconnectMax = DefaultReconnectMax
	}
	if c.ReconnectMin > c.ReconnectMax {
		c.ReconnectMax = c.ReconnectMin
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = DefaultPublishTimeout
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.IsolationHistory == 0 {
		c.IsolationHistory = 5
	}
	c.Detections = c.Detections.withDefaults(StreamDetections)
	c.Commands = c.Commands.withDefaults(StreamCommands)
	c.Events = c.Events.withDefaults(StreamEvents)
	c.DeadLetters = c.DeadLetters.withDefaults(StreamDeadLetters)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	return c
}
