package ioc

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Indicator is one atomic indicator of compromise: a value of some Kind
// with where it came from and how bad it is.
//
// Its JSON form is the one embedded in detections (cordon.detection/v1):
// "id", "kind", "value", "source", "severity", "score", "tags", plus the
// optional "confidence", "description", "valid_from" and "valid_until".
type Indicator struct {
	// ID identifies the indicator within its source. When empty, a Set
	// derives "<kind>:<value>" from the normalized value.
	ID string `json:"id"`
	// Kind says what Value is. Required.
	Kind Kind `json:"kind"`
	// Value is the observable; a Set stores and reports it normalized
	// (see Normalize). Required.
	Value string `json:"value"`
	// Source names the feed the indicator came from.
	Source string `json:"source,omitempty"`
	// Severity grades the indicator; SeverityUnknown when the feed says nothing.
	Severity Severity `json:"severity,omitempty"`
	// Score is 0–100, the feed's own rating.
	Score int `json:"score,omitempty"`
	// Confidence is 0–100, how sure the feed is of the indicator.
	Confidence int `json:"confidence,omitempty"`
	// Tags are free labels ("ransomware", "apt28").
	Tags []string `json:"tags,omitempty"`
	// Description is free text.
	Description string `json:"description,omitempty"`
	// ValidFrom, when set, is the first instant the indicator matches.
	ValidFrom time.Time `json:"valid_from,omitzero"`
	// ValidUntil, when set, is the instant from which it no longer matches.
	ValidUntil time.Time `json:"valid_until,omitzero"`
}

// Normalized returns the indicator with its value in canonical form and
// its tags trimmed, or an *IndicatorError (with Index -1) saying what is
// wrong: an invalid kind or value, a score or confidence outside 0–100, a
// validity window that ends before it starts.
func (ind Indicator) Normalized() (Indicator, error) {
	return ind.normalized(-1)
}

func (ind Indicator) normalized(index int) (Indicator, error) {
	fail := func(sentinel error, format string, args ...any) (Indicator, error) {
		return Indicator{}, &IndicatorError{Index: index, ID: ind.ID, Kind: ind.Kind, Value: ind.Value,
			Reason: fmt.Sprintf(format, args...), Err: sentinel}
	}
	if !ind.Kind.Valid() {
		return fail(ErrInvalidKind, "the kind is not one of %s", kindList())
	}
	v, err := Normalize(ind.Kind, ind.Value)
	if err != nil {
		return fail(ErrInvalidValue, "%s", reasonOf(err))
	}
	ind.Value = v
	if ind.Score < 0 || ind.Score > 100 {
		return fail(ErrInvalidIndicator, "score %d is outside 0-100", ind.Score)
	}
	if ind.Confidence < 0 || ind.Confidence > 100 {
		return fail(ErrInvalidIndicator, "confidence %d is outside 0-100", ind.Confidence)
	}
	if int(ind.Severity) >= len(severityNames) {
		return fail(ErrInvalidIndicator, "severity %d is not declared", ind.Severity)
	}
	if !ind.ValidFrom.IsZero() && !ind.ValidUntil.IsZero() && !ind.ValidUntil.After(ind.ValidFrom) {
		return fail(ErrInvalidIndicator, "valid_until %s is not after valid_from %s",
			ind.ValidUntil.Format(time.RFC3339), ind.ValidFrom.Format(time.RFC3339))
	}
	if len(ind.Tags) > 0 {
		tags := make([]string, 0, len(ind.Tags))
		for _, t := range ind.Tags {
			if t = strings.TrimSpace(t); t != "" && !slices.Contains(tags, t) {
				tags = append(tags, t)
			}
		}
		ind.Tags = tags
	}
	return ind, nil
}

// ActiveAt reports whether the indicator's validity window holds t.
func (ind Indicator) ActiveAt(t time.Time) bool {
	if !ind.ValidFrom.IsZero() && t.Before(ind.ValidFrom) {
		return false
	}
	if !ind.ValidUntil.IsZero() && !t.Before(ind.ValidUntil) {
		return false
	}
	return true
}

func kindList() string {
	names := make([]string, 0, len(kindNames))
	for _, k := range Kinds() {
		names = append(names, k.String())
	}
	return strings.Join(names, ", ")
}
