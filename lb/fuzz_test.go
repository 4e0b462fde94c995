package lb

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	lt "github.com/switchyard/switchyard/lb/lbtest"
	"github.com/switchyard/switchyard/marathon"
)

// FuzzBuild feeds arbitrary label maps (encoded as "KEY=VALUE" lines, with
// "\n" inside values written as "\\n") to Build. Build must not panic, and
// every value that reaches a config line must be free of control
// characters (template overrides excepted: they are operator templates).
func FuzzBuild(f *testing.F) {
	seeds := []string{
		"HAPROXY_GROUP=external\nHAPROXY_0_VHOST=a.example.com,b.example.com",
		"HAPROXY_GROUP=external\nHAPROXY_0_PORT=eighty",
		"HAPROXY_GROUP=external\nHAPROXY_0_VHOST=a.com\\nbind :6666",
		"HAPROXY_GROUP=*\nHAPROXY_0_MODE=http\nHAPROXY_0_BALANCE=hdr(host)",
		"HAPROXY_GROUP=external\nHAPROXY_0_AUTH=r:u:p\nHAPROXY_0_PATH=/x",
		"HAPROXY_GROUP=external\nHAPROXY_1_GROUP=external\nHAPROXY_1_PORT=9090",
		"HAPROXY_GROUP=external\nHAPROXY_0_BACKEND_HEAD=backend {backend}\\n",
		"HAPROXY_DEPLOYMENT_GROUP=web\nHAPROXY_GROUP=external\nHAPROXY_DEPLOYMENT_TARGET_INSTANCES=-3",
		"HAPROXY_GROUP=external\nHAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL=10.0.0.0/8 ::1",
		"HAPROXY_GROUP=external\nHAPROXY_0_BACKEND_HEALTHCHECK_PORT_INDEX=7",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, encoded string) {
		labels := map[string]string{}
		for _, line := range strings.Split(encoded, "\n") {
			k, v, _ := strings.Cut(line, "=")
			labels[k] = strings.ReplaceAll(v, `\n`, "\n")
		}
		mk := func(id string) marathon.App {
			a := lt.App(id, lt.PortDefinitions(10000, 10001), lt.HealthCheck("HTTP", "/", 0, 5, 5, 1),
				lt.Tasks(lt.Task("10.0.0.1", 31000, 31001), lt.Task("10.0.0.2", 31002, 31003)))
			for k, v := range labels {
				a.Labels[k] = v
			}
			return a
		}
		apps := []marathon.App{mk("one"), mk("two/three"), lt.App("plain", lt.Group("external"), lt.PortDefinitions(10500), lt.Tasks(lt.Task("h", 1)))}
		for _, groups := range [][]string{nil, {"*"}} {
			cfg, skipped := Build(apps, Options{Groups: groups, StrictMode: labels["STRICT"] != ""})
			require.NotNil(t, cfg)
			for _, sk := range skipped {
				require.NotEmpty(t, sk.Reason)
			}
			for _, s := range cfg.Services {
				fields := append([]string{s.Backend, s.Mode, s.Balance, s.Path, s.BindAddr, s.BindOptions,
					s.SSLCert, s.ProxyPath, s.RevProxyPath, s.RedirPath}, s.VHosts...)
				fields = append(fields, s.NetworkAllowed...)
				if s.Auth != nil {
					fields = append(fields, s.Auth.Realm, s.Auth.User, s.Auth.Password)
				}
				for _, v := range fields {
					require.NoError(t, checkLine("field", v), "service %s field %q", s.Backend, v)
				}
				require.True(t, s.ServicePort > 0 && s.ServicePort < 65536)
				require.NotEmpty(t, s.Servers)
			}
		}
	})
}
