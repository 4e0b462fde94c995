package httpapi

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeLoggers records level changes.
type fakeLoggers struct {
	mu     sync.Mutex
	levels map[string]string
	last   time.Duration
}

func (f *fakeLoggers) Loggers() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]string{}
	for k, v := range f.levels {
		out[k] = v
	}
	return out
}

func (f *fakeLoggers) Set(name, level string, d time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if name == "broken" {
		return fmt.Errorf("cannot set %s", name)
	}
	f.levels[name] = level
	f.last = d
	return nil
}

func TestLoggingAndPlugins(t *testing.T) {
	logs := &fakeLoggers{levels: map[string]string{"ROOT": "INFO"}}
	srv := httptest.NewServer(New(Config{Apps: &fakeBackend{}, Tasks: &fakeBackend{}, Deployments: &fakeBackend{},
		Events: &fakeBackend{}, Cluster: &fakeBackend{}, Loggers: logs, Keepalive: time.Hour,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}))
	t.Cleanup(srv.Close)

	tests := []struct {
		name         string
		method, path string
		body         string
		code         int
		want         string
	}{
		{"loggers", "GET", "/logging", "", 200, `{"ROOT":"INFO"}` + "\n"},
		{"change", "POST", "/logging", `{"level":"debug","logger":"scheduler"}`, 200, `{"level":"debug","logger":"scheduler"}` + "\n"},
		{"change for a while", "POST", "/logging", `{"level":"trace","logger":"agent","durationSeconds":30}`, 200,
			`{"level":"trace","logger":"agent","durationSeconds":30}` + "\n"},
		{"unknown level", "POST", "/logging", `{"level":"loud","logger":"x"}`, 422,
			`{"message":"Object is not valid","details":[{"path":"/level","errors":["must be one of trace, debug, info, warn, error"]}]}` + "\n"},
		{"no logger", "POST", "/logging", `{"level":"info"}`, 422,
			`{"message":"Object is not valid","details":[{"path":"/logger","errors":["must not be empty"]}]}` + "\n"},
		{"bad duration", "POST", "/logging", `{"level":"info","logger":"x","durationSeconds":0}`, 422,
			`{"message":"Object is not valid","details":[{"path":"/durationSeconds","errors":["must be greater than 0"]}]}` + "\n"},
		{"backend refuses", "POST", "/logging", `{"level":"info","logger":"broken"}`, 422,
			`{"message":"Object is not valid","details":[{"path":"/level","errors":["cannot set broken"]}]}` + "\n"},
		{"not json", "POST", "/logging", `{"level":`, 400, ""},
		{"put logging", "PUT", "/logging", `{}`, 405, `{"message":"HTTP method not allowed"}` + "\n"},
		{"plugins", "GET", "/v2/plugins", "", 200, `{"plugins":[]}` + "\n"},
		{"plugin path", "GET", "/v2/plugins/webjar/index.html", "", 404, `{"message":"No plugin with this pluginId: webjar"}` + "\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := call(t, srv, tc.method, tc.path, tc.body)
			assert.Equal(t, tc.code, code, body)
			if tc.want != "" {
				assert.Equal(t, tc.want, body)
			}
		})
	}
	got := logs.Loggers()
	assert.Equal(t, "debug", got["scheduler"])
	assert.Equal(t, "trace", got["agent"])
	assert.Equal(t, 30*time.Second, logs.last)
}

// TestEnvSecrets: env values may reference the app's secrets, as with
// Marathon's secrets feature; references and secrets are validated with
// Marathon's paths and messages, and round-trip.
func TestEnvSecrets(t *testing.T) {
	tests := []struct {
		name string
		body string
		code int
		want string
	}{
		{"reference to a defined secret", `{"id":"a","cmd":"x","env":{"DB":{"secret":"db"},"M":"1"},"secrets":{"db":{"source":"/db/pass"}}}`, 0, ""},
		{"undefined secret", `{"id":"a","cmd":"x","env":{"DB":{"secret":"nope"}},"secrets":{"db":{"source":"/db/pass"}}}`, 422,
			`{"message":"Object is not valid","details":[{"path":"/env/DB/secret","errors":["references an undefined secret"]}]}` + "\n"},
		{"no secrets at all", `{"id":"a","cmd":"x","env":{"DB":{"secret":"db"}}}`, 422,
			`{"message":"Object is not valid","details":[{"path":"/env/DB/secret","errors":["references an undefined secret"]}]}` + "\n"},
		{"secret without source", `{"id":"a","cmd":"x","secrets":{"db":{}}}`, 422,
			`{"message":"Object is not valid","details":[{"path":"/secrets/db/source","errors":["must not be empty"]}]}` + "\n"},
		{"env value of the wrong type", `{"id":"a","cmd":"x","env":{"N":1}}`, 400,
			`{"message":"Invalid JSON","details":[{"path":"/env/N","errors":["error.expected.jsstring"]}]}` + "\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			app, err := DecodeApp([]byte(tc.body))
			if tc.code == 0 {
				require.NoError(t, err)
				b, err := json.Marshal(newDefinition(app))
				require.NoError(t, err)
				var got struct {
					Env     map[string]any `json:"env"`
					Secrets map[string]any `json:"secrets"`
				}
				require.NoError(t, json.Unmarshal(b, &got))
				assert.Equal(t, map[string]any{"DB": map[string]any{"secret": "db"}, "M": "1"}, got.Env)
				assert.Equal(t, map[string]any{"db": map[string]any{"source": "/db/pass"}}, got.Secrets)
				return
			}
			srv := newTestServer(t, &fakeBackend{})
			code, body := call(t, srv, "POST", "/v2/apps", tc.body)
			assert.Equal(t, tc.code, code)
			assert.Equal(t, tc.want, body)
		})
	}
}

// TestContainerRoundTrip: what a client sends in container reads back as
// sent: empty volumes and parameters stay [], linuxInfo is kept.
func TestContainerRoundTrip(t *testing.T) {
	in := `{"id":"/c","instances":0,"container":{"type":"DOCKER","volumes":[],
		"docker":{"image":"nginx","parameters":[]},
		"linuxInfo":{"seccomp":{"profileName":"default","unconfined":false},"ipcInfo":{"mode":"PRIVATE","shmSize":64}}}}`
	app, err := DecodeApp([]byte(in))
	require.NoError(t, err)
	b, err := json.Marshal(newDefinition(app))
	require.NoError(t, err)
	var got struct {
		Container map[string]any `json:"container"`
	}
	require.NoError(t, json.Unmarshal(b, &got))
	assert.Equal(t, []any{}, got.Container["volumes"])
	assert.Equal(t, []any{}, got.Container["docker"].(map[string]any)["parameters"])
	assert.Equal(t, map[string]any{
		"seccomp": map[string]any{"profileName": "default", "unconfined": false},
		"ipcInfo": map[string]any{"mode": "PRIVATE", "shmSize": float64(64)},
	}, got.Container["linuxInfo"])
}
