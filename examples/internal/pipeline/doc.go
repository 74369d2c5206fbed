// Package pipeline holds what the example programs (runner, agent, console)
// share to assemble cordon's pipeline: feed and YARA
// matching of events, the bridge from verified bus commands to the isolation
// Manager, the isolation audit sink on the bus, the command result event
// that answers each command (CommandResultEvent), and a local isolator
// that records what the response engine asks for.
//
// It is internal to the examples: a product assembles these pieces itself.
//
// # Usage
//
//	m, err := pipeline.NewMatcher(pipeline.MatcherConfig{FeedDir: "feeds", YARADir: "yara", Now: clock.Now})
//	dets, err := m.Match(ctx, &ev, content)
//	cmd, excl, err := pipeline.IsolationCommand(verified)
//	res := manager.HandleCommand(ctx, cmd)
//
// # Concurrency
//
// Matcher, EventSink, AsyncSink, ManagerIsolator and LocalIsolator are safe
// for concurrent use.
package pipeline
