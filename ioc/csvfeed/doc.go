// Package csvfeed reads indicator feeds in CSV: a header row naming the
// columns, then one indicator per row.
//
// The header must name "type" and "value"; it may also name "severity",
// "score", "confidence", "tags" (separated by ";" or "|"), "description",
// "source", "id", "valid_from" and "valid_until" (RFC 3339), in any order and
// case. Other columns are ignored. "type" is an ioc.Kind name ("sha256",
// "domain", "file-path", …) or a common alias ("ip", "ip-dst", "filename",
// "regkey", "sha-256", …); "ip" picks ipv4, ipv6 or cidr from the value.
// Lines starting with "#" are comments; empty lines are skipped.
//
// Every value is checked and normalized as ioc.Indicator.Normalized does;
// the first bad row makes Parse fail with an *Error naming the file, line,
// column and what is wrong, and no indicator of the file is returned.
//
// # Usage
//
//	inds, err := csvfeed.Parse(r, csvfeed.Config{Name: "feed-a.csv"})
//	if err != nil { … } // *csvfeed.Error: feed-a.csv:12:3: …
//	set, err := ioc.Compile(inds)
//
// # Concurrency
//
// Parse is safe for concurrent use; it keeps no state between calls.
package csvfeed
