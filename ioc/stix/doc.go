// Package stix reads STIX 2.1 (and 2.0) indicators with patterns in the
// STIX patterning language.
//
// Parse takes a bundle ({"type": "bundle", "objects": […]}), a JSON array
// of objects or one indicator object; objects other than indicators are
// skipped. Of the objects that share an id (versions of one indicator),
// only the one "modified" last counts, wherever it stands in the file:
// when it is revoked, the indicator is skipped. valid_from and valid_until
// bound when the others match. An indicator whose pattern is one equality
// on an object path whose atomic set matches exactly what the comparison
// does as a tree (the same event fields, the same case rules, the same
// normalization) becomes an ioc.Indicator: [file:hashes.MD5 = '…'] and
// 'SHA-1' and 'SHA-512', [ipv4-addr:value = '…'], [ipv6-addr:value = '…'],
// [domain-name:value = '…'], [url:value = '…'], [mutex:name = '…']. The
// others stay logic trees, so that an indicator matches the same events
// whether its pattern has one comparison or two: [file:hashes.'SHA-256' =
// '…'] (the atomic set also matches process.sha256), [file:name = '…']
// (process names, and case ignored on Windows), [process:name = '…']
// (process.parent_name), [network-traffic:dst_ref.value = '…'] (DNS
// answers, URL hosts), [windows-registry-key:key = '…'] (the key joined
// with a value name). Such a tree reports the indicator in its detections,
// and its value must be of the path's form as an atomic one's. Any other
// pattern becomes a logic tree (engine stix, rule the indicator id)
// evaluated against one event, all its observations at once.
//
// The grammar is parsed whole: observation expressions joined by AND, OR
// and FOLLOWEDBY, with the qualifiers WITHIN, REPEATS and START/STOP;
// comparisons = != < <= > >= IN LIKE MATCHES ISSUBSET ISSUPERSET, each
// optionally preceded by NOT, joined by AND and OR. The object paths
// evaluated:
//
//	file:hashes.MD5 'SHA-1' 'SHA-256' 'SHA-512'   file digests
//	file:name, file:size, file:parent_directory_ref.path
//	ipv4-addr:value, ipv6-addr:value       remote address, DNS answers, URL host
//	domain-name:value                      DNS query and answers, URL host
//	url:value
//	network-traffic:dst_ref.value src_ref.value dst_port src_port protocols[*]
//	process:name command_line pid image_ref.name parent_ref.name
//	windows-registry-key:key values[*].name values[*].data
//	mutex:name
//
// An indicator that uses FOLLOWEDBY, a qualifier, another object path or a
// timestamp, hex or binary literal cannot be evaluated against one event
// without changing its meaning: it is not loaded, and Parse reports it as a
// Warning (with Config.Strict, as an error). Indicators with pattern_type
// yara are returned as YARA sources; other pattern types are warnings.
//
// Observation expressions joined by AND (two observations, in STIX) hold
// when one event satisfies both: sound, but a pattern whose sides can only
// be seen in two events (a file and a connection) never matches. A MATCHES
// expression in PCRE syntax that Go's RE2 engine lacks (look-around,
// back-references) makes the indicator unsupported, not malformed.
//
// Comparisons are case-sensitive, as the specification says; digests,
// addresses, domain names, URLs and registry keys are compared normalized.
// A registry key is compared under each name Windows reports it under (see
// logic.Field): [windows-registry-key:key = 'HKCU\\Software\\x'] matches
// HKEY_USERS\<SID>\Software\x as drivers and Sysmon report it, and HKCR
// keys match under HKLM and HKCU Software\Classes and <SID>_Classes; !=
// and NOT hold only when no name satisfies the comparison.
//
// Errors name the file, the JSON path ("objects[3].pattern") and, inside a
// pattern, the column.
//
// # Usage
//
//	res, err := stix.Parse(data, stix.Config{Name: "bundle.json"})
//	set, err := ioc.Compile(res.Indicators)
//	trees, err := logic.Compile(res.Trees)
//
// # Concurrency
//
// Parse is safe for concurrent use.
package stix
