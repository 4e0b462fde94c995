package cliutil

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"runtime/debug"
	"strings"
	"testing"
	"testing/slogtest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseLevel(t *testing.T) {
	tests := []struct {
		in   string
		want slog.Level
	}{
		{"DEBUG", slog.LevelDebug}, {"debug", slog.LevelDebug}, {"Debug", slog.LevelDebug},
		{"INFO", slog.LevelInfo}, {"info", slog.LevelInfo}, {"", slog.LevelInfo},
		{"WARNING", slog.LevelWarn}, {"warning", slog.LevelWarn}, {"warn", slog.LevelWarn},
		{"ERROR", slog.LevelError}, {"error", slog.LevelError}, {"CRITICAL", slog.LevelError}, {" fatal ", slog.LevelError},
	}
	for _, tt := range tests {
		got, err := ParseLevel(tt.in)
		require.NoError(t, err, tt.in)
		assert.Equal(t, tt.want, got, tt.in)
	}
	for _, bad := range []string{"loud", "info+2", "-4", "WARNINGS"} {
		_, err := ParseLevel(bad)
		require.Error(t, err, bad)
		assert.Contains(t, err.Error(), "--log-level")
		assert.Contains(t, err.Error(), "DEBUG, INFO, WARNING or ERROR")
	}
}

func TestVersionString(t *testing.T) {
	vcs := []debug.BuildSetting{
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "1f2e3d4c5b6a7980aabbccddeeff001122334455"},
		{Key: "vcs.time", Value: "2026-12-05T12:00:00Z"},
		{Key: "vcs.modified", Value: "true"},
	}
	tests := []struct {
		name   string
		linked string
		bi     *debug.BuildInfo
		want   string
	}{
		{name: "no build info", want: "unknown"},
		{name: "linked, no build info", linked: "1.2.0", want: "1.2.0"},
		{name: "linked wins over the module version", linked: "1.2.0",
			bi:   &debug.BuildInfo{GoVersion: "go1.24.2", Main: debug.Module{Version: "(devel)"}, Settings: vcs},
			want: "1.2.0 (commit 1f2e3d4c5b6a, 2026-12-05T12:00:00Z, modified; go1.24.2)"},
		{name: "go install of a tagged module",
			bi:   &debug.BuildInfo{GoVersion: "go1.24.2", Main: debug.Module{Version: "v1.3.0"}},
			want: "v1.3.0 (go1.24.2)"},
		{name: "clean checkout",
			bi:   &debug.BuildInfo{GoVersion: "go1.24.2", Main: debug.Module{Version: "(devel)"}, Settings: vcs[:3]},
			want: "(devel) (commit 1f2e3d4c5b6a, 2026-12-05T12:00:00Z; go1.24.2)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, versionString(tt.linked, tt.bi))
		})
	}
	assert.NotEmpty(t, Version(), "a test binary has build info")
}

func TestMergeAttrs(t *testing.T) {
	var buf bytes.Buffer
	log := NewTextLogger(&buf, slog.LevelInfo)
	log.Debug("hidden")
	lbLog := log.With("component", "lb", "n", 1)
	lbLog.With("component", "haproxy", "n", 2).Info("haproxy output", "line", "[NOTICE] Loading success.")
	lbLog.Info("controller line")
	lbLog.WithGroup("g").With("component", "x").Info("grouped")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 3, buf.String())
	assert.Contains(t, lines[0], `msg="haproxy output" component=lb/haproxy n=2 line="[NOTICE] Loading success."`)
	assert.Equal(t, 1, strings.Count(lines[0], "component="), "component logged once: %s", lines[0])
	assert.Contains(t, lines[1], `msg="controller line" component=lb n=1`)
	assert.Contains(t, lines[2], `component=lb n=1 g.component=x`, "a group is a new scope")
}

// TestMergeAttrsHandlerContract runs the standard library's handler
// conformance tests through the wrapper.
func TestMergeAttrsHandlerContract(t *testing.T) {
	var buf bytes.Buffer
	h := MergeAttrs(slog.NewJSONHandler(&buf, nil))
	results := func() []map[string]any {
		var ms []map[string]any
		for _, line := range bytes.Split(buf.Bytes(), []byte{'\n'}) {
			if len(line) == 0 {
				continue
			}
			var m map[string]any
			require.NoError(t, json.Unmarshal(line, &m))
			ms = append(ms, m)
		}
		return ms
	}
	require.NoError(t, slogtest.TestHandler(h, results))
}
