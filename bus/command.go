package bus

import (
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nkeys"
	"github.com/nats-io/nuid"
)

// Action is what a command asks a host to do.
type Action string

// Actions.
const (
	// ActionIsolate isolates the host, or extends its isolation.
	ActionIsolate Action = "isolate"
	// ActionRelease ends the host's isolation.
	ActionRelease Action = "release"
	// ActionStatus asks the host to report its isolation state.
	ActionStatus Action = "status"
)

func (a Action) valid() bool {
	return a == ActionIsolate || a == ActionRelease || a == ActionStatus
}

// MaxCommandBytes bounds an encoded signed command.
const MaxCommandBytes = 64 << 10

// maxIDLen bounds command and message ids.
const maxIDLen = 256

// Command is an order to one host. Its JSON form is the signed payload of
// a SignedCommand.
type Command struct {
	// ID is unique per command; replays of an id are refused.
	// SignCommand makes one when empty.
	ID string `json:"id"`
	// Issuer is the public NKey of the signer; SignCommand sets it.
	Issuer string `json:"issuer"`
	// IssuedAt and Expires bound the command's validity; both required,
	// Expires after IssuedAt.
	IssuedAt time.Time `json:"issued_at"`
	Expires  time.Time `json:"expires"`
	// Host is the id of the target host, a subject token.
	Host string `json:"host"`
	// Action to take.
	Action Action `json:"action"`
	// Args holds the action's arguments as a JSON object (for isolate:
	// duration, reason, mode, exclusions …), defined by the package that
	// carries the action out. Optional.
	Args json.RawMessage `json:"args,omitempty"`
}

// check validates the fields of c that do not depend on time.
func (c Command) check() error {
	fail := func(field, format string, a ...any) error {
		return &CommandError{ID: c.ID, Issuer: c.Issuer, Field: field, Err: fmt.Errorf("%w: "+format, append([]any{ErrInvalidCommand}, a...)...)}
	}
	switch {
	case c.ID == "":
		return fail("id", "id is empty")
	case len(c.ID) > maxIDLen:
		return fail("id", "id is %d bytes, limit %d", len(c.ID), maxIDLen)
	case !c.Action.valid():
		return fail("action", "unknown action %q", c.Action)
	case c.IssuedAt.IsZero():
		return fail("issued_at", "issued_at is missing")
	case c.Expires.IsZero():
		return fail("expires", "expires is missing")
	case !c.Expires.After(c.IssuedAt):
		return fail("expires", "expires %s is not after issued_at %s", c.Expires.Format(time.RFC3339Nano), c.IssuedAt.Format(time.RFC3339Nano))
	}
	if err := checkToken("host", c.Host); err != nil {
		return &CommandError{ID: c.ID, Issuer: c.Issuer, Field: "host", Err: fmt.Errorf("%w: %w", ErrInvalidCommand, err)}
	}
	if len(c.Args) > 0 {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(c.Args, &obj); err != nil || obj == nil {
			return fail("args", "args is not a JSON object")
		}
	}
	return nil
}

// SignedCommand is the wire form (schema "cordon.command/v1") of a
// command: the command's JSON, and an ed25519 signature by the issuer over
// "cordon.command/v1\n" followed by exactly those bytes. ID and Issuer
// repeat the payload's, so that a refusal can name them before the
// signature is checked; a mismatch is refused.
type SignedCommand struct {
	Schema string `json:"schema"`
	ID     string `json:"id"`
	Issuer string `json:"issuer"`
	// Payload is the JSON of the Command (base64 in JSON).
	Payload []byte `json:"payload"`
	// Sig is the signature (base64 in JSON).
	Sig []byte `json:"sig"`
}

func signingInput(schema string, payload []byte) []byte {
	in := make([]byte, 0, len(schema)+1+len(payload))
	in = append(in, schema...)
	in = append(in, '\n')
	return append(in, payload...)
}

// SignCommand signs c with kp (an NKey pair holding a seed, e.g. from
// nkeys.FromSeed). It sets c.Issuer to kp's public key and c.ID when
// empty. It fails with a *CommandError wrapping ErrInvalidCommand when c is
// invalid or c.Issuer names another key, or with the signing error.
func SignCommand(kp nkeys.KeyPair, c Command) (SignedCommand, error) {
	pub, err := kp.PublicKey()
	if err != nil {
		return SignedCommand{}, fmt.Errorf("bus: sign command: %w", err)
	}
	if c.Issuer != "" && c.Issuer != pub {
		return SignedCommand{}, &CommandError{ID: c.ID, Issuer: c.Issuer, Field: "issuer", Err: fmt.Errorf("%w: issuer is not the signing key %s", ErrInvalidCommand, pub)}
	}
	c.Issuer = pub
	if c.ID == "" {
		c.ID = nuid.Next()
	}
	if err := c.check(); err != nil {
		return SignedCommand{}, err
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return SignedCommand{}, fmt.Errorf("bus: sign command %q: %w", c.ID, err)
	}
	sig, err := kp.Sign(signingInput(SchemaCommand, payload))
	if err != nil {
		return SignedCommand{}, fmt.Errorf("bus: sign command %q: %w", c.ID, err)
	}
	sc := SignedCommand{Schema: SchemaCommand, ID: c.ID, Issuer: pub, Payload: payload, Sig: sig}
	if b, _ := json.Marshal(sc); len(b) > MaxCommandBytes {
		return SignedCommand{}, &CommandError{ID: c.ID, Issuer: pub, Field: "args", Err: fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(b), MaxCommandBytes)}
	}
	return sc, nil
}

// Unverified decodes the payload without checking the signature or the
// time. Use it only on commands you signed; a receiver uses a Verifier.
func (sc SignedCommand) Unverified() (Command, error) {
	var c Command
	if err := decodeStrict(SchemaCommand, sc.Payload, &c); err != nil {
		return c, &CommandError{ID: sc.ID, Issuer: sc.Issuer, Field: "payload", Err: err}
	}
	return c, nil
}

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	// TrustedKeys are the public NKeys whose commands are accepted.
	// At least one is required.
	TrustedKeys []string
	// Host, when set, is the only target host accepted.
	Host string
	// MaxSkew is the clock difference tolerated on IssuedAt: a command
	// issued up to MaxSkew in the future is accepted. Zero: 30s.
	MaxSkew time.Duration
	// MaxLifetime bounds Expires - IssuedAt, and so how long an id is
	// remembered. Zero: 24h.
	MaxLifetime time.Duration
	// MaxRemembered bounds the ids of unexpired accepted commands kept
	// against replay; beyond it new commands are refused with
	// ErrReplayCacheFull. Zero: 100000.
	MaxRemembered int
	// Clock gives the current time. Nil: time.Now.
	Clock func() time.Time
}

// Validate reports the first invalid field, wrapping ErrInvalidConfig.
func (c VerifierConfig) Validate() error {
	if len(c.TrustedKeys) == 0 {
		return fmt.Errorf("%w: TrustedKeys is empty", ErrInvalidConfig)
	}
	for i, k := range c.TrustedKeys {
		if _, err := issuerKey(k); err != nil {
			return fmt.Errorf("%w: TrustedKeys[%d]: %v", ErrInvalidConfig, i, err)
		}
	}
	if c.Host != "" {
		if err := checkToken("host", c.Host); err != nil {
			return fmt.Errorf("%w: Host: %v", ErrInvalidConfig, err)
		}
	}
	switch {
	case c.MaxSkew < 0:
		return fmt.Errorf("%w: MaxSkew %v is negative", ErrInvalidConfig, c.MaxSkew)
	case c.MaxLifetime < 0:
		return fmt.Errorf("%w: MaxLifetime %v is negative", ErrInvalidConfig, c.MaxLifetime)
	case c.MaxRemembered < 0:
		return fmt.Errorf("%w: MaxRemembered %d is negative", ErrInvalidConfig, c.MaxRemembered)
	}
	return nil
}

func issuerKey(pub string) (nkeys.KeyPair, error) {
	if len(pub) == 0 || pub[0] == 'X' || pub[0] == 'S' {
		return nil, fmt.Errorf("%q is not a public signing NKey", pub)
	}
	kp, err := nkeys.FromPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("%q: %v", pub, err)
	}
	return kp, nil
}

// Verifier checks signed commands: trusted issuer, valid signature, right
// host, not expired, not from the future, not replayed. It remembers the
// ids it accepted until they expire. It is safe for concurrent use. The
// memory is not persisted: after a restart, an unexpired command could be
// accepted once more; handlers should be idempotent by command id.
type Verifier struct {
	cfg     VerifierConfig
	trusted map[string]nkeys.KeyPair

	mu   sync.Mutex
	seen map[replayKey]*seenEntry
	exp  expiryHeap
}

type replayKey struct{ issuer, id string }

type seenEntry struct {
	key    replayKey
	forget time.Time // expires + skew
	seq    uint64    // stream sequence that carried it, 0 when unknown
	index  int
}

// NewVerifier validates cfg and returns a Verifier. It fails with
// ErrInvalidConfig.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxSkew == 0 {
		cfg.MaxSkew = 30 * time.Second
	}
	if cfg.MaxLifetime == 0 {
		cfg.MaxLifetime = 24 * time.Hour
	}
	if cfg.MaxRemembered == 0 {
		cfg.MaxRemembered = 100000
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	v := &Verifier{cfg: cfg, trusted: make(map[string]nkeys.KeyPair), seen: make(map[replayKey]*seenEntry)}
	for _, k := range cfg.TrustedKeys {
		kp, _ := issuerKey(k) // checked by Validate
		v.trusted[k] = kp
	}
	return v, nil
}

// VerifyCommand decodes and checks data, an encoded SignedCommand, and
// returns its command. Every failure is a *CommandError wrapping
// ErrTooLarge, ErrMalformed, ErrUnsupportedSchema (inside a *DecodeError),
// ErrInvalidCommand, ErrUntrustedIssuer, ErrBadSignature, ErrWrongHost,
// ErrCommandExpired, ErrCommandFromFuture, ErrCommandReplayed or
// ErrReplayCacheFull. An accepted id is refused afterwards until it
// expires.
func (v *Verifier) VerifyCommand(data []byte) (Command, error) {
	return v.verify(data, 0)
}

// verify is VerifyCommand where seq, when not 0, is the stream sequence
// that carried data: a redelivery of the same sequence is not a replay.
func (v *Verifier) verify(data []byte, seq uint64) (Command, error) {
	if len(data) > MaxCommandBytes {
		return Command{}, &CommandError{Err: &DecodeError{Offset: -1, Err: fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), MaxCommandBytes)}}
	}
	if _, err := DecodeHeader(data, SchemaCommand); err != nil {
		return Command{}, &CommandError{Err: err}
	}
	var sc SignedCommand
	if err := decodeStrict(SchemaCommand, data, &sc); err != nil {
		return Command{}, &CommandError{ID: sc.ID, Err: err}
	}
	fail := func(field string, err error) (Command, error) {
		return Command{}, &CommandError{ID: sc.ID, Issuer: sc.Issuer, Field: field, Err: err}
	}
	kp, ok := v.trusted[sc.Issuer]
	if !ok {
		return fail("issuer", ErrUntrustedIssuer)
	}
	if err := kp.Verify(signingInput(sc.Schema, sc.Payload), sc.Sig); err != nil {
		return fail("sig", ErrBadSignature)
	}
	c, err := sc.Unverified()
	if err != nil {
		return Command{}, err
	}
	if c.ID != sc.ID {
		return fail("id", fmt.Errorf("%w: envelope id %q differs from payload id %q", ErrInvalidCommand, sc.ID, c.ID))
	}
	if c.Issuer != sc.Issuer {
		return fail("issuer", fmt.Errorf("%w: envelope issuer differs from payload issuer %q", ErrInvalidCommand, c.Issuer))
	}
	if err := c.check(); err != nil {
		return Command{}, err
	}
	if life := c.Expires.Sub(c.IssuedAt); life > v.cfg.MaxLifetime {
		return fail("expires", fmt.Errorf("%w: lifetime %v above the limit %v", ErrInvalidCommand, life, v.cfg.MaxLifetime))
	}
	if v.cfg.Host != "" && c.Host != v.cfg.Host {
		return fail("host", fmt.Errorf("%w: for %q, this is %q", ErrWrongHost, c.Host, v.cfg.Host))
	}
	now := v.cfg.Clock()
	if !now.Before(c.Expires) {
		return fail("expires", fmt.Errorf("%w: at %s, now %s", ErrCommandExpired, c.Expires.Format(time.RFC3339Nano), now.Format(time.RFC3339Nano)))
	}
	if c.IssuedAt.After(now.Add(v.cfg.MaxSkew)) {
		return fail("issued_at", fmt.Errorf("%w: issued %s, now %s, skew allowed %v", ErrCommandFromFuture, c.IssuedAt.Format(time.RFC3339Nano), now.Format(time.RFC3339Nano), v.cfg.MaxSkew))
	}
	if err := v.remember(now, c, seq); err != nil {
		return fail("id", err)
	}
	return c, nil
}

func (v *Verifier) remember(now time.Time, c Command, seq uint64) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	for len(v.exp) > 0 && now.After(v.exp[0].forget) {
		e := heap.Pop(&v.exp).(*seenEntry)
		delete(v.seen, e.key)
	}
	k := replayKey{c.Issuer, c.ID}
	if e, ok := v.seen[k]; ok {
		if seq != 0 && e.seq == seq {
			return nil // the same stream message delivered again
		}
		return ErrCommandReplayed
	}
	if len(v.seen) >= v.cfg.MaxRemembered {
		return ErrReplayCacheFull
	}
	e := &seenEntry{key: k, forget: c.Expires.Add(v.cfg.MaxSkew), seq: seq}
	v.seen[k] = e
	heap.Push(&v.exp, e)
	return nil
}

// Remembered is how many command ids the verifier holds against replay.
func (v *Verifier) Remembered() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.seen)
}

type expiryHeap []*seenEntry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].forget.Before(h[j].forget) }
func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *expiryHeap) Push(x any) {
	e := x.(*seenEntry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}

// PublishCommand stores sc on "cordon.commands.<host>", with a message
// TTL that removes it from the stream once it expires, so that a host
// offline until then never receives it. It fails with a *CommandError
// (undecodable payload, or ErrCommandExpired by the bus clock),
// ErrInvalidSubject, ErrClosed or a publish error.
func (b *Bus) PublishCommand(ctx context.Context, sc SignedCommand) (PubAck, error) {
	c, err := sc.Unverified()
	if err != nil {
		return PubAck{}, err
	}
	subj, err := CommandSubject(c.Host)
	if err != nil {
		return PubAck{}, &CommandError{ID: c.ID, Issuer: c.Issuer, Field: "host", Err: err}
	}
	ttl := c.Expires.Sub(b.cfg.Clock())
	if ttl <= 0 {
		return PubAck{}, &CommandError{ID: c.ID, Issuer: c.Issuer, Field: "expires", Err: ErrCommandExpired}
	}
	return b.publishJSON(ctx, subj, sc.ID, sc, ttl)
}

// ConsumeCommands hands the commands for host that v accepts to h, through
// a durable consumer (default name "cordon-commands-<host>") on
// "cordon.commands.<host>". Commands stored while the host was away are
// delivered when it consumes again, unless they expired. A command v
// refuses (forged, untrusted, expired, replayed, for another host) is
// dead-lettered with reason "rejected"; one refused because v's replay
// memory is full (ErrReplayCacheFull) is delivered again with the
// consumer's backoff, and dead-lettered only after MaxDeliver attempts.
// v's Host, when set, must be host.
// ctx bounds the setup only: the subscription runs until Stop or Close.
// It fails with ErrInvalidConfig, ErrInvalidSubject, ErrClosed or a
// JetStream error.
func (b *Bus) ConsumeCommands(ctx context.Context, host string, v *Verifier, cc ConsumerConfig, h func(ctx context.Context, c Command, d Delivery) error) (*Subscription, error) {
	subj, err := CommandSubject(host)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, fmt.Errorf("%w: nil Verifier", ErrInvalidConfig)
	}
	if v.cfg.Host != "" && v.cfg.Host != host {
		return nil, fmt.Errorf("%w: Verifier is for host %q, not %q", ErrInvalidConfig, v.cfg.Host, host)
	}
	if len(cc.FilterSubjects) > 0 {
		return nil, fmt.Errorf("%w: FilterSubjects is set by ConsumeCommands", ErrInvalidConfig)
	}
	wrapped := func(ctx context.Context, c Command, d Delivery) error {
		if c.Host != host {
			return fmt.Errorf("%w: command %q for %q on %q", ErrRejected, c.ID, c.Host, host)
		}
		return h(ctx, c, d)
	}
	return consume(ctx, b, StreamCommands, PrefixCommands, cc, []string{subj}, "cordon-commands-"+host,
		func(d Delivery, data []byte) (Command, error) {
			c, err := v.verify(data, d.StreamSeq)
			if errors.Is(err, ErrReplayCacheFull) {
				// Room is made as remembered ids expire: try again later
				// rather than lose a valid command.
				return c, fmt.Errorf("%w: %w", errRetryLater, err)
			}
			if err != nil {
				return c, rejectErr(err)
			}
			return c, nil
		}, wrapped)
}

// rejectErr makes a verification failure dead-letter as "rejected" unless
// it is a decoding failure.
func rejectErr(err error) error {
	var de *DecodeError
	if errors.As(err, &de) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrRejected, err)
}
