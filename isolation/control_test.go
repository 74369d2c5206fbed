//go:build linux || darwin

package isolation_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cordonsec/cordon/isolation"
	"github.com/cordonsec/cordon/isolation/isolationtest"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type controlEnv struct {
	m      *isolation.Manager
	fake   *isolationtest.Fake
	sink   *sink
	clock  *fakeClock
	client isolation.ControlClient
	path   string
}

func newControlEnv(t *testing.T, tweak func(*isolation.ControlConfig)) *controlEnv {
	t.Helper()
	e := &controlEnv{fake: isolationtest.NewFake(), sink: &sink{}, clock: &fakeClock{now: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}}
	cfg := baseConfig()
	cfg.Management = []isolation.ManagementEndpoint{{Address: "198.18.0.10:4222"}}
	cfg.Enforcer, cfg.Sink, cfg.Resolver = e.fake, e.sink, &resolver{}
	m, err := isolation.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	if err := m.Restore(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.m = m
	hash, err := isolation.HashPassword("correct horse", cheap)
	if err != nil {
		t.Fatal(err)
	}
	e.path = filepath.Join(t.TempDir(), "control.sock")
	cc := isolation.ControlConfig{Path: e.path, Manager: m, PasswordHash: hash,
		AllowUIDs: []uint32{uint32(os.Getuid())}, Now: e.clock.Now}
	if tweak != nil {
		tweak(&cc)
	}
	srv, err := isolation.ListenControl(cc)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background()) }()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	e.client = isolation.ControlClient{Path: e.path, Timeout: 10 * time.Second}
	return e
}

func TestControlSocketMode(t *testing.T) {
	e := newControlEnv(t, nil)
	fi, err := os.Lstat(e.path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, want a socket with 0600", fi.Mode())
	}
}

func TestControlStatusAndExclusions(t *testing.T) {
	e := newControlEnv(t, nil)
	ctx := context.Background()
	st, err := e.client.Status(ctx)
	if err != nil || st.State != isolation.StateOff || st.Host != "h-42" {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	if _, err := e.client.Exclusions(ctx); !errors.Is(err, isolation.ErrNotIsolated) {
		t.Fatalf("Exclusions while not isolated = %v, want ErrNotIsolated", err)
	}
	if _, err := e.m.Isolate(ctx, isolation.Request{Mode: isolation.ModeManual}); err != nil {
		t.Fatal(err)
	}
	r, err := e.client.Exclusions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Exclusions) != 1 || r.Exclusions[0] != manualSSH.String() ||
		len(r.Management) != 1 || !strings.Contains(r.Management[0], "198.18.0.10") {
		t.Fatalf("exclusions answer %+v", r)
	}
	st, err = e.client.Status(ctx)
	if err != nil || st.State != isolation.StateOn || st.Mode != isolation.ModeManual {
		t.Fatalf("Status = %+v, %v", st, err)
	}
}

func TestControlRelease(t *testing.T) {
	e := newControlEnv(t, nil)
	ctx := context.Background()
	if _, err := e.m.Isolate(ctx, isolation.Request{Mode: isolation.ModeAutomatic}); err != nil {
		t.Fatal(err)
	}
	_, err := e.client.Release(ctx, "wrong", "trying")
	if !errors.Is(err, isolation.ErrBadPassword) {
		t.Fatalf("Release(wrong) = %v, want ErrBadPassword", err)
	}
	ev := e.sink.last()
	if ev.Kind != isolation.EventRefused || ev.Error != isolation.ErrBadPassword.Error() || !strings.HasPrefix(ev.Requester, "local:uid=") {
		t.Fatalf("refusal audit %+v", ev)
	}
	if e.m.Status().State != isolation.StateOn {
		t.Fatal("wrong password released the host")
	}
	st, err := e.client.Release(ctx, "correct horse", "false positive")
	if err != nil || st.State != isolation.StateOff {
		t.Fatalf("Release(correct) = %+v, %v", st, err)
	}
	ev = e.sink.last()
	if ev.Kind != isolation.EventReleased || ev.Reason != "false positive" || !strings.Contains(ev.Requester, ",pid=") {
		t.Fatalf("release audit %+v", ev)
	}
	if active, _ := e.fake.Host().Active(); active {
		t.Fatal("rules still in force")
	}
}

func TestControlRateLimit(t *testing.T) {
	e := newControlEnv(t, func(c *isolation.ControlConfig) { c.MaxFailures = 3; c.FailureWindow = 10 * time.Minute })
	ctx := context.Background()
	if _, err := e.m.Isolate(ctx, isolation.Request{Mode: isolation.ModeAutomatic}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := e.client.Release(ctx, "nope", ""); !errors.Is(err, isolation.ErrBadPassword) {
			t.Fatalf("attempt %d: %v", i, err)
		}
		e.clock.Add(time.Minute)
	}
	// Locked out: even the right password is refused, without hashing.
	r, err := e.client.Do(ctx, isolation.ControlRequest{Op: isolation.OpRelease, Password: "correct horse"})
	if !errors.Is(err, isolation.ErrRateLimited) || time.Duration(r.RetryAfter) != 7*time.Minute {
		t.Fatalf("locked out: %+v %v, want ErrRateLimited retry after 7m", r, err)
	}
	if ev := e.sink.last(); ev.Kind != isolation.EventRefused || ev.Error != isolation.ErrRateLimited.Error() {
		t.Fatalf("lockout audit %+v", ev)
	}
	if e.m.Status().State != isolation.StateOn {
		t.Fatal("released while locked out")
	}
	e.clock.Add(7 * time.Minute) // the first failure leaves the window
	st, err := e.client.Release(ctx, "correct horse", "")
	if err != nil || st.State != isolation.StateOff {
		t.Fatalf("after the lockout: %+v %v", st, err)
	}
}

func TestControlPeerNotAllowed(t *testing.T) {
	e := newControlEnv(t, func(c *isolation.ControlConfig) { c.AllowUIDs = []uint32{uint32(os.Getuid()) + 4242} })
	if _, err := e.client.Status(context.Background()); !errors.Is(err, isolation.ErrPermission) {
		t.Fatalf("Status from a refused peer = %v, want ErrPermission", err)
	}
	if ev := e.sink.last(); ev.Kind != isolation.EventRefused {
		t.Fatalf("refused peer not audited: %+v", ev)
	}
}

func TestControlReleaseDisabled(t *testing.T) {
	e := newControlEnv(t, func(c *isolation.ControlConfig) { c.PasswordHash = "" })
	if _, err := e.m.Isolate(context.Background(), isolation.Request{Mode: isolation.ModeAutomatic}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.Release(context.Background(), "anything", ""); !errors.Is(err, isolation.ErrUnsupported) {
		t.Fatalf("Release without a configured password = %v", err)
	}
	if e.m.Status().State != isolation.StateOn {
		t.Fatal("released")
	}
}

func TestControlProtocolErrors(t *testing.T) {
	e := newControlEnv(t, nil)
	for _, line := range []string{"garbage\n", `{"op":"reboot"}` + "\n", strings.Repeat("x", 20000) + "\n"} {
		c, err := net.Dial("unix", e.path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4096)
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, _ := c.Read(buf)
		c.Close()
		if !strings.Contains(string(buf[:n]), `"code":"protocol"`) {
			t.Fatalf("answer to %.20q: %q", line, buf[:n])
		}
	}
	// Several requests on one connection.
	c, err := net.Dial("unix", e.path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("{\"op\":\"status\"}\n{\"op\":\"exclusions\"}\n")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var got strings.Builder
	buf := make([]byte, 4096)
	for strings.Count(got.String(), "\n") < 2 {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("read: %v (got %q)", err, got.String())
		}
		got.Write(buf[:n])
	}
	if !strings.Contains(got.String(), `"state":"off"`) || !strings.Contains(got.String(), `"code":"not_isolated"`) {
		t.Fatalf("answers %q", got.String())
	}
}

func TestListenControlPathChecks(t *testing.T) {
	dir := t.TempDir()
	m, err := isolation.New(isolation.Config{Enforcer: isolationtest.NewFake()})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	// A regular file in the way is not removed.
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := isolation.ListenControl(isolation.ControlConfig{Path: file, Manager: m}); err == nil {
		t.Fatal("listened over a regular file")
	}
	if b, _ := os.ReadFile(file); string(b) != "keep" {
		t.Fatal("regular file clobbered")
	}
	// A stale socket is replaced.
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	srv, err := isolation.ListenControl(isolation.ControlConfig{Path: stale, Manager: m})
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	// A live one is not.
	if _, err := isolation.ListenControl(isolation.ControlConfig{Path: stale, Manager: m}); err == nil {
		t.Fatal("took over a socket in use")
	}
	srv.Close()
	if _, err := isolation.ListenControl(isolation.ControlConfig{Path: stale, Manager: m, PasswordHash: "$argon2id$bad"}); !errors.Is(err, isolation.ErrBadHash) {
		t.Fatalf("bad hash accepted: %v", err)
	}
}

// TestControlRateLimitConcurrent: wrong passwords sent over several
// connections at once get no more than MaxFailures guesses checked.
func TestControlRateLimitConcurrent(t *testing.T) {
	// A hash slow enough (a few ms) that the connections overlap while one
	// is being checked.
	hash, err := isolation.HashPassword("correct horse", isolation.Argon2Params{Memory: 8 * 1024, Time: 2, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	e := newControlEnv(t, func(c *isolation.ControlConfig) { c.MaxFailures = 2; c.MaxConns = 8; c.PasswordHash = hash })
	ctx := context.Background()
	if _, err := e.m.Isolate(ctx, isolation.Request{Mode: isolation.ModeAutomatic}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	counts := map[string]int{}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.client.Release(ctx, "nope", "")
			k := fmt.Sprint("other: ", err)
			switch {
			case errors.Is(err, isolation.ErrBadPassword):
				k = "bad"
			case errors.Is(err, isolation.ErrRateLimited):
				k = "limited"
			}
			mu.Lock()
			counts[k]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if counts["bad"] != 2 || counts["limited"] != 6 {
		t.Fatalf("answers %v, want 2 wrong-password checks and 6 lockouts", counts)
	}
}

// TestControlExclusionsWhileFailed: while the isolation is failed the rules
// in force are not known, so exclusions answers with the failure and the
// status instead of a list.
func TestControlExclusionsWhileFailed(t *testing.T) {
	e := newControlEnv(t, nil)
	ctx := context.Background()
	e.fake.Host().FailApply(errors.New("netlink: operation not permitted"), 100) // retries fail too
	if _, err := e.m.Isolate(ctx, isolation.Request{Mode: isolation.ModeManual}); err == nil {
		t.Fatal("Isolate with a failing enforcer succeeded")
	}
	r, err := e.client.Exclusions(ctx)
	if !errors.Is(err, isolation.ErrFailed) || len(r.Exclusions) != 0 {
		t.Fatalf("Exclusions while failed = %+v, %v; want ErrFailed and no list", r, err)
	}
	if r.Status == nil || r.Status.State != isolation.StateFailed || !strings.Contains(err.Error(), "operation not permitted") {
		t.Fatalf("answer %+v, %v: want the failed status and its error", r.Status, err)
	}
}
