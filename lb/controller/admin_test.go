package controller

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAdminEndpoints(t *testing.T) {
	h := newHarness(t, Config{})
	h.c.publish(rendered{
		Config:   []byte("global\n"),
		VhostMap: []byte("www.example.com web_10000\n"),
		AppMap:   []byte("/web web_10000\n"),
	})
	h.c.metrics.reloads.WithLabelValues(reloadStructural).Inc()
	srv := httptest.NewServer(h.c.adminHandler())
	t.Cleanup(srv.Close)

	tests := []struct {
		path, want string
	}{
		{"/_haproxy_getconfig", "global\n"},
		{"/_haproxy_getvhostmap", "www.example.com web_10000\n"},
		{"/_haproxy_getappmap", "/web web_10000\n"},
		{"/_haproxy_getpids", "42 43\n"},
		{"/_mlb_signal/hup", "Sent SIGHUP signal to marathon-lb\n"},
		{"/_mlb_signal/usr1", "Sent SIGUSR1 signal to marathon-lb\n"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			resp, err := http.Get(srv.URL + tc.path)
			require.NoError(t, err)
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, tc.want, string(b))
		})
	}
	assert.Len(t, h.c.hup, 1, "hup delivered to the loop")
	assert.Len(t, h.c.usr1, 1, "usr1 delivered to the loop")

	resp, err := http.Get(srv.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Contains(t, string(b), `switchyard_lb_reloads_total{reason="config_change"} 1`)
	assert.Contains(t, string(b), "switchyard_lb_skipped_apps 0")

	resp, err = http.Get(srv.URL + "/nope")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
}
