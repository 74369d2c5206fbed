package bustest_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cordonsec/cordon/bus/bustest"
)

func TestClusterStopRestart(t *testing.T) {
	cl := bustest.StartCluster(t, 3)
	if len(cl.URLs()) != 3 {
		t.Fatalf("URLs %v", cl.URLs())
	}
	nc, err := nats.Connect(cl.URLs()[0])
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var s jetstream.Stream
	for {
		actx, acancel := context.WithTimeout(ctx, 2*time.Second)
		s, err = js.CreateStream(actx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Replicas: 3})
		acancel()
		if err == nil || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("R3 stream: %v", err)
	}
	cl.Stop(2)
	if cl.Nodes[2].NATS() != nil {
		t.Fatal("stopped node still running")
	}
	cl.Restart(t, 2)
	if cl.Nodes[2].NATS() == nil {
		t.Fatal("restarted node not running")
	}
	info, err := s.Info(ctx)
	if err != nil || info.Config.Replicas != 3 {
		t.Fatalf("stream after restart: %+v, %v", info, err)
	}
}

func TestServerRestartKeepsURLAndData(t *testing.T) {
	srv := bustest.StartServer(t)
	url := srv.URL()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "t.1", []byte("x")); err != nil {
		t.Fatal(err)
	}
	srv.Restart(t)
	if srv.URL() != url {
		t.Fatalf("URL changed from %s to %s", url, srv.URL())
	}
	nc2, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc2.Close()
	js2, _ := jetstream.New(nc2)
	s, err := js2.Stream(ctx, "T")
	if err != nil {
		t.Fatal(err)
	}
	if n := s.CachedInfo().State.Msgs; n != 1 {
		t.Fatalf("after restart the stream holds %d messages, want 1", n)
	}
}
