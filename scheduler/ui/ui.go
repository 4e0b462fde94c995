// Package ui serves the scheduler's web UI at /ui/: a single page of plain
// HTML, CSS and JavaScript, embedded in the binary (no CDN, no build step).
// The page talks to the public Marathon v2 API from the browser (fetch and
// an EventSource on /v2/events), with the browser's credentials, so it
// works through whatever authentication guards the API. The only endpoint
// of its own is the read-only agents listing, GET /ui/api/agents.
package ui

import (
	"context"
	"embed"
	"encoding/json"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
)

//go:embed assets
var assets embed.FS

// Prefix is where the UI is mounted.
const Prefix = "/ui/"

// AgentLister returns the registered agents as a JSON-encodable value (the
// scheduler's Agents method, adapted).
type AgentLister func(ctx context.Context) (any, error)

// Config configures the UI handler.
type Config struct {
	// Agents backs GET /ui/api/agents; nil answers an empty list.
	Agents AgentLister
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// New returns the handler for everything under Prefix; mount it at
// Prefix.
func New(cfg Config) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		// The embedded tree is fixed at build time.
		panic(err)
	}
	mux := http.NewServeMux()
	files := http.StripPrefix(Prefix, http.FileServerFS(sub))
	mux.Handle("GET "+Prefix, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The page and its assets change with the binary; let browsers
		// revalidate rather than run a stale script against a new API.
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; frame-ancestors 'none'")
		files.ServeHTTP(w, r)
	}))
	mux.HandleFunc("GET "+Prefix+"api/agents", func(w http.ResponseWriter, r *http.Request) {
		var list any = []any{}
		if cfg.Agents != nil {
			l, err := cfg.Agents(r.Context())
			if err != nil {
				cfg.Logger.Error("list agents", "err", err)
				writeJSON(w, http.StatusInternalServerError, map[string]string{"message": err.Error()})
				return
			}
			list = l
		}
		writeJSON(w, http.StatusOK, map[string]any{"agents": list})
	})
	mux.HandleFunc("GET "+Prefix+"api/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "not found"})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache, no-store, must-revalidate")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// RedirectBrowsers sends a browser asking for "/" (GET with text/html in
// its Accept header) to the UI and passes every other request to next, so
// API clients keep the API's own answer for "/".
func RedirectBrowsers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead) && acceptsHTML(r) {
			http.Redirect(w, r, Prefix, http.StatusFound)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func acceptsHTML(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for _, part := range strings.Split(v, ",") {
			mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
			if strings.EqualFold(strings.TrimSpace(mt), "text/html") {
				return true
			}
		}
	}
	return false
}
