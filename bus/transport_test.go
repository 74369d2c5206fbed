package bus_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/cordonsec/cordon/bus"
	"github.com/cordonsec/cordon/bus/bustest"
	"github.com/cordonsec/cordon/ioc"
)

// roundTrip publishes a detection through pub and waits for it on sub.
func roundTrip(t *testing.T, pub, sub *bus.Bus) {
	t.Helper()
	ctx := ctxT(t)
	got := make(chan string, 1)
	s, err := sub.ConsumeDetections(ctx, bus.ConsumerConfig{Durable: "rt"}, func(_ context.Context, d ioc.Detection, _ bus.Delivery) error {
		got <- d.ID
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	d := detection("h-t", 1)
	if _, err := pub.PublishDetection(ctx, d); err != nil {
		t.Fatal(err)
	}
	if id := recv(t, got, "detection"); id != d.ID {
		t.Fatalf("got %s", id)
	}
}

func TestEmbeddedListenForOtherProcesses(t *testing.T) {
	emb := bustest.New(t, bus.Config{Listen: "127.0.0.1:0"})
	u := emb.ClientURL()
	if !strings.HasPrefix(u, "nats://127.0.0.1:") {
		t.Fatalf("ClientURL = %q", u)
	}
	other := bustest.New(t, bus.Config{URLs: []string{u}})
	if other.Replicas() != 1 {
		t.Errorf("replicas %d against a single server", other.Replicas())
	}
	roundTrip(t, other, emb)
	if bustest.New(t, bus.Config{}).ClientURL() != "" {
		t.Error("in-process-only server has a ClientURL")
	}
}

func TestNKeyAuthentication(t *testing.T) {
	user, _ := nkeys.CreateUser()
	pub, _ := user.PublicKey()
	seed, _ := user.Seed()
	srv := bustest.StartServerWith(t, func(o *server.Options) {
		o.Nkeys = []*server.NkeyUser{{Nkey: pub}}
	})
	seedFile := filepath.Join(t.TempDir(), "user.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if b, err := bus.Open(ctx, bus.Config{URLs: []string{srv.URL()}}); err == nil {
		b.Close(ctx)
		t.Fatal("connected without credentials")
	}
	b := bustest.New(t, bus.Config{URLs: []string{srv.URL()}, NKeySeedFile: seedFile})
	roundTrip(t, b, b)
}

func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := newCA(t)
	writePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", ca.Raw)
	srvCert := issue(t, ca, caKey, dir, "server", true)
	issue(t, ca, caKey, dir, "client", false)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	srv := bustest.StartServerWith(t, func(o *server.Options) {
		o.TLSConfig = &tls.Config{
			Certificates: []tls.Certificate{srvCert},
			ClientCAs:    pool,
			ClientAuth:   tls.RequireAndVerifyClientCert,
			MinVersion:   tls.VersionTLS12,
		}
		o.TLSVerify = true
		o.TLSTimeout = 2
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if b, err := bus.Open(ctx, bus.Config{URLs: []string{srv.URL()}, TLS: &bus.TLSConfig{CAFile: filepath.Join(dir, "ca.pem")}}); err == nil {
		b.Close(ctx)
		t.Fatal("connected without a client certificate")
	}
	b := bustest.New(t, bus.Config{URLs: []string{srv.URL()}, TLS: &bus.TLSConfig{
		CAFile:   filepath.Join(dir, "ca.pem"),
		CertFile: filepath.Join(dir, "client.pem"),
		KeyFile:  filepath.Join(dir, "client-key.pem"),
	}})
	roundTrip(t, b, b)
}

func newCA(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cordon test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	return ca, key
}

func issue(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, dir, name string, server bool) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	writePEM(t, filepath.Join(dir, name+".pem"), "CERTIFICATE", der)
	writePEM(t, filepath.Join(dir, name+"-key.pem"), "EC PRIVATE KEY", keyDER)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCredsAuthentication runs the server in operator (JWT) mode and
// connects with a .creds file.
func TestCredsAuthentication(t *testing.T) {
	op, _ := nkeys.CreateOperator()
	opPub, _ := op.PublicKey()
	opJWT, err := jwt.NewOperatorClaims(opPub).Encode(op)
	if err != nil {
		t.Fatal(err)
	}
	opClaims, err := jwt.DecodeOperatorClaims(opJWT)
	if err != nil {
		t.Fatal(err)
	}
	acc, _ := nkeys.CreateAccount()
	accPub, _ := acc.PublicKey()
	ac := jwt.NewAccountClaims(accPub)
	ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
	accJWT, err := ac.Encode(op)
	if err != nil {
		t.Fatal(err)
	}
	user, _ := nkeys.CreateUser()
	userPub, _ := user.PublicKey()
	userSeed, _ := user.Seed()
	uc := jwt.NewUserClaims(userPub)
	uc.IssuerAccount = accPub
	userJWT, err := uc.Encode(acc)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := jwt.FormatUserConfig(userJWT, userSeed)
	if err != nil {
		t.Fatal(err)
	}
	credsFile := filepath.Join(t.TempDir(), "user.creds")
	if err := os.WriteFile(credsFile, creds, 0o600); err != nil {
		t.Fatal(err)
	}
	sys, _ := nkeys.CreateAccount()
	sysPub, _ := sys.PublicKey()
	sysJWT, err := jwt.NewAccountClaims(sysPub).Encode(op)
	if err != nil {
		t.Fatal(err)
	}
	resolver := &server.MemAccResolver{}
	for pub, j := range map[string]string{accPub: accJWT, sysPub: sysJWT} {
		if err := resolver.Store(pub, j); err != nil {
			t.Fatal(err)
		}
	}
	srv := bustest.StartServerWith(t, func(o *server.Options) {
		o.TrustedOperators = []*jwt.OperatorClaims{opClaims}
		o.AccountResolver = resolver
		o.SystemAccount = sysPub
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if b, err := bus.Open(ctx, bus.Config{URLs: []string{srv.URL()}}); err == nil {
		b.Close(ctx)
		t.Fatal("connected without credentials")
	}
	b := bustest.New(t, bus.Config{URLs: []string{srv.URL()}, CredsFile: credsFile})
	roundTrip(t, b, b)
}

// TestTLSRequiredWithSystemRoots: a TLSConfig with no files still means
// TLS (with the system roots): a server that does not offer TLS is
// refused, never talked to in plain text.
func TestTLSRequiredWithSystemRoots(t *testing.T) {
	srv := bustest.StartServer(t) // no TLS
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b, err := bus.Open(ctx, bus.Config{URLs: []string{srv.URL()}, TLS: &bus.TLSConfig{}})
	if err == nil {
		b.Close(ctx)
		t.Fatal("connected in plain text although TLS was configured")
	}
	if !strings.Contains(err.Error(), "secure") {
		t.Errorf("error %v does not say TLS was required", err)
	}
}

// logSignal is a slog handler that signals each record whose message
// contains a text.
type logSignal struct {
	text string
	seen chan struct{}
}

func (h *logSignal) Enabled(context.Context, slog.Level) bool { return true }
func (h *logSignal) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.text) {
		select {
		case h.seen <- struct{}{}:
		default:
		}
	}
	return nil
}
func (h *logSignal) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logSignal) WithGroup(string) slog.Handler      { return h }

// freePort returns a loopback port that nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	return port
}

// TestOpenWaitsForServers: an agent that starts before its servers keeps
// trying until they come up, instead of failing its start.
func TestOpenWaitsForServers(t *testing.T) {
	port := freePort(t)
	sig := &logSignal{text: "unreachable", seen: make(chan struct{}, 1)}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	type result struct {
		b   *bus.Bus
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := bus.Open(ctx, bus.Config{URLs: []string{fmt.Sprintf("nats://127.0.0.1:%d", port)},
			ReconnectMin: 10 * time.Millisecond, ReconnectMax: 50 * time.Millisecond, Logger: slog.New(sig)})
		done <- result{b, err}
	}()
	select {
	case <-sig.seen: // at least one attempt failed
	case r := <-done:
		t.Fatalf("Open returned before any server was up: %v", r.err)
	}
	bustest.StartServerWith(t, func(o *server.Options) { o.Port = port })
	r := <-done
	if r.err != nil {
		t.Fatalf("Open after the server came up: %v", r.err)
	}
	defer r.b.Close(ctx)
	roundTrip(t, r.b, r.b)
}

// TestOpenGivesUpWithContext: with nothing listening, Open ends when its
// context does, and says how often it tried.
func TestOpenGivesUpWithContext(t *testing.T) {
	port := freePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := bus.Open(ctx, bus.Config{URLs: []string{fmt.Sprintf("nats://127.0.0.1:%d", port)},
		ReconnectMin: 10 * time.Millisecond, ReconnectMax: 20 * time.Millisecond})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "attempts") {
		t.Fatalf("Open with nothing listening: %v", err)
	}
}
