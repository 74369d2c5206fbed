// Package response turns detections into actions with rules whose
// conditions are github.com/expr-lang/expr expressions.
//
// A rule file is a YAML list of rules:
//
//	# rules.yaml
//	- name: isolate-on-ransomware
//	  description: isolate on a high or critical ransomware IOC
//	  when: detection.severity >= "high" && detection.engine in ["atomic", "yara"] && "ransomware" in indicator.tags
//	  actions:
//	    - isolate: { duration: 8h, reason: "IOC {{ indicator.value }}" }
//	    - notify:  { subject: soc.alerts }
//	  suppress: { key: "host.id + '|' + indicator.id", period: 1h }
//	  dry_run: false
//	  stop: false
//	  tests:
//	    match:     [ { host: {id: h-1}, engine: atomic, severity: high, indicators: [ {kind: sha256, value: aa, tags: [ransomware]} ] } ]
//	    non_match: [ { host: {id: h-1}, engine: stix,   severity: high, indicators: [ {kind: sha256, value: aa, tags: [ransomware]} ] } ]
//
// Decoding is strict and everything is checked at load: an unknown key, a
// value of the wrong type, a `when` that does not type-check as a boolean
// against Env (a misspelt field is an error), a severity, kind or engine
// literal that cannot occur, an unknown action or a bad action argument,
// a template that does not compile, an expression above the size limits,
// or a failing inline test. Each error is a *LoadError with file, line,
// column and the offending line. A file with any error is rejected whole
// and the rules in force stay.
//
// # Evaluation
//
// Rules run in file order (files in the order of their names). Every
// matching rule fires, unless an earlier matching rule has stop: true (a
// rule that is itself dry-run does not stop the others; a suppressed rule
// does, as it did when it acted). A detection with
// several indicators is evaluated once per indicator, in order, with
// `indicator` bound; the rule fires once per detection, for the first
// indicator that makes `when` true, and that indicator is the one the
// templates and the suppression key see. A detection without indicators
// is evaluated once with a zero indicator. detection.indicators holds all
// of them for conditions over the whole set (any, all, filter).
//
// Severities compare in severity order, with each other and with the
// names "low" < "medium" < "high" < "critical": detection.severity >=
// "high" holds for high and critical. The helpers inCIDR, hostAddressIn,
// hasTag, hasAnyTag, severityAtLeast and severity are pure; the builtins
// now and repeat are disabled.
//
// Rules are indexed by the conditions at the top level of `when` (the
// operands of a chain of &&) on indicator.kind, indicator.source,
// detection.engine and indicator.tags (== and in) and on
// detection.severity and indicator.severity (>= and >), so a detection
// evaluates only the rules that can match it. The index never changes an
// outcome (TestIndexEquivalence). Expressions run within expr's memory
// budget: one that would loop without end fails, and its rule does not
// fire.
//
// # Actions
//
// Each action is a small type behind the Action interface, made by the
// factory registered under its name in a Registry; DefaultRegistry has
// isolate (duration default 8h, at most LoadConfig.MaxIsolation; mode
// automatic: the host applies the policy's exclusions), release,
// notify (a Notification on a subject), tag (the host, for a period) and
// log. They act through Services: an Isolator, a Publisher, a Tagger.
// When the Tagger is also a TagReader (MemoryTags is), host.tags holds
// the host's tags in force, so that a rule can act on an earlier tag.
// Isolation asks for an absolute deadline and extends, never shortens.
//
// # Decisions
//
// Engine.Handle evaluates, applies suppression (per rule and key, windows
// kept in a SuppressionStore), runs or (in dry-run) only prepares the
// actions, and records one Decision per detection with the Sink before it
// returns; Engine.Run acknowledges a detection only then, and not at all
// when an action's service or the suppression store failed: the failure
// is recorded and the detection delivered again (ErrActionFailed).
// Actions are idempotent by id (a notification carries the same id each
// time), so a redelivery repeats nothing in effect. Explain shows,
// for every rule, whether it matches and the value of each top-level
// sub-condition.
//
// # Usage
//
//	eng, err := response.New(response.Config{
//		Services: response.Services{Isolator: iso, Publisher: pub},
//		Sink:     sink,
//	})
//	if err := eng.LoadFile("rules.yaml"); err != nil {
//		// every *LoadError, with file:line:column; the old rules stay
//	}
//	dec, err := eng.Handle(ctx, &detection)
//	fmt.Print(eng.Explain(&detection).Text())
//
// # Concurrency
//
// Engine, RuleSet, Rule, Template, Registry and MemorySuppressions are
// safe for concurrent use. Compiled programs are shared; each evaluation
// uses its own VM. Loading a file swaps the rule set atomically: a
// detection is evaluated against one rule set from start to end.
package response
