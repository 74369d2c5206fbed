// Package logic evaluates logic trees of conditions on the fields of an
// ioc.Event: the OpenIOC indicators and STIX patterns (and the few feed
// entries of other formats) that are more than one atomic indicator.
//
// A Tree is a boolean combination (And, Or) of leaves; a leaf is a Cond, a
// comparison of one or more event Fields with literal values (equality,
// substring, prefix, suffix, regular expression, numeric order, set
// membership, CIDR containment), optionally negated. A condition on a field
// the event does not have is false, negated or not: "isnot x" means "has
// the field, with another value".
//
// A field may have several values: DNSAnswer one per answer, the
// registry-key fields one per name Windows reports the key under
// (ioc.RegistryKeyViews), as the atomic sets match it. A condition holds
// if one value satisfies it, negated if none does.
//
// Compile indexes trees by what they need: for each tree it picks a small
// set of (field, value) keys and (field, CIDR prefix) pairs, or failing
// that of fields, such that the tree cannot be true unless the event has
// one of them. An event then touches only the trees that can match it;
// with 10,000 trees of equality tests an event is compared with the few
// whose keys it carries, and with 10,000 trees of CIDR equalities (an
// address within a prefix) with the few whose prefixes contain its
// addresses, found in a prefix table per field.
//
// # Usage
//
//	leaf, err := logic.NewCond(logic.Cond{Fields: []logic.Field{logic.FileName}, Op: logic.OpSuffix, Values: []string{".scr"}})
//	set, err := logic.Compile([]*logic.Tree{{ID: "ioc-1", Engine: ioc.EngineOpenIOC, Root: logic.And(leaf, other)}})
//	for _, r := range set.Eval(&ev, time.Now(), nil) { … r.Tree.ID … }
//
// # Concurrency
//
// Nodes and Trees must not be changed once compiled. A compiled Set is
// immutable and safe for concurrent use.
package logic
