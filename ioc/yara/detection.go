package yara

import (
	"fmt"
	"strings"
	"time"

	"github.com/cordonsec/cordon/ioc"
)

// NewDetection turns m, a match found in the content that ev describes (a
// file, a process image), into an ioc.Detection with engine "yara" made at
// now. The rule name is the detection's rule. The severity is the rule's
// "severity" meta (low, medium, high or critical, case-insensitive) and
// medium when the meta is absent or holds another value. The fingerprint
// covers what was scanned (the file's or image's sha256, else its path), so
// one rule matching two files makes two findings. Errors come from
// ioc.NewDetection.
func NewDetection(m Match, ev ioc.Event, now time.Time) (ioc.Detection, error) {
	d, err := ioc.NewDetection(ev, ioc.EngineYARA, m.Rule, ruleSeverity(m.Meta), scanned(ev), now)
	if err != nil {
		return ioc.Detection{}, fmt.Errorf("yara: detection for rule %q: %w", m.Rule, err)
	}
	return d, nil
}

// scanned names the content ev describes, for the fingerprint.
func scanned(ev ioc.Event) []ioc.Match {
	var field, v string
	switch {
	case ev.File != nil && ev.File.SHA256 != "":
		field, v = "file.sha256", strings.ToLower(ev.File.SHA256)
	case ev.File != nil && ev.File.Path != "":
		field, v = "file.path", ev.File.Path
	case ev.Process != nil && ev.Process.SHA256 != "":
		field, v = "process.sha256", strings.ToLower(ev.Process.SHA256)
	case ev.Process != nil && ev.Process.Path != "":
		field, v = "process.path", ev.Process.Path
	default:
		return nil
	}
	return []ioc.Match{{Field: field, Observable: v}}
}

func ruleSeverity(meta []Meta) ioc.Severity {
	for _, kv := range meta {
		if kv.Key != "severity" {
			continue
		}
		s, ok := kv.Value.(string)
		if !ok {
			break
		}
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "low":
			return ioc.SeverityLow
		case "medium":
			return ioc.SeverityMedium
		case "high":
			return ioc.SeverityHigh
		case "critical":
			return ioc.SeverityCritical
		}
		break
	}
	return ioc.SeverityMedium
}
