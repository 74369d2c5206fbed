package bus_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/cordonsec/cordon/bus"
)

// fixedKeys are deterministic test keys (never used outside tests).
func fixedKey(t testing.TB, b byte) nkeys.KeyPair {
	t.Helper()
	raw := make([]byte, 32)
	for i := range raw {
		raw[i] = b
	}
	kp, err := nkeys.FromRawSeed(nkeys.PrefixByteAccount, raw)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func encodeSigned(t testing.TB, sc bus.SignedCommand) []byte {
	t.Helper()
	data, err := json.Marshal(sc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestVerifyCommand(t *testing.T) {
	issuer, stranger := fixedKey(t, 1), fixedKey(t, 2)
	pub, _ := issuer.PublicKey()
	base := bus.Command{ID: "c-1", Host: "h-1", Action: bus.ActionIsolate, IssuedAt: t0, Expires: t0.Add(time.Hour), Args: json.RawMessage(`{"duration":"8h"}`)}
	sign := func(kp nkeys.KeyPair, mod func(*bus.Command)) []byte {
		c := base
		if mod != nil {
			mod(&c)
		}
		sc, err := bus.SignCommand(kp, c)
		if err != nil {
			t.Fatalf("SignCommand: %v", err)
		}
		return encodeSigned(t, sc)
	}
	tamper := func(mod func(*bus.SignedCommand)) []byte {
		var sc bus.SignedCommand
		if err := json.Unmarshal(sign(issuer, nil), &sc); err != nil {
			t.Fatal(err)
		}
		mod(&sc)
		return encodeSigned(t, sc)
	}
	resign := func(payload string) []byte {
		// A correctly signed envelope around a payload SignCommand would
		// refuse to make.
		sig, _ := issuer.Sign([]byte(bus.SchemaCommand + "\n" + payload))
		return encodeSigned(t, bus.SignedCommand{Schema: bus.SchemaCommand, ID: "c-1", Issuer: pub, Payload: []byte(payload), Sig: sig})
	}
	tests := []struct {
		name  string
		data  []byte
		now   time.Time
		want  error
		field string
	}{
		{"valid", sign(issuer, nil), t0.Add(time.Minute), nil, ""},
		{"valid at issue", sign(issuer, nil), t0, nil, ""},
		{"within skew", sign(issuer, nil), t0.Add(-29 * time.Second), nil, ""},
		{"future beyond skew", sign(issuer, nil), t0.Add(-31 * time.Second), bus.ErrCommandFromFuture, "issued_at"},
		{"expired", sign(issuer, nil), t0.Add(time.Hour), bus.ErrCommandExpired, "expires"},
		{"untrusted", sign(stranger, nil), t0, bus.ErrUntrustedIssuer, "issuer"},
		{"payload changed", tamper(func(sc *bus.SignedCommand) {
			sc.Payload = []byte(strings.Replace(string(sc.Payload), `"8h"`, `"9h"`, 1))
		}), t0, bus.ErrBadSignature, "sig"},
		{"signature changed", tamper(func(sc *bus.SignedCommand) { sc.Sig[3] ^= 1 }), t0, bus.ErrBadSignature, "sig"},
		{"no signature", tamper(func(sc *bus.SignedCommand) { sc.Sig = nil }), t0, bus.ErrBadSignature, "sig"},
		{"issuer swapped", tamper(func(sc *bus.SignedCommand) { sc.Issuer, _ = stranger.PublicKey() }), t0, bus.ErrUntrustedIssuer, "issuer"},
		{"envelope id differs", tamper(func(sc *bus.SignedCommand) { sc.ID = "c-2" }), t0, bus.ErrInvalidCommand, "id"},
		{"schema v2", tamper(func(sc *bus.SignedCommand) { sc.Schema = "cordon.command/v2" }), t0, bus.ErrUnsupportedSchema, ""},
		{"other host", sign(issuer, func(c *bus.Command) { c.Host = "h-2" }), t0, bus.ErrWrongHost, "host"},
		{"lifetime too long", sign(issuer, func(c *bus.Command) { c.Expires = t0.Add(25 * time.Hour) }), t0, bus.ErrInvalidCommand, "expires"},
		{"unknown action", resign(`{"id":"c-1","issuer":"` + pub + `","issued_at":"2026-11-25T10:00:00Z","expires":"2026-11-25T11:00:00Z","host":"h-1","action":"wipe"}`), t0, bus.ErrInvalidCommand, "action"},
		{"unknown payload field", resign(`{"id":"c-1","issuer":"` + pub + `","issued_at":"2026-11-25T10:00:00Z","expires":"2026-11-25T11:00:00Z","host":"h-1","action":"status","extra":1}`), t0, bus.ErrMalformed, "payload"},
		// A key repeated or in another case: encoding/json would take the
		// last action, or "Action", and another reader might not.
		{"repeated payload key", resign(`{"id":"c-1","issuer":"` + pub + `","issued_at":"2026-11-25T10:00:00Z","expires":"2026-11-25T11:00:00Z","host":"h-1","action":"status","action":"isolate"}`), t0, bus.ErrMalformed, "payload"},
		{"payload key in another case", resign(`{"id":"c-1","issuer":"` + pub + `","issued_at":"2026-11-25T10:00:00Z","expires":"2026-11-25T11:00:00Z","host":"h-1","Action":"isolate"}`), t0, bus.ErrMalformed, "payload"},
		{"garbage", []byte("\x00garbage"), t0, bus.ErrMalformed, ""},
		{"unknown envelope field", []byte(`{"schema":"cordon.command/v1","id":"x","issuer":"` + pub + `","payload":"","sig":"","x":1}`), t0, bus.ErrMalformed, ""},
		{"too large", []byte(`{"schema":"cordon.command/v1","id":"` + strings.Repeat("x", bus.MaxCommandBytes) + `"}`), t0, bus.ErrTooLarge, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := bus.NewVerifier(bus.VerifierConfig{TrustedKeys: []string{pub}, Host: "h-1", Clock: func() time.Time { return tc.now }})
			if err != nil {
				t.Fatal(err)
			}
			c, err := v.VerifyCommand(tc.data)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("VerifyCommand: %v, want %v", err, tc.want)
			}
			if err != nil {
				var ce *bus.CommandError
				if !errors.As(err, &ce) || ce.Field != tc.field {
					t.Errorf("error %v: field %q, want a CommandError with field %q", err, fieldOf(ce), tc.field)
				}
				return
			}
			if c.ID != "c-1" || c.Issuer != pub || c.Action != bus.ActionIsolate || string(c.Args) != `{"duration":"8h"}` {
				t.Errorf("command %+v", c)
			}
		})
	}
}

func fieldOf(ce *bus.CommandError) string {
	if ce == nil {
		return "<none>"
	}
	return ce.Field
}

func TestVerifierReplayMemory(t *testing.T) {
	issuer := fixedKey(t, 1)
	pub, _ := issuer.PublicKey()
	now := t0
	v, err := bus.NewVerifier(bus.VerifierConfig{TrustedKeys: []string{pub}, MaxSkew: time.Second, MaxRemembered: 3, Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	mk := func(id string, life time.Duration) []byte {
		sc, err := bus.SignCommand(issuer, bus.Command{ID: id, Host: "h-1", Action: bus.ActionStatus, IssuedAt: now, Expires: now.Add(life)})
		if err != nil {
			t.Fatal(err)
		}
		return encodeSigned(t, sc)
	}
	a, b, c, d := mk("a", time.Minute), mk("b", time.Hour), mk("c", time.Hour), mk("d", time.Hour)
	for _, data := range [][]byte{a, b, c} {
		if _, err := v.VerifyCommand(data); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := v.VerifyCommand(b); !errors.Is(err, bus.ErrCommandReplayed) {
		t.Fatalf("replay of b: %v", err)
	}
	if _, err := v.VerifyCommand(d); !errors.Is(err, bus.ErrReplayCacheFull) {
		t.Fatalf("fourth id with room for three: %v", err)
	}
	// Once a has expired (plus skew) it is forgotten, and refused as
	// expired rather than as replayed; its room goes to d.
	now = t0.Add(time.Minute + 2*time.Second)
	if _, err := v.VerifyCommand(d); err != nil {
		t.Fatalf("d after a expired: %v", err)
	}
	if got := v.Remembered(); got != 3 {
		t.Errorf("remembered %d, want 3 (b, c, d)", got)
	}
	if _, err := v.VerifyCommand(a); !errors.Is(err, bus.ErrCommandExpired) {
		t.Errorf("a after expiry: %v", err)
	}
	now = t0.Add(2 * time.Hour)
	if _, err := v.VerifyCommand(mk("e", time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := v.Remembered(); got != 1 {
		t.Errorf("remembered %d after everything else expired, want 1", got)
	}
}

func TestSignCommandRefuses(t *testing.T) {
	kp := fixedKey(t, 1)
	other, _ := fixedKey(t, 2).PublicKey()
	pubOnly, _ := nkeys.FromPublicKey(other)
	ok := bus.Command{Host: "h-1", Action: bus.ActionRelease, IssuedAt: t0, Expires: t0.Add(time.Minute)}
	tests := []struct {
		name  string
		kp    nkeys.KeyPair
		mod   func(*bus.Command)
		field string
	}{
		{"no expiry", kp, func(c *bus.Command) { c.Expires = time.Time{} }, "expires"},
		{"no issue time", kp, func(c *bus.Command) { c.IssuedAt = time.Time{} }, "issued_at"},
		{"expires before issue", kp, func(c *bus.Command) { c.Expires = t0.Add(-time.Second) }, "expires"},
		{"bad host", kp, func(c *bus.Command) { c.Host = "a.b" }, "host"},
		{"no action", kp, func(c *bus.Command) { c.Action = "" }, "action"},
		{"args not an object", kp, func(c *bus.Command) { c.Args = json.RawMessage(`[1]`) }, "args"},
		{"issuer not the key", kp, func(c *bus.Command) { c.Issuer = other }, "issuer"},
		{"args too large", kp, func(c *bus.Command) {
			c.Args = json.RawMessage(`{"x":"` + strings.Repeat("a", bus.MaxCommandBytes) + `"}`)
		}, "args"},
		{"public key only", pubOnly, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			if tc.mod != nil {
				tc.mod(&c)
			}
			_, err := bus.SignCommand(tc.kp, c)
			if err == nil {
				t.Fatal("SignCommand succeeded")
			}
			var ce *bus.CommandError
			if tc.field != "" && (!errors.As(err, &ce) || ce.Field != tc.field) {
				t.Errorf("error %v, want a CommandError on field %q", err, tc.field)
			}
		})
	}
}

func TestVerifierConfigValidate(t *testing.T) {
	pub, _ := fixedKey(t, 1).PublicKey()
	seed, _ := fixedKey(t, 1).Seed()
	curve, _ := nkeys.CreateCurveKeys()
	curvePub, _ := curve.PublicKey()
	tests := []struct {
		name string
		cfg  bus.VerifierConfig
		ok   bool
	}{
		{"valid", bus.VerifierConfig{TrustedKeys: []string{pub}}, true},
		{"no keys", bus.VerifierConfig{}, false},
		{"seed as key", bus.VerifierConfig{TrustedKeys: []string{string(seed)}}, false},
		{"curve key", bus.VerifierConfig{TrustedKeys: []string{curvePub}}, false},
		{"garbage key", bus.VerifierConfig{TrustedKeys: []string{"Uxyz"}}, false},
		{"bad host", bus.VerifierConfig{TrustedKeys: []string{pub}, Host: "a b"}, false},
		{"negative skew", bus.VerifierConfig{TrustedKeys: []string{pub}, MaxSkew: -1}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, bus.ErrInvalidConfig)) {
				t.Fatalf("Validate = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// FuzzVerifyCommand feeds arbitrary bytes to a verifier. It must never
// panic, and must accept only commands carrying a valid signature of the
// trusted key: anything it accepts, re-verified by hand, checks out.
func FuzzVerifyCommand(f *testing.F) {
	issuer := fixedKey(f, 1)
	pub, _ := issuer.PublicKey()
	for i, c := range []bus.Command{
		{Host: "h-1", Action: bus.ActionIsolate, IssuedAt: t0, Expires: t0.Add(time.Hour), Args: json.RawMessage(`{"duration":"8h","mode":"manual"}`)},
		{Host: "h-1", Action: bus.ActionStatus, IssuedAt: t0, Expires: t0.Add(time.Minute)},
	} {
		c.ID = fmt.Sprintf("seed-%d", i)
		sc, err := bus.SignCommand(issuer, c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(encodeSigned(f, sc))
	}
	f.Add([]byte(`{"schema":"cordon.command/v1","id":"x","issuer":"` + pub + `","payload":"e30=","sig":"AAAA"}`))
	f.Add([]byte(`{"schema":"cordon.command/v9"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := bus.NewVerifier(bus.VerifierConfig{TrustedKeys: []string{pub}, Clock: func() time.Time { return t0.Add(time.Second) }})
		if err != nil {
			t.Fatal(err)
		}
		c, err := v.VerifyCommand(data)
		if err != nil {
			var ce *bus.CommandError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not a CommandError", err)
			}
			return
		}
		var sc bus.SignedCommand
		if json.Unmarshal(data, &sc) != nil {
			t.Fatalf("accepted bytes that do not decode as a SignedCommand")
		}
		if err := issuer.Verify([]byte(bus.SchemaCommand+"\n"+string(sc.Payload)), sc.Sig); err != nil {
			t.Fatalf("accepted %+v with a bad signature", c)
		}
		if c.Issuer != pub || c.ID != sc.ID {
			t.Fatalf("accepted command %+v from envelope %+v", c, sc)
		}
		if _, err := v.VerifyCommand(data); !errors.Is(err, bus.ErrCommandReplayed) {
			t.Fatalf("second verification: %v, want ErrCommandReplayed", err)
		}
	})
}
