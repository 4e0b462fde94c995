package templates

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/lb"
	. "github.com/switchyard/switchyard/lb/lbtest"
	"github.com/switchyard/switchyard/marathon"
)

var update = flag.Bool("update", false, "rewrite golden files")

type goldenCase struct {
	name string
	apps []marathon.App
	opts lb.Options
}

var (
	certs     = []string{goldenCertDir + "/cert.pem"}
	twoCerts  = []string{goldenCertDir + "/cert.pem", goldenCertDir + "/other.pem"}
	adminAddr = "127.0.0.1:9095"
)

// web is a typical BRIDGE app with two tasks, in group "external".
func web(id string, sp int, opts ...AppOption) marathon.App {
	base := []AppOption{Group("external"), Bridge(80, sp),
		Tasks(Task("10.0.0.1", 31001), Task("10.0.0.2", 31002))}
	return App(id, append(base, opts...)...)
}

func goldenCases() []goldenCase {
	ext := lb.Options{Groups: []string{"external"}, AdminAddr: adminAddr, MapDir: goldenMapDir}
	with := func(f func(o *lb.Options)) lb.Options {
		o := ext
		f(&o)
		return o
	}
	return []goldenCase{
		{name: "empty", opts: ext},
		{name: "walkthrough_webapps01", opts: lb.Options{Groups: []string{"webapps01"}, StatsPort: 9090},
			apps: []marathon.App{
				App("apache-nfs-lb-01", Group("webapps01"), Label("HAPROXY_0_VHOST", "server-26.virtualstack2.gatuvelus.home"),
					Bridge(80, 10240), Tasks(Task("192.168.150.24", 31245), Task("192.168.150.26", 31876))),
				App("apache-nfs-lb-02", Group("webapps01"), Label("HAPROXY_0_VHOST", "server-24.virtualstack2.gatuvelus.home"),
					Bridge(80, 10241), Tasks(Task("192.168.150.26", 31022), Task("192.168.150.24", 31390))),
				App("apache-simple-01", Bridge(80, 10000), Tasks(Task("192.168.150.24", 80))),
			}},
		{name: "walkthrough_mywebservernew", opts: with(func(o *lb.Options) { o.DontBindHTTPHTTPS = true }),
			apps: []marathon.App{
				App("mywebservernew", Group("external"), Bridge(80, 10004), HealthCheck("HTTP", "/", 0, 20, 20, 3),
					Tasks(Task("192.168.2.16", 31677), Task("192.168.2.17", 31080), Task("192.168.2.18", 31991))),
			}},
		{name: "tcp_mode", opts: ext, apps: []marathon.App{
			App("db/mariadb", Group("external"), PortDefinitions(3306), Tasks(Task("10.0.0.5", 31306))),
		}},
		{name: "vhost_multi", opts: ext, apps: []marathon.App{
			web("/site", 10001, Label("HAPROXY_0_VHOST", "www.example.com, example.com,example.org")),
		}},
		{name: "vhost_path", opts: ext, apps: []marathon.App{
			web("/api", 10002, Labels("HAPROXY_0_VHOST", "example.com", "HAPROXY_0_PATH", "/api")),
			web("/site", 10001, Label("HAPROXY_0_VHOST", "example.com")),
		}},
		{name: "vhost_multi_path", opts: with(func(o *lb.Options) { o.SSLCerts = certs }), apps: []marathon.App{
			web("/api", 10002, Labels("HAPROXY_0_VHOST", "a.example.com,b.example.com", "HAPROXY_0_PATH", "/api /v2")),
		}},
		{name: "vhost_path_ignore_case", opts: with(func(o *lb.Options) { o.SSLCerts = certs }), apps: []marathon.App{
			web("/api", 10002, Labels("HAPROXY_0_VHOST", "Mixed.Example.COM", "HAPROXY_0_PATH", "-i /multiple /paths")),
		}},
		{name: "sticky_balance", opts: ext, apps: []marathon.App{
			web("/shop", 10003, Labels("HAPROXY_0_STICKY", "true", "HAPROXY_0_BALANCE", "leastconn", "HAPROXY_0_MODE", "http")),
		}},
		{name: "redirect_to_https", opts: with(func(o *lb.Options) { o.SSLCerts = certs }), apps: []marathon.App{
			web("/secure", 10005, Labels("HAPROXY_0_VHOST", "secure.example.com", "HAPROXY_0_REDIRECT_TO_HTTPS", "true")),
			web("/secure-path", 10006, Labels("HAPROXY_0_VHOST", "sp.example.com", "HAPROXY_0_PATH", "/app", "HAPROXY_0_REDIRECT_TO_HTTPS", "true")),
			web("/secure-multi", 10007, Labels("HAPROXY_0_VHOST", "m1.example.com,m2.example.com", "HAPROXY_0_REDIRECT_TO_HTTPS", "true")),
		}},
		{name: "ssl_certs", opts: with(func(o *lb.Options) { o.SSLCerts = twoCerts }), apps: []marathon.App{
			web("/one", 10010, Label("HAPROXY_0_VHOST", "one.example.com")),
			web("/two", 10011, Label("HAPROXY_0_VHOST", "two.example.com,deux.example.com")),
		}},
		{name: "auth", opts: with(func(o *lb.Options) { o.SSLCerts = certs }), apps: []marathon.App{
			web("/private", 10012, Labels("HAPROXY_0_VHOST", "private.example.com",
				"HAPROXY_0_AUTH", "Private Area:admin:$6$salt$hashedpassword")),
			web("/private-path", 10013, Labels("HAPROXY_0_VHOST", "pp.example.com", "HAPROXY_0_PATH", "/admin",
				"HAPROXY_0_AUTH", "Admin:root:$5$abc$def")),
			web("/private-multi", 10014, Labels("HAPROXY_0_VHOST", "x.example.com,y.example.com",
				"HAPROXY_0_AUTH", "Multi:user:$1$x$y")),
			web("/private-multi-path", 10015, Labels("HAPROXY_0_VHOST", "p.example.com,q.example.com", "HAPROXY_0_PATH", "/p",
				"HAPROXY_0_AUTH", "MP:user:$1$x$y")),
		}},
		{name: "bind_addr_options_ssl", opts: ext, apps: []marathon.App{
			web("/bound", 10020, Labels("HAPROXY_0_BIND_ADDR", "127.0.0.1", "HAPROXY_0_BIND_OPTIONS", "maxconn 100",
				"HAPROXY_0_SSL_CERT", goldenCertDir+"/app.pem", "HAPROXY_0_MODE", "http")),
		}},
		{name: "proxypass_revproxy_redir", opts: ext, apps: []marathon.App{
			web("/legacy", 10021, Labels("HAPROXY_0_VHOST", "legacy.example.com",
				"HAPROXY_0_HTTP_BACKEND_PROXYPASS_PATH", "/legacy/",
				"HAPROXY_0_HTTP_BACKEND_REVPROXY_PATH", "/legacy",
				"HAPROXY_0_HTTP_BACKEND_REDIR", "/home")),
		}},
		{name: "backend_weight", opts: ext, apps: []marathon.App{
			web("/catchall", 10030, Labels("HAPROXY_0_VHOST", "shop.example.com")),
			web("/checkout", 10031, Labels("HAPROXY_0_VHOST", "shop.example.com", "HAPROXY_0_PATH", "/checkout",
				"HAPROXY_0_BACKEND_WEIGHT", "10")),
		}},
		{name: "multi_port", opts: ext, apps: []marathon.App{
			App("multi", Group("external"), PortDefinitions(10040, 10041, 10042),
				Labels("HAPROXY_0_VHOST", "multi.example.com", "HAPROXY_1_MODE", "http", "HAPROXY_2_PORT", "10142"),
				HealthCheck("HTTP", "/health", 0, 10, 5, 2), HealthCheck("TCP", "", 1, 15, 5, 3),
				Tasks(Task("10.0.1.1", 31000, 31001, 31002), Task("10.0.1.2", 31100, 31101, 31102))),
		}},
		{name: "ip_per_task_ipaddress", opts: ext, apps: []marathon.App{
			App("calico/web", Group("external"), IPAddress(8080, 9000), Label("HAPROXY_0_VHOST", "calico.example.com"),
				Tasks(WithIP(Task("agent-1.example.com"), "10.200.0.11"), WithIP(Task("agent-2.example.com"), "10.200.0.12"))),
			App("calico/worker", Group("external"), IPAddress(7000),
				Tasks(WithIP(Task("agent-1.example.com"), "10.200.0.21"), Task("agent-3.example.com"))),
		}},
		{name: "ip_per_task_networks", opts: ext, apps: []marathon.App{
			App("overlay/api", Group("external"), ContainerNetwork(8080, 10050, 8443, 0), Label("HAPROXY_0_MODE", "http"),
				Tasks(WithIP(Task("10.0.0.1", 31001, 31002), "9.0.0.5"))),
		}},
		{name: "healthcheck_http", opts: ext, apps: []marathon.App{
			web("/hc-http", 10060, HealthCheck("HTTP", "/status", 0, 10, 3, 5)),
		}},
		{name: "healthcheck_https", opts: ext, apps: []marathon.App{
			web("/hc-https", 10061, HealthCheck("HTTPS", "/healthz", 0, 30, 10, 1)),
		}},
		{name: "healthcheck_tcp", opts: ext, apps: []marathon.App{
			web("/hc-tcp", 10062, HealthCheck("TCP", "", 0, 5, 2, 0)),
			web("/hc-tcp-http", 10063, HealthCheck("TCP", "", 0, 5, 2, 0), Label("HAPROXY_0_VHOST", "tcpcheck.example.com")),
		}},
		{name: "healthcheck_command_ignored", opts: ext, apps: []marathon.App{
			web("/hc-cmd", 10064, HealthCheck("COMMAND", "", 0, 5, 2, 0)),
		}},
		{name: "healthcheck_port_index", opts: ext, apps: []marathon.App{
			App("hcport", Group("external"), PortDefinitions(10065, 10066), HealthCheck("HTTP", "/ping", 1, 10, 5, 3),
				Label("HAPROXY_0_BACKEND_HEALTHCHECK_PORT_INDEX", "1"), Label("HAPROXY_0_MODE", "http"),
				Tasks(Task("10.0.2.1", 31500, 31501))),
		}},
		{name: "haproxy_map", opts: with(func(o *lb.Options) { o.HAProxyMap = true; o.SSLCerts = certs }), apps: []marathon.App{
			web("/mapped", 10070, Label("HAPROXY_0_VHOST", "Mapped.Example.com")),
			web("/mapped-multi", 10071, Label("HAPROXY_0_VHOST", "m1.example.com,m2.example.com")),
			web("/mapped-path", 10072, Labels("HAPROXY_0_VHOST", "mp.example.com", "HAPROXY_0_PATH", "/p")),
			web("/tcp-only", 10073),
		}},
		{name: "strict_mode", opts: with(func(o *lb.Options) { o.StrictMode = true }), apps: []marathon.App{
			web("/enabled", 10080, Label("HAPROXY_0_ENABLED", "true")),
			web("/not-enabled", 10081),
		}},
		{name: "disabled_without_strict", opts: ext, apps: []marathon.App{
			web("/disabled", 10082, Label("HAPROXY_0_ENABLED", "false")),
			web("/default-on", 10083),
		}},
		{name: "dont_bind_http_https", opts: with(func(o *lb.Options) { o.DontBindHTTPHTTPS = true; o.SSLCerts = certs }), apps: []marathon.App{
			web("/vhosted", 10090, Label("HAPROXY_0_VHOST", "ignored.example.com")),
		}},
		{name: "group_all", opts: with(func(o *lb.Options) { o.Groups = []string{"*"} }), apps: []marathon.App{
			web("/ext", 10100),
			App("internal", Group("internal"), PortDefinitions(10101), Tasks(Task("10.0.0.9", 31009))),
			App("nogroup", PortDefinitions(10102), Tasks(Task("10.0.0.9", 31010))),
		}},
		{name: "per_port_group", opts: ext, apps: []marathon.App{
			App("split", Group("internal"), PortDefinitions(10110, 10111), Label("HAPROXY_1_GROUP", "external,other"),
				Tasks(Task("10.0.0.7", 31110, 31111))),
		}},
		{name: "template_overrides", opts: ext, apps: []marathon.App{
			web("/custom", 10120, Labels(
				"HAPROXY_0_BACKEND_HEAD", "\nbackend {backend}\n  balance {balance}\n  mode {mode}\n  timeout server 30m\n",
				"HAPROXY_0_FRONTEND_HEAD", "\nfrontend {backend}\n  bind {bindAddr}:{servicePort}\n  mode {mode}\n  option tcplog\n",
				"HAPROXY_0_BACKEND_SERVER_OPTIONS", "  server {serverName} {host_ipv4}:{port} id {serverId} maxconn 50\n",
				"HAPROXY_0_BACKEND_HTTP_OPTIONS", "  option forwardfor\n  http-request set-header X-Tls yes if { ssl_fc }\n",
				"HAPROXY_0_MODE", "http",
				"HAPROXY_0_HTTP_FRONTEND_HEAD", "ignored: global-only template",
			)),
			web("/bad-override", 10121, Label("HAPROXY_0_BACKEND_HEAD", "\nbackend {backend}\n  balance {nosuch}\n")),
			web("/plain", 10122),
		}},
		{name: "network_allowed", opts: ext, apps: []marathon.App{
			web("/http-acl", 10130, Labels("HAPROXY_0_MODE", "http", "HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL", "10.0.0.0/8 192.168.1.5")),
			web("/tcp-acl", 10131, Label("HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL", "172.16.0.0/12")),
		}},
		{name: "group_https_by_vhost", opts: with(func(o *lb.Options) { o.SSLCerts = certs; o.GroupHTTPSByVhost = true }), apps: []marathon.App{
			web("/g1", 10140, Labels("HAPROXY_0_VHOST", "g.example.com", "HAPROXY_0_SSL_CERT", goldenCertDir+"/g.pem")),
			web("/g2", 10141, Labels("HAPROXY_0_VHOST", "g.example.com", "HAPROXY_0_PATH", "/two")),
			web("/h", 10142, Labels("HAPROXY_0_VHOST", "h.example.com")),
		}},
		{name: "hsts", opts: with(func(o *lb.Options) { o.SSLCerts = certs }), apps: []marathon.App{
			web("/hsts", 10150, Labels("HAPROXY_0_VHOST", "hsts.example.com", "HAPROXY_0_USE_HSTS", "true")),
		}},
		{name: "health_check_filter", opts: with(func(o *lb.Options) { o.HealthCheck = true }), apps: []marathon.App{
			App("checked", Group("external"), PortDefinitions(10160), HealthCheck("HTTP", "/", 0, 10, 5, 3),
				Tasks(WithHealth(Task("10.0.3.1", 31001), true), WithHealth(Task("10.0.3.2", 31002), false),
					Task("10.0.3.3", 31003), WithHealth(Task("10.0.3.4", 31004), true, false),
					WithState(WithHealth(Task("10.0.3.5", 31005), true), marathon.TaskStaging))),
		}},
		{name: "deployment_group", opts: ext, apps: []marathon.App{
			App("web-blue", Group("external"), PortDefinitions(10170), Instances(2), Labels("HAPROXY_DEPLOYMENT_GROUP", "web",
				"HAPROXY_DEPLOYMENT_STARTED_AT", "2026-01-01T00:00:00Z", "HAPROXY_0_VHOST", "web.example.com"),
				Tasks(Task("10.0.4.1", 31001), Task("10.0.4.2", 31002))),
			App("web-green", Group("external"), PortDefinitions(10171), Labels("HAPROXY_DEPLOYMENT_GROUP", "web",
				"HAPROXY_DEPLOYMENT_STARTED_AT", "2026-01-02T00:00:00Z", "HAPROXY_DEPLOYMENT_TARGET_INSTANCES", "2"),
				Tasks(Task("10.0.4.3", 31003))),
		}},
		// Issue 7: apps sharing one vhost get their own ACLs (items 1, 7),
		// and a proxy-pass port without a vhost is skipped (item 11).
		{name: "shared_vhost", opts: with(func(o *lb.Options) { o.SSLCerts = certs }), apps: []marathon.App{
			web("/shop", 10200, Labels("HAPROXY_0_VHOST", "shop.example.com")),
			web("/shop-api", 10201, Labels("HAPROXY_0_VHOST", "shop.example.com", "HAPROXY_0_PATH", "/api")),
			web("/a", 10202, Labels("HAPROXY_0_VHOST", "shop.example.com", "HAPROXY_0_PATH", "/a",
				"HAPROXY_0_AUTH", "Shop:alice:$5$alicesalt$Zz50XY3Trif7Q5Z3aJW2GzsXEJxWR3PeLzQfsAmODzA")),
			web("/b", 10203, Labels("HAPROXY_0_VHOST", "shop.example.com", "HAPROXY_0_PATH", "/b",
				"HAPROXY_0_AUTH", "Shop:bob:$5$bobsalt$AiHaqfKibRIwSvN7JZs1Qktjb9dwT2ORO2mBiNyKmv.", "HAPROXY_0_BACKEND_WEIGHT", "1")),
			web("/no-vhost", 10204, Labels("HAPROXY_0_MODE", "http", "HAPROXY_0_HTTP_BACKEND_PROXYPASS_PATH", "/p/")),
		}},
		{name: "bad_labels", opts: ext, apps: []marathon.App{
			web("/bad-port", 10180, Label("HAPROXY_0_PORT", "eighty")),
			web("/inject", 10181, Label("HAPROXY_0_VHOST", "a.example.com\nbind :6666")),
			web("/bad-balance", 10182, Label("HAPROXY_0_BALANCE", "fastest")),
			web("/bad-mode", 10183, Label("HAPROXY_0_MODE", "udp")),
			web("/bind-inject", 10184, Label("HAPROXY_0_BIND_OPTIONS", "ssl\n  bind :6667")),
			web("/port-clash", 10185),
			web("/port-clash2", 10185),
			web("/stats-clash", 10186, Label("HAPROXY_0_PORT", "9090")),
			web("/good", 10187, Label("HAPROXY_0_VHOST", "good.example.com")),
		}},
	}
}

// skippedText renders skipped entries one per line for the golden files.
func skippedText(sk []lb.Skipped) string {
	var sb strings.Builder
	for _, s := range sk {
		fmt.Fprintf(&sb, "%s port=%d filtered=%t: %s\n", s.AppID, s.PortIndex, s.Filtered, s.Reason)
	}
	return sb.String()
}

func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if got == "" {
			_ = os.Remove(path)
			return
		}
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	if os.IsNotExist(err) && got == "" {
		return
	}
	require.NoError(t, err, "missing golden file %s (run go test ./templates -run Golden -update)", path)
	assert.Equal(t, string(want), got, "golden %s differs (review, then rerun with -update)", path)
}

// unusedTemplates are defined by marathon-lb's config.py (so a templates
// directory may hold them) but never used by its marathon_lb.py.
var unusedTemplates = []string{
	"HAPROXY_HTTPS_FRONTEND_AUTH_ACL_ONLY",
	"HAPROXY_HTTPS_FRONTEND_AUTH_REQUEST_ONLY",
	"HAPROXY_HTTPS_FRONTEND_ROUTING_ONLY_WITH_PATH_AND_AUTH",
}

// TestGoldenUsesEveryTemplate makes sure the golden cases (each checked by
// haproxy -c) exercise every default template that marathon-lb uses, and no
// other.
func TestGoldenUsesEveryTemplate(t *testing.T) {
	used := map[string]bool{}
	set := Default()
	for _, tc := range goldenCases() {
		cfg, _ := lb.Build(tc.apps, tc.opts)
		_, err := set.render(cfg, used)
		require.NoError(t, err)
	}
	for _, n := range Names() {
		if slices.Contains(unusedTemplates, n) {
			assert.False(t, used[n], "marathon-lb never uses %s", n)
			continue
		}
		assert.True(t, used[n], "no golden case uses %s", n)
	}
}

func TestRenderGolden(t *testing.T) {
	cases := goldenCases()
	require.GreaterOrEqual(t, len(cases), 25)
	set := Default()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Shuffle-proof: reversed input must give the same output.
			apps := slices.Clone(tc.apps)
			cfg, skipped := lb.Build(apps, tc.opts)
			out, err := set.Render(cfg)
			require.NoError(t, err)
			slices.Reverse(apps)
			cfg2, skipped2 := lb.Build(apps, tc.opts)
			out2, err := set.Render(cfg2)
			require.NoError(t, err)
			assert.Equal(t, string(out.Config), string(out2.Config), "output depends on input order")
			assert.Equal(t, skipped, skipped2)

			base := filepath.Join("testdata", "golden", tc.name)
			checkGolden(t, base+".cfg", string(out.Config))
			checkGolden(t, base+".skipped", skippedText(append(skipped, out.Skipped...)))
			names := make([]string, 0, len(out.Maps))
			for n := range out.Maps {
				names = append(names, n)
			}
			slices.Sort(names)
			var maps strings.Builder
			for _, n := range names {
				fmt.Fprintf(&maps, "== %s\n%s", n, out.Maps[n])
			}
			checkGolden(t, base+".maps", maps.String())
			haproxyCheck(t, out)
		})
	}
}
