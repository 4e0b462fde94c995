package marathon

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEnvVarsJSON(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		plain     map[string]string
		refs      map[string]string
		out       string
		wantError string
	}{
		{name: "plain", in: `{"B":"2","A":"1"}`, plain: map[string]string{"A": "1", "B": "2"}, out: `{"A":"1","B":"2"}`},
		{name: "secret reference", in: `{"DB":{"secret":"db"},"X":"y"}`, plain: map[string]string{"X": "y"},
			refs: map[string]string{"DB": "db"}, out: `{"DB":{"secret":"db"},"X":"y"}`},
		{name: "null value is absent", in: `{"A":null}`, plain: map[string]string{}, out: `{}`},
		{name: "number", in: `{"A":1}`, wantError: "A"},
		{name: "object without secret", in: `{"A":{"x":"y"}}`, wantError: "A"},
		{name: "NUL prefix", in: `{"A":"\u0000secret:x"}`, wantError: "NUL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e EnvVars
			err := json.Unmarshal([]byte(tt.in), &e)
			if tt.wantError != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantError)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.plain, e.Plain())
			assert.Equal(t, tt.refs, e.SecretRefs())
			b, err := json.Marshal(e)
			require.NoError(t, err)
			assert.Equal(t, tt.out, string(b))
		})
	}
}

// TestDecodeAppsWithEnvSecrets: an app that uses Marathon's secrets
// feature must not make lb refuse the whole app list (DC/OS clusters
// have such apps).
func TestDecodeAppsWithEnvSecrets(t *testing.T) {
	body := `{"apps":[{"id":"/web","env":{"DB_PASS":{"secret":"db"},"MODE":"prod"},
		"secrets":{"db":{"source":"/db/pass"}},"labels":{"HAPROXY_GROUP":"external"}},{"id":"/other"}]}`
	apps, err := DecodeApps([]byte(body))
	require.NoError(t, err)
	require.Len(t, apps, 2)
	assert.Equal(t, map[string]string{"MODE": "prod"}, apps[0].Env.Plain())
	assert.Equal(t, map[string]string{"DB_PASS": "/db/pass"}, apps[0].SecretSources())
	assert.Nil(t, apps[1].SecretSources())
}
