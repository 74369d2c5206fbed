// Package bustest runs NATS JetStream servers inside a test: a Bus on a
// per-test embedded server, a standalone server on a loopback port that
// can be restarted, and an in-process cluster of several nodes. Every
// server keeps its data in t.TempDir() and is shut down at cleanup; every
// listener is on 127.0.0.1 with a port picked by the system.
//
// # Usage
//
//	b := bustest.New(t, bus.Config{})          // embedded, in-process
//	srv := bustest.StartServer(t)              // for clients by URL
//	cl := bustest.StartCluster(t, 3)           // cl.URLs(), cl.Stop(1)
//
// # Concurrency
//
// Server and Cluster methods are safe for concurrent use.
package bustest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/cordonsec/cordon/bus"
)

// readyTimeout bounds how long a server may take to accept clients.
const readyTimeout = 20 * time.Second

// TestStreamBytes is the MaxBytes New gives each stream whose limit is
// zero, so that tests do not reserve the production defaults' disk space.
const TestStreamBytes = 64 << 20

// New opens a Bus on an embedded in-process server, with cfg.DataDir set
// to a fresh t.TempDir() when empty and stream MaxBytes left at zero set
// to TestStreamBytes, and closes it at cleanup. It fails the test on
// error.
func New(t testing.TB, cfg bus.Config) *bus.Bus {
	t.Helper()
	if cfg.DataDir == "" && len(cfg.URLs) == 0 {
		cfg.DataDir = t.TempDir()
	}
	for _, l := range []*bus.StreamLimits{&cfg.Detections, &cfg.Commands, &cfg.Events, &cfg.DeadLetters} {
		if l.MaxBytes == 0 {
			l.MaxBytes = TestStreamBytes
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	b, err := bus.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("bustest: open bus: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = b.Close(ctx)
	})
	return b
}

// Server is a standalone JetStream server listening on 127.0.0.1.
type Server struct {
	mu   sync.Mutex
	opts server.Options
	srv  *server.Server
}

// StartServer starts a JetStream server on a free loopback port with its
// store in t.TempDir(), shut down at cleanup. It fails the test on error.
func StartServer(t testing.TB) *Server {
	t.Helper()
	return StartServerWith(t, nil)
}

// StartServerWith is StartServer with configure applied to the server
// options first (authentication, TLS …); configure may be nil.
func StartServerWith(t testing.TB, configure func(*server.Options)) *Server {
	t.Helper()
	s := &Server{opts: server.Options{
		ServerName: "bustest",
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		JetStream:  true,
		StoreDir:   t.TempDir(),
		NoLog:      true,
		NoSigs:     true,
	}}
	if configure != nil {
		configure(&s.opts)
	}
	if err := s.start(); err != nil {
		t.Fatalf("bustest: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) start() error {
	if err := s.launch(); err != nil {
		return err
	}
	return s.waitReady()
}

// launch starts the server without waiting for it to accept clients (a
// clustered JetStream node waits for its peers).
func (s *Server) launch() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	opts := s.opts
	srv, err := server.NewServer(&opts)
	if err != nil {
		return fmt.Errorf("server %s: %w", s.opts.ServerName, err)
	}
	srv.Start()
	s.srv = srv
	return nil
}

// waitReady waits until the server accepts clients and records its ports.
func (s *Server) waitReady() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	srv := s.srv
	if !srv.ReadyForConnections(readyTimeout) {
		srv.Shutdown()
		s.srv = nil
		return fmt.Errorf("server %s not ready in %v", s.opts.ServerName, readyTimeout)
	}
	// Keep the ports, so that a restart comes back at the same address.
	if s.opts.Port == server.RANDOM_PORT {
		u, _ := url.Parse(srv.ClientURL())
		s.opts.Port, _ = strconv.Atoi(u.Port())
	}
	if s.opts.Cluster.Port == server.RANDOM_PORT {
		if a := srv.ClusterAddr(); a != nil {
			s.opts.Cluster.Port = a.Port
		}
	}
	return nil
}

// URL is the server's client URL ("nats://127.0.0.1:port"); it stays the
// same across Restart.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	scheme := "nats"
	if s.opts.TLSConfig != nil {
		scheme = "tls"
	}
	return fmt.Sprintf("%s://%s:%d", scheme, s.opts.Host, s.opts.Port)
}

// NATS is the running server, or nil when stopped.
func (s *Server) NATS() *server.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.srv
}

// Stop shuts the server down and waits until it is down. It is
// idempotent.
func (s *Server) Stop() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

// Restart stops the server and starts it again on the same port with the
// same store. It fails the test on error.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		t.Fatalf("bustest: restart: %v", err)
	}
}

// Cluster is a set of JetStream servers routed to each other.
type Cluster struct {
	Nodes []*Server
}

// StartCluster starts n JetStream servers in one cluster on loopback
// ports, each with its own store in t.TempDir(), and waits until
// JetStream has a meta leader. They are shut down at cleanup. It fails the
// test on error.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("bustest: cluster of %d nodes", n)
	}
	// JetStream clustering needs every node's routes configured up front,
	// so the route ports are picked first: bound to port 0 and released.
	ports, err := freePorts(n)
	if err != nil {
		t.Fatalf("bustest: %v", err)
	}
	c := &Cluster{}
	name := fmt.Sprintf("bustest-%d", time.Now().UnixNano())
	for i := range n {
		s := &Server{opts: server.Options{
			ServerName: fmt.Sprintf("node-%d", i),
			Host:       "127.0.0.1",
			Port:       server.RANDOM_PORT,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoLog:      true,
			NoSigs:     true,
			Cluster: server.ClusterOpts{
				Name: name,
				Host: "127.0.0.1",
				Port: ports[i],
			},
		}}
		for j, p := range ports {
			if j != i {
				s.opts.Routes = append(s.opts.Routes, &url.URL{Scheme: "nats-route", Host: fmt.Sprintf("127.0.0.1:%d", p)})
			}
		}
		c.Nodes = append(c.Nodes, s)
	}
	for _, s := range c.Nodes {
		if err := s.launch(); err != nil {
			t.Fatalf("bustest: %v", err)
		}
		t.Cleanup(s.Stop)
	}
	for _, s := range c.Nodes {
		if err := s.waitReady(); err != nil {
			t.Fatalf("bustest: %v", err)
		}
	}
	c.WaitReady(t)
	return c
}

// URLs are the client URLs of all nodes, running or not.
func (c *Cluster) URLs() []string {
	urls := make([]string, len(c.Nodes))
	for i, s := range c.Nodes {
		urls[i] = s.URL()
	}
	return urls
}

// Stop shuts node i down.
func (c *Cluster) Stop(i int) { c.Nodes[i].Stop() }

// Restart starts node i again with its store and ports, and waits until
// the cluster is ready.
func (c *Cluster) Restart(t testing.TB, i int) {
	t.Helper()
	c.Nodes[i].Restart(t)
	c.WaitReady(t)
}

// WaitReady waits until every running node sees a JetStream meta leader
// and the routes between running nodes are up. It fails the test after
// 30s.
func (c *Cluster) WaitReady(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		running := 0
		for _, s := range c.Nodes {
			if s.NATS() != nil {
				running++
			}
		}
		ready := true
		leader := ""
		for _, s := range c.Nodes {
			srv := s.NATS()
			if srv == nil {
				continue
			}
			if srv.NumRoutes() < running-1 || !srv.JetStreamEnabled() {
				ready = false
				break
			}
			l := leaderOf(srv)
			if l == "" || (leader != "" && l != leader) {
				ready = false
				break
			}
			leader = l
		}
		// The leader must see every other running node as a current peer,
		// or placing a replicated stream fails.
		if ready {
			ready = false
			for _, s := range c.Nodes {
				if srv := s.NATS(); srv != nil && srv.Name() == leader {
					ready = currentPeers(srv) >= running-1
				}
			}
		}
		if ready {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("bustest: cluster not ready after 30s")
		}
		<-tick.C
	}
}

func currentPeers(srv *server.Server) int {
	js, err := srv.Jsz(&server.JSzOptions{})
	if err != nil || js == nil || js.Meta == nil {
		return 0
	}
	n := 0
	for _, p := range js.Meta.Replicas {
		if p.Current && !p.Offline {
			n++
		}
	}
	return n
}

func leaderOf(srv *server.Server) string {
	js, err := srv.Jsz(&server.JSzOptions{LeaderOnly: false})
	if err != nil || js == nil || js.Meta == nil {
		return ""
	}
	return js.Meta.Leader
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		ls = append(ls, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}
