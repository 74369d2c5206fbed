// Package ioc is cordon's model of indicators, host events and detections,
// and its matcher of atomic indicators.
//
// An Indicator is one observable of some Kind (a digest, an address or
// prefix, a domain, a URL, a file path or glob, a file or process name, a
// registry key, a mutex) with its source, severity, score, tags and
// validity window. An Event is what a host saw, in the cordon.event/v1 wire
// schema; a Detection is what matching found, in cordon.detection/v1. Both
// decode strictly: an unknown field (field names are case-sensitive), a
// repeated one, a missing required field or a malformed value is a
// *FieldError naming the field.
//
// Indicators are compiled into an immutable Set. Values are normalized the
// same way on both sides (see Normalize): digest case, IPv4-mapped IPv6,
// case and trailing dot of domains, scheme, host and default port of URLs,
// path separators and case of Windows paths, registry hive aliases. Digests,
// addresses and names are found in hash tables, prefixes by longest-prefix
// match and from there through the chain of stored prefixes containing
// each, built once (an address matches the indicators in force of every
// prefix that contains it, longest first, after its exact ones), domains
// by suffix, path globs through an index on a literal element. Indicators
// outside their validity window never match.
//
// # Usage
//
//	set, err := ioc.Compile([]ioc.Indicator{
//		{Kind: ioc.KindSHA256, Value: "…", Source: "feed-a", Severity: ioc.SeverityHigh},
//		{Kind: ioc.KindDomain, Value: "evil.example"},
//	})
//	if err != nil { … } // *ioc.IndicatorError: which indicator, and why
//	m := ioc.NewMatcher(ioc.MatcherConfig{Set: set})
//	ev, err := ioc.DecodeEvent(line)
//	if matches := m.Match(&ev); len(matches) > 0 {
//		det, _ := ioc.NewDetection(ev, ioc.EngineAtomic, "", 0, matches, time.Now())
//		…
//	}
//	m.Swap(newSet) // on feed reload; readers never block
//
// # Concurrency
//
// A Set is immutable and safe for concurrent use. A Matcher is safe for
// concurrent use; Swap is atomic. A Builder is for one goroutine. Events,
// Detections and Indicators are plain values.
package ioc
