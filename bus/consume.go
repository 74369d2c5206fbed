package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Consumer defaults; see ConsumerConfig.
const (
	DefaultAckWait       = 30 * time.Second
	DefaultMaxDeliver    = 5
	DefaultMaxAckPending = 1000
	DefaultBatch         = 256
	DefaultPullExpiry    = 10 * time.Second
)

// DefaultBackoff is the delay before each redelivery after a handler
// error; the last entry repeats.
var DefaultBackoff = []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, 2 * time.Minute}

// ErrRejected, wrapped in a handler's error, dead-letters the message at
// once instead of retrying it: the handler knows that no retry can help.
var ErrRejected = errors.New("bus: rejected by handler")

// ConsumerConfig configures a durable pull consumer. The zero value is
// valid: every field has a documented default.
type ConsumerConfig struct {
	// Durable names the consumer; consumers with the same name share the
	// work and resume where the last one acknowledged. Empty: a default
	// per message type ("cordon-detections", "cordon-events",
	// "cordon-commands-<host>", "cordon-deadletters").
	Durable string

	// FilterSubjects restricts the consumer to these subjects (wildcards
	// allowed), which must lie under the stream's prefix. Empty: all of
	// the stream (for commands: the host's subject).
	FilterSubjects []string

	// AckWait is how long a delivered message may stay unacknowledged
	// before the server delivers it again. The handler's context has this
	// deadline. Zero: 30s.
	AckWait time.Duration

	// MaxDeliver is how many times a message is handed to the handler.
	// After the last failure, or when a delivery count above it is seen
	// (earlier deliveries were never acknowledged), the message goes to
	// the dead-letter stream. Zero: 5.
	MaxDeliver int

	// Backoff is the delay before redelivery after the n-th failed
	// attempt (index n-1, the last entry repeating). Nil: DefaultBackoff.
	Backoff []time.Duration

	// MaxAckPending bounds the messages delivered but not yet
	// acknowledged. Zero: 1000.
	MaxAckPending int

	// Batch is how many messages are pulled per request. Zero: 256.
	Batch int

	// PullExpiry is how long one pull request waits on the server. The
	// server sends heartbeats at half of it; after two missed heartbeats
	// (a server gone, a consumer leader moved) the pull is renewed. It
	// bounds how long consuming stalls after a cluster node fails. Zero:
	// 10s; at least 1s.
	PullExpiry time.Duration

	// Workers is how many messages are handled at once. Zero or 1: one
	// at a time, in stream order. More: decoding and handlers run in
	// that many goroutines, and messages finish out of order.
	Workers int
}

// Validate reports the first invalid field, wrapping ErrInvalidConfig.
func (c ConsumerConfig) Validate() error {
	switch {
	case c.Durable != "" && checkToken("durable", c.Durable) != nil:
		return fmt.Errorf("%w: Durable: %v", ErrInvalidConfig, checkToken("durable", c.Durable))
	case c.AckWait < 0:
		return fmt.Errorf("%w: AckWait %v is negative", ErrInvalidConfig, c.AckWait)
	case c.MaxDeliver < 0:
		return fmt.Errorf("%w: MaxDeliver %d is negative", ErrInvalidConfig, c.MaxDeliver)
	case c.MaxAckPending < 0:
		return fmt.Errorf("%w: MaxAckPending %d is negative", ErrInvalidConfig, c.MaxAckPending)
	case c.Batch < 0:
		return fmt.Errorf("%w: Batch %d is negative", ErrInvalidConfig, c.Batch)
	case c.PullExpiry != 0 && c.PullExpiry < time.Second:
		return fmt.Errorf("%w: PullExpiry %v below 1s", ErrInvalidConfig, c.PullExpiry)
	case c.Workers < 0 || c.Workers > 1024:
		return fmt.Errorf("%w: Workers %d not in 0..1024", ErrInvalidConfig, c.Workers)
	}
	for i, d := range c.Backoff {
		if d < 0 {
			return fmt.Errorf("%w: Backoff[%d] %v is negative", ErrInvalidConfig, i, d)
		}
	}
	return nil
}

func (c ConsumerConfig) withDefaults(durable string) ConsumerConfig {
	if c.Durable == "" {
		c.Durable = durable
	}
	if c.AckWait == 0 {
		c.AckWait = DefaultAckWait
	}
	if c.MaxDeliver == 0 {
		c.MaxDeliver = DefaultMaxDeliver
	}
	if c.Backoff == nil {
		c.Backoff = DefaultBackoff
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = DefaultMaxAckPending
	}
	if c.Batch == 0 {
		c.Batch = DefaultBatch
	}
	if c.PullExpiry == 0 {
		c.PullExpiry = DefaultPullExpiry
	}
	return c
}

func (c ConsumerConfig) backoff(attempt uint64) time.Duration {
	if len(c.Backoff) == 0 {
		return 0
	}
	i := int(min(attempt, uint64(len(c.Backoff)))) - 1
	return c.Backoff[max(i, 0)]
}

// Delivery describes one delivery of a message to a handler.
type Delivery struct {
	// Subject the message was published on.
	Subject string
	// Stream and Consumer names.
	Stream, Consumer string
	// StreamSeq is the message's sequence in the stream.
	StreamSeq uint64
	// Attempt counts deliveries of this message, from 1; above 1 the
	// handler may have seen it before.
	Attempt uint64
	// Published is when the server stored the message.
	Published time.Time
}

// Subscription is a running consumer. It is safe for concurrent use.
type Subscription struct {
	b      *Bus
	stream string
	cfg    ConsumerConfig
	cc     jetstream.ConsumeContext
	cancel context.CancelFunc
	ctx    context.Context // cancelled by Stop; parent of handler contexts

	mu       sync.Mutex
	stopped  bool
	inflight sync.WaitGroup
	closed   chan struct{}
	stopOnce sync.Once
}

// Stop stops taking messages and cancels the context of the handler in
// progress. A message whose handler has not returned nil is not
// acknowledged and will be delivered again. Stop does not wait: see
// Closed. It is idempotent.
func (s *Subscription) Stop() {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.stopped = true
		s.mu.Unlock()
		s.cancel()
		s.cc.Stop()
	})
}

// Closed is closed once the subscription has stopped (by Stop, by the
// Bus closing, or by the consumer being deleted) and no handler runs.
func (s *Subscription) Closed() <-chan struct{} { return s.closed }

// Name is the durable consumer name.
func (s *Subscription) Name() string { return s.cfg.Durable }

// decodeFunc decodes and checks one message.
type decodeFunc[T any] func(d Delivery, data []byte) (T, error)

type handlerFunc[T any] func(ctx context.Context, v T, d Delivery) error

// consume creates or updates the durable consumer on stream and starts
// handing messages to h.
func consume[T any](ctx context.Context, b *Bus, stream, prefix string, cc ConsumerConfig, defaultFilters []string, defaultDurable string, decode decodeFunc[T], h handlerFunc[T]) (*Subscription, error) {
	if h == nil {
		return nil, fmt.Errorf("%w: nil handler", ErrInvalidConfig)
	}
	if err := cc.Validate(); err != nil {
		return nil, err
	}
	if b.isClosed() {
		return nil, ErrClosed
	}
	cc = cc.withDefaults(defaultDurable)
	filters := cc.FilterSubjects
	if len(filters) == 0 {
		filters = defaultFilters
	}
	for _, f := range filters {
		if err := checkFilter(prefix, f); err != nil {
			return nil, err
		}
	}
	jc := jetstream.ConsumerConfig{
		Durable:       cc.Durable,
		Description:   "cordon consumer",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cc.AckWait,
		MaxDeliver:    -1, // enforced here, so that the last failure is dead-lettered
		MaxAckPending: cc.MaxAckPending,
		Replicas:      0, // as the stream
	}
	if len(filters) == 1 {
		jc.FilterSubject = filters[0]
	} else {
		jc.FilterSubjects = filters
	}
	var cons jetstream.Consumer
	err := retryAPI(ctx, func(ctx context.Context) error {
		var err error
		cons, err = b.js.CreateOrUpdateConsumer(ctx, stream, jc)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("bus: consumer %s on %s: %w", cc.Durable, stream, err)
	}
	sctx, cancel := context.WithCancel(context.Background())
	s := &Subscription{b: b, stream: stream, cfg: cc, ctx: sctx, cancel: cancel, closed: make(chan struct{})}
	log := b.log.With("stream", stream, "consumer", cc.Durable)
	s.inflight.Add(1) // held until the consume context is closed
	deliver := func(m jetstream.Msg) { handleMsg(s, m, decode, h) }
	quit := make(chan struct{})
	var workers sync.WaitGroup
	if cc.Workers > 1 {
		work := make(chan jetstream.Msg)
		for range cc.Workers {
			workers.Add(1)
			go func() {
				defer workers.Done()
				for {
					select {
					case m := <-work:
						handleMsg(s, m, decode, h)
					case <-quit:
						return
					}
				}
			}()
		}
		deliver = func(m jetstream.Msg) {
			select {
			case work <- m:
			case <-quit:
				_ = m.Nak()
			}
		}
	}
	consumeCtx, err := cons.Consume(deliver,
		jetstream.PullMaxMessages(cc.Batch),
		jetstream.PullExpiry(cc.PullExpiry),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			log.Warn("bus: consume", "err", err)
		}),
	)
	if err != nil {
		close(quit)
		workers.Wait()
		cancel()
		return nil, fmt.Errorf("bus: consume %s on %s: %w", cc.Durable, stream, err)
	}
	s.cc = consumeCtx
	go func() {
		select {
		case <-consumeCtx.Closed():
		case <-b.closed:
			// Close drains the connection, which closes the consume context.
			<-consumeCtx.Closed()
		}
		close(quit) // workers finish the message in hand, with live contexts
		workers.Wait()
		s.mu.Lock()
		s.stopped = true
		s.mu.Unlock()
		cancel()
		s.inflight.Done()
		s.inflight.Wait()
		close(s.closed)
	}()
	return s, nil
}

func handleMsg[T any](s *Subscription, m jetstream.Msg, decode decodeFunc[T], h handlerFunc[T]) {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		_ = m.Nak() // let another consumer have it now
		return
	}
	s.inflight.Add(1)
	s.mu.Unlock()
	defer s.inflight.Done()

	md, err := m.Metadata()
	if err != nil {
		s.b.log.Error("bus: message without JetStream metadata", "subject", m.Subject(), "err", err)
		_ = m.Term()
		return
	}
	d := Delivery{
		Subject:   m.Subject(),
		Stream:    md.Stream,
		Consumer:  md.Consumer,
		StreamSeq: md.Sequence.Stream,
		Attempt:   md.NumDelivered,
		Published: md.Timestamp,
	}
	data := m.Data()
	if len(data) > s.b.cfg.MaxMessageBytes {
		err := &DecodeError{Subject: d.Subject, Offset: -1, Err: fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), s.b.cfg.MaxMessageBytes)}
		s.deadLetter(m, d, ReasonTooLarge, err)
		return
	}
	v, err := decode(d, data)
	if err != nil {
		if errors.Is(err, errRetryLater) {
			if d.Attempt < uint64(s.cfg.MaxDeliver) {
				s.nak(m, d, err)
				return
			}
			s.deadLetter(m, d, ReasonMaxDeliver, err)
			return
		}
		s.deadLetter(m, d, reasonFor(err), err)
		return
	}
	if d.Attempt > uint64(s.cfg.MaxDeliver) {
		s.deadLetter(m, d, ReasonMaxDeliver, fmt.Errorf("delivered %d times, limit %d: earlier deliveries were not acknowledged within %v", d.Attempt, s.cfg.MaxDeliver, s.cfg.AckWait))
		return
	}
	hctx, cancel := context.WithTimeout(s.ctx, s.cfg.AckWait)
	err = callHandler(hctx, h, v, d)
	cancel()
	switch {
	case err == nil:
		if err := m.Ack(); err != nil {
			s.b.log.Warn("bus: ack", "subject", d.Subject, "seq", d.StreamSeq, "err", err)
		}
	case errors.Is(err, ErrRejected):
		s.deadLetter(m, d, ReasonRejected, err)
	case d.Attempt >= uint64(s.cfg.MaxDeliver):
		s.deadLetter(m, d, ReasonMaxDeliver, err)
	default:
		s.nak(m, d, err)
	}
}

// errRetryLater, wrapped in a decode error, has the message delivered
// again with the backoff (dead-lettered after MaxDeliver) instead of
// dead-lettered at once: it was refused for a reason that passes.
var errRetryLater = errors.New("bus: refused for now")

// nak has m delivered again after the backoff of its attempt.
func (s *Subscription) nak(m jetstream.Msg, d Delivery, cause error) {
	delay := s.cfg.backoff(d.Attempt)
	s.b.log.Debug("bus: not handled, will retry", "subject", d.Subject, "seq", d.StreamSeq, "attempt", d.Attempt, "delay", delay, "err", cause)
	if err := m.NakWithDelay(delay); err != nil {
		s.b.log.Warn("bus: nak", "subject", d.Subject, "seq", d.StreamSeq, "err", err)
	}
}

// callHandler runs h, turning a panic into an error so that one bad
// message never takes the consumer down.
func callHandler[T any](ctx context.Context, h handlerFunc[T], v T, d Delivery) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("bus: handler panicked: %v", r)
		}
	}()
	return h(ctx, v, d)
}

func reasonFor(err error) DeadLetterReason {
	switch {
	case errors.Is(err, ErrTooLarge):
		return ReasonTooLarge
	case errors.Is(err, ErrUnsupportedSchema):
		return ReasonUnsupportedSchema
	case errors.Is(err, ErrMalformed):
		return ReasonMalformed
	default:
		return ReasonRejected
	}
}

// deadLetter records m on the dead-letter stream and terminates it. When
// the record cannot be stored, m is left for redelivery instead: it is
// never dropped unrecorded.
func (s *Subscription) deadLetter(m jetstream.Msg, d Delivery, reason DeadLetterReason, cause error) {
	log := s.b.log.With("stream", d.Stream, "consumer", d.Consumer, "subject", d.Subject, "seq", d.StreamSeq)
	if s.stream == StreamDeadLetters {
		log.Error("bus: dropping bad dead-letter record", "reason", reason, "err", cause)
		_ = m.TermWithReason(string(reason))
		return
	}
	rec := newDeadLetter(s.b.cfg.Clock(), d, reason, cause, m.Headers().Get("Nats-Msg-Id"), m.Data(), min(MaxDeadLetterData, s.b.cfg.MaxMessageBytes/2))
	ctx, cancel := context.WithTimeout(context.Background(), s.b.cfg.PublishTimeout)
	defer cancel()
	if _, err := s.b.publishJSON(ctx, DeadLetterSubject(d.Stream), rec.ID, rec, 0); err != nil {
		log.Error("bus: dead-letter publish failed; message left for redelivery", "reason", reason, "err", err)
		_ = m.NakWithDelay(s.cfg.backoff(d.Attempt))
		return
	}
	log.Warn("bus: message dead-lettered", "reason", reason, "err", cause)
	if err := m.TermWithReason(string(reason)); err != nil {
		log.Warn("bus: term", "err", err)
	}
}
