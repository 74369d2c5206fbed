// Package loki reads the IOC lists of the Loki scanner's signature base.
//
// Three lists, one entry a line, fields separated by ";", "#" comments and
// empty lines skipped:
//
//   - hash lists (hash-iocs.txt): HASH;SCORE;COMMENT or HASH;COMMENT, the
//     hash an MD5, SHA-1, SHA-256 or SHA-512 in hex. Each becomes an atomic
//     indicator, but for the digests of an empty file or a lone line break,
//     which Loki skips too (a Warning).
//   - file name lists (filename-iocs.txt): REGEX;SCORE;FALSE_POSITIVE_REGEX
//     (score and false-positive regex optional). Each becomes a logic tree:
//     the file or process path matches REGEX, case-insensitively, and not
//     FALSE_POSITIVE_REGEX. Regular expressions are RE2 (Go): an entry
//     using Python's look-arounds or back-references is skipped with a
//     Warning (with Config.Strict, an error); other bad expressions are
//     errors. A detection names the entry by its rule, "<list>:<line>".
//   - C2 lists (c2-iocs.txt): a domain, an IP address or a CIDR prefix,
//     optionally ;SCORE. Each becomes an atomic indicator (a domain matches
//     its subdomains) described, as Loki does, by the comment line above
//     its block.
//
// The score (Loki's 0-100+, clamped to 100) sets the severity: 90 and more
// critical, 70 high, 40 medium, below low; without a score, the Config's.
// The first bad line makes Parse fail with an *Error naming the file, the
// line and what is wrong.
//
// # Usage
//
//	list, _ := loki.ListOf("hash-iocs.txt")
//	res, err := loki.Parse(r, list, loki.Config{Name: "hash-iocs.txt"})
//	set, err := ioc.Compile(res.Indicators)
//	trees, err := logic.Compile(res.Trees)
//
// # Concurrency
//
// Parse is safe for concurrent use.
package loki
