package bus_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cordonsec/cordon/bus"
	"github.com/cordonsec/cordon/bus/bustest"
	"github.com/cordonsec/cordon/ioc"
)

// benchConfig leaves room for a few hundred thousand detections, so that
// none is discarded before the consumer reads it.
var benchConfig = bus.Config{Detections: bus.StreamLimits{MaxBytes: 1 << 30}}

// BenchmarkPublishConsumeDetections publishes b.N detections in batches
// of 1,000 to the embedded server (file storage) while one consumer
// decodes, validates and acknowledges them; it reports detections per
// second through the whole path.
func BenchmarkPublishConsumeDetections(b *testing.B) {
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("inprocess/workers=%d", workers), func(b *testing.B) { benchPublishConsume(b, bustest.New(b, benchConfig), workers) })
		b.Run(fmt.Sprintf("loopback/workers=%d", workers), func(b *testing.B) {
			cfg := benchConfig
			cfg.Listen = "127.0.0.1:0"
			emb := bustest.New(b, cfg)
			benchPublishConsume(b, bustest.New(b, bus.Config{URLs: []string{emb.ClientURL()}, Detections: benchConfig.Detections}), workers)
		})
	}
}

func benchPublishConsume(b *testing.B, bs *bus.Bus, workers int) {
	ctx := context.Background()
	ds := make([]ioc.Detection, b.N)
	for i := range ds {
		ds[i] = detection("h-bench", i)
	}
	var handled atomic.Int64
	done := make(chan struct{})
	n := int64(b.N)
	sub, err := bs.ConsumeDetections(ctx, bus.ConsumerConfig{Batch: 1000, MaxAckPending: 20000, Workers: workers}, func(context.Context, ioc.Detection, bus.Delivery) error {
		if handled.Add(1) == n {
			close(done)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Stop()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < len(ds); i += 1000 {
		if _, err := bs.PublishDetections(ctx, ds[i:min(i+1000, len(ds))]); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("handled %d of %d", handled.Load(), b.N)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "detections/s")
	b.ReportMetric(float64(len(mustJSON(b, ds[0]))), "bytes/detection")
}

// BenchmarkRawJetStream is the baseline for the benchmark above: the same
// payload bytes through the same embedded server with plain jetstream
// calls (async publish with a message id, pull consume, ack), without
// cordon's encoding, validation and dead-letter logic.
func BenchmarkRawJetStream(b *testing.B) {
	b.Run("inprocess", func(b *testing.B) { benchRaw(b, bustest.New(b, benchConfig)) })
	b.Run("loopback", func(b *testing.B) {
		cfg := benchConfig
		cfg.Listen = "127.0.0.1:0"
		emb := bustest.New(b, cfg)
		benchRaw(b, bustest.New(b, bus.Config{URLs: []string{emb.ClientURL()}, Detections: benchConfig.Detections}))
	})
}

func benchRaw(b *testing.B, bs *bus.Bus) {
	js := bs.JetStream()
	ctx := context.Background()
	payload := mustJSON(b, detection("h-bench", 1))
	cons, err := js.CreateOrUpdateConsumer(ctx, bus.StreamDetections, jetstream.ConsumerConfig{
		Durable: "raw", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 20000,
	})
	if err != nil {
		b.Fatal(err)
	}
	var handled atomic.Int64
	done := make(chan struct{})
	n := int64(b.N)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		_ = m.Ack()
		if handled.Add(1) == n {
			close(done)
		}
	}, jetstream.PullMaxMessages(1000))
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Stop()
	ids := make([]string, b.N)
	for i := range ids {
		ids[i] = detection("h-bench", i).ID
	}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i += 1000 {
		var fs []jetstream.PubAckFuture
		for j := i; j < min(i+1000, b.N); j++ {
			m := nats.NewMsg("cordon.detections.h-bench")
			m.Data = payload
			f, err := js.PublishMsgAsync(m, jetstream.WithMsgID(ids[j]))
			if err != nil {
				b.Fatal(err)
			}
			fs = append(fs, f)
		}
		for _, f := range fs {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				b.Fatal(err)
			}
		}
	}
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("handled %d of %d", handled.Load(), b.N)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// BenchmarkPublishToHandlerLatency publishes b.N detections one at a
// time at 1,000 per second (each waiting for its acknowledgement, as an
// agent would) and measures the time from the publish call to the
// handler; it reports the 50th and 99th percentiles in milliseconds.
// Run with -benchtime 5000x for a stable p99.
func BenchmarkPublishToHandlerLatency(b *testing.B) {
	bs := bustest.New(b, bus.Config{})
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	got := make(chan time.Duration, b.N)
	sub, err := bs.ConsumeDetections(ctx, bus.ConsumerConfig{}, func(_ context.Context, d ioc.Detection, _ bus.Delivery) error {
		got <- time.Since(d.Time)
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	b.ResetTimer()
	for i := range b.N {
		<-tick.C
		d := detection("h-lat", i)
		d.Time = time.Now()
		if _, err := bs.PublishDetection(ctx, d); err != nil {
			b.Fatal(err)
		}
	}
	for range b.N {
		select {
		case l := <-got:
			lat = append(lat, l)
		case <-time.After(time.Minute):
			b.Fatalf("received %d of %d", len(lat), b.N)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(int(float64(len(lat))*p), len(lat)-1)]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(0, "ns/op")
}

func mustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// BenchmarkDecodeDetection is the consumer's per-message decoding and
// validation cost, without the server.
func BenchmarkDecodeDetection(b *testing.B) {
	data := mustJSON(b, detection("h-1", 1))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bus.DecodeDetection("cordon.detections.h-1", data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyCommand is the agent's cost to check one signed command
// (ed25519 verification dominates).
func BenchmarkVerifyCommand(b *testing.B) {
	kp := fixedKey(b, 1)
	pub, _ := kp.PublicKey()
	now := t0
	v, err := bus.NewVerifier(bus.VerifierConfig{TrustedKeys: []string{pub}, MaxRemembered: 1 << 30, Clock: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	msgs := make([][]byte, 0, 1024)
	for i := range cap(msgs) {
		sc, err := bus.SignCommand(kp, bus.Command{ID: fmt.Sprint("c-", i), Host: "h-1", Action: bus.ActionStatus, IssuedAt: now, Expires: now.Add(time.Minute)})
		if err != nil {
			b.Fatal(err)
		}
		msgs = append(msgs, mustJSON(b, sc))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		_, err := v.VerifyCommand(msgs[i%len(msgs)])
		if i < len(msgs) && err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkEncodeDetection is the publisher's per-message encoding cost:
// Detection.AppendJSON, which bus uses, against json.Marshal, which
// writes the same bytes.
func BenchmarkEncodeDetection(b *testing.B) {
	d := detection("h-1", 1)
	b.Run("AppendJSON", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			var err error
			if buf, err = d.AppendJSON(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(d); err != nil {
				b.Fatal(err)
			}
		}
	})
}
