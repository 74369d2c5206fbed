package main

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	"github.com/cordonsec/cordon/ioc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSample runs the embedded sample: every event but the expired
// indicator's finds its detection.
func TestSample(t *testing.T) {
	var out, errs bytes.Buffer
	require.NoError(t, run("", "", nil, &out, &errs))
	var rules []string
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		d, err := ioc.DecodeDetection(sc.Bytes())
		require.NoError(t, err)
		var ids []string
		for _, ind := range d.Indicators {
			ids = append(ids, ind.ID)
		}
		rules = append(rules, d.Event.ID+":"+strings.Join(ids, ","))
	}
	assert.Equal(t, []string{
		"e-0001:ransom-1", "e-0002:ransom-1", "e-0003:c2-net",
		"e-0004:c2-domain,c2-net", "e-0005:c2-domain", "e-0006:run-key", "e-0007:dc-mutex",
	}, rules)
	assert.Contains(t, errs.String(), "7 events, 7 detections")
}

func TestBadEventLine(t *testing.T) {
	var out, errs bytes.Buffer
	in := strings.NewReader("{\"schema\":\"cordon.event/v1\"}\n")
	require.NoError(t, run("", "-", in, &out, &errs))
	assert.Contains(t, errs.String(), "events line 1: ioc: event: id: is required")
	assert.Empty(t, out.String())
}
