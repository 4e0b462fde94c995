package marathon_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
)

func TestUnreachableStrategyJSON(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want marathon.UnreachableStrategy
		out  string
	}{
		{"object", `{"inactiveAfterSeconds":60,"expungeAfterSeconds":120}`,
			marathon.UnreachableStrategy{InactiveAfterSeconds: 60, ExpungeAfterSeconds: 120},
			`{"inactiveAfterSeconds":60,"expungeAfterSeconds":120}`},
		{"disabled", ` "disabled" `, marathon.DisabledUnreachableStrategy(), `"disabled"`},
		{"largest waits stay an object", `{"inactiveAfterSeconds":2147483647,"expungeAfterSeconds":2147483647}`,
			marathon.UnreachableStrategy{InactiveAfterSeconds: 2147483647, ExpungeAfterSeconds: 2147483647},
			`{"inactiveAfterSeconds":2147483647,"expungeAfterSeconds":2147483647}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got marathon.UnreachableStrategy
			require.NoError(t, json.Unmarshal([]byte(tc.in), &got))
			assert.Equal(t, tc.want, got)
			b, err := json.Marshal(got)
			require.NoError(t, err)
			assert.JSONEq(t, tc.out, string(b))
		})
	}
}

func TestUnreachableStrategyDisabledWaitsForever(t *testing.T) {
	d := marathon.DisabledUnreachableStrategy()
	// The scheduler reads only the waits: they must be the largest value.
	assert.Equal(t, marathon.UnreachableDisabledSeconds, d.InactiveAfterSeconds)
	assert.Equal(t, marathon.UnreachableDisabledSeconds, d.ExpungeAfterSeconds)
}

func TestUnreachableStrategyInApp(t *testing.T) {
	var app marathon.App
	require.NoError(t, json.Unmarshal([]byte(`{"id":"/a","unreachableStrategy":"disabled"}`), &app))
	require.NotNil(t, app.UnreachableStrategy)
	assert.True(t, app.UnreachableStrategy.Disabled)
	b, err := json.Marshal(app)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"unreachableStrategy":"disabled"`)

	for _, bad := range []string{`{"unreachableStrategy":"never"}`, `{"unreachableStrategy":5}`, `{"unreachableStrategy":{"inactiveAfterSeconds":"x"}}`} {
		var a marathon.App
		err := json.Unmarshal([]byte(bad), &a)
		var te *json.UnmarshalTypeError
		require.ErrorAs(t, err, &te, bad)
		assert.Contains(t, te.Field, "unreachableStrategy", bad)
	}
}

// A real Marathon lists resident apps with "unreachableStrategy":"disabled";
// the LB's strict decoding of /v2/apps must accept them.
func TestDecodeAppsAcceptsDisabledUnreachable(t *testing.T) {
	apps, err := marathon.DecodeApps([]byte(`{"apps":[{"id":"/db","unreachableStrategy":"disabled"},{"id":"/web"}]}`))
	require.NoError(t, err)
	require.Len(t, apps, 2)
	assert.True(t, apps[0].UnreachableStrategy.Disabled)
	assert.Nil(t, apps[1].UnreachableStrategy)
}

func TestFetchDefaults(t *testing.T) {
	tests := []struct {
		in   string
		want marathon.Fetch
	}{
		{`{"uri":"https://x/a.tgz"}`, marathon.Fetch{URI: "https://x/a.tgz", Extract: true}},
		{`{"uri":"https://x/a.tgz","extract":false}`, marathon.Fetch{URI: "https://x/a.tgz"}},
		{`{"uri":"https://x/run","executable":true,"cache":true,"destPath":"bin/run"}`,
			marathon.Fetch{URI: "https://x/run", Executable: true, Extract: true, Cache: true, DestPath: "bin/run"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var got marathon.Fetch
			require.NoError(t, json.Unmarshal([]byte(tt.in), &got))
			assert.Equal(t, tt.want, got)
		})
	}
	var f marathon.Fetch
	require.Error(t, json.Unmarshal([]byte(`{"uri":5}`), &f))
	b, err := json.Marshal(marathon.Fetch{URI: "u", Extract: true})
	require.NoError(t, err)
	assert.JSONEq(t, `{"uri":"u","executable":false,"extract":true,"cache":false}`, string(b), "all flags written, as Marathon does")
}
