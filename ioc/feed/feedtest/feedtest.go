// Package feedtest holds what the tests of the feed parsers (ioc/openioc,
// ioc/stix, ioc/misp, ioc/loki, ioc/csvfeed, ioc/feed) share: a fixed
// clock, events to match and the checks every parser's fuzz test makes.
//
// # Usage
//
//	ev := feedtest.Event(ioc.EventFile, "windows")
//	ev.File = &ioc.FileEvent{Path: `C:\x.exe`}
//	feedtest.Compiles(t, res.Indicators, res.Trees)
//
// # Concurrency
//
// The functions are safe for concurrent use.
package feedtest

import (
	"errors"
	"testing"
	"time"

	"github.com/cordonsec/cordon/ioc"
	"github.com/cordonsec/cordon/ioc/feed/logic"
)

// T0 is the time the tests match at: 2026-11-25 10:00 UTC.
var T0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

// Event returns a cordon.event/v1 event of kind from host "h-1" running
// os, at T0, without its kind's block: the caller sets it.
func Event(kind ioc.EventKind, os string) ioc.Event {
	return ioc.Event{Schema: ioc.EventSchema, ID: "e-1", Time: T0, Host: ioc.Host{ID: "h-1", OS: os}, Kind: kind}
}

// UserSID is a user's security identifier, as registry keys under
// HKEY_USERS carry it.
const UserSID = `S-1-5-21-1004336348-1177238915-682003330-1001`

// RegistryEvent returns a registry event on a Windows host: a write of
// value valueName under key.
func RegistryEvent(key, valueName string) *ioc.Event {
	ev := Event(ioc.EventRegistry, "windows")
	ev.Registry = &ioc.RegistryEvent{Key: key, ValueName: valueName}
	return &ev
}

// Compiles fails tb unless what a parser returned compiles: its atomic
// indicators into an ioc.Set and its trees into a logic.Set. A parser
// must reject what would not.
func Compiles(tb testing.TB, inds []ioc.Indicator, trees []*logic.Tree) {
	tb.Helper()
	if _, err := ioc.Compile(inds); err != nil {
		tb.Fatalf("the indicators parsed do not compile: %v", err)
	}
	if _, err := logic.Compile(trees); err != nil {
		tb.Fatalf("the trees parsed do not compile: %v", err)
	}
}

// Accepted reports whether a parser accepted its input (err is nil). A
// rejection must be the parser's own error type E, which says where the
// input is wrong: Accepted fails tb when it is not.
func Accepted[E error](tb testing.TB, err error) bool {
	tb.Helper()
	if err == nil {
		return true
	}
	var e E
	if !errors.As(err, &e) {
		tb.Fatalf("error of type %T, not %T: %v", err, e, err)
	}
	return false
}
