package ioc

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Match is one indicator that matched one observable of an event. A Match
// whose Indicator is the zero value names only what a rule matched (a YARA
// rule's file, an OpenIOC tree's field): NewDetection counts it in the
// fingerprint and leaves it out of the detection's indicators.
type Match struct {
	// Indicator is the indicator that matched, with its normalized value;
	// the zero Indicator for a rule's observable.
	Indicator Indicator
	// Field is the event field that matched, as a JSON path ("file.sha256",
	// "dns.answers[1]").
	Field string
	// Observable is the field's value in normalized form.
	Observable string
}

// Fingerprint returns a stable hash (hex SHA-256) of the host, the
// indicator and the observable: the same indicator matching the same
// observable on the same host always has the same fingerprint, whatever the
// event. It identifies duplicates for suppression, and is the Fingerprint
// of the detection NewDetection makes of this one match by EngineAtomic.
func (m Match) Fingerprint(hostID string) string {
	return fingerprint(hostID, atomicRule, []Match{m})
}

// atomicRule is what the fingerprint covers of "engine and rule" for the
// atomic engine, which has no rules.
const atomicRule = string(EngineAtomic) + "\x00"

// Detection is the outcome of matching: an event with the indicators or
// the rule that matched it, in the cordon.detection/v1 wire schema.
// Decode it with DecodeDetection or json.Unmarshal (both strict).
type Detection struct {
	// Schema is "cordon.detection/v1".
	Schema string `json:"schema"`
	// ID is unique per event and finding: derived from the event id and the
	// fingerprint, so re-processing an event yields the same id (and the
	// bus stores it once).
	ID string `json:"id"`
	// Fingerprint is a stable hash of host + rule + indicators + observables,
	// the same across events: the key for deduplication and suppression.
	Fingerprint string `json:"fingerprint"`
	// Time is when the detection was made.
	Time time.Time `json:"time"`
	// Host is the event's host.
	Host Host `json:"host"`
	// Engine is the matcher that found it.
	Engine Engine `json:"engine"`
	// Rule is the YARA rule, OpenIOC or STIX id; empty for atomic matches.
	Rule string `json:"rule"`
	// Indicators are the indicators that matched (empty for a YARA rule).
	Indicators []Indicator `json:"indicators"`
	// Severity is the highest of the indicators' (or the rule's) severities.
	Severity Severity `json:"severity"`
	// Event is the event that caused the detection, unchanged.
	Event Event `json:"event"`
}

// NewDetection builds the detection of matches found in ev by engine (and
// rule, for engines that have rules), made at now. Severity is the highest
// of the indicators' severities, or severity when that is higher (a rule's
// own severity); the fingerprint covers host, engine, rule and the sorted
// (indicator id, observable) pairs, and for matches without an indicator
// the (field, observable) pairs, so that one rule matching two files makes
// two findings. It returns an error wrapping ErrInvalidDetection when
// engine is unknown, when there is neither a match nor a rule, or when a
// match without an indicator comes without a rule.
func NewDetection(ev Event, engine Engine, rule string, severity Severity, matches []Match, now time.Time) (Detection, error) {
	if !engine.Valid() {
		return Detection{}, fmt.Errorf("%w: unknown engine %q", ErrInvalidDetection, engine)
	}
	if len(matches) == 0 && rule == "" {
		return Detection{}, fmt.Errorf("%w: no match and no rule", ErrInvalidDetection)
	}
	d := Detection{
		Schema:     DetectionSchema,
		Time:       now,
		Host:       ev.Host,
		Engine:     engine,
		Rule:       rule,
		Indicators: make([]Indicator, 0, len(matches)),
		Severity:   severity,
		Event:      ev,
	}
	for _, m := range matches {
		if !m.Indicator.Kind.Valid() {
			if rule == "" {
				return Detection{}, fmt.Errorf("%w: a match without an indicator (%s) needs a rule", ErrInvalidDetection, m.Field)
			}
			continue // in the fingerprint only
		}
		d.Indicators = append(d.Indicators, m.Indicator)
		d.Severity = max(d.Severity, m.Indicator.Severity)
	}
	d.Fingerprint = fingerprint(ev.Host.ID, string(engine)+"\x00"+rule, matches)
	sum := sha256.Sum256([]byte(ev.Host.ID + "\x00" + ev.ID + "\x00" + d.Fingerprint))
	d.ID = "det-" + hex.EncodeToString(sum[:12])
	return d, nil
}

func fingerprint(host, rule string, matches []Match) string {
	pairs := make([]string, 0, len(matches))
	for _, m := range matches {
		if m.Indicator.Kind.Valid() {
			pairs = append(pairs, m.Indicator.ID+"\x00"+m.Indicator.Kind.String()+"\x00"+m.Observable)
		} else {
			pairs = append(pairs, "\x00"+m.Field+"\x00"+m.Observable)
		}
	}
	slices.Sort(pairs)
	pairs = slices.Compact(pairs)
	h := sha256.New()
	h.Write([]byte(host))
	h.Write([]byte{0})
	h.Write([]byte(rule))
	for _, p := range pairs {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// DecodeDetection decodes one cordon.detection/v1 JSON object strictly and
// validates it. Errors are *FieldError values naming the field.
func DecodeDetection(data []byte) (Detection, error) {
	var d Detection
	if err := d.UnmarshalJSON(data); err != nil {
		return Detection{}, err
	}
	return d, nil
}

// UnmarshalJSON decodes strictly and validates, as DecodeDetection does.
func (d *Detection) UnmarshalJSON(data []byte) error {
	if det, ok := fastDecodeDetection(data); ok {
		if err := det.Validate(); err != nil {
			return err
		}
		*d = det
		return nil
	}
	// The embedded event is decoded by the same strict decoder, as a type
	// without methods, rather than by Event.UnmarshalJSON, which would
	// parse its bytes a second time; Validate checks it afterwards.
	type plain Detection
	type plainEvent Event
	var p struct {
		*plain
		Event *plainEvent `json:"event"`
	}
	p.plain = &plain{}
	if err := decodeStrict(data, &p, ErrInvalidDetection); err != nil {
		// encoding/json names fields of the embedded struct after it.
		if fe, ok := err.(*FieldError); ok {
			fe.Field = strings.TrimPrefix(fe.Field, "plain.")
		}
		return err
	}
	det := Detection(*p.plain)
	if p.Event != nil {
		det.Event = Event(*p.Event)
	}
	if err := det.Validate(); err != nil {
		return err
	}
	*d = det
	return nil
}

// Validate checks the detection against cordon.detection/v1 and returns a
// *FieldError naming the first offending field.
func (d *Detection) Validate() error {
	bad := func(field, format string, args ...any) error {
		return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...), Err: ErrInvalidDetection}
	}
	if err := checkSchema(d.Schema, DetectionSchema, ErrInvalidDetection); err != nil {
		return err
	}
	switch {
	case d.ID == "":
		return bad("id", "is required")
	case d.Fingerprint == "":
		return bad("fingerprint", "is required")
	case d.Time.IsZero():
		return bad("time", "is required")
	case d.Engine == "":
		return bad("engine", "is required")
	case !d.Engine.Valid():
		return bad("engine", "%q is not one of atomic, yara, openioc, stix", d.Engine)
	case len(d.Indicators) == 0 && d.Rule == "":
		return bad("indicators", "is empty and there is no rule")
	}
	if err := d.Host.validate("host", ErrInvalidDetection); err != nil {
		return err
	}
	for i, ind := range d.Indicators {
		if !ind.Kind.Valid() {
			return bad(fmt.Sprintf("indicators[%d].kind", i), "is required")
		}
		if ind.Value == "" {
			return bad(fmt.Sprintf("indicators[%d].value", i), "is required")
		}
	}
	if err := d.Event.Validate(); err != nil {
		if fe, ok := err.(*FieldError); ok {
			return &FieldError{Field: joinField("event", fe.Field), Reason: fe.Reason, Err: ErrInvalidDetection}
		}
		return err
	}
	return nil
}

func joinField(prefix, field string) string {
	if field == "" {
		return prefix
	}
	if strings.HasPrefix(field, "[") {
		return prefix + field
	}
	return prefix + "." + field
}
