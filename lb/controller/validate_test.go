package controller

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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

func TestParseChanged(t *testing.T) {
	head := "# generated\nglobal\n  maxconn 100\n\ndefaults\n  mode http\n  timeout client 1s\n"
	backend := func(name, server string) string {
		return "\nbackend " + name + "\n  balance roundrobin\n  server " + server + "\n"
	}
	prev := head + backend("a", "s1 10.0.0.1:80") + backend("b", "s1 10.0.0.2:80")
	tests := []struct {
		name  string
		prev  string
		cfg   string
		parts []string // what parse is given
	}{
		{name: "nothing before: everything", prev: "", cfg: prev, parts: []string{prev}},
		{name: "unchanged: nothing", prev: prev, cfg: prev},
		{name: "one backend changed: it alone, with global and defaults", prev: prev,
			cfg:   head + backend("a", "s1 10.0.0.1:80") + backend("b", "s2 10.0.0.3:80"),
			parts: []string{head + backend("b", "s2 10.0.0.3:80")}},
		{name: "a backend added", prev: prev,
			cfg:   prev + backend("c", "s1 10.0.0.4:80"),
			parts: []string{head + backend("c", "s1 10.0.0.4:80")}},
		{name: "defaults changed: everything", prev: prev,
			cfg:   strings.Replace(prev, "timeout client 1s", "timeout client 2s", 1),
			parts: []string{strings.Replace(prev, "timeout client 1s", "timeout client 2s", 1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var parts []string
			var prev []byte
			if tt.prev != "" {
				prev = []byte(tt.prev)
			}
			err := parseChanged(t.Context(), prev, []byte(tt.cfg), func(_ context.Context, b []byte) error {
				parts = append(parts, string(b))
				return nil
			})
			require.NoError(t, err)
			assert.Equal(t, tt.parts, parts)
		})
	}

	t.Run("config-parser's verdict on a changed section", func(t *testing.T) {
		bad := prev + "\nbackend c\n  server\n"
		require.Error(t, parseWhole(t.Context(), []byte(bad)))
		assert.ErrorIs(t, parseChanged(t.Context(), []byte(prev), []byte(bad), parseWhole), haproxy.ErrSyntax)
		assert.NoError(t, parseChanged(t.Context(), []byte(prev), []byte(prev+backend("c", "s1 10.0.0.4:80")), parseWhole))
	})

	t.Run("large configurations are read in parts", func(t *testing.T) {
		var sb strings.Builder
		sb.WriteString(head)
		for i := range 2*parseBatch + 1 {
			sb.WriteString(backend(fmt.Sprintf("b%d", i), "s1 10.0.0.1:80"))
		}
		calls := 0
		require.NoError(t, parseChanged(t.Context(), nil, []byte(sb.String()), func(ctx context.Context, b []byte) error {
			calls++
			return parseWhole(ctx, b)
		}))
		assert.Equal(t, 3, calls)
	})
}
