package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHandler(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "index.html"), []byte("HELLO WORLD OF MARATHON-LB\n"), 0o644))

	tests := []struct {
		name       string
		text, dir  string
		path       string
		wantStatus int
		wantBody   string
	}{
		{name: "text", text: "HELLO MESOS WORLD", path: "/", wantStatus: 200, wantBody: "HELLO MESOS WORLD\n"},
		{name: "text any path", text: "abc", path: "/x/y", wantStatus: 200, wantBody: "abc\n"},
		{name: "default text", path: "/", wantStatus: 200, wantBody: "HELLO MESOS WORLD\n"},
		{name: "dir index", dir: dir, path: "/", wantStatus: 200, wantBody: "HELLO WORLD OF MARATHON-LB\n"},
		{name: "dir wins over text", dir: dir, text: "ignored", path: "/", wantStatus: 200, wantBody: "HELLO WORLD OF MARATHON-LB\n"},
		{name: "dir missing file", dir: dir, path: "/nope.html", wantStatus: 404, wantBody: "404 page not found\n"},
		{name: "health", text: "x", path: "/_health", wantStatus: 200, wantBody: "OK\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := newHandler(tc.text, tc.dir)
			require.NoError(t, err)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.path, nil))
			assert.Equal(t, tc.wantStatus, rec.Code, tc.path)
			assert.Equal(t, tc.wantBody, rec.Body.String(), tc.path)
		})
	}
}

func TestHandlerBadDir(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(f, nil, 0o644))
	for _, dir := range []string{filepath.Join(t.TempDir(), "missing"), f} {
		_, err := newHandler("", dir)
		assert.Error(t, err, dir)
	}
}

func get(addr string) (string, error) {
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestServeStopsOnCancel(t *testing.T) {
	for _, delay := range []time.Duration{0, 500 * time.Millisecond} {
		t.Run(delay.String(), func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			addr := ln.Addr().String()
			require.NoError(t, ln.Close())

			h, err := newHandler("up", "")
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- serve(ctx, slog.New(slog.DiscardHandler), addr, h, delay) }()

			require.Eventually(t, func() bool { _, err := get(addr); return err == nil }, 5*time.Second, 20*time.Millisecond)
			body, err := get(addr)
			require.NoError(t, err)
			assert.Equal(t, "up\n", body)

			cancel()
			if delay > 0 {
				// Still serving while draining.
				time.Sleep(delay / 5)
				body, err := get(addr)
				require.NoError(t, err, "request during the shutdown delay")
				assert.Equal(t, "up\n", body)
			}
			select {
			case err := <-done:
				assert.NoError(t, err)
			case <-time.After(10 * time.Second):
				t.Fatal("serve did not stop after cancel")
			}
			_, err = get(addr)
			assert.Error(t, err, "listener closed after shutdown")
		})
	}
}
