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

func TestSkippedEndpoint(t *testing.T) {
	h := newHarness(t, Config{})
	srv := httptest.NewServer(h.c.adminHandler())
	t.Cleanup(srv.Close)
	get := func(path string) string {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(b)
	}

	assert.JSONEq(t, `{"skipped": []}`, get("/_switchyard/skipped"), "nothing skipped before the first sync")

	st := &loopState{}
	h.c.noteSkipped(st, []skippedPort{
		{AppID: "/zeta", PortIndex: 0, Reason: "HAPROXY_0_PORT: not a number"},
		{AppID: "/other-group", PortIndex: 0, Reason: "not in group webapps01", Filtered: true},
		{AppID: "/alpha", PortIndex: 1, Reason: "haproxy -c: unknown keyword 'foo'", Rejected: true},
		{AppID: "/alpha", PortIndex: 0, Reason: "HAPROXY_0_VHOST: newline in label value"},
	})
	assert.JSONEq(t, `{"skipped": [
		{"appId": "/alpha", "portIndex": 0, "reason": "HAPROXY_0_VHOST: newline in label value", "rejectedByHAProxy": false},
		{"appId": "/alpha", "portIndex": 1, "reason": "haproxy -c: unknown keyword 'foo'", "rejectedByHAProxy": true},
		{"appId": "/zeta", "portIndex": 0, "reason": "HAPROXY_0_PORT: not a number", "rejectedByHAProxy": false}
	]}`, get("/_switchyard/skipped"))
	assert.Contains(t, get("/_switchyard/skipped?all=true"),
		`"appId": "/other-group",`, "policy-filtered ports listed with ?all=true")

	// The next sync replaces the list.
	h.c.noteSkipped(st, nil)
	assert.JSONEq(t, `{"skipped": []}`, get("/_switchyard/skipped"))
}
