package isolation

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// The control protocol: the client writes one JSON object per line, the
// server answers each with one JSON object per line.
//
//	→ {"op":"status"}
//	← {"ok":true,"status":{...}}
//	→ {"op":"release","password":"…","reason":"fixed"}
//	← {"ok":false,"code":"bad_password","error":"wrong password"}
//	→ {"op":"exclusions"}
//	← {"ok":false,"code":"not_isolated","error":"host is not isolated"}

// ControlOp is a control socket operation.
type ControlOp string

// The control operations.
const (
	OpStatus     ControlOp = "status"     // the Manager's Status
	OpRelease    ControlOp = "release"    // release with the local password
	OpExclusions ControlOp = "exclusions" // the exclusions in force; only while isolated (not failed)
)

// maxControlLine bounds a request line.
const maxControlLine = 16 << 10

// ControlRequest is one request on the control socket.
type ControlRequest struct {
	Op       ControlOp `json:"op"`
	Password string    `json:"password,omitempty"` // release only
	Reason   string    `json:"reason,omitempty"`   // release only; for the audit trail
}

// Response codes of the control protocol.
const (
	CodeBadPassword = "bad_password"
	CodeRateLimited = "rate_limited"
	CodeNotIsolated = "not_isolated"
	CodePermission  = "permission"
	CodeProtocol    = "protocol"
	CodeDisabled    = "disabled"
	CodeFailed      = "failed"
)

// ControlResponse answers one ControlRequest.
type ControlResponse struct {
	OK         bool     `json:"ok"`
	Code       string   `json:"code,omitempty"`  // on failure: one of the Code constants
	Error      string   `json:"error,omitempty"` // on failure: for people
	RetryAfter Duration `json:"retry_after,omitzero"`
	Status     *Status  `json:"status,omitempty"`     // status and release
	Exclusions []string `json:"exclusions,omitempty"` // exclusions: rules in force, rule text form
	Skipped    []string `json:"skipped,omitempty"`    // exclusions: configured, not enforceable here
	Management []string `json:"management,omitempty"` // exclusions: the management endpoints allowed
}

// DecodeControlRequest parses one request line strictly: a single JSON
// object with known fields, a known op, a password only for release, and
// bounded, valid UTF-8 strings. Errors wrap ErrProtocol.
func DecodeControlRequest(line []byte) (ControlRequest, error) {
	bad := func(format string, args ...any) (ControlRequest, error) {
		return ControlRequest{}, fmt.Errorf("isolation: %w: %s", ErrProtocol, fmt.Sprintf(format, args...))
	}
	if len(line) > maxControlLine {
		return bad("request longer than %d bytes", maxControlLine)
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	var r ControlRequest
	if err := dec.Decode(&r); err != nil {
		return bad("%v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return bad("trailing data after the request")
	}
	switch r.Op {
	case OpStatus, OpExclusions:
		if r.Password != "" || r.Reason != "" {
			return bad("op %q takes no password or reason", r.Op)
		}
	case OpRelease:
		if r.Password == "" {
			return bad("release needs a password")
		}
	default:
		return bad("unknown op %q (want status, release or exclusions)", r.Op)
	}
	if len(r.Password) > 1024 || len(r.Reason) > 1024 {
		return bad("password or reason longer than 1024 bytes")
	}
	if !utf8.ValidString(r.Reason) || !utf8.ValidString(r.Password) {
		return bad("strings must be valid UTF-8")
	}
	return r, nil
}

// Peer is the identity of the process at the other end of the control
// socket, from the kernel.
type Peer struct {
	UID uint32
	GID uint32
	PID int32 // 0 when the platform does not say
}

func (p Peer) String() string {
	s := "local:uid=" + strconv.FormatUint(uint64(p.UID), 10)
	if p.PID > 0 {
		s += ",pid=" + strconv.Itoa(int(p.PID))
	}
	return s
}

// ControlConfig configures a ControlServer. Zero values are the
// documented defaults; Path and Manager are required.
type ControlConfig struct {
	// Path of the Unix socket, e.g. /run/cordon/control.sock. Its
	// directory must exist. A stale socket there is replaced; any other
	// file there is an error.
	Path string
	// Manager answers the requests.
	Manager *Manager
	// PasswordHash is the argon2id PHC hash (see HashPassword) of the
	// local release password. Empty: local release is disabled.
	PasswordHash string
	// AllowUIDs lists the peer user ids allowed; nil means root only (0).
	AllowUIDs []uint32
	// MaxFailures wrong passwords within FailureWindow lock the release
	// out until the oldest of them leaves the window; zero means 5.
	MaxFailures int
	// FailureWindow; zero means 15 minutes.
	FailureWindow time.Duration
	// IOTimeout bounds the wait for each request and the write of each
	// answer; zero means 30 seconds.
	IOTimeout time.Duration
	// MaxConns bounds concurrent connections; zero means 8.
	MaxConns int
	// Now is the clock of the rate limiter; nil means time.Now.
	Now func() time.Time
	// Logger; nil discards.
	Logger *slog.Logger
}

// Validate checks the configuration; errors wrap ErrInvalidConfig or
// ErrBadHash.
func (c ControlConfig) Validate() error {
	if c.Path == "" {
		return fmt.Errorf("isolation: %w: control socket Path is required", ErrInvalidConfig)
	}
	if c.Manager == nil {
		return fmt.Errorf("isolation: %w: control socket Manager is required", ErrInvalidConfig)
	}
	if c.PasswordHash != "" {
		if _, err := ParsePasswordHash(c.PasswordHash); err != nil {
			return err
		}
	}
	if c.MaxFailures < 0 || c.FailureWindow < 0 || c.IOTimeout < 0 || c.MaxConns < 0 {
		return fmt.Errorf("isolation: %w: negative control socket limit", ErrInvalidConfig)
	}
	return nil
}

// ControlServer serves the local control socket. It is safe for
// concurrent use.
type ControlServer struct {
	cfg   ControlConfig
	hash  *PasswordHash
	ln    *net.UnixListener
	log   *slog.Logger
	slots chan struct{}

	pwMu     sync.Mutex // one argon2 computation at a time
	mu       sync.Mutex
	failures []time.Time
	closed   bool
	conns    map[net.Conn]struct{}
	wg       sync.WaitGroup
}

// ListenControl validates cfg and creates the socket (mode 0600). It
// fails with an error wrapping ErrUnsupported on platforms where the
// peer's credentials cannot be checked.
func ListenControl(cfg ControlConfig) (*ControlServer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !peerCredSupported {
		return nil, fmt.Errorf("isolation: control socket: peer credentials: %w", ErrUnsupported)
	}
	if cfg.AllowUIDs == nil {
		cfg.AllowUIDs = []uint32{0}
	}
	if cfg.MaxFailures == 0 {
		cfg.MaxFailures = 5
	}
	if cfg.FailureWindow == 0 {
		cfg.FailureWindow = 15 * time.Minute
	}
	if cfg.IOTimeout == 0 {
		cfg.IOTimeout = 30 * time.Second
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = 8
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &ControlServer{cfg: cfg, log: cfg.Logger, slots: make(chan struct{}, cfg.MaxConns), conns: map[net.Conn]struct{}{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if cfg.PasswordHash != "" {
		h, _ := ParsePasswordHash(cfg.PasswordHash)
		s.hash = &h
	}
	if err := removeStaleSocket(cfg.Path); err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: cfg.Path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("isolation: control socket: %w", err)
	}
	// The peer check below is the real gate; the mode keeps other users
	// from even connecting.
	if err := os.Chmod(cfg.Path, 0o600); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("isolation: control socket: %w", err)
	}
	s.ln = ln
	return s, nil
}

func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("isolation: control socket %s: %w", path, err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("isolation: control socket %s: a file that is not a socket is in the way", path)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		_ = c.Close()
		return fmt.Errorf("isolation: control socket %s: in use by another process", path)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("isolation: control socket %s: removing stale socket: %w", path, err)
	}
	return nil
}

// Addr returns the socket path.
func (s *ControlServer) Addr() string { return s.cfg.Path }

// Serve accepts connections until ctx is done or Close is called, then
// returns nil (or the accept error that stopped it).
func (s *ControlServer) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { _ = s.Close() })
	defer stop()
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				s.wg.Wait()
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("isolation: control socket: %w", err)
		}
		select {
		case s.slots <- struct{}{}:
		default:
			s.log.Warn("isolation: control socket busy; connection refused")
			_ = c.Close()
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = c.Close()
			<-s.slots
			continue
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				<-s.slots
				s.wg.Done()
			}()
			s.handleConn(ctx, c)
		}()
	}
}

// Close stops accepting, closes open connections and removes the socket.
func (s *ControlServer) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	return s.ln.Close()
}

func (s *ControlServer) handleConn(ctx context.Context, c *net.UnixConn) {
	defer c.Close()
	peer, err := peerCred(c)
	if err != nil {
		s.log.Warn("isolation: control socket: peer credentials unavailable", "err", err)
		s.write(c, ControlResponse{Code: CodePermission, Error: "peer credentials unavailable"})
		return
	}
	if !slices.Contains(s.cfg.AllowUIDs, peer.UID) {
		s.log.Warn("isolation: control socket: peer refused", "peer", peer.String())
		s.cfg.Manager.auditRefused(ctx, peer.String(), "", "control socket peer is not allowed")
		s.write(c, ControlResponse{Code: CodePermission, Error: ErrPermission.Error()})
		return
	}
	br := bufio.NewReaderSize(c, 4096)
	for {
		_ = c.SetDeadline(time.Now().Add(s.cfg.IOTimeout))
		line, err := readLine(br, maxControlLine)
		if err != nil {
			if errors.Is(err, ErrProtocol) {
				s.write(c, ControlResponse{Code: CodeProtocol, Error: err.Error()})
			}
			return
		}
		req, err := DecodeControlRequest(line)
		if err != nil {
			s.write(c, ControlResponse{Code: CodeProtocol, Error: err.Error()})
			return
		}
		if !s.write(c, s.handle(ctx, peer, req)) {
			return
		}
	}
}

// readLine reads one '\n'-terminated line of at most max bytes.
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > max+1 {
			return nil, fmt.Errorf("isolation: %w: request longer than %d bytes", ErrProtocol, max)
		}
		switch {
		case err == nil:
			return bytes.TrimRight(line, "\r\n"), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(bytes.TrimSpace(line)) > 0:
			return line, nil
		default:
			return nil, err
		}
	}
}

func (s *ControlServer) write(c net.Conn, r ControlResponse) bool {
	b, err := json.Marshal(r)
	if err != nil {
		return false
	}
	_ = c.SetWriteDeadline(time.Now().Add(s.cfg.IOTimeout))
	_, err = c.Write(append(b, '\n'))
	return err == nil
}

func (s *ControlServer) handle(ctx context.Context, peer Peer, req ControlRequest) ControlResponse {
	m := s.cfg.Manager
	switch req.Op {
	case OpStatus:
		st := m.Status()
		return ControlResponse{OK: true, Status: &st}
	case OpExclusions:
		st := m.Status()
		if st.State == StateFailed {
			// Neither the plan nor the release is verified in force
			// (after ErrConnectionsLeft the rules are, the connections
			// not): the answer is a failure, whose Status lists the
			// exclusions last applied.
			return ControlResponse{Code: CodeFailed, Status: &st,
				Error: fmt.Sprintf("on the way %s: %s; the exclusions in force are not verified", st.Target, st.LastError)}
		}
		if !st.Isolated() {
			return ControlResponse{Code: CodeNotIsolated, Error: ErrNotIsolated.Error()}
		}
		return ControlResponse{OK: true, Exclusions: st.Exclusions, Skipped: st.Skipped, Management: st.Management}
	case OpRelease:
		return s.release(ctx, peer, req)
	}
	return ControlResponse{Code: CodeProtocol, Error: "unknown op"}
}

func (s *ControlServer) release(ctx context.Context, peer Peer, req ControlRequest) ControlResponse {
	m := s.cfg.Manager
	who := peer.String()
	if s.hash == nil {
		m.auditRefused(ctx, who, req.Reason, "local release is disabled (no password configured)")
		return ControlResponse{Code: CodeDisabled, Error: "local release is disabled: no password is configured"}
	}
	// The lockout is checked and the failure recorded under the same lock
	// as the verification, so that connections racing each other cannot
	// get more than MaxFailures guesses into one window.
	s.pwMu.Lock()
	if wait := s.lockedFor(); wait > 0 {
		s.pwMu.Unlock()
		m.auditRefused(ctx, who, req.Reason, ErrRateLimited.Error())
		return ControlResponse{Code: CodeRateLimited, Error: ErrRateLimited.Error(), RetryAfter: Duration(wait)}
	}
	ok := s.hash.Verify(req.Password)
	if !ok {
		s.mu.Lock()
		s.failures = append(s.failures, s.cfg.Now())
		s.mu.Unlock()
	}
	s.pwMu.Unlock()
	if !ok {
		s.log.Warn("isolation: local release refused: wrong password", "peer", who)
		m.auditRefused(ctx, who, req.Reason, ErrBadPassword.Error())
		return ControlResponse{Code: CodeBadPassword, Error: ErrBadPassword.Error()}
	}
	s.mu.Lock()
	s.failures = nil
	s.mu.Unlock()
	reason := req.Reason
	if reason == "" {
		reason = "local release"
	}
	st, err := m.Release(ctx, ReleaseRequest{Requester: who, Reason: reason})
	if err != nil {
		return ControlResponse{Code: CodeFailed, Error: err.Error(), Status: &st}
	}
	return ControlResponse{OK: true, Status: &st}
}

// lockedFor returns how long the release stays locked out, pruning
// failures older than the window.
func (s *ControlServer) lockedFor() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	cut := now.Add(-s.cfg.FailureWindow)
	s.failures = slices.DeleteFunc(s.failures, func(t time.Time) bool { return !t.After(cut) })
	if len(s.failures) < s.cfg.MaxFailures {
		return 0
	}
	return s.failures[len(s.failures)-s.cfg.MaxFailures].Add(s.cfg.FailureWindow).Sub(now)
}

// auditRefused publishes a refused local release.
func (m *Manager) auditRefused(ctx context.Context, who, why, errText string) {
	m.mu.Lock()
	rec := m.rec
	m.mu.Unlock()
	m.emit(ctx, EventRefused, rec.State, rec, who, why, "", errText)
}

// ControlClient talks to a ControlServer. The zero Timeout means 30
// seconds. Each call uses its own connection. It is safe for concurrent
// use.
type ControlClient struct {
	Path    string
	Timeout time.Duration
}

// Status returns the Manager's status.
func (c ControlClient) Status(ctx context.Context) (Status, error) {
	r, err := c.Do(ctx, ControlRequest{Op: OpStatus})
	if err != nil {
		return Status{}, err
	}
	if r.Status == nil {
		return Status{}, fmt.Errorf("isolation: %w: status missing from the answer", ErrProtocol)
	}
	return *r.Status, nil
}

// Release releases the isolation with the local password. A wrong
// password gives an error wrapping ErrBadPassword, a lockout one wrapping
// ErrRateLimited.
func (c ControlClient) Release(ctx context.Context, password, reason string) (Status, error) {
	r, err := c.Do(ctx, ControlRequest{Op: OpRelease, Password: password, Reason: reason})
	if err != nil {
		return Status{}, err
	}
	if r.Status == nil {
		return Status{}, fmt.Errorf("isolation: %w: status missing from the answer", ErrProtocol)
	}
	return *r.Status, nil
}

// Exclusions returns the exclusions in force; an error wrapping
// ErrNotIsolated when the host is not isolated, or ErrFailed when the
// isolation is failed (the answer's Status then has the error and the
// exclusions last applied, not verified).
func (c ControlClient) Exclusions(ctx context.Context) (ControlResponse, error) {
	return c.Do(ctx, ControlRequest{Op: OpExclusions})
}

// Do sends one request and returns the answer; a refused request is an
// error wrapping the matching sentinel (ErrBadPassword, ErrRateLimited,
// ErrNotIsolated, ErrFailed, ErrPermission, ErrProtocol), with the answer also
// returned.
func (c ControlClient) Do(ctx context.Context, req ControlRequest) (ControlResponse, error) {
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.Path)
	if err != nil {
		return ControlResponse{}, fmt.Errorf("isolation: control client: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	b, err := json.Marshal(req)
	if err != nil {
		return ControlResponse{}, fmt.Errorf("isolation: control client: %w", err)
	}
	_, werr := conn.Write(append(b, '\n'))
	// A server that refuses the peer answers and closes without reading,
	// so the write may fail while the answer is waiting: read it anyway.
	line, err := readLine(bufio.NewReader(conn), 4<<20)
	if err != nil {
		if werr != nil {
			return ControlResponse{}, fmt.Errorf("isolation: control client: %w", werr)
		}
		return ControlResponse{}, fmt.Errorf("isolation: control client: reading answer: %w", err)
	}
	var r ControlResponse
	if err := json.Unmarshal(line, &r); err != nil {
		return ControlResponse{}, fmt.Errorf("isolation: control client: %w: %v", ErrProtocol, err)
	}
	if r.OK {
		return r, nil
	}
	var sentinel error
	switch r.Code {
	case CodeBadPassword:
		sentinel = ErrBadPassword
	case CodeRateLimited:
		sentinel = ErrRateLimited
	case CodeNotIsolated:
		sentinel = ErrNotIsolated
	case CodePermission:
		sentinel = ErrPermission
	case CodeProtocol:
		sentinel = ErrProtocol
	case CodeDisabled:
		sentinel = ErrUnsupported
	case CodeFailed:
		sentinel = ErrFailed
	default:
		return r, fmt.Errorf("isolation: control: %s", r.Error)
	}
	return r, fmt.Errorf("isolation: control: %w (%s)", sentinel, r.Error)
}
