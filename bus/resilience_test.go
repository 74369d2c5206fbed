package bus_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cordonsec/cordon/bus"
	"github.com/cordonsec/cordon/bus/bustest"
	"github.com/cordonsec/cordon/ioc"
)

// TestAtLeastOnceConsumerKilled kills a consumer's connection while it is
// in the middle of a batch (one handler blocked after applying its effect,
// the rest of the batch unacknowledged), starts another with the same
// durable name, and checks that every detection's effect happens exactly
// once and that redelivery did happen.
func TestAtLeastOnceConsumerKilled(t *testing.T) {
	for _, workers := range []int{1, 4} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) { testAtLeastOnce(t, workers) })
	}
}

func testAtLeastOnce(t *testing.T, workers int) {
	srv := bustest.StartServer(t)
	pubBus := bustest.New(t, bus.Config{URLs: []string{srv.URL()}})
	ctx := ctxT(t)
	const n = 300
	ds := make([]ioc.Detection, n)
	ids := make([]string, n)
	for i := range ds {
		ds[i] = detection("h-1", i)
		ids[i] = ds[i].ID
	}
	if _, err := pubBus.PublishDetections(ctx, ds); err != nil {
		t.Fatal(err)
	}

	eff := newEffects()
	cc := bus.ConsumerConfig{Durable: "engine", AckWait: 500 * time.Millisecond, Batch: 100, Workers: workers}
	first := bustest.New(t, bus.Config{URLs: []string{srv.URL()}, Name: "first"})
	blocked := make(chan struct{})
	release := make(chan struct{})
	var handledFirst atomic.Int32
	sub1, err := first.ConsumeDetections(ctx, cc, func(ctx context.Context, d ioc.Detection, dl bus.Delivery) error {
		eff.apply(d.ID, dl)
		if handledFirst.Add(1) == 120 {
			close(blocked)
			<-release // the effect is applied, the ack never leaves
			return nil
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	<-blocked
	first.Conn().Close() // killed: no drain, no acks
	close(release)
	waitClosed(t, sub1.Closed(), "killed subscription closed")

	second := bustest.New(t, bus.Config{URLs: []string{srv.URL()}, Name: "second"})
	sub2, err := second.ConsumeDetections(ctx, cc, func(ctx context.Context, d ioc.Detection, dl bus.Delivery) error {
		eff.apply(d.ID, dl)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub2.Stop()
	waitUntil(t, "all detections handled", func() bool { return eff.count() == n })
	eff.check(t, ids)
	eff.mu.Lock()
	defer eff.mu.Unlock()
	if eff.redelivered == 0 {
		t.Errorf("no redelivery seen: the kill did not leave unacknowledged work")
	}
	if handledFirst.Load() < 120 {
		t.Errorf("first consumer handled %d", handledFirst.Load())
	}
}

// TestReconnectAcrossServerRestart restarts the server under a connected
// client: acknowledged detections survive, and publishing resumes.
func TestReconnectAcrossServerRestart(t *testing.T) {
	srv := bustest.StartServer(t)
	cfg := bus.Config{URLs: []string{srv.URL()}, ReconnectMin: 10 * time.Millisecond, ReconnectMax: 50 * time.Millisecond}
	b := bustest.New(t, cfg)
	consumer := bustest.New(t, cfg)
	ctx := ctxT(t)
	eff := newEffects()
	// The consumer runs across the restart too.
	sub, err := consumer.ConsumeDetections(ctx, bus.ConsumerConfig{AckWait: time.Second}, func(_ context.Context, d ioc.Detection, dl bus.Delivery) error {
		eff.apply(d.ID, dl)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	var acked []string
	for i := range 100 {
		d := detection("h-1", i)
		if _, err := b.PublishDetection(ctx, d); err != nil {
			t.Fatal(err)
		}
		acked = append(acked, d.ID)
	}
	srv.Restart(t)
	waitUntil(t, "reconnect", func() bool { return b.Conn().IsConnected() && consumer.Conn().IsConnected() })
	for i := 100; i < 200; i++ {
		d := detection("h-1", i)
		err := retry(t, func() error { _, err := b.PublishDetection(ctx, d); return err })
		if err != nil {
			t.Fatalf("publish after restart: %v", err)
		}
		acked = append(acked, d.ID)
	}
	waitUntil(t, "all handled", func() bool { return eff.count() == len(acked) })
	eff.check(t, acked)
}

// retry runs f until it succeeds, for at most waitTimeout: publishing
// while JetStream elects leaders after a restart may fail for a moment.
func retry(t *testing.T, f func() error) error {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		err := f()
		if err == nil || errors.Is(err, bus.ErrClosed) || time.Now().After(deadline) {
			return err
		}
	}
}

// TestClusterNodeStoppedDuringPublish publishes detections to a 3-node
// cluster with replicated streams and stops the stream leader midway.
// Every detection acknowledged to the publisher must be consumed, and
// none stored twice. With -short it publishes 2,000 instead of 10,000.
func TestClusterNodeStoppedDuringPublish(t *testing.T) {
	n := 10000
	if testing.Short() {
		n = 2000
	}
	cl := bustest.StartCluster(t, 3)
	b := bustest.New(t, bus.Config{URLs: cl.URLs(), ReconnectMin: 10 * time.Millisecond, ReconnectMax: 100 * time.Millisecond, PublishTimeout: 2 * time.Second})
	if b.Replicas() != 3 {
		t.Fatalf("replicas = %d, want 3 in a cluster", b.Replicas())
	}
	ctx := ctxT(t)
	info, err := b.JetStream().Stream(ctx, bus.StreamDetections)
	if err != nil {
		t.Fatal(err)
	}
	leader := info.CachedInfo().Cluster.Leader
	stop := -1
	for i, s := range cl.Nodes {
		if s.NATS().Name() == leader {
			stop = i
		}
	}
	if stop < 0 {
		t.Fatalf("stream leader %q not among the nodes", leader)
	}

	// The consumer runs while the node goes away, on its own connection.
	consumer := bustest.New(t, bus.Config{URLs: cl.URLs(), ReconnectMin: 10 * time.Millisecond, ReconnectMax: 100 * time.Millisecond})
	eff := newEffects()
	sub, err := consumer.ConsumeDetections(ctx, bus.ConsumerConfig{AckWait: 2 * time.Second, PullExpiry: 2 * time.Second}, func(_ context.Context, d ioc.Detection, dl bus.Delivery) error {
		eff.apply(d.ID, dl)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()

	const batch = 250
	var (
		mu    sync.Mutex
		acked []string
	)
	pending := make([]ioc.Detection, 0, n)
	for i := range n {
		pending = append(pending, detection("h-c", i))
	}
	stopped := false
	for round := 0; len(pending) > 0; round++ {
		if round > 200 {
			t.Fatalf("%d detections still not acknowledged after %d rounds", len(pending), round)
		}
		var next []ioc.Detection
		for start := 0; start < len(pending); start += batch {
			chunk := pending[start:min(start+batch, len(pending))]
			if !stopped && len(acked) >= n/3 {
				cl.Stop(stop) // the stream leader goes away mid-stream
				stopped = true
			}
			acks, err := b.PublishDetections(ctx, chunk)
			var be *bus.BatchError
			if err != nil && !errors.As(err, &be) {
				t.Fatalf("publish: %v", err)
			}
			mu.Lock()
			for i, d := range chunk {
				if be != nil && be.Failed[i] != nil {
					next = append(next, d) // not acknowledged: publish it again
					continue
				}
				if acks[i].Seq == 0 {
					t.Fatalf("ack without sequence for %s", d.ID)
				}
				acked = append(acked, d.ID)
			}
			mu.Unlock()
		}
		pending = next
	}
	if !stopped {
		t.Fatal("the node was never stopped")
	}
	t.Logf("%d detections acknowledged", len(acked))

	waitUntil(t, "all acknowledged detections consumed", func() bool { return eff.count() >= len(acked) })
	t.Logf("%d deliveries, %d of them redeliveries", func() int {
		eff.mu.Lock()
		defer eff.mu.Unlock()
		n := 0
		for _, c := range eff.deliveries {
			n += c
		}
		return n
	}(), func() int { eff.mu.Lock(); defer eff.mu.Unlock(); return eff.redelivered }())
	eff.check(t, acked)
	si, err := b.JetStream().Stream(ctx, bus.StreamDetections)
	if err != nil {
		t.Fatal(err)
	}
	if got := si.CachedInfo().State.Msgs; got != uint64(n) {
		t.Errorf("stream holds %d messages, want %d (each detection once)", got, n)
	}
}

// TestCrashLoopingMessageDeadLettered: a message whose handler never
// returns because its consumer keeps dying is not retried forever; once
// delivered more than MaxDeliver times it is dead-lettered unhandled.
func TestCrashLoopingMessageDeadLettered(t *testing.T) {
	srv := bustest.StartServer(t)
	ctx := ctxT(t)
	admin := bustest.New(t, bus.Config{URLs: []string{srv.URL()}})
	dls := deadLetters(t, admin)
	d := detection("h-1", 1)
	if _, err := admin.PublishDetection(ctx, d); err != nil {
		t.Fatal(err)
	}
	cc := bus.ConsumerConfig{Durable: "crashy", MaxDeliver: 2, AckWait: 200 * time.Millisecond}
	for i := range 2 {
		c := bustest.New(t, bus.Config{URLs: []string{srv.URL()}})
		entered := make(chan uint64, 1)
		_, err := c.ConsumeDetections(ctx, cc, func(hctx context.Context, _ ioc.Detection, dl bus.Delivery) error {
			entered <- dl.Attempt
			<-hctx.Done() // the process dies before this returns
			return hctx.Err()
		})
		if err != nil {
			t.Fatal(err)
		}
		if a := recv(t, entered, "delivery"); a != uint64(i+1) {
			t.Fatalf("attempt %d, want %d", a, i+1)
		}
		c.Conn().Close() // crash
	}
	last := bustest.New(t, bus.Config{URLs: []string{srv.URL()}})
	called := make(chan struct{}, 1)
	sub, err := last.ConsumeDetections(ctx, cc, func(context.Context, ioc.Detection, bus.Delivery) error {
		called <- struct{}{}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	rec := recv(t, dls, "dead letter")
	if rec.Reason != bus.ReasonMaxDeliver || rec.Deliveries != 3 || rec.MsgID != d.ID {
		t.Fatalf("dead letter %+v", rec)
	}
	select {
	case <-called:
		t.Fatal("handler called on the third delivery with MaxDeliver 2")
	default:
	}
}

// TestTwoNodeClusterReplicas: in a cluster of two, two replicas asked for
// are placed, with the client given one server under another name than
// the cluster advertises (so the servers it knows of count three).
func TestTwoNodeClusterReplicas(t *testing.T) {
	cl := bustest.StartCluster(t, 2)
	b := bustest.New(t, bus.Config{URLs: []string{strings.Replace(cl.URLs()[0], "127.0.0.1", "localhost", 1), cl.URLs()[1]}, Replicas: 2})
	if b.Replicas() != 2 {
		t.Fatalf("replicas = %d, want 2", b.Replicas())
	}
	info, err := b.JetStream().Stream(ctxT(t), bus.StreamDetections)
	if err != nil {
		t.Fatal(err)
	}
	if r := info.CachedInfo().Config.Replicas; r != 2 {
		t.Fatalf("stream replicas %d", r)
	}
}

// TestTooFewServersForReplicas: three replicas asked of a cluster of two
// fail with an error that says what to do.
func TestTooFewServersForReplicas(t *testing.T) {
	cl := bustest.StartCluster(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	b, err := bus.Open(ctx, bus.Config{URLs: cl.URLs(), Replicas: 3})
	if err == nil {
		b.Close(ctx)
		t.Fatal("three replicas placed on two servers")
	}
	if !strings.Contains(err.Error(), "3 replicas need 3 JetStream servers") {
		t.Fatalf("error %v does not say why", err)
	}
}
