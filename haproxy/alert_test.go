package haproxy_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/switchyard/switchyard/haproxy"
	"github.com/switchyard/switchyard/haproxy/haproxytest"
)

func TestCheckErrorAlerts(t *testing.T) {
	tests := []struct {
		name string
		line string
		want haproxy.Alert
	}{
		{
			name: "unknown keyword in a section",
			line: "[ALERT] config : parsing [/tmp/haproxy-check-77541118.cfg:102] : unknown keyword 'frobnicate' in 'backend' section",
			want: haproxy.Alert{Line: 102, Text: "unknown keyword 'frobnicate' in 'backend' section"},
		},
		{
			name: "bind option",
			line: "[ALERT] config : parsing [/tmp/x/haproxy.cfg:64] : 'bind *:10001' in section 'frontend': unknown keyword 'foo'; did you mean 'tfo' maybe ?",
			want: haproxy.Alert{Line: 64, Text: "'bind *:10001' in section 'frontend': unknown keyword 'foo'; did you mean 'tfo' maybe ?"},
		},
		{
			name: "after parsing: no line",
			line: "[ALERT] config : Proxy 'web_10000': unable to find required use_backend: 'nope'.",
			want: haproxy.Alert{Text: "Proxy 'web_10000': unable to find required use_backend: 'nope'."},
		},
		{
			name: "summary",
			line: "[ALERT] config : Fatal errors found in configuration.",
			want: haproxy.Alert{Text: "Fatal errors found in configuration."},
		},
		{
			name: "not an alert line",
			line: "exit status 1",
			want: haproxy.Alert{Text: "exit status 1"},
		},
		{
			name: "file name with a colon",
			line: "[ALERT] config : parsing [/tmp/a:b.cfg:7] : missing timeouts",
			want: haproxy.Alert{Line: 7, Text: "missing timeouts"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := (&haproxy.CheckError{Lines: []string{tc.line}}).Alerts()
			assert.Equal(t, []haproxy.Alert{tc.want}, got)
		})
	}
}

func TestCheckErrorAlertsFromHAProxy(t *testing.T) {
	bin := haproxytest.Binary(t)
	cfg := "defaults\n  mode http\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n\nbackend b\n  frobnicate yes\n"
	err := haproxy.Check(t.Context(), bin, []byte(cfg))
	ce, ok := err.(*haproxy.CheckError)
	if !assert.True(t, ok, "want a *CheckError, got %v", err) {
		return
	}
	var lines []int
	for _, a := range ce.Alerts() {
		if a.Line > 0 {
			lines = append(lines, a.Line)
			assert.Contains(t, a.Text, "frobnicate")
		}
	}
	assert.Equal(t, []int{8}, lines, "the line of the bad keyword")
}

func FuzzCheckErrorAlerts(f *testing.F) {
	f.Add("[ALERT] config : parsing [/tmp/x.cfg:12] : unknown keyword 'foo' in 'backend' section")
	f.Add("[ALERT] config : Fatal errors found in configuration.")
	f.Add("parsing [:99999999999999999999] :")
	f.Fuzz(func(t *testing.T, line string) {
		got := (&haproxy.CheckError{Lines: []string{line}}).Alerts()
		if len(got) != 1 || got[0].Line < 0 {
			t.Fatalf("Alerts(%q) = %+v", line, got)
		}
	})
}
