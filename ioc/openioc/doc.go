// Package openioc reads indicators of compromise in OpenIOC 1.0
// (Mandiant's "ioc" documents) and OpenIOC 1.1 ("OpenIOC" documents).
//
// An IOC is a logic tree: Indicator elements with operator AND or OR,
// nested, whose leaves are IndicatorItems, each a Context (the search term,
// such as "FileItem/Md5sum") and a Content (the value) under a condition.
// The conditions of 1.0 (is, isnot, contains, containsnot) and of 1.1 (is,
// contains, starts-with, ends-with, matches, greater-than, less-than, with
// the negate and preserve-case attributes) are read from either version.
// Text comparisons ignore case unless preserve-case is true.
//
// The terms evaluated, and the event fields they read (see logic.Field):
//
//	FileItem/Md5sum Sha1sum Sha256sum   file digests
//	FileItem/FullPath                    file.path
//	FileItem/FilePath                    its directory, without drive
//	FileItem/FileName FileExtension SizeInBytes
//	ProcessItem/name path arguments ParentProcessName pid
//	ProcessItem/HandleList/Handle/Name   mutex.name
//	PortItem/remoteIP remotePort localIP localPort protocol
//	DnsEntryItem/Host, Network/DNS       dns.query
//	Network/URI                          the path and query of http.url
//	UrlHistoryItem/URL                   http.url
//	RegistryItem/Path KeyPath ValueName Text
//	ServiceItem/name                     the service of a registry write under ...\Services\
//
// An item with another term never holds; Parse reports each such term as
// a Warning (with Config.Strict, as an error). An IOC whose items are all
// "is" on one term with an atomic kind (digests, FullPath, FileName,
// remote IP, DNS host, URL, registry path, mutex), under OR, without
// preserve-case on a name, path or mutex, becomes atomic indicators
// instead of a tree. ProcessItem/name stays a tree: the atomic process
// name set also matches an event's parent process name. The atomic sets
// read a value wherever an event carries it (a FileItem digest or name
// also matches a process image, PortItem/remoteIP also a DNS answer).
//
// Errors name the file, the line and what is wrong: an unknown condition,
// an item without Context or Content, a value that is not of its term's
// form, malformed XML. One bad item rejects the whole file.
//
// # Usage
//
//	res, err := openioc.Parse(data, openioc.Config{Name: "apt1.ioc"})
//	for _, w := range res.Warnings { log.Print(w) }
//	set, err := ioc.Compile(res.Indicators)
//	trees, err := logic.Compile(res.Trees)
//
// # Concurrency
//
// Parse is safe for concurrent use.
package openioc
