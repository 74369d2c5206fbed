package bus_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/cordonsec/cordon/bus"
	"github.com/cordonsec/cordon/bus/bustest"
	"github.com/cordonsec/cordon/ioc"
)

// TestCloseDrainsInFlightHandler closes the bus while a handler runs: the
// handler finishes, its ack is flushed, and after reopening the same data
// directory the detection is not delivered again while the next one is.
func TestCloseDrainsInFlightHandler(t *testing.T) {
	for _, workers := range []int{1, 3} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) { testCloseDrains(t, workers) })
	}
}

func testCloseDrains(t *testing.T, workers int) {
	dir := t.TempDir()
	ctx := ctxT(t)
	b, err := bus.Open(ctx, bus.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	first, second := detection("h-1", 1), detection("h-1", 2)
	if _, err := b.PublishDetection(ctx, first); err != nil {
		t.Fatal(err)
	}
	started, release := make(chan struct{}), make(chan struct{})
	_, err = b.ConsumeDetections(ctx, bus.ConsumerConfig{Durable: "engine", Workers: workers}, func(hctx context.Context, _ ioc.Detection, _ bus.Delivery) error {
		close(started)
		<-release
		return hctx.Err() // a drained handler keeps a live context
	})
	if err != nil {
		t.Fatal(err)
	}
	<-started
	closed := make(chan error, 1)
	go func() { closed <- b.Close(ctx) }()
	waitUntil(t, "Close to start draining", func() bool { return b.Conn().IsDraining() || b.Conn().IsClosed() })
	close(release)
	if err := recv(t, closed, "Close"); err != nil {
		t.Fatalf("Close: %v", err)
	}

	b2 := bustest.New(t, bus.Config{DataDir: dir})
	cons, err := b2.JetStream().Consumer(ctx, bus.StreamDetections, "engine")
	if err != nil {
		t.Fatal(err)
	}
	info := cons.CachedInfo()
	if info.AckFloor.Stream != 1 || info.NumAckPending != 0 || info.NumRedelivered != 0 {
		t.Fatalf("after reopen: ack floor %d, pending %d, redelivered %d; want the drained ack stored (1, 0, 0)",
			info.AckFloor.Stream, info.NumAckPending, info.NumRedelivered)
	}
	if _, err := b2.PublishDetection(ctx, second); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 2)
	sub, err := b2.ConsumeDetections(ctx, bus.ConsumerConfig{Durable: "engine"}, func(_ context.Context, d ioc.Detection, _ bus.Delivery) error {
		got <- d.ID
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	if id := recv(t, got, "detection after reopen"); id != second.ID {
		t.Fatalf("after reopen got %s first, want %s (the drained one came back)", id, second.ID)
	}
}

// TestExpiredCommandLeavesStream publishes a command that expires in a
// second: the stream removes it by its message TTL, so a host coming back
// later never receives it.
func TestExpiredCommandLeavesStream(t *testing.T) {
	b := bustest.New(t, bus.Config{})
	ctx := ctxT(t)
	kp, _ := nkeys.CreateAccount()
	now := time.Now()
	sc, err := bus.SignCommand(kp, bus.Command{Host: "h-9", Action: bus.ActionRelease, IssuedAt: now, Expires: now.Add(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.PublishCommand(ctx, sc); err != nil {
		t.Fatal(err)
	}
	s, err := b.JetStream().Stream(ctx, bus.StreamCommands)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the expired command to leave the stream", func() bool {
		info, err := s.Info(ctx)
		return err == nil && info.State.Msgs == 0 && info.State.LastSeq == 1
	})
}
