package isolation_test

import (
	"errors"
	"regexp"
	"testing"

	"github.com/cordonsec/cordon/isolation"
)

// cheap argon2 parameters keep the tests fast; production uses the
// defaults.
var cheap = isolation.Argon2Params{Memory: 64, Time: 1, Threads: 1}

func TestHashPassword(t *testing.T) {
	h, err := isolation.HashPassword("s3cret", cheap)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^\$argon2id\$v=19\$m=64,t=1,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`).MatchString(h) {
		t.Fatalf("hash %q is not the PHC form", h)
	}
	h2, _ := isolation.HashPassword("s3cret", cheap)
	if h == h2 {
		t.Fatal("two hashes share a salt")
	}
	for pw, want := range map[string]bool{"s3cret": true, "s3cret ": false, "": false, "S3cret": false} {
		ok, err := isolation.VerifyPassword(h, pw)
		if err != nil || ok != want {
			t.Errorf("VerifyPassword(%q) = %v, %v; want %v", pw, ok, err, want)
		}
	}
	p, err := isolation.ParsePasswordHash(h)
	if err != nil || p.String() != h {
		t.Fatalf("parse/print round trip: %v %q", err, p.String())
	}
}

// TestVerifyKnownVector checks against a hash made by another argon2id
// implementation (the reference CLI of the PHC winner, Debian package
// argon2: echo -n password | argon2 somesalt -id -t 2 -m 10 -p 2 -l 32 -e).
func TestVerifyKnownVector(t *testing.T) {
	const h = "$argon2id$v=19$m=1024,t=2,p=2$c29tZXNhbHQ$kEfNQbPvk6Q7hokW6Jrvn1Mjb9kdT/I7OXVDKsviazk"
	ok, err := isolation.VerifyPassword(h, "password")
	if err != nil || !ok {
		t.Fatalf("reference vector: %v %v", ok, err)
	}
	if ok, _ := isolation.VerifyPassword(h, "passwore"); ok {
		t.Fatal("wrong password accepted")
	}
}

func TestParsePasswordHashRejects(t *testing.T) {
	good := "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzYWx0$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
	if _, err := isolation.ParsePasswordHash(good); err != nil {
		t.Fatalf("good hash rejected: %v", err)
	}
	bad := []string{
		"",
		"argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzYWx0$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
		"$argon2i$v=19$m=64,t=1,p=1$c29tZXNhbHRzYWx0$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
		"$argon2id$v=16$m=64,t=1,p=1$c29tZXNhbHRzYWx0$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
		"$argon2id$v=19$t=1,m=64,p=1$c29tZXNhbHRzYWx0$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
		"$argon2id$v=19$m=99999999,t=1,p=1$c29tZXNhbHRzYWx0$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
		"$argon2id$v=19$m=64,t=0,p=1$c29tZXNhbHRzYWx0$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
		"$argon2id$v=19$m=64,t=1,p=0$c29tZXNhbHRzYWx0$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
		"$argon2id$v=19$m=64,t=1,p=1$c29t$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
		"$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzYWx0$CTFh",
		"$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzYWx0==$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
		"$argon2id$v=19$m=064,t=1,p=1$c29tZXNhbHRzYWx0$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
		"$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzYWx0$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc$",
	}
	for _, s := range bad {
		if _, err := isolation.ParsePasswordHash(s); !errors.Is(err, isolation.ErrBadHash) {
			t.Errorf("ParsePasswordHash(%q) = %v, want ErrBadHash", s, err)
		}
	}
}
