package logic

import "errors"

// Sentinel errors; errors of this package wrap one of them.
var (
	// ErrInvalidCond: a condition whose operator, field or values are wrong
	// (a regular expression that does not compile, a number that is not one).
	ErrInvalidCond = errors.New("logic: invalid condition")
	// ErrInvalidTree: a tree with no root, an empty And/Or, or too deep.
	ErrInvalidTree = errors.New("logic: invalid tree")
)
