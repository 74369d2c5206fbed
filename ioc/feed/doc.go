// Package feed loads indicator feeds of every format cordon reads into one
// matchable snapshot, and keeps it current while the feed files change.
//
// Parse detects a file's format from its content (and, for Loki lists,
// its name; see Detect) and parses it with ioc/openioc, ioc/stix,
// ioc/misp, ioc/loki or ioc/csvfeed. Atomic indicators keep the file name as
// their Source. YARA rules carried by MISP and STIX feeds are compiled with
// ioc/yara. One bad entry rejects the whole file, with a *FileError whose
// wrapped parser error names the line or JSON path.
//
// Build compiles parsed files into a Snapshot: the atomic ioc.Set, the
// indexed logic trees (OpenIOC, STIX, and the few entries of other formats
// that are more than one value: MISP ip|port and regkey|value, Loki file
// name expressions) and the YARA rules. Snapshot.Match returns
// every detection of an event: one for all atomic matches, one per tree
// that holds. Snapshot.ScanYARA scans content with the feeds' YARA rules.
//
// A Loader keeps the parsed files and the Snapshot in force. Load, Remove,
// LoadDir and Watch (fsnotify, debounced) rebuild the snapshot and swap it
// atomically; a file that fails keeps its previous content, the error is
// logged and reported through Config.OnReload.
//
// # Usage
//
//	l, err := feed.NewLoader(feed.Config{Logger: log, OnReload: func(r feed.Reload) {
//		if err := r.Err(); err != nil { alert(err) } // feed: a.csv: csvfeed: a.csv:12:7: …
//	}})
//	w, first, err := l.Watch(ctx, "/etc/cordon/feeds")
//	defer w.Stop()
//	for ev := range events {
//		for _, det := range l.Match(&ev) { publish(det) }
//	}
//
// # Concurrency
//
// A Snapshot is immutable and safe for concurrent use. A Loader is safe
// for concurrent use; Match never blocks on a reload. A File is a plain
// value, not to be changed once built into a Snapshot.
package feed
