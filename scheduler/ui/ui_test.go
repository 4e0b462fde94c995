package ui_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/scheduler/ui"
)

func TestServesEmbeddedAssets(t *testing.T) {
	h := ui.New(ui.Config{})
	tests := []struct {
		path, wantType, wantBody string
		wantCode                 int
	}{
		{"/ui/", "text/html", `<script src="app.js">`, http.StatusOK},
		{"/ui/index.html", "", "", http.StatusMovedPermanently},
		{"/ui/app.js", "text/javascript", "new EventSource(", http.StatusOK},
		{"/ui/app.css", "text/css", ".health", http.StatusOK},
		{"/ui/nope.js", "", "", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", tt.path, nil))
			assert.Equal(t, tt.wantCode, rec.Code)
			if tt.wantType != "" {
				assert.Contains(t, rec.Header().Get("Content-Type"), tt.wantType)
				assert.Equal(t, "no-cache", rec.Header().Get("Cache-Control"))
				assert.Contains(t, rec.Header().Get("Content-Security-Policy"), "default-src 'self'")
			}
			assert.Contains(t, rec.Body.String(), tt.wantBody)
		})
	}
}

// TestNoRemoteAssets: the page must work without internet, so nothing it
// loads may come from another origin.
func TestNoRemoteAssets(t *testing.T) {
	h := ui.New(ui.Config{})
	get := func(p string) string {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", p, nil))
		require.Equal(t, http.StatusOK, rec.Code, p)
		return rec.Body.String()
	}
	assert.NotRegexp(t, `(src|href)=["']?(https?:)?//`, get("/ui/"), "index.html loads only local files")
	css := get("/ui/app.css")
	assert.NotContains(t, css, "@import")
	assert.NotRegexp(t, `url\(\s*["']?(https?:)?//`, css)
	js := get("/ui/app.js")
	assert.NotRegexp(t, `import\s*\(|importScripts|fetch\(\s*["'](https?:)?//`, js)
}

func TestAgentsEndpoint(t *testing.T) {
	tests := []struct {
		name     string
		lister   ui.AgentLister
		wantCode int
		want     string
	}{
		{"no lister", nil, http.StatusOK, `{"agents":[]}`},
		{"agents", func(context.Context) (any, error) {
			return []map[string]any{{"id": "a1", "reachable": true}}, nil
		}, http.StatusOK, `{"agents":[{"id":"a1","reachable":true}]}`},
		{"error", func(context.Context) (any, error) { return nil, errors.New("boom") }, http.StatusInternalServerError, `{"message":"boom"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			ui.New(ui.Config{Agents: tt.lister, Logger: slog.New(slog.DiscardHandler)}).ServeHTTP(rec, httptest.NewRequest("GET", "/ui/api/agents", nil))
			assert.Equal(t, tt.wantCode, rec.Code)
			assert.Equal(t, "application/json; charset=utf-8", rec.Header().Get("Content-Type"))
			assert.JSONEq(t, tt.want, rec.Body.String())
		})
	}
	rec := httptest.NewRecorder()
	ui.New(ui.Config{}).ServeHTTP(rec, httptest.NewRequest("GET", "/ui/api/other", nil))
	assert.Equal(t, http.StatusNotFound, rec.Code)
	var body map[string]string
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	assert.Equal(t, "not found", body["message"])
}

func TestRedirectBrowsers(t *testing.T) {
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h := ui.RedirectBrowsers(next)
	tests := []struct {
		name, method, path, accept string
		wantCode                   int
	}{
		{"browser", "GET", "/", "text/html,application/xhtml+xml,*/*;q=0.8", http.StatusFound},
		{"browser HEAD", "HEAD", "/", "text/html", http.StatusFound},
		{"mixed case", "GET", "/", "Text/HTML; q=0.9", http.StatusFound},
		{"api client", "GET", "/", "application/json", http.StatusTeapot},
		{"curl", "GET", "/", "*/*", http.StatusTeapot},
		{"no accept", "GET", "/", "", http.StatusTeapot},
		{"post", "POST", "/", "text/html", http.StatusTeapot},
		{"other path", "GET", "/v2/apps", "text/html", http.StatusTeapot},
		{"lookalike", "GET", "/", "text/htmlx", http.StatusTeapot},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.path, nil)
			if tt.accept != "" {
				req.Header.Set("Accept", tt.accept)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			assert.Equal(t, tt.wantCode, rec.Code)
			if tt.wantCode == http.StatusFound {
				assert.Equal(t, "/ui/", rec.Header().Get("Location"))
			}
		})
	}
}
