package isolation

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Argon2Params are the argon2id cost parameters of a password hash.
type Argon2Params struct {
	Memory  uint32 // KiB; zero means 65536 (64 MiB)
	Time    uint32 // passes; zero means 3
	Threads uint8  // lanes; zero means 4
	SaltLen uint32 // bytes; zero means 16
	KeyLen  uint32 // bytes; zero means 32
}

// DefaultArgon2Params follows the second recommended option of RFC 9106
// (64 MiB, 3 passes, 4 lanes).
var DefaultArgon2Params = Argon2Params{Memory: 64 * 1024, Time: 3, Threads: 4, SaltLen: 16, KeyLen: 32}

// Bounds accepted when parsing a hash, so that a bad configuration cannot
// make a verification exhaust the host.
const (
	maxArgonMemory  = 1 << 21 // KiB: 2 GiB
	maxArgonTime    = 64
	minArgonSaltLen = 8
	maxArgonSaltLen = 64
	minArgonKeyLen  = 16
	maxArgonKeyLen  = 128
)

func (p Argon2Params) withDefaults() Argon2Params {
	d := DefaultArgon2Params
	if p.Memory == 0 {
		p.Memory = d.Memory
	}
	if p.Time == 0 {
		p.Time = d.Time
	}
	if p.Threads == 0 {
		p.Threads = d.Threads
	}
	if p.SaltLen == 0 {
		p.SaltLen = d.SaltLen
	}
	if p.KeyLen == 0 {
		p.KeyLen = d.KeyLen
	}
	return p
}

func (p Argon2Params) check() error {
	switch {
	case p.Threads == 0:
		return fmt.Errorf("parallelism must be at least 1")
	case p.Memory < 8*uint32(p.Threads) || p.Memory > maxArgonMemory:
		return fmt.Errorf("memory %d KiB out of range [8*p, %d]", p.Memory, maxArgonMemory)
	case p.Time < 1 || p.Time > maxArgonTime:
		return fmt.Errorf("time %d out of range [1, %d]", p.Time, maxArgonTime)
	case p.SaltLen < minArgonSaltLen || p.SaltLen > maxArgonSaltLen:
		return fmt.Errorf("salt length %d out of range [%d, %d]", p.SaltLen, minArgonSaltLen, maxArgonSaltLen)
	case p.KeyLen < minArgonKeyLen || p.KeyLen > maxArgonKeyLen:
		return fmt.Errorf("hash length %d out of range [%d, %d]", p.KeyLen, minArgonKeyLen, maxArgonKeyLen)
	}
	return nil
}

// HashPassword returns the argon2id hash of password in PHC string format,
// `$argon2id$v=19$m=65536,t=3,p=4$<salt>$<hash>` (unpadded standard
// base64), with a random salt. Zero fields of params take the defaults.
// Errors wrap ErrBadHash for parameters out of bounds.
func HashPassword(password string, params Argon2Params) (string, error) {
	p := params.withDefaults()
	if err := p.check(); err != nil {
		return "", fmt.Errorf("isolation: %w: %v", ErrBadHash, err)
	}
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("isolation: salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return encodePHC(p, salt, key), nil
}

func encodePHC(p Argon2Params, salt, key []byte) string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

// PasswordHash is a parsed argon2id PHC string.
type PasswordHash struct {
	Params Argon2Params
	salt   []byte
	key    []byte
}

// ParsePasswordHash parses an argon2id PHC string strictly (version 19,
// parameters in the order m, t, p, bounded costs). Errors wrap ErrBadHash
// and say which part is wrong.
func ParsePasswordHash(s string) (PasswordHash, error) {
	bad := func(format string, args ...any) (PasswordHash, error) {
		return PasswordHash{}, fmt.Errorf("isolation: %w: %s", ErrBadHash, fmt.Sprintf(format, args...))
	}
	if len(s) > 1024 {
		return bad("longer than 1024 bytes")
	}
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" {
		return bad("want $argon2id$v=19$m=M,t=T,p=P$salt$hash")
	}
	if parts[1] != "argon2id" {
		return bad("algorithm %q, want argon2id", parts[1])
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return bad("version %q, want v=%d", parts[2], argon2.Version)
	}
	kv := strings.Split(parts[3], ",")
	if len(kv) != 3 {
		return bad("parameters %q, want m=M,t=T,p=P", parts[3])
	}
	var vals [3]uint64
	for i, name := range []string{"m", "t", "p"} {
		k, v, ok := strings.Cut(kv[i], "=")
		if !ok || k != name || v == "" || (len(v) > 1 && v[0] == '0') {
			return bad("parameter %d is %q, want %s=<number>", i+1, kv[i], name)
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return bad("parameter %s=%q is not a number", name, v)
		}
		vals[i] = n
	}
	if vals[2] > 255 {
		return bad("parallelism %d too large", vals[2])
	}
	b64 := base64.RawStdEncoding.Strict()
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return bad("salt is not unpadded base64")
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil {
		return bad("hash is not unpadded base64")
	}
	p := Argon2Params{Memory: uint32(vals[0]), Time: uint32(vals[1]), Threads: uint8(vals[2]), SaltLen: uint32(len(salt)), KeyLen: uint32(len(key))}
	if err := p.check(); err != nil {
		return bad("%v", err)
	}
	return PasswordHash{Params: p, salt: salt, key: key}, nil
}

// String returns the PHC form.
func (h PasswordHash) String() string { return encodePHC(h.Params, h.salt, h.key) }

// Verify reports whether password matches, comparing in constant time.
func (h PasswordHash) Verify(password string) bool {
	if len(h.key) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(password), h.salt, h.Params.Time, h.Params.Memory, h.Params.Threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(got, h.key) == 1
}

// VerifyPassword parses hash and reports whether password matches it.
// Errors wrap ErrBadHash.
func VerifyPassword(hash, password string) (bool, error) {
	h, err := ParsePasswordHash(hash)
	if err != nil {
		return false, err
	}
	return h.Verify(password), nil
}
