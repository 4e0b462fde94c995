package main

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/haproxy/haproxytest"
	"github.com/switchyard/switchyard/marathon/marathontest"
)

// TestE2EAdminAllow runs lb with real HAProxy: by default (as marathon-lb)
// anyone reaching the stats port may send /_mlb_signal/* and read
// /_haproxy_getconfig, and the startup log says so; with --admin-allow
// naming a network the test's client (127.0.0.1) is not in, HAProxy
// answers those paths 403 while the other admin paths keep working.
func TestE2EAdminAllow(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: real HAProxy in a network namespace; skipped with -short")
	}
	if haproxytest.InNetns(t) {
		return
	}
	haproxyBin := haproxytest.Binary(t)
	fake := marathontest.New(t)
	status := func(path string) int {
		r, err := get(9090, path, "")
		require.NoError(t, err)
		return r.status
	}

	t.Run("default: everyone", func(t *testing.T) {
		p := startLB(t, haproxyBin, "sse", "--marathon", fake.URL, "--group", "external",
			"--haproxy-config", filepath.Join(t.TempDir(), "haproxy.cfg"))
		waitReady(t)
		assert.Equal(t, http.StatusOK, status("/_haproxy_getconfig"))
		assert.Equal(t, http.StatusOK, status("/_mlb_signal/usr1"))
		assert.Contains(t, p.logs.String(), "are open to everyone who can reach it, as in marathon-lb")
		p.stop(t)
	})

	t.Run("--admin-allow", func(t *testing.T) {
		cfgPath := filepath.Join(t.TempDir(), "haproxy.cfg")
		p := startLB(t, haproxyBin, "sse", "--marathon", fake.URL, "--group", "external",
			"--haproxy-config", cfgPath, "--admin-allow", "10.99.0.0/16,192.0.2.7")
		waitReady(t)
		for _, path := range []string{"/_mlb_signal/hup", "/_mlb_signal/usr1", "/_haproxy_getconfig"} {
			assert.Equal(t, http.StatusForbidden, status(path), path)
		}
		for _, path := range []string{"/_haproxy_getvhostmap", "/_haproxy_getpids", "/_switchyard/skipped", "/haproxy?stats"} {
			assert.Equal(t, http.StatusOK, status(path), path)
		}
		logs := p.logs.String()
		assert.Contains(t, logs, "limited to --admin-allow")
		assert.True(t, strings.Contains(logs, "allow=10.99.0.0/16,192.0.2.7/32"), logs)
		p.stop(t)
	})
}
