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
// A registry item matches the event's key under each name Windows reports
// it under (see logic.Field): an item on HKCU\… matches a key under
// HKEY_USERS\<SID>\…, as drivers and Sysmon report it, and one on HKCR\…
// a key under HKLM or HKCU Software\Classes or HKEY_USERS\<SID>_Classes;
// "isnot" holds only when none of these names is the item's.
//
// An item with another term never holds; Parse reports each such term as
// a Warning (with Config.Strict, as an error).
//
// An IOC whose items are all "is" on one term, under OR, is one of values:
// each must be of its term's form (a digest of the right length, an
// address, a URL, a registry key with a hive, …). It compiles into atomic
// indicators instead of a tree only when the atomic set of the term's
// kind matches exactly what the items do as a tree, the same event
// fields, the same case rules, the same normalization, so that an IOC
// matches the same events whether it has one item or two:
//
//	FileItem/Md5sum, Sha1sum                    atomic
//	RegistryItem/Path                           atomic
//	UrlHistoryItem/URL                          atomic with preserve-case; else a tree (case)
//	ProcessItem/HandleList/Handle/Name          atomic with preserve-case; else a tree (case)
//	FileItem/Sha256sum                          tree: the atomic set also matches process.sha256
//	FileItem/FullPath                           tree: process.path; POSIX paths compared with case
//	FileItem/FileName                           tree: process names; case per host OS
//	ProcessItem/name                            tree: process.parent_name; case per host OS
//	PortItem/remoteIP                           tree: DNS answers and URL hosts
//	DnsEntryItem/Host, Network/DNS              tree: DNS answers and URL hosts
//
// A tree is indexed by the values its equalities need (see logic.Compile),
// so it is looked up, not scanned.
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
