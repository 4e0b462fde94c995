package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
)

func TestDecodeReadinessDefaults(t *testing.T) {
	app, err := DecodeApp([]byte(`{"id":"/a","cmd":"x","portDefinitions":[{"port":0,"name":"http-api"}],"readinessChecks":[{}]}`))
	require.NoError(t, err)
	assert.Equal(t, []marathon.ReadinessCheck{{
		Name: "readinessCheck", Protocol: "HTTP", Path: "/", PortName: "http-api",
		IntervalSeconds: 30, TimeoutSeconds: 10, HTTPStatusCodesForReady: []int{200},
	}}, app.ReadinessChecks)

	bridge, err := DecodeApp([]byte(`{"id":"/b","container":{"docker":{"image":"i","network":"BRIDGE","portMappings":[{"containerPort":80,"name":"web"}]}},
		"readinessChecks":[{"name":"r","protocol":"HTTPS","path":"/ready","portName":"web","intervalSeconds":5,"timeoutSeconds":2,"httpStatusCodesForReady":[200,204],"preserveLastResponse":true}]}`))
	require.NoError(t, err, "a port mapping name is a valid portName")
	assert.Equal(t, "web", bridge.ReadinessChecks[0].PortName)
}

func TestDecodeReadinessErrors(t *testing.T) {
	const ports = `"portDefinitions":[{"port":0,"name":"http-api"}]`
	tests := []struct {
		name, checks, path string
	}{
		{"unknown port name", `[{"portName":"nope"}]`, "/readinessChecks(0)/portName"},
		{"default port name missing", `[{}]`, "/readinessChecks(0)/portName"},
		{"protocol", `[{"portName":"http-api","protocol":"TCP"}]`, "/readinessChecks(0)/protocol"},
		{"timeout not below interval", `[{"portName":"http-api","intervalSeconds":5,"timeoutSeconds":5}]`, "/readinessChecks(0)/timeoutSeconds"},
		{"default timeout above short interval", `[{"portName":"http-api","intervalSeconds":5}]`, "/readinessChecks(0)/timeoutSeconds"},
		{"negative interval", `[{"portName":"http-api","intervalSeconds":-1,"timeoutSeconds":1}]`, "/readinessChecks(0)/intervalSeconds"},
		{"relative path", `[{"portName":"http-api","path":"ready"}]`, "/readinessChecks(0)/path"},
		{"bad status code", `[{"portName":"http-api","httpStatusCodesForReady":[200,42]}]`, "/readinessChecks(0)/httpStatusCodesForReady(1)"},
		{"two checks", `[{"portName":"http-api"},{"portName":"http-api","name":"b"}]`, "/readinessChecks"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := `{"id":"/a","cmd":"x",`
			if tc.name != "default port name missing" {
				in += ports + ","
			}
			_, err := DecodeApp([]byte(in + `"readinessChecks":` + tc.checks + `}`))
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			var paths []string
			for _, d := range ve.Details {
				paths = append(paths, d.Path)
			}
			assert.Contains(t, paths, tc.path)
		})
	}
}

// readinessBackend is a fakeBackend that also reports readiness results.
type readinessBackend struct {
	fakeBackend
	results map[string][]marathon.ReadinessCheckResult
}

func (b *readinessBackend) ReadinessResults(_ context.Context, appID string) ([]marathon.ReadinessCheckResult, error) {
	return b.results[appID], nil
}

func TestEmbedReadiness(t *testing.T) {
	result := marathon.ReadinessCheckResult{Name: "readinessCheck", TaskID: "a.1", Ready: false,
		LastResponse: &marathon.ReadinessCheckResponse{Status: 503, ContentType: "text/plain", Body: "warming up"}}
	b := &readinessBackend{
		fakeBackend: fakeBackend{apps: []marathon.App{{ID: "/a", Labels: map[string]string{}}, {ID: "/b"}}},
		results:     map[string][]marathon.ReadinessCheckResult{"/a": {result}},
	}
	h := New(Config{Apps: b, Tasks: b, Deployments: b, Events: b, Cluster: b,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	tests := []struct {
		name, path string
		want       map[string]*[]marathon.ReadinessCheckResult
	}{
		{"list embedded", "/v2/apps?embed=apps.readiness", map[string]*[]marathon.ReadinessCheckResult{
			"/a": {result}, "/b": {}}},
		{"list not embedded", "/v2/apps", map[string]*[]marathon.ReadinessCheckResult{"/a": nil, "/b": nil}},
		{"one app", "/v2/apps/a?embed=app.readiness", map[string]*[]marathon.ReadinessCheckResult{"/a": {result}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.path, nil))
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			type app struct {
				ID                    string                           `json:"id"`
				ReadinessCheckResults *[]marathon.ReadinessCheckResult `json:"readinessCheckResults"`
			}
			var body struct {
				Apps []app `json:"apps"`
				App  *app  `json:"app"`
			}
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
			if body.App != nil {
				body.Apps = append(body.Apps, *body.App)
			}
			got := map[string]*[]marathon.ReadinessCheckResult{}
			for _, a := range body.Apps {
				got[a.ID] = a.ReadinessCheckResults
			}
			assert.Equal(t, tc.want, got)
		})
	}
}
