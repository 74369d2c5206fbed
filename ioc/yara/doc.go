// Package yara is a pure-Go YARA engine, conformant with YARA 4.2.3. Rules
// are parsed with github.com/VirusTotal/gyp; compiling (with YARA's
// compile-time checks), atom extraction, the Aho-Corasick prefilter, the
// byte-oriented regular expression matcher and condition evaluation are this
// package's own.
//
// # Usage
//
//	rules, err := yara.Compile(src,
//		yara.WithVariable("env", "prod"),
//		yara.WithIncludeDir("/etc/cordon/rules"))
//	if err != nil {
//		var ce *yara.CompileError
//		if errors.As(err, &ce) { /* ce.Line, ce.Column, ce.Rule, ce.Kind */ }
//		return err
//	}
//	matches, err := rules.Scan(ctx, data, yara.WithTimeout(5*time.Second))
//	for _, m := range matches {
//		fmt.Println(m.Rule, m.Tags, len(m.Strings))
//	}
//
// Supported: text strings with nocase, wide, ascii, fullword, private, xor
// (with ranges), base64 and base64wide (custom alphabets); hex strings with
// wildcards, nibble masks, negations, jumps and alternatives; regular
// expressions in YARA's dialect over raw bytes (a \xE9 matches the byte 0xE9)
// with the i and s flags; every condition operator of YARA 4.2.3, including
// for..of, for..in, rule sets, undefined-value propagation, externals and
// include. The modules hash and math are implemented; importing any other
// module is a compile error (ErrUnknownModule).
//
// Limits, as in YARA: a regex or hex match is at most 4096 bytes long, each
// string records at most 1,000,000 matches and StringMatch.Data holds at most
// MaxMatchData bytes. A single match attempt that needs more than a fixed
// number of backtracking steps is abandoned (reported as no match), so no
// single attempt can stall; a whole scan is bounded only by WithTimeout or
// the context.
//
// The known differences from YARA 4.2.3 (mostly YARA bugs, such as its
// "for none" loops being always true) are listed in this package's
// README.md, with the conformance, differential and benchmark figures.
//
// # Concurrency
//
// Compile may be called from any goroutine. *Rules is immutable after
// Compile and safe for concurrent scans; each scan allocates its own state.
package yara
