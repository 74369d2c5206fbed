package ioc

import (
	"fmt"
	"strings"
)

// Kind is the kind of an atomic indicator: what its value is and which
// event fields it is matched against. The set of kinds is closed; the zero
// Kind is invalid.
//
// A Kind marshals to JSON and text as its name ("sha256", "domain", …).
type Kind uint8

// The indicator kinds. Each is matched against the event fields listed.
const (
	// KindMD5 is an MD5 digest in hex: file.md5.
	KindMD5 Kind = iota + 1
	// KindSHA1 is a SHA-1 digest in hex: file.sha1.
	KindSHA1
	// KindSHA256 is a SHA-256 digest in hex: file.sha256, process.sha256.
	KindSHA256
	// KindSHA512 is a SHA-512 digest in hex: file.sha512.
	KindSHA512
	// KindIPv4 is one IPv4 address (IPv4-mapped IPv6 is unmapped):
	// network.remote_address, dns.answers, the host of http.url.
	KindIPv4
	// KindIPv6 is one IPv6 address, without zone: the same fields as KindIPv4.
	KindIPv6
	// KindCIDR is an IPv4 or IPv6 prefix, matched against the same fields
	// as KindIPv4: an address matches every prefix that contains it (the
	// longest first), not only the longest. Host bits are masked off.
	KindCIDR
	// KindDomain is a domain name that matches itself and every subdomain:
	// "example.com" matches "example.com" and "a.b.example.com" in
	// dns.query, dns.answers (names) and the host of http.url. A leading
	// "*." is accepted and dropped.
	KindDomain
	// KindHostname is a domain name that matches only itself exactly, in the
	// same fields as KindDomain.
	KindHostname
	// KindURL is an absolute URL: http.url. Scheme and host are compared
	// case-insensitively and default ports are ignored.
	KindURL
	// KindFilePath is a file path, exact or a glob ("*" within one path
	// element, "**" across elements, "?" one character): file.path,
	// process.path. Windows paths (drive letter, UNC or backslashes) are
	// compared case-insensitively with either separator.
	KindFilePath
	// KindFileName is a file name without directory: file.name (or the last
	// element of file.path). Case-insensitive on Windows hosts.
	KindFileName
	// KindProcessName is a process image name: process.name and
	// process.parent_name. Case-insensitive on Windows hosts.
	KindProcessName
	// KindRegistryKey is a Windows registry key, optionally followed by a
	// value name ("HKLM\Software\Run\evil"): registry.key, and
	// registry.key joined with registry.value_name. Case-insensitive; the
	// hive aliases (HKLM = HKEY_LOCAL_MACHINE, …) and kernel paths
	// (\REGISTRY\MACHINE) are equivalent. An event key under
	// HKEY_USERS\<SID> also matches the same key under HKCU, and one under
	// HKLM\Software\Classes, HKCU\Software\Classes or
	// HKEY_USERS\<SID>_Classes also matches it under HKCR.
	KindRegistryKey
	// KindMutex is a mutex (mutant) name: mutex.name. Case-sensitive; the
	// object-manager prefixes Global\, Local\ and \BaseNamedObjects\ are
	// ignored.
	KindMutex

	kindEnd // one past the last kind
)

var kindNames = [...]string{
	KindMD5:         "md5",
	KindSHA1:        "sha1",
	KindSHA256:      "sha256",
	KindSHA512:      "sha512",
	KindIPv4:        "ipv4",
	KindIPv6:        "ipv6",
	KindCIDR:        "cidr",
	KindDomain:      "domain",
	KindHostname:    "hostname",
	KindURL:         "url",
	KindFilePath:    "file-path",
	KindFileName:    "file-name",
	KindProcessName: "process-name",
	KindRegistryKey: "registry-key",
	KindMutex:       "mutex",
}

// Kinds returns every valid kind, in declaration order.
func Kinds() []Kind {
	ks := make([]Kind, 0, kindEnd-1)
	for k := KindMD5; k < kindEnd; k++ {
		ks = append(ks, k)
	}
	return ks
}

// Valid reports whether k is one of the declared kinds.
func (k Kind) Valid() bool { return k >= KindMD5 && k < kindEnd }

// String returns the kind's wire name, or "kind(N)" for an invalid kind.
func (k Kind) String() string {
	if k.Valid() {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// ParseKind returns the kind with the given wire name. It accepts the
// names case-insensitively, and "_" for "-" ("file_path"). It returns an
// error wrapping ErrInvalidKind for any other name.
func ParseKind(s string) (Kind, error) {
	n := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(s)), "_", "-")
	for k := KindMD5; k < kindEnd; k++ {
		if kindNames[k] == n {
			return k, nil
		}
	}
	return 0, fmt.Errorf("%w: %q", ErrInvalidKind, s)
}

// MarshalText implements encoding.TextMarshaler. An invalid kind is an error.
func (k Kind) MarshalText() ([]byte, error) {
	if !k.Valid() {
		return nil, fmt.Errorf("%w: %d", ErrInvalidKind, uint8(k))
	}
	return []byte(kindNames[k]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseKind.
func (k *Kind) UnmarshalText(b []byte) error {
	v, err := ParseKind(string(b))
	if err != nil {
		return err
	}
	*k = v
	return nil
}

// Severity grades an indicator or a detection. The zero value is
// SeverityUnknown; the others are ordered, so severities compare with < and >.
type Severity uint8

// The severities, in increasing order.
const (
	SeverityUnknown Severity = iota
	SeverityLow
	SeverityMedium
	SeverityHigh
	SeverityCritical
)

var severityNames = [...]string{"", "low", "medium", "high", "critical"}

// String returns the severity's wire name ("" for SeverityUnknown).
func (s Severity) String() string {
	if int(s) < len(severityNames) {
		return severityNames[s]
	}
	return fmt.Sprintf("severity(%d)", uint8(s))
}

// ParseSeverity returns the severity with the given name (case-insensitive;
// "" is SeverityUnknown, "info" and "informational" are SeverityLow). It
// returns an error wrapping ErrInvalidSeverity for any other name.
func ParseSeverity(s string) (Severity, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "":
		return SeverityUnknown, nil
	case "low", "info", "informational":
		return SeverityLow, nil
	case "medium", "moderate":
		return SeverityMedium, nil
	case "high":
		return SeverityHigh, nil
	case "critical":
		return SeverityCritical, nil
	}
	return 0, fmt.Errorf("%w: %q", ErrInvalidSeverity, s)
}

// MarshalText implements encoding.TextMarshaler.
func (s Severity) MarshalText() ([]byte, error) {
	if int(s) >= len(severityNames) {
		return nil, fmt.Errorf("%w: %d", ErrInvalidSeverity, uint8(s))
	}
	return []byte(severityNames[s]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseSeverity.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Engine names what produced a detection.
type Engine string

// The engines of cordon's matchers.
const (
	EngineAtomic  Engine = "atomic"
	EngineYARA    Engine = "yara"
	EngineOpenIOC Engine = "openioc"
	EngineSTIX    Engine = "stix"
)

// Valid reports whether e is one of the declared engines.
func (e Engine) Valid() bool {
	switch e {
	case EngineAtomic, EngineYARA, EngineOpenIOC, EngineSTIX:
		return true
	}
	return false
}
