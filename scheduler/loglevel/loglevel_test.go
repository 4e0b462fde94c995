package loglevel

import (
	"bytes"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseLevel(t *testing.T) {
	tests := []struct {
		in      string
		want    slog.Level
		wantErr bool
	}{
		{in: "trace", want: LevelTrace},
		{in: "DEBUG", want: slog.LevelDebug},
		{in: "Info", want: slog.LevelInfo},
		{in: "warn", want: slog.LevelWarn},
		{in: "WARNING", want: slog.LevelWarn},
		{in: "error", want: slog.LevelError},
		{in: "fatal", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseLevel(tt.in)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// TestComponentLevels: a logger named by its component follows the root
// level until it gets its own; changing it leaves the others alone.
func TestComponentLevels(t *testing.T) {
	var buf bytes.Buffer
	reg := New(slog.LevelInfo)
	base := slog.New(reg.Handler(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: LevelTrace})))
	sched := base.With("component", "scheduler")
	agent := base.With("component", "agent")

	sched.Debug("sched-debug-1")
	agent.Debug("agent-debug-1")
	assert.Empty(t, buf.String())
	assert.Equal(t, map[string]string{"ROOT": "INFO", "scheduler": "INFO (inherited)", "agent": "INFO (inherited)"}, reg.Loggers())

	require.NoError(t, reg.Set("scheduler", "debug", 0))
	sched.Debug("sched-debug-2")
	agent.Debug("agent-debug-2")
	assert.Contains(t, buf.String(), "sched-debug-2")
	assert.NotContains(t, buf.String(), "agent-debug-2")
	assert.Equal(t, "DEBUG", reg.Loggers()["scheduler"])

	require.NoError(t, reg.Set(Root, "error", 0))
	agent.Warn("agent-warn")
	base.Warn("root-warn")
	assert.NotContains(t, buf.String(), "agent-warn")
	assert.NotContains(t, buf.String(), "root-warn")
	assert.Equal(t, "ERROR (inherited)", reg.Loggers()["agent"])

	nested := agent.With("component", "driver")
	nested.Info("nested-info")
	assert.NotContains(t, buf.String(), "nested-info")
	assert.Equal(t, "ERROR (inherited)", reg.Loggers()["agent/driver"])

	require.Error(t, reg.Set("scheduler", "loud", 0))
	require.Error(t, reg.Set(" ", "info", 0))
}

// TestTemporaryLevel: with a duration the previous level comes back.
func TestTemporaryLevel(t *testing.T) {
	reg := New(slog.LevelInfo)
	defer reg.Close()
	require.NoError(t, reg.Set("agent", "debug", 10*time.Millisecond))
	assert.Equal(t, "DEBUG", reg.Loggers()["agent"])
	require.Eventually(t, func() bool { return reg.Loggers()["agent"] == "INFO (inherited)" }, 10*time.Second, 5*time.Millisecond)

	require.NoError(t, reg.Set(Root, "warn", 10*time.Millisecond))
	require.Eventually(t, func() bool { return reg.Loggers()[Root] == "INFO" }, 10*time.Second, 5*time.Millisecond)
}
