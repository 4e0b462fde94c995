package templates

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/lb"
	. "github.com/switchyard/switchyard/lb/lbtest"
	"github.com/switchyard/switchyard/marathon"
)

// These tests pin behaviour that marathon-lb's marathon_lb.py and config.py
// define (issue 7, "lb fidelity against marathon-lb"). The expected lines
// are worked out from marathon-lb's source, not recorded from our output.

// renderApps builds and renders apps with the default templates (or set).
func renderApps(t *testing.T, set *Set, opts lb.Options, apps ...marathon.App) (*Output, []lb.Skipped) {
	t.Helper()
	if set == nil {
		set = Default()
	}
	cfg, skipped := lb.Build(apps, opts)
	out, err := set.Render(cfg)
	require.NoError(t, err)
	return out, append(skipped, out.Skipped...)
}

// section returns the lines of the proxy section that starts with header
// ("frontend marathon_http_in"), up to the next blank line.
func section(cfg, header string) string {
	i := strings.Index(cfg, "\n"+header+"\n")
	if i < 0 {
		return ""
	}
	s := cfg[i+1:]
	if j := strings.Index(s, "\n\n"); j >= 0 {
		s = s[:j+1]
	}
	return s
}

var (
	aclDefRe  = regexp.MustCompile(`^\s*acl (\S+) (.*)$`)
	useBackRe = regexp.MustCompile(`^\s*use_backend (\S+) if (.*)$`)
)

// checkNamesDoNotCollide fails when, in any frontend of cfg, an ACL name is
// shared by rules of different backends: a host_/path_ ACL used by the
// use_backend lines of two backends, or an auth_ ACL that checks two
// userlists (HAProxy ORs every definition of an ACL name).
func checkNamesDoNotCollide(t *testing.T, cfg string) {
	t.Helper()
	frontends := 0
	for _, sec := range strings.Split(cfg, "\n\n") {
		if !strings.HasPrefix(strings.TrimLeft(sec, "\n"), "frontend ") {
			continue
		}
		userlists := map[string]map[string]bool{} // auth ACL -> userlists it checks
		owners := map[string]map[string]bool{}    // ACL -> backends whose rules use it
		for _, line := range strings.Split(sec, "\n") {
			if m := aclDefRe.FindStringSubmatch(line); m != nil && strings.HasPrefix(m[2], "http_auth(") {
				if userlists[m[1]] == nil {
					userlists[m[1]] = map[string]bool{}
				}
				userlists[m[1]][m[2]] = true
			}
			if m := useBackRe.FindStringSubmatch(line); m != nil {
				for _, w := range strings.Fields(m[2]) {
					w = strings.TrimPrefix(w, "!")
					if owners[w] == nil {
						owners[w] = map[string]bool{}
					}
					owners[w][m[1]] = true
				}
			}
		}
		for acl, uls := range userlists {
			assert.Len(t, uls, 1, "auth ACL %s checks several userlists (any of their users gets in):\n%s", acl, sec)
		}
		for acl, bes := range owners {
			if strings.HasPrefix(acl, "host_") || strings.HasPrefix(acl, "path_") {
				assert.Len(t, bes, 1, "ACL %s is shared by the rules of several backends:\n%s", acl, sec)
			}
		}
		frontends++
	}
	assert.Positive(t, frontends, "no frontend in the config")
}

// Item 1: two apps on one vhost, each with its own path and user. In
// marathon-lb the host and auth ACLs are named after the vhost *and* the
// app (acl_name = cleaned vhost + "_" + app id), so bob's password does not
// open alice's path.
func TestAuthACLIsPerAppOnSharedVhost(t *testing.T) {
	shop := func(id string, sp int, path, auth string) marathon.App {
		return web(id, sp, Labels("HAPROXY_0_VHOST", "shop.example.com", "HAPROXY_0_PATH", path, "HAPROXY_0_AUTH", auth))
	}
	opts := lb.Options{Groups: []string{"external"}, SSLCerts: certs}
	out, skipped := renderApps(t, nil, opts,
		shop("/a", 10000, "/a", "Shop:alice:$5$alicesalt$x"),
		shop("/b", 10001, "/b", "Shop:bob:$5$bobsalt$y"))
	require.Empty(t, skipped)
	cfg := string(out.Config)
	httpIn := section(cfg, "frontend marathon_http_in")
	// The ACL of /a checks /a's userlist only, and /a's auth request uses it.
	assert.Contains(t, httpIn, "  acl auth_shop_example_com_a_10000 http_auth(user_a_10000)\n")
	assert.Contains(t, httpIn, "  acl auth_shop_example_com_b_10001 http_auth(user_b_10001)\n")
	assert.Contains(t, httpIn, "if host_shop_example_com_a_10000 path_a_10000 !auth_shop_example_com_a_10000\n")
	httpsIn := section(cfg, "frontend marathon_https_in")
	assert.Contains(t, httpsIn, "  acl auth_shop_example_com_a_10000 http_auth(user_a_10000)\n")
	checkNamesDoNotCollide(t, cfg)
	haproxyCheck(t, out)
}

// Two ports of one app on one vhost: marathon-lb's vhost+app name would be
// shared by both ports (its ACLs would be ORed); lb adds the service port.
func TestAuthACLIsPerPortOfOneApp(t *testing.T) {
	app := App("shop", Group("external"), PortDefinitions(10000, 10001),
		Labels("HAPROXY_0_VHOST", "shop.example.com,www.shop.example.com", "HAPROXY_0_PATH", "/a", "HAPROXY_0_AUTH", "A:alice:$5$a$x",
			"HAPROXY_1_VHOST", "shop.example.com,api.shop.example.com", "HAPROXY_1_PATH", "/b", "HAPROXY_1_AUTH", "B:bob:$5$b$y"),
		Tasks(Task("10.0.0.1", 31000, 31001)))
	for _, opts := range []lb.Options{
		{Groups: []string{"external"}, SSLCerts: certs},
		{Groups: []string{"external"}, SSLCerts: certs, GroupHTTPSByVhost: true},
	} {
		out, skipped := renderApps(t, nil, opts, app)
		require.Empty(t, skipped)
		checkNamesDoNotCollide(t, string(out.Config))
		haproxyCheck(t, out)
	}
}

// Every golden configuration keeps ACL names apart.
func TestGoldenNamesDoNotCollide(t *testing.T) {
	for _, tc := range goldenCases() {
		cfg, _ := lb.Build(tc.apps, tc.opts)
		out, err := Default().Render(cfg)
		require.NoError(t, err)
		checkNamesDoNotCollide(t, string(out.Config))
	}
}

// Services whose generated names would clash are skipped with a reason
// instead of making HAProxy refuse the whole file.
func TestNameClashesSkipOnePort(t *testing.T) {
	t.Run("same backend name", func(t *testing.T) {
		// Two ports of one app bound on the same port number at two
		// addresses: both would be frontend/backend dup_8080.
		app := App("dup", Group("external"), PortDefinitions(10000, 10001),
			Labels("HAPROXY_0_PORT", "8080", "HAPROXY_1_PORT", "8080",
				"HAPROXY_0_BIND_ADDR", "127.0.0.1", "HAPROXY_1_BIND_ADDR", "127.0.0.2"),
			Tasks(Task("10.0.0.1", 31000, 31001)))
		out, skipped := renderApps(t, nil, lb.Options{Groups: []string{"external"}}, app)
		require.Len(t, skipped, 1)
		assert.Equal(t, "/dup", skipped[0].AppID)
		assert.Equal(t, 1, skipped[0].PortIndex)
		assert.Contains(t, skipped[0].Reason, "dup_8080")
		assert.Equal(t, 1, strings.Count(string(out.Config), "\nbackend dup_8080\n"))
		haproxyCheck(t, out)
	})
	t.Run("vhost proxy named like another proxy", func(t *testing.T) {
		// With --group-https-by-vhost each vhost gets a frontend and a
		// backend named after it; "marathon.http.in" would redefine
		// marathon_http_in, and "web-x_com" and "web-x.com" would share one.
		opts := lb.Options{Groups: []string{"external"}, SSLCerts: certs, GroupHTTPSByVhost: true}
		out, skipped := renderApps(t, nil, opts,
			web("/a", 10000, Label("HAPROXY_0_VHOST", "marathon.http.in")),
			web("/b", 10001, Label("HAPROXY_0_VHOST", "web-x.com")),
			web("/c", 10002, Label("HAPROXY_0_VHOST", "web-x_com")),
			web("/d", 10003, Label("HAPROXY_0_VHOST", "stats")))
		ids := []string{}
		for _, s := range skipped {
			ids = append(ids, s.AppID)
		}
		assert.ElementsMatch(t, []string{"/a", "/c", "/d"}, ids)
		assert.Contains(t, string(out.Config), "backend b_10001")
		haproxyCheck(t, out)
	})
}

// A deployment group name becomes the app id, hence the frontend and
// backend name: one that HAProxy cannot parse skips that app only.
func TestInvalidBackendNameSkipsPort(t *testing.T) {
	out, skipped := renderApps(t, nil, lb.Options{Groups: []string{"external"}},
		web("/x", 10001, Label("HAPROXY_DEPLOYMENT_GROUP", "x y")), web("/ok", 10002))
	require.Len(t, skipped, 1)
	assert.Equal(t, "/x y", skipped[0].AppID)
	assert.Contains(t, skipped[0].Reason, "not a valid HAProxy name")
	assert.Contains(t, string(out.Config), "backend ok_10002")
	haproxyCheck(t, out)
}

// The X-Marathon-App-Id ACL of /a/b and /a.b must not be one ACL.
func TestAppIDACLKeepsDots(t *testing.T) {
	http := Label("HAPROXY_0_MODE", "http")
	out, _ := renderApps(t, nil, lb.Options{Groups: []string{"external"}},
		web("/a/b", 10000, http), web("/a.b", 10001, http))
	appIn := section(string(out.Config), "frontend marathon_http_appid_in")
	assert.Contains(t, appIn, "  acl app__a_b hdr(x-marathon-app-id) -i /a/b\n")
	assert.Contains(t, appIn, "  acl app__a.b hdr(x-marathon-app-id) -i /a.b\n")
	haproxyCheck(t, out)

	// A deployment group may be named "a_b" (Marathon ids cannot hold
	// '_'): its ACL name would be /a/b's, so its http port is skipped.
	out, skipped := renderApps(t, nil, lb.Options{Groups: []string{"external"}},
		web("/a/b", 10000, http), web("/x", 10001, http, Label("HAPROXY_DEPLOYMENT_GROUP", "a_b")))
	require.Len(t, skipped, 1)
	assert.Equal(t, "/a_b", skipped[0].AppID)
	assert.Contains(t, skipped[0].Reason, "app__a_b")
	assert.Equal(t, 1, strings.Count(string(out.Config), "acl app__a_b "))
	haproxyCheck(t, out)
}

// Item 2: marathon-lb strips the server health-check fragments
// (HAPROXY_BACKEND_SERVER_{HTTP,TCP}_HEALTHCHECK_OPTIONS, file or label)
// and puts one space before a non-empty result, so an operator's file that
// ends in a newline stays on the server line.
func TestServerHealthCheckOptionsAreStripped(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644))
	}
	write("HAPROXY_BACKEND_SERVER_OPTIONS", "  server {serverName} {host_ipv4}:{port}{cookieOptions}{healthCheckOptions}{otherOptions} maxconn 100\n")
	write("HAPROXY_BACKEND_SERVER_HTTP_HEALTHCHECK_OPTIONS", "check inter {healthCheckIntervalSeconds}s fall {healthCheckFalls}\n")
	write("HAPROXY_BACKEND_SERVER_TCP_HEALTHCHECK_OPTIONS", "\n\t check inter {healthCheckIntervalSeconds}s  \n\n")
	set, err := Load(dir)
	require.NoError(t, err)

	hc := func(proto string) *lb.HealthCheck {
		return &lb.HealthCheck{Protocol: proto, Path: "/", IntervalSeconds: 10, TimeoutSeconds: 5, MaxConsecutiveFailures: 2}
	}
	servers := func() []lb.Server {
		return []lb.Server{
			{Name: "10_0_0_1_31000", ID: 1, Host: "10.0.0.1", IP: "10.0.0.1", Port: 31000, Draining: true},
			{Name: "10_0_0_2_31000", ID: 2, Host: "10.0.0.2", IP: "10.0.0.2", Port: 31000},
		}
	}
	svc := func(id string, sp int, mode string, h *lb.HealthCheck) lb.Service {
		return lb.Service{AppID: "/" + id, ServicePort: sp, Backend: id + "_" + itoa(sp), Mode: mode, Balance: "roundrobin",
			BindAddr: "*", HealthCheck: h, HealthCheckPortIndex: -1, Servers: servers()}
	}
	empty := svc("empty", 10003, lb.ModeHTTP, hc("HTTP"))
	empty.Templates = map[string]string{"HAPROXY_BACKEND_SERVER_HTTP_HEALTHCHECK_OPTIONS": " \n"}
	label := svc("label", 10004, lb.ModeHTTP, hc("HTTP"))
	label.Templates = map[string]string{"HAPROXY_BACKEND_SERVER_HTTP_HEALTHCHECK_OPTIONS": "check port 8080\n"}
	cfg := &lb.Config{Options: lb.Options{Groups: []string{"external"}}, Services: []lb.Service{
		svc("blue", 10001, lb.ModeHTTP, hc("HTTP")),
		svc("db", 10002, lb.ModeTCP, hc("TCP")),
		empty, label,
	}}
	out, err := set.Render(cfg)
	require.NoError(t, err)
	require.Empty(t, out.Skipped)
	s := string(out.Config)
	assert.Contains(t, s, "\n  server 10_0_0_1_31000 10.0.0.1:31000 check inter 10s fall 3 disabled maxconn 100\n"+
		"  server 10_0_0_2_31000 10.0.0.2:31000 check inter 10s fall 3 maxconn 100\n")
	assert.Contains(t, s, "\n  server 10_0_0_1_31000 10.0.0.1:31000 check inter 10s disabled maxconn 100\n")
	assert.Contains(t, s, "\n  server 10_0_0_1_31000 10.0.0.1:31000 disabled maxconn 100\n")
	assert.Contains(t, s, "\n  server 10_0_0_2_31000 10.0.0.2:31000 check port 8080 maxconn 100\n")
	assert.NotRegexp(t, `(?m)^\s*disabled`, s, "no backend-level disabled")
	haproxyCheck(t, out)
}

// An inline fragment with a line break inside (after stripping) can only
// split the server line: a file is rejected, a label skips its port.
func TestServerHealthCheckOptionsOnOneLine(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "HAPROXY_BACKEND_SERVER_HTTP_HEALTHCHECK_OPTIONS"), []byte(" check\n  disabled\n"), 0o644))
	_, err := Load(dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "HAPROXY_BACKEND_SERVER_HTTP_HEALTHCHECK_OPTIONS")

	_, skipped := renderApps(t, nil, lb.Options{Groups: []string{"external"}},
		web("/web", 10000, HealthCheck("HTTP", "/", 0, 10, 5, 2),
			Label("HAPROXY_0_BACKEND_SERVER_HTTP_HEALTHCHECK_OPTIONS", "check\nmaxconn 1")))
	require.Len(t, skipped, 1)
	assert.Contains(t, skipped[0].Reason, "HAPROXY_0_BACKEND_SERVER_HTTP_HEALTHCHECK_OPTIONS")
}

// Item 5: for several vhosts with a path and auth, marathon-lb fills
// marathon_https_in with HAPROXY_HTTPS_FRONTEND_ACL_ONLY_WITH_PATH and, per
// vhost, HAPROXY_HTTPS_FRONTEND_ACL_WITH_AUTH_AND_PATH (with auth and no
// path: HAPROXY_HTTPS_FRONTEND_ACL_WITH_AUTH per vhost). It never uses
// HAPROXY_HTTPS_FRONTEND_ROUTING_ONLY_WITH_PATH_AND_AUTH, whose marathon-lb
// text refers to the host_ ACL of marathon_http_in: an operator's template
// directory holding that text must still give a valid file.
func TestMultiVhostAuthHTTPSTemplates(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644))
	}
	// As in marathon-lb's defaults: these refer to host_ ACLs that only
	// marathon_http_in defines.
	write("HAPROXY_HTTPS_FRONTEND_ROUTING_ONLY_WITH_PATH_AND_AUTH",
		"  http-request auth realm \"{realm}\" if host_{cleanedUpHostname} path_{backend} !auth_{cleanedUpHostname}\n"+
			"  use_backend {backend} if host_{cleanedUpHostname} path_{backend}\n")
	write("HAPROXY_HTTPS_FRONTEND_AUTH_REQUEST_ONLY", "  http-request deny # AUTH_REQUEST_ONLY {hostname}\n")
	write("HAPROXY_HTTPS_FRONTEND_AUTH_ACL_ONLY", "  # AUTH_ACL_ONLY {hostname}\n")
	set, err := Load(dir)
	require.NoError(t, err)
	opts := lb.Options{Groups: []string{"external"}, SSLCerts: certs}
	out, skipped := renderApps(t, set, opts,
		web("/mp", 10000, Labels("HAPROXY_0_VHOST", "p.example.com,q.example.com", "HAPROXY_0_PATH", "/p", "HAPROXY_0_AUTH", "MP:user:$5$a$b")),
		web("/ma", 10001, Labels("HAPROXY_0_VHOST", "x.example.com,y.example.com", "HAPROXY_0_AUTH", "MA:user:$5$a$b")))
	require.Empty(t, skipped)
	httpsIn := section(string(out.Config), "frontend marathon_https_in")
	assert.NotContains(t, httpsIn, "host_")
	assert.NotContains(t, httpsIn, "AUTH_REQUEST_ONLY")
	assert.NotContains(t, httpsIn, "AUTH_ACL_ONLY")
	want := "  acl path_mp_10000 path_beg /p\n" +
		"  acl auth_p_example_com_mp_10000 http_auth(user_mp_10000)\n" +
		"  http-request auth realm \"MP\" if { ssl_fc_sni p.example.com } path_mp_10000 !auth_p_example_com_mp_10000\n" +
		"  use_backend mp_10000 if { ssl_fc_sni p.example.com } path_mp_10000\n" +
		"  acl auth_p_example_com_mp_10000 http_auth(user_mp_10000)\n" +
		"  http-request auth realm \"MP\" if { ssl_fc_sni q.example.com } path_mp_10000 !auth_p_example_com_mp_10000\n" +
		"  use_backend mp_10000 if { ssl_fc_sni q.example.com } path_mp_10000\n"
	assert.Contains(t, httpsIn, want)
	want = "  acl auth_x_example_com_ma_10001 http_auth(user_ma_10001)\n" +
		"  http-request auth realm \"MA\" if { ssl_fc_sni x.example.com } !auth_x_example_com_ma_10001\n" +
		"  use_backend ma_10001 if { ssl_fc_sni x.example.com }\n" +
		"  acl auth_x_example_com_ma_10001 http_auth(user_ma_10001)\n" +
		"  http-request auth realm \"MA\" if { ssl_fc_sni y.example.com } !auth_x_example_com_ma_10001\n" +
		"  use_backend ma_10001 if { ssl_fc_sni y.example.com }\n"
	assert.Contains(t, httpsIn, want)
	haproxyCheck(t, out)
}

// Item 6: marathon-lb's cookie options are " check cookie <10 hex chars of
// sha1(server name)>", so sticky servers keep a health check.
func TestStickyServersAreChecked(t *testing.T) {
	out, _ := renderApps(t, nil, lb.Options{Groups: []string{"external"}},
		web("/shop", 10003, Labels("HAPROXY_0_STICKY", "true", "HAPROXY_0_MODE", "http")))
	s := string(out.Config)
	assert.Contains(t, s, "  server 10_0_0_1_31001 10.0.0.1:31001 id 26814 check cookie 5618f9873c\n")
	assert.Contains(t, s, "  server 10_0_0_2_31002 10.0.0.2:31002 id 6390 check cookie f63184a495\n")
	haproxyCheck(t, out)
}

// Item 7: marathon-lb visits apps sorted by (app id, service port) and then
// sorts the vhost rules by weight only (a stable sort), so equal-weight
// rules keep app id order: /shop before /shop-api, although backend
// shop-api_10001 sorts before shop_10000, and whether or not a rule has a
// path.
func TestEqualWeightRulesFollowAppIDOrder(t *testing.T) {
	opts := lb.Options{Groups: []string{"external"}, SSLCerts: certs}
	for _, shopPath := range []string{"", "/"} {
		shopLabels := []string{"HAPROXY_0_VHOST", "shop.example.com"}
		if shopPath != "" {
			shopLabels = append(shopLabels, "HAPROXY_0_PATH", shopPath)
		}
		out, _ := renderApps(t, nil, opts,
			web("/shop-api", 10001, Labels("HAPROXY_0_VHOST", "shop.example.com", "HAPROXY_0_PATH", "/api")),
			web("/shop", 10000, Labels(shopLabels...)),
			web("/z-heavy", 10002, Labels("HAPROXY_0_VHOST", "shop.example.com", "HAPROXY_0_PATH", "/api/v2", "HAPROXY_0_BACKEND_WEIGHT", "5")))
		cfg := string(out.Config)
		for _, fe := range []string{"frontend marathon_http_in", "frontend marathon_https_in"} {
			sec := section(cfg, fe)
			heavy := strings.Index(sec, "use_backend z-heavy_10002")
			shop := strings.Index(sec, "use_backend shop_10000")
			api := strings.Index(sec, "use_backend shop-api_10001")
			require.True(t, heavy >= 0 && shop >= 0 && api >= 0, sec)
			assert.Less(t, heavy, shop, "higher weight first (%s, path %q)", fe, shopPath)
			assert.Less(t, shop, api, "/shop before /shop-api (%s, path %q)", fe, shopPath)
		}
		haproxyCheck(t, out)
	}
}

// Item 11: marathon-lb puts HAPROXY_{n}_HTTP_BACKEND_PROXYPASS_PATH into
// the rewrite as it is, so "/test/" strips "/test/" (and leaves /testing
// alone).
func TestProxyPassPathKeepsTrailingSlash(t *testing.T) {
	out, skipped := renderApps(t, nil, lb.Options{Groups: []string{"external"}},
		web("/pp", 10000, Labels("HAPROXY_0_VHOST", "pp.example.com", "HAPROXY_0_HTTP_BACKEND_PROXYPASS_PATH", "/test/")))
	require.Empty(t, skipped)
	assert.Contains(t, string(out.Config), "  http-request replace-path ^/test//?(.*)$ /\\1\n")
	haproxyCheck(t, out)
}

// PROXYPASS and REVPROXY glue use the vhost; without one the port is
// skipped with a reason (marathon-lb would write "Host None").
func TestProxyPassWithoutVhostSkipsPort(t *testing.T) {
	for _, label := range []string{"HAPROXY_0_HTTP_BACKEND_PROXYPASS_PATH", "HAPROXY_0_HTTP_BACKEND_REVPROXY_PATH"} {
		out, skipped := renderApps(t, nil, lb.Options{Groups: []string{"external"}},
			web("/novhost", 10000, Labels("HAPROXY_0_MODE", "http", label, "/x")),
			web("/tcp", 10001, Labels(label, "/x")), // tcp mode: glue unused, as in marathon-lb
			web("/ok", 10002))
		require.Len(t, skipped, 1, label)
		assert.Equal(t, "/novhost", skipped[0].AppID)
		assert.Equal(t, 0, skipped[0].PortIndex)
		assert.False(t, skipped[0].Filtered)
		assert.Contains(t, skipped[0].Reason, label)
		assert.Contains(t, skipped[0].Reason, "HAPROXY_0_VHOST")
		s := string(out.Config)
		assert.NotContains(t, s, "novhost_10000")
		assert.Contains(t, s, "backend tcp_10001")
		assert.NotContains(t, s, "set-header Host \n")
		haproxyCheck(t, out)
	}
}
