// Package isolation isolates a host from the network: the Manager state
// machine (off, isolating, on, releasing, failed), its modes (automatic,
// manual) with their deadlines and exclusion lists, the standard network
// profiles, persistence of the state with its absolute deadline, the
// command handler for verified bus commands, and the local control socket
// with its password-protected release.
//
// What is allowed while isolated is described by a Plan (loopback and the
// management endpoints always, plus allow Rules) and put into effect by an
// Enforcer, the interface each platform adapter implements (nftables on
// Linux, WFP on Windows, pf on macOS). isolation/isolationtest holds a fake
// Enforcer and the conformance suite every adapter runs.
//
// # Usage
//
// Rules have a one-line text form, used in configuration and in a plan's
// canonical text:
//
//	r, err := isolation.ParseRule("out tcp remote=192.0.2.0/24,2001:db8::/32 rport=443 name=proxy")
//
// A Plan is a value with a canonical text (String) and equality (Equal,
// Equivalent); Plan.Allows is the reference semantics every Enforcer
// implements.
//
// # Concurrency
//
// Plan, Rule, Endpoint and Exclusions are values; they are safe to share
// when not mutated.
package isolation
