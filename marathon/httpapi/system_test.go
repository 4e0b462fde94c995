package httpapi

import (
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
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
