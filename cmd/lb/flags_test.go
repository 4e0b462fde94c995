package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/cmd/internal/cliutil"
	"github.com/switchyard/switchyard/lb"
	"github.com/switchyard/switchyard/templates"
)

// parse runs the command line with a serve function that only captures
// the settings.
func parse(t *testing.T, env map[string]string, args ...string) (*settings, string, error) {
	t.Helper()
	var got *settings
	var stdout, stderr bytes.Buffer
	app := newApp(&stdout, &stderr, func(k string) string { return env[k] },
		func(ctx context.Context, s *settings, _, _ io.Writer) error {
			got = s
			return nil
		})
	err := app.RunContext(t.Context(), normalizeArgs(append([]string{"lb"}, args...)))
	return got, stdout.String(), err
}

func defaults() *settings {
	return &settings{
		pollInterval:     60 * time.Second,
		marathon:         []string{"http://master.mesos:8080"},
		groups:           []string{"external"},
		haproxyConfig:    "/etc/haproxy/haproxy.cfg",
		haproxyBinary:    "haproxy",
		maxReloadRetries: 10,
		reloadInterval:   10 * time.Second,
		sslCerts:         []string{"/etc/ssl/cert.pem"},
		minServPort:      10050,
		maxServPort:      10100,
		syslogSocket:     "/dev/log",
		hostCacheSize:    1000,
		maxBackoff:       30 * time.Second,
		logFormat:        "text",
		logLevel:         "INFO",
		statsPort:        9090,
	}
}

func TestParseSettings(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want func(s *settings)
	}{
		{name: "defaults", args: []string{"sse"}, want: func(s *settings) {}},
		{name: "no subcommand is the event stream", args: []string{"--group", "web"}, want: func(s *settings) {
			s.groups = []string{"web"}
		}},
		{name: "poll", args: []string{"poll", "--poll-interval", "5"}, want: func(s *settings) {
			s.poll, s.pollInterval = true, 5*time.Second
		}},
		{name: "issue 2 command line", args: []string{"sse", "--marathon", "http://127.0.0.1:8080", "--group", "webapps01", "--haproxy-config", "/tmp/x/haproxy.cfg"},
			want: func(s *settings) {
				s.marathon, s.groups, s.haproxyConfig = []string{"http://127.0.0.1:8080"}, []string{"webapps01"}, "/tmp/x/haproxy.cfg"
			}},
		{name: "marathon nargs like argparse", args: []string{"sse", "--marathon", "http://m1:8080", "http://m2:8080", "--group", "a", "--group", "b"},
			want: func(s *settings) {
				s.marathon, s.groups = []string{"http://m1:8080", "http://m2:8080"}, []string{"a", "b"}
			}},
		{name: "marathon repeated short, comma and space separated", args: []string{"sse", "-m", "http://m1:8080,http://m2:8080", "-m", "http://m3:8080 http://m4:8080"},
			want: func(s *settings) {
				s.marathon = []string{"http://m1:8080", "http://m2:8080", "http://m3:8080", "http://m4:8080"}
			}},
		{name: "flags before the subcommand", args: []string{"--group", "g1", "-H", "sse", "--haproxy-config", "/x.cfg"},
			want: func(s *settings) { s.groups, s.healthCheck, s.haproxyConfig = []string{"g1"}, true, "/x.cfg" }},
		{name: "all groups", args: []string{"sse", "--group", "*"}, want: func(s *settings) { s.groups = []string{"*"} }},
		{name: "templates from the Marathon task sandbox", env: map[string]string{"MESOS_SANDBOX": "/mnt/mesos/sandbox"}, args: []string{"sse"},
			want: func(s *settings) { s.sandboxTemplates = "/mnt/mesos/sandbox/templates" }},
		{name: "--templates-dir wins over the sandbox", env: map[string]string{"MESOS_SANDBOX": "/mnt/mesos/sandbox"},
			args: []string{"sse", "--templates-dir", "/t"}, want: func(s *settings) { s.templatesDir = "/t" }},
		{name: "PORTS sets the stats port", env: map[string]string{"PORTS": "9191,9192"}, args: []string{"sse"},
			want: func(s *settings) { s.statsPort = 9191 }},
		{name: "--stats-port", args: []string{"sse", "--stats-port", "9300"}, want: func(s *settings) { s.statsPort = 9300 }},
		{name: "--stats-port wins over PORTS", env: map[string]string{"PORTS": "9191"}, args: []string{"--stats-port", "9300", "sse"},
			want: func(s *settings) { s.statsPort = 9300 }},
		{name: "self-signed certificate from the image's environment", env: map[string]string{"SWITCHYARD_SELF_SIGNED_CERT": "true"},
			args: []string{"sse"}, want: func(s *settings) { s.selfSignedCert = true }},
		{name: "certificate from the environment, as marathon-lb's image", env: map[string]string{"HAPROXY_SSL_CERT": `A\nB`},
			args: []string{"sse"}, want: func(s *settings) {
				s.envCerts = []envCert{{variable: "HAPROXY_SSL_CERT", path: "/etc/ssl/cert.pem", pem: "A\nB"}}
			}},
		{name: "numbered certificates from the environment and --ssl-certs",
			env:  map[string]string{"HAPROXY_SSL_CERT": "A", "HAPROXY_SSL_CERT0": "B", "HAPROXY_SSL_CERT100": "C", "HAPROXY_SSL_CERT101": "D"},
			args: []string{"sse", "--ssl-certs", "/a.pem"}, want: func(s *settings) {
				s.sslCerts, s.sslCertsSet = []string{"/a.pem", "/etc/ssl/cert.pem", "/etc/ssl/cert0.pem", "/etc/ssl/cert100.pem"}, true
				s.envCerts = []envCert{
					{variable: "HAPROXY_SSL_CERT", path: "/etc/ssl/cert.pem", pem: "A"},
					{variable: "HAPROXY_SSL_CERT0", path: "/etc/ssl/cert0.pem", pem: "B"},
					{variable: "HAPROXY_SSL_CERT100", path: "/etc/ssl/cert100.pem", pem: "C"},
				}
			}},
		{name: "numbered certificate without HAPROXY_SSL_CERT is not read, as in the image", env: map[string]string{"HAPROXY_SSL_CERT0": "B"},
			args: []string{"sse"}, want: func(s *settings) {}},
		{name: "marathon under a path prefix", args: []string{"sse", "--marathon", "https://leader.mesos/marathon/"},
			want: func(s *settings) { s.marathon = []string{"https://leader.mesos/marathon/"} }},
		{name: "log level in any case", args: []string{"sse", "--log-level", "Warning"}, want: func(s *settings) { s.logLevel = "Warning" }},
		{name: "booleans and short forms", args: []string{"sse", "-H", "--strict-mode", "--dont-bind-http-https", "--haproxy-map",
			"--group-https-by-vhost", "--skip-validation", "-d", "-c", "systemctl reload haproxy"},
			want: func(s *settings) {
				s.healthCheck, s.strictMode, s.dontBindHTTPHTTPS, s.haproxyMap = true, true, true, true
				s.groupHTTPSByVhost, s.skipValidation, s.dry, s.command = true, true, true, "systemctl reload haproxy"
			}},
		{name: "values", args: []string{"sse", "--ssl-certs", "/a.pem,/b.pem", "--min-serv-port-ip-per-task", "20000",
			"--max-serv-port-ip-per-task", "20010", "--reload-interval", "3", "--max-reload-retries", "-1",
			"--log-level", "debug", "--log-format", "json", "--syslog-socket", "/dev/null", "--templates-dir", "/t",
			"--auth-credentials", "u:p", "--marathon-auth-credential-file", "/f", "--marathon-ca-cert", "/ca.pem",
			"--haproxy-binary", "/usr/sbin/haproxy"},
			want: func(s *settings) {
				s.sslCerts, s.sslCertsSet = []string{"/a.pem", "/b.pem"}, true
				s.minServPort, s.maxServPort = 20000, 20010
				s.reloadInterval, s.maxReloadRetries = 3*time.Second, -1
				s.logLevel, s.logFormat, s.syslogSocket, s.syslogSocketSet = "debug", "json", "/dev/null", true
				s.templatesDir, s.authCredentials, s.credentialFile, s.caCert = "/t", "u:p", "/f", "/ca.pem"
				s.haproxyBinary = "/usr/sbin/haproxy"
			}},
		{name: "marathon-lb flags without effect are accepted", args: []string{"sse", "--sse", "--archive-versions", "3",
			"--lru-cache-capacity", "10", "--max-backoff", "9", "--skip-config-cleanup", "--dcos-auth-credentials", "x"},
			want: func(s *settings) {
				s.hostCacheSize, s.maxBackoff = 10, 9*time.Second
				s.ignoredFlagsPresent = []string{"sse", "archive-versions", "skip-config-cleanup", "dcos-auth-credentials"}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := parse(t, tc.env, tc.args...)
			require.NoError(t, err, "args %q", tc.args)
			want := defaults()
			tc.want(want)
			assert.Equal(t, want, got, "args %q", tc.args)
		})
	}
}

func TestParseSettingsErrors(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{name: "bad PORTS", env: map[string]string{"PORTS": "abc"}, args: []string{"sse"}, want: "PORTS"},
		{name: "stray argument", args: []string{"sse", "--group", "a", "oops"}, want: "unexpected argument"},
		{name: "bad log level", args: []string{"sse", "--log-level", "loud"}, want: "--log-level"},
		{name: "bad port range", args: []string{"sse", "--min-serv-port-ip-per-task", "200", "--max-serv-port-ip-per-task", "100"}, want: "serv-port"},
		{name: "unknown flag", args: []string{"sse", "--no-such-flag"}, want: "no-such-flag"},
		{name: "zero poll interval", args: []string{"poll", "--poll-interval", "0"}, want: "--poll-interval"},
		{name: "bad SWITCHYARD_SELF_SIGNED_CERT", env: map[string]string{"SWITCHYARD_SELF_SIGNED_CERT": "yes please"}, args: []string{"sse"}, want: "SWITCHYARD_SELF_SIGNED_CERT"},
		{name: "bad stats port", args: []string{"sse", "--stats-port", "70000"}, want: "--stats-port 70000"},
		{name: "marathon URL ending in /v2", args: []string{"sse", "--marathon", "http://m:8080/v2"},
			want: `--marathon "http://m:8080/v2" ends in /v2: give Marathon's base URL, http://m:8080 (`},
		{name: "marathon URL ending in /v2/ under a prefix", args: []string{"sse", "--marathon", "http://u:secret@dcos/marathon/v2/"},
			want: `--marathon "http://u:xxxxx@dcos/marathon/v2/" ends in /v2: give Marathon's base URL, http://u:xxxxx@dcos/marathon (`},
		{name: "marathon URL without scheme", args: []string{"sse", "--marathon", "m:8080"}, want: `--marathon "m:8080": want http(s)://host[:port]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := parse(t, tc.env, tc.args...)
			require.Error(t, err, "args %q", tc.args)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestLonghelp(t *testing.T) {
	for _, args := range [][]string{{"--longhelp"}, {"sse", "--longhelp"}, {"--longhelp", "poll"}} {
		got, out, err := parse(t, nil, args...)
		require.NoError(t, err)
		assert.Nil(t, got, "--longhelp does not start the LB")
		names := templates.Names()
		require.NotEmpty(t, names)
		for _, n := range names {
			assert.Contains(t, out, "### "+n+"\n", "template %s listed with %q", n, args)
		}
		for _, l := range lb.Labels() {
			assert.Contains(t, out, "- "+l.Name+": ", "label %s listed", l.Name)
		}
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"-v"}} {
		got, out, err := parse(t, nil, args...)
		require.NoError(t, err)
		assert.Nil(t, got, "--version does not start the LB")
		assert.Equal(t, "lb version "+cliutil.Version()+"\n", out)
	}
}

func TestHelpNamesStatsPortAndPORTS(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"sse", "--help"}} {
		_, out, err := parse(t, nil, args...)
		require.NoError(t, err)
		assert.Contains(t, out, "--stats-port value")
		assert.Contains(t, out, "PORTS")
		assert.Contains(t, out, "--self-signed-cert")
	}
}

func TestRunExitCode(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"lb", "sse", "--bogus"}, &stdout, &stderr, func(string) string { return "" })
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr.String(), "bogus")
}

func TestControllerConfig(t *testing.T) {
	dir := t.TempDir()
	cert := filepath.Join(dir, "site.pem")
	require.NoError(t, os.WriteFile(cert, []byte("x"), 0o600))
	s := defaults()
	s.sslCerts = []string{cert, filepath.Join(dir, "missing.pem")}
	s.haproxyConfig = filepath.Join(dir, "haproxy.cfg")
	s.groups = []string{"webapps01"}
	s.healthCheck = true
	s.authCredentials = "user:secret"
	var logs bytes.Buffer
	cfg, err := controllerConfig(s, slog.New(slog.NewTextHandler(&logs, nil)), prometheus.NewRegistry())
	require.NoError(t, err)
	assert.Equal(t, lb.Options{
		Groups: []string{"webapps01"}, HealthCheck: true, SSLCerts: []string{cert},
		MinServPortIPPerTask: 10050, MaxServPortIPPerTask: 10100, StatsPort: 9090, MapDir: dir,
	}, cfg.Options)
	assert.Equal(t, []string{cert}, cfg.WatchFiles)
	assert.Equal(t, s.haproxyConfig, cfg.ConfigPath)
	assert.Equal(t, 10, cfg.MaxReloadRetries)
	assert.Contains(t, logs.String(), "missing.pem", "a missing certificate is logged")
	assert.NotNil(t, cfg.Marathon)

	s.authCredentials = "no-colon"
	_, err = controllerConfig(s, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--auth-credentials")
	assert.NotContains(t, err.Error(), "no-colon", "secrets are not echoed")
}

func TestNewLogger(t *testing.T) {
	var buf bytes.Buffer
	s := defaults()
	s.logFormat, s.logLevel, s.syslogSocket = "json", "WARNING", "/dev/null"
	log, closeFn, err := newLogger(s, &buf)
	require.NoError(t, err)
	defer closeFn()
	log.Info("hidden")
	log.Warn("shown")
	assert.NotContains(t, buf.String(), "hidden")
	assert.True(t, strings.HasPrefix(buf.String(), `{"time":`), "json output: %s", buf.String())
}

func TestTemplatesDir(t *testing.T) {
	sandbox := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(sandbox, "templates"), 0o755))
	tests := []struct {
		name string
		s    settings
		want string
	}{
		{name: "flag", s: settings{templatesDir: "/t"}, want: "/t"},
		{name: "sandbox templates dir exists", s: settings{sandboxTemplates: filepath.Join(sandbox, "templates")}, want: filepath.Join(sandbox, "templates")},
		{name: "sandbox without templates", s: settings{sandboxTemplates: filepath.Join(sandbox, "missing")}, want: ""},
		{name: "neither", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, templatesDir(&tt.s, slog.New(slog.DiscardHandler)))
		})
	}
}

func TestAdminAllowFlag(t *testing.T) {
	parse := func(args ...string) (*settings, error) {
		var got *settings
		app := newApp(io.Discard, io.Discard, func(string) string { return "" }, func(_ context.Context, s *settings, _, _ io.Writer) error {
			got = s
			return nil
		})
		err := app.Run(normalizeArgs(append([]string{"lb", "sse", "--group", "external"}, args...)))
		return got, err
	}
	s, err := parse("--admin-allow", "10.0.0.0/8, 192.0.2.1", "--admin-allow", "2001:db8::/32")
	require.NoError(t, err)
	assert.Equal(t, []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("2001:db8::/32"),
	}, s.adminAllow)
	s, err = parse()
	require.NoError(t, err)
	assert.Empty(t, s.adminAllow, "default: everyone, as marathon-lb")
	_, err = parse("--admin-allow", "10.0.0.0/33")
	assert.ErrorContains(t, err, "--admin-allow")
}
