package templates

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/lb"
	lt "github.com/switchyard/switchyard/lb/lbtest"
	"github.com/switchyard/switchyard/marathon"
)

// FuzzRender builds and renders apps with arbitrary setting labels
// ("KEY=VALUE" lines, "\\n" standing for a newline). Whatever the labels,
// Render must not fail or panic, and no label may add a section to the
// config: the number of section lines must be exactly what the model says
// for the services rendered. Render may skip a service only for a reason
// it gives (e.g. a proxy-pass path without a vhost).
func FuzzRender(f *testing.F) {
	for _, s := range []string{
		"HAPROXY_0_VHOST=a.example.com,b.example.com\nHAPROXY_0_PATH=/api",
		"HAPROXY_0_VHOST=a.com\\nbackend evil\nHAPROXY_0_MODE=http",
		"HAPROXY_0_AUTH=realm:user:pa\\nss\nHAPROXY_0_VHOST=x.com",
		"HAPROXY_0_BIND_OPTIONS=ssl\\nfrontend evil\nHAPROXY_0_STICKY=true",
		"HAPROXY_0_REDIRECT_TO_HTTPS=true\nHAPROXY_0_VHOST=r.com\nHAPROXY_0_BACKEND_WEIGHT=3",
		"HAPROXY_0_HTTP_BACKEND_PROXYPASS_PATH=/p\nHAPROXY_0_HTTP_BACKEND_REDIR=/home\nHAPROXY_0_VHOST=p.com",
		"HAPROXY_1_PORT=9091\nHAPROXY_0_BALANCE=source",
		"HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL=10.0.0.0/8\nHAPROXY_0_MODE=tcp",
		"HAPROXY_0_HTTP_BACKEND_PROXYPASS_PATH=/",
		"HAPROXY_0_PORT=8080\nHAPROXY_1_PORT=8080\nHAPROXY_0_BIND_ADDR=127.0.0.1\nHAPROXY_1_BIND_ADDR=127.0.0.2",
	} {
		f.Add(s, false)
	}
	set := Default()
	f.Fuzz(func(t *testing.T, encoded string, useMap bool) {
		labels := map[string]string{"HAPROXY_GROUP": "external"}
		for _, line := range strings.Split(encoded, "\n") {
			k, v, _ := strings.Cut(line, "=")
			// Template overrides are trusted operator input; only fuzz settings.
			if i := strings.IndexByte(strings.TrimPrefix(k, "HAPROXY_"), '_'); i >= 0 {
				rest := strings.TrimPrefix(k, "HAPROXY_")[i+1:]
				if _, ok := lookup("HAPROXY_" + rest); ok && rest != "HTTP_BACKEND_REDIR" {
					continue
				}
			}
			labels[k] = strings.ReplaceAll(v, `\n`, "\n")
		}
		app := lt.App("fuzz/app", lt.PortDefinitions(10000, 10001), lt.HealthCheck("HTTP", "/", 0, 5, 5, 1),
			lt.Tasks(lt.Task("10.0.0.1", 31000, 31001)))
		for k, v := range labels {
			app.Labels[k] = v
		}
		other := lt.App("other", lt.Group("external"), lt.PortDefinitions(10500), lt.Label("HAPROXY_0_VHOST", "other.com"),
			lt.Tasks(lt.Task("10.0.0.2", 31500)))
		cfg, _ := lb.Build([]marathon.App{app, other}, lb.Options{HAProxyMap: useMap, MapDir: "/m"})
		out, err := set.Render(cfg)
		require.NoError(t, err)
		skipped := map[int]bool{}
		for _, sk := range out.Skipped {
			require.NotEmpty(t, sk.Reason)
			require.False(t, sk.Filtered)
			require.Equal(t, "/fuzz/app", sk.AppID, "a label of one app never skips another")
			skipped[sk.PortIndex] = true
		}

		want := 3 + 1 + 1 + 1 // global, defaults, listen stats, http, appid, admin backend
		for _, s := range cfg.Services {
			if s.AppID == "/fuzz/app" && skipped[s.PortIndex] {
				continue
			}
			want += 2
			if s.Auth != nil {
				want++
			}
		}
		got := 0
		for _, line := range strings.Split(string(out.Config), "\n") {
			word, _, _ := strings.Cut(line, " ")
			switch word {
			case "global", "defaults", "listen", "frontend", "backend", "userlist", "peers", "resolvers", "program", "cache", "ring", "mailers":
				got++
			}
		}
		require.Equal(t, want, got, "labels %q changed the config structure:\n%s", labels, out.Config)
	})
}
