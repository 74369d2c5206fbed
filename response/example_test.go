package response_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cordonsec/cordon/ioc"
	"github.com/cordonsec/cordon/response"
	"github.com/cordonsec/cordon/response/responsetest"
)

func exampleDetection() ioc.Detection {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	return ioc.Detection{Schema: ioc.DetectionSchema, ID: "det-1", Fingerprint: "fp", Time: now,
		Host: ioc.Host{ID: "h-42", Name: "web-01"}, Engine: ioc.EngineAtomic, Severity: ioc.SeverityCritical,
		Indicators: []ioc.Indicator{{ID: "ioc-7", Kind: ioc.KindSHA256, Value: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
			Severity: ioc.SeverityCritical, Tags: []string{"ransomware"}}}}
}

// An engine isolates a host on a critical ransomware detection.
func ExampleEngine_Handle() {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	iso := responsetest.NewIsolator(func() time.Time { return now })
	eng, err := response.New(response.Config{
		Services: response.Services{Isolator: iso},
		Clock:    func() time.Time { return now },
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	err = eng.LoadBytes("rules.yaml", []byte(`
- name: isolate-on-ransomware
  when: detection.severity >= "high" && "ransomware" in indicator.tags
  actions:
    - isolate: { duration: 8h, reason: "IOC {{ indicator.id }}" }
`))
	if err != nil {
		panic(err)
	}
	d := exampleDetection()
	dec, err := eng.Handle(context.Background(), &d)
	if err != nil {
		panic(err)
	}
	a := dec.Rules[0].Actions[0]
	fmt.Println(dec.Result, dec.Rules[0].Rule, a.Type, a.Args["reason"])
	fmt.Println(a.Detail)
	// Output:
	// done isolate-on-ransomware isolate IOC ioc-7
	// isolated until 2026-11-25T18:00:00Z
}

// A typo in a field name is a load error with file, line and column.
func ExampleCompile_error() {
	_, err := response.Compile(response.LoadConfig{}, "rules.yaml", []byte(`- name: r
  when: detection.severty >= "high"
  actions: [ { log: { message: hi } } ]
`))
	var les response.LoadErrors
	errors.As(err, &les)
	fmt.Println(les[0].Line, les[0].Column, errors.Is(err, response.ErrExpression))
	fmt.Println(err)
	// Output:
	// 2 19 true
	// rules.yaml:2:19: rule r: when: response: invalid expression: detection has no field severty
	//     2 |   when: detection.severty >= "high"
	//       |                   ^
}

// Explain shows why a rule did not fire.
func ExampleEngine_Explain() {
	eng, _ := response.New(response.Config{})
	_ = eng.LoadBytes("rules.yaml", []byte(`
- name: yara-critical
  when: detection.engine == "yara" && detection.severity >= "critical"
  actions: [ { log: { message: hi } } ]
`))
	d := exampleDetection()
	fmt.Print(eng.Explain(&d).Text())
	// Output:
	// detection det-1 on host h-42
	//
	// rule yara-critical (rules.yaml:2): not matched
	//   when: detection.engine == "yara" && detection.severity >= "critical"
	//   indicator 0 (sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08): false
	//     detection.engine == "yara"  =>  false
	//     detection.severity >= "critical"  =>  true
}

// An embedding product registers its own action.
func ExampleRegistry_Register() {
	reg := response.DefaultRegistry()
	err := reg.Register("ticket", func(a *response.ActionArgs) (response.Action, error) {
		var y struct {
			Queue string `yaml:"queue"`
		}
		if err := a.Decode(&y); err != nil {
			return nil, err
		}
		if y.Queue == "" {
			return nil, a.Errorf("queue", "is required")
		}
		return ticketAction{queue: y.Queue}, nil
	})
	if err != nil {
		panic(err)
	}
	_, err = response.Compile(response.LoadConfig{Actions: reg}, "rules.yaml", []byte(`- name: r
  when: "true"
  actions: [ { ticket: { queu: soc } } ]
`))
	fmt.Println(err)
	// Output:
	// rules.yaml:3:26: rule r: actions[0].ticket: response: unknown key: unknown field "queu"
	//     3 |   actions: [ { ticket: { queu: soc } } ]
	//       |                          ^
}

type ticketAction struct{ queue string }

func (t ticketAction) Type() string { return "ticket" }

func (t ticketAction) Prepare(inv *response.Invocation) (response.Step, error) {
	return ticketStep{queue: t.queue, host: inv.Env.Host.ID}, nil
}

type ticketStep struct{ queue, host string }

func (s ticketStep) Args() map[string]any { return map[string]any{"queue": s.queue, "host": s.host} }

func (s ticketStep) Do(context.Context, *response.Services) (string, error) {
	return "ticket opened in " + s.queue, nil
}
