package response

import (
	"fmt"
	"strings"
	"time"

	"github.com/expr-lang/expr/vm"

	"github.com/cordonsec/cordon/ioc"
)

// Explanation says, for every rule in force, whether it matches a
// detection and the value of each top-level sub-condition of its `when`
// for each indicator, so that a user sees why a rule did or did not fire.
type Explanation struct {
	DetectionID string            `json:"detection_id"`
	Host        string            `json:"host"`
	Rules       []RuleExplanation `json:"rules"`
}

// RuleExplanation explains one rule.
type RuleExplanation struct {
	Rule string `json:"rule"`
	File string `json:"file"`
	Line int    `json:"line"`
	When string `json:"when"`
	// Matched is true when `when` holds for some indicator; Indicator is
	// the first such (-1 for none, or when the detection has none).
	Matched   bool `json:"matched"`
	Indicator int  `json:"indicator"`
	// Fires is Matched and not StoppedBy: the engine would act (subject to
	// suppression and dry-run).
	Fires bool `json:"fires"`
	// StoppedBy names the earlier rule with stop: true that ends the
	// evaluation before this one, "" when none does.
	StoppedBy string `json:"stopped_by,omitempty"`
	// DryRun is the rule's own dry_run.
	DryRun      bool                   `json:"dry_run"`
	Evaluations []IndicatorExplanation `json:"evaluations"`
}

// IndicatorExplanation is one evaluation of a rule, with one indicator
// bound (Index -1: the detection has none).
type IndicatorExplanation struct {
	Index      int              `json:"index"`
	Kind       string           `json:"kind,omitempty"`
	Value      string           `json:"value,omitempty"`
	Matched    bool             `json:"matched"`
	Error      string           `json:"error,omitempty"`
	Conditions []ConditionValue `json:"conditions"`
}

// ConditionValue is the value of one top-level sub-condition.
type ConditionValue struct {
	Condition string `json:"condition"`
	Value     string `json:"value,omitempty"`
	Error     string `json:"error,omitempty"`
}

// Explain explains how the rules in force treat d, evaluated at the
// engine's time. It evaluates every rule (no index) and every indicator,
// and has no effect.
func (e *Engine) Explain(d *ioc.Detection) *Explanation {
	return e.rules.Load().explain(d, e.newEnv(d, e.now()))
}

// Explain explains how rs treats d evaluated at now; see Engine.Explain.
func (rs *RuleSet) Explain(d *ioc.Detection, now time.Time) *Explanation {
	return rs.explain(d, NewEnv(d, now))
}

func (rs *RuleSet) explain(d *ioc.Detection, env *Env) *Explanation {
	x := &Explanation{DetectionID: d.ID, Host: d.Host.ID}
	var m vm.VM
	stoppedBy := ""
	n := len(env.Detection.Indicators)
	for _, r := range rs.rules {
		re := RuleExplanation{Rule: r.Name, File: r.File, Line: r.Line, When: r.When, Indicator: -1, StoppedBy: stoppedBy, DryRun: r.DryRun}
		for i := -1; i < n; i++ {
			if i == -1 && n > 0 {
				continue
			}
			env.Bind(i)
			ie := IndicatorExplanation{Index: i, Kind: env.Indicator.Kind, Value: env.Indicator.Value}
			ok, err := runBool(&m, r.program, env)
			ie.Matched = ok
			if err != nil {
				ie.Error = err.Error()
			}
			for _, c := range r.conditions() {
				cv := ConditionValue{Condition: c.src}
				v, err := runAny(&m, c.prog, env)
				if err != nil {
					cv.Error = err.Error()
				} else {
					cv.Value = formatValue(v)
				}
				ie.Conditions = append(ie.Conditions, cv)
			}
			if ok && !re.Matched {
				re.Matched, re.Indicator = true, i
			}
			re.Evaluations = append(re.Evaluations, ie)
		}
		re.Fires = re.Matched && stoppedBy == ""
		if re.Fires && r.Stop && !r.DryRun {
			stoppedBy = r.Name
		}
		x.Rules = append(x.Rules, re)
	}
	return x
}

// Text renders the explanation for people, one block per rule.
func (x *Explanation) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "detection %s on host %s\n", x.DetectionID, x.Host)
	for _, r := range x.Rules {
		state := "not matched"
		switch {
		case r.Fires:
			state = "FIRES"
			if r.Indicator >= 0 {
				state += fmt.Sprintf(" (indicator %d)", r.Indicator)
			}
		case r.Matched:
			state = "matched but not evaluated: rule " + r.StoppedBy + " stopped evaluation"
		case r.StoppedBy != "":
			state = "not matched (and not evaluated: rule " + r.StoppedBy + " stopped evaluation)"
		}
		if r.DryRun {
			state += " [dry-run]"
		}
		fmt.Fprintf(&b, "\nrule %s (%s:%d): %s\n", r.Rule, r.File, r.Line, state)
		fmt.Fprintf(&b, "  when: %s\n", strings.Join(strings.Fields(r.When), " "))
		for _, ev := range r.Evaluations {
			head := "no indicator"
			if ev.Index >= 0 {
				head = fmt.Sprintf("indicator %d (%s %s)", ev.Index, ev.Kind, ev.Value)
			}
			res := fmt.Sprint(ev.Matched)
			if ev.Error != "" {
				res = "error: " + ev.Error
			}
			fmt.Fprintf(&b, "  %s: %s\n", head, res)
			for _, c := range ev.Conditions {
				v := c.Value
				if c.Error != "" {
					v = "error: " + c.Error
				}
				fmt.Fprintf(&b, "    %s  =>  %s\n", c.Condition, v)
			}
		}
	}
	return b.String()
}
