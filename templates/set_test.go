package templates

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/lb"
	. "github.com/switchyard/switchyard/lb/lbtest"
	"github.com/switchyard/switchyard/marathon"
)

func TestCatalog(t *testing.T) {
	names := Names()
	assert.Len(t, names, 53, "marathon-lb has 53 templates")
	assert.True(t, slices.IsSorted(names), "catalog must stay sorted (lookup uses binary search)")
	set := Default()
	entries, err := defaultFS.ReadDir("default")
	require.NoError(t, err)
	assert.Len(t, entries, len(names), "one default file per template")
	for _, n := range names {
		assert.True(t, strings.HasPrefix(n, "HAPROXY_"), n)
		assert.NotEmpty(t, Doc(n), "doc of %s", n)
		_, ok := set.texts[n]
		assert.True(t, ok, "default text of %s", n)
	}
	assert.Empty(t, Doc("HAPROXY_NOPE"))
	assert.Contains(t, Doc("HAPROXY_BACKEND_HEAD"), "HAPROXY_{n}_BACKEND_HEAD")
	assert.Contains(t, Doc("HAPROXY_HEAD"), "Global only")
}

func TestLoad(t *testing.T) {
	t.Run("missing dir", func(t *testing.T) {
		_, err := Load(filepath.Join(t.TempDir(), "nope"))
		require.Error(t, err)
	})
	t.Run("overrides and ignored files", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "HAPROXY_BACKEND_HEAD"), []byte("\nbackend {backend}\n  mode {mode}\n  balance {balance}\n  timeout server 1m\n"), 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "HAPROXY_BACKEND_HTTP_OPTIONS"), []byte("  http-request set-header X-Tls yes if { ssl_fc }\n"), 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "README"), []byte("{not a template"), 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "HAPROXY_UNKNOWN"), []byte("{x"), 0o644))
		set, err := Load(dir)
		require.NoError(t, err)
		assert.Contains(t, set.Get("HAPROXY_BACKEND_HEAD"), "timeout server 1m")
		assert.Equal(t, Default().Get("HAPROXY_FRONTEND_HEAD"), set.Get("HAPROXY_FRONTEND_HEAD"))

		cfg, _ := lb.Build([]marathon.App{App("web", Group("external"), PortDefinitions(10000), Label("HAPROXY_0_MODE", "http"),
			Tasks(Task("10.0.0.1", 31000)))}, lb.Options{})
		out, err := set.Render(cfg)
		require.NoError(t, err)
		assert.Contains(t, string(out.Config), "  timeout server 1m\n")
		assert.Contains(t, string(out.Config), "X-Tls yes if { ssl_fc }")
	})
	t.Run("bad placeholder", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "HAPROXY_FRONTEND_HEAD"), []byte("frontend {backend}\n bind :{port}\n"), 0o644))
		_, err := Load(dir)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "HAPROXY_FRONTEND_HEAD")
		assert.Contains(t, err.Error(), "{port}")
	})
	t.Run("bad braces", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "HAPROXY_HTTPS_FRONTEND_ACL"), []byte("  use_backend {backend} if { ssl_fc_sni {hostname} }\n"), 0o644))
		_, err := Load(dir)
		require.Error(t, err)
	})
}

func TestHeadStatsPort(t *testing.T) {
	cfg, _ := lb.Build(nil, lb.Options{StatsPort: 9123})
	out, err := Default().Render(cfg)
	require.NoError(t, err)
	s := string(out.Config)
	assert.Contains(t, s, "bind :9123\n")
	assert.NotContains(t, s, "{statsPort}")
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		forbidden := slices.Contains([]string{"daemon", "maxconn", "chroot", "user", "group"}, f[0]) ||
			(f[0] == "stats" && len(f) > 1 && f[1] == "socket")
		assert.False(t, forbidden, "HAPROXY_HEAD must not need system setup or a fixed maxconn: %q", line)
	}
	assert.Contains(t, s, "stats uri /haproxy?stats")
	assert.Contains(t, s, "monitor-uri /_haproxy_health_check")
	assert.Contains(t, s, "backend "+AdminBackend+"\n  mode http\n")
	assert.NotContains(t, s, "server admin", "no admin server without AdminAddr")
	assert.Nil(t, out.Maps)
	assert.NotContains(t, s, "marathon_https_in", "no https frontend without certificates")
}

func TestRenderSkipsBadPerAppOverride(t *testing.T) {
	apps := []marathon.App{
		App("ok", Group("external"), PortDefinitions(10000), Tasks(Task("10.0.0.1", 31000))),
		App("bad", Group("external"), PortDefinitions(10001), Label("HAPROXY_0_FRONTEND_HEAD", "frontend {backend\n"),
			Tasks(Task("10.0.0.1", 31001))),
	}
	cfg, skipped := lb.Build(apps, lb.Options{})
	require.Empty(t, skipped)
	out, err := Default().Render(cfg)
	require.NoError(t, err)
	require.Len(t, out.Skipped, 1)
	assert.Equal(t, "/bad", out.Skipped[0].AppID)
	assert.Contains(t, out.Skipped[0].Reason, "HAPROXY_0_FRONTEND_HEAD")
	assert.Contains(t, string(out.Config), "backend ok_10000")
	assert.NotContains(t, string(out.Config), "bad_10001")
}

func TestRenderNilConfig(t *testing.T) {
	_, err := Default().Render(nil)
	require.Error(t, err)
}

func TestReadmeListsEveryTemplate(t *testing.T) {
	b, err := os.ReadFile("README.md")
	require.NoError(t, err)
	for _, n := range Names() {
		assert.Contains(t, string(b), "`"+n+"`", "README.md documents %s", n)
	}
}

func TestRenderRejectsBadOptions(t *testing.T) {
	for _, o := range []lb.Options{
		{AdminAddr: "127.0.0.1:1\n  server evil 1.2.3.4:1"},
		{SSLCerts: []string{"/a.pem crt /b.pem"}},
		{MapDir: "/etc/haproxy maps"},
		{StatsPort: 70000},
	} {
		cfg, _ := lb.Build(nil, o)
		_, err := Default().Render(cfg)
		assert.Error(t, err, "options %+v", o)
	}
}

// TestOverrideMissingNewline: an override that forgets its final newline
// (marathon-lb issue #482) must not glue server lines together.
func TestOverrideMissingNewline(t *testing.T) {
	apps := []marathon.App{App("web", Group("external"), PortDefinitions(10000),
		Label("HAPROXY_0_BACKEND_SERVER_OPTIONS", "  server {serverName} {host_ipv4}:{port}{cookieOptions}{healthCheckOptions}{otherOptions} maxconn 10"),
		Label("HAPROXY_0_BACKEND_SERVER_HTTP_HEALTHCHECK_OPTIONS", " check"),
		HealthCheck("HTTP", "/", 0, 5, 5, 1),
		Tasks(Task("10.0.0.1", 31000), Task("10.0.0.2", 31001)))}
	cfg, _ := lb.Build(apps, lb.Options{})
	out, err := Default().Render(cfg)
	require.NoError(t, err)
	assert.Contains(t, string(out.Config), "  server 10_0_0_1_31000 10.0.0.1:31000 check maxconn 10\n  server 10_0_0_2_31001 10.0.0.2:31001 check maxconn 10\n")
	haproxyCheck(t, out)
}

// Large configurations render on several goroutines; the result must be
// the same as rendering one service after the other (run with -race).
func TestRenderParallelMatchesSequential(t *testing.T) {
	prev := runtime.GOMAXPROCS(4)
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
	var apps []marathon.App
	for i := range 4*parallelRenderMin + 7 {
		opts := []AppOption{Group("external"), PortDefinitions(10000 + i), Tasks(Task("10.0.0.1", 31000+i), Task("10.0.0.2", 31000+i))}
		if i%3 == 0 {
			opts = append(opts, Label("HAPROXY_0_VHOST", fmt.Sprintf("app%d.example.com", i)))
		}
		if i%101 == 0 {
			opts = append(opts, Label("HAPROXY_0_FRONTEND_HEAD", "frontend {backend\n")) // skipped
		}
		apps = append(apps, App(fmt.Sprintf("app-%04d", i), opts...))
	}
	cfg, _ := lb.Build(apps, lb.Options{Groups: []string{"external"}})
	parallel, err := Default().Render(cfg)
	require.NoError(t, err)
	sequential, err := Default().render(cfg, map[string]bool{}) // records templates: one goroutine
	require.NoError(t, err)
	assert.Equal(t, string(sequential.Config), string(parallel.Config))
	assert.Equal(t, sequential.Skipped, parallel.Skipped)
	assert.Len(t, parallel.Skipped, 11)
}
