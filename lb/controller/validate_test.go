package controller

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/haproxy"
)

func TestValidateBoth(t *testing.T) {
	checkErr := &haproxy.CheckError{Lines: []string{"[ALERT] parsing [x.cfg:3] : bad"}}
	parseErr := errors.New("config-parser sees 2 backends, expected 3")
	tests := []struct {
		name      string
		check     error
		parse     error
		wantErr   bool
		wantCheck bool // the error is HAProxy's CheckError
		wantParse bool // the error carries the parse error
	}{
		{name: "both accept"},
		{name: "haproxy rejects", check: checkErr, wantErr: true, wantCheck: true},
		{name: "config-parser disagrees", parse: parseErr, wantErr: true, wantParse: true},
		{name: "both reject: haproxy's verdict wins", check: checkErr, parse: parseErr, wantErr: true, wantCheck: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validateBoth(context.Background(), []byte("cfg"),
				func(context.Context, []byte) error { return tt.check },
				func(context.Context, []byte) error { return tt.parse })
			if !tt.wantErr {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, haproxy.ErrInvalidConfig, "a rejected config must be a validation verdict")
			var ce *haproxy.CheckError
			assert.Equal(t, tt.wantCheck, errors.As(err, &ce))
			assert.Equal(t, tt.wantParse, errors.Is(err, parseErr))
		})
	}
}

// TestParseConfigAcceptsGoldens: every configuration our templates produce
// must pass the config-parser cross-check, or validation would reject it.
func TestParseConfigAcceptsGoldens(t *testing.T) {
	files, err := filepath.Glob("../../templates/testdata/golden/*.cfg")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		assert.NoError(t, parseConfig(context.Background(), b), filepath.Base(f))
	}
}
