package main

import (
	"bytes"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"

	"github.com/switchyard/switchyard/cmd/internal/cliutil"
)

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	app := newApp()
	app.Writer = &out
	require.NoError(t, app.Run([]string{"switchyard", "--version"}))
	assert.Equal(t, "switchyard version "+cliutil.Version()+"\n", out.String())
}

// TestLogLevelFlag parses the flags only (the action is replaced): the
// --log-level words are the same as lb's, in any case.
func TestLogLevelFlag(t *testing.T) {
	tests := []struct {
		level   string
		enabled slog.Level
		hidden  slog.Level
		wantErr string
	}{
		{level: "DEBUG", enabled: slog.LevelDebug, hidden: slog.LevelDebug - 1},
		{level: "info", enabled: slog.LevelInfo, hidden: slog.LevelDebug},
		{level: "Warning", enabled: slog.LevelWarn, hidden: slog.LevelInfo},
		{level: "ERROR", enabled: slog.LevelError, hidden: slog.LevelWarn},
		{level: "loud", wantErr: `--log-level "loud": want DEBUG, INFO, WARNING or ERROR`},
	}
	for _, tt := range tests {
		t.Run(tt.level, func(t *testing.T) {
			var cfg demoConfig
			app := newApp()
			app.Action = func(c *cli.Context) error {
				var err error
				cfg, err = demoConfigFrom(c)
				return err
			}
			err := app.Run([]string{"switchyard", "--dont-bind-http-https", "--log-level", tt.level})
			if tt.wantErr != "" {
				assert.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.True(t, cfg.Logger.Enabled(t.Context(), tt.enabled))
			if tt.hidden != tt.enabled {
				assert.False(t, cfg.Logger.Enabled(t.Context(), tt.hidden))
			}
		})
	}
}
