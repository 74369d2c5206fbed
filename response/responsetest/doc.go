// Package responsetest holds hand-written fakes of the services the
// response engine acts through (Isolator, Publisher, Tagger, Sink,
// DetectionSource) and TestIsolator, the conformance suite that every
// response.Isolator implementation passes.
//
// # Usage
//
//	iso := responsetest.NewIsolator(clock)
//	eng, _ := response.New(response.Config{Services: response.Services{Isolator: iso}, Sink: &responsetest.Sink{}})
//
// # Concurrency
//
// Every fake is safe for concurrent use.
package responsetest
