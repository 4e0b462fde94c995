package templates

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFormat(t *testing.T) {
	values := map[string]string{"backend": "web_80", "servicePort": "80", "empty": ""}
	tests := []struct {
		name, in, want, err string
	}{
		{name: "plain", in: "frontend x\n", want: "frontend x\n"},
		{name: "placeholders", in: "backend {backend}:{servicePort}", want: "backend web_80:80"},
		{name: "escaped braces", in: "if !{{ ssl_fc }} {backend}", want: "if !{ ssl_fc } web_80"},
		{name: "empty value", in: "a{empty}b", want: "ab"},
		{name: "adjacent", in: "{backend}{backend}", want: "web_80web_80"},
		{name: "unknown placeholder", in: "{nosuch}", err: "unknown placeholder {nosuch}"},
		{name: "single close", in: "a } b", err: "single '}'"},
		{name: "unclosed", in: "a {backend", err: "unclosed '{'"},
		{name: "format spec", in: "{backend:>5}", err: "bad placeholder"},
		{name: "conversion", in: "{backend!r}", err: "bad placeholder"},
		{name: "positional", in: "{0}", err: "bad placeholder"},
		{name: "auto positional", in: "{}", err: "bad placeholder"},
		{name: "attribute", in: "{backend.x}", err: "bad placeholder"},
		{name: "space inside", in: "{ ssl_fc }", err: "bad placeholder"},
		{name: "triple open", in: "{{{backend}}}", want: "{web_80}"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Format(tc.in, values)
			if tc.err != "" {
				require.Error(t, err, "input %q", tc.in)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err, "input %q", tc.in)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestCompileAllowed(t *testing.T) {
	_, err := compile("{backend} {mode}", []string{"backend"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "unknown placeholder {mode}")
	c, err := compile("{backend}", []string{"backend"})
	require.NoError(t, err)
	var sb strings.Builder
	require.Error(t, c.execute(&sb, params{"other", "x"}), "a placeholder without value must fail")
}

// FuzzFormat checks that the formatter never panics, that a template
// without braces is copied unchanged, and that escaping and unescaping
// round-trip.
func FuzzFormat(f *testing.F) {
	for _, s := range []string{"", "{backend}", "{{", "}}", "{", "}", "{a}{b}", "x {{ y }} {backend} z", "{0}", "{a:b}", "\xff{backend}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		values := map[string]string{"backend": "B", "a": "A", "b": "b"}
		out, err := Format(text, values)
		if !strings.ContainsAny(text, "{}") {
			require.NoError(t, err)
			require.Equal(t, text, out)
		}
		// Escaping every brace gives back the text itself.
		esc := strings.NewReplacer("{", "{{", "}", "}}").Replace(text)
		got, err := Format(esc, nil)
		require.NoError(t, err)
		require.Equal(t, text, got)
	})
}
