package lb

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	lt "github.com/switchyard/switchyard/lb/lbtest"
	"github.com/switchyard/switchyard/marathon"
)

// TestBuildModeFromHealthCheck follows marathon-lb: a port's own health
// check switches it to http mode only when its protocol is HTTP; a check
// borrowed with HAPROXY_{n}_BACKEND_HEALTHCHECK_PORT_INDEX does so for HTTP,
// HTTPS, MESOS_HTTP and MESOS_HTTPS. A vhost always means http, and
// HAPROXY_{n}_MODE wins over both.
func TestBuildModeFromHealthCheck(t *testing.T) {
	tests := []struct {
		proto    string
		own      string // mode with the check on the port itself
		borrowed string // mode with the check borrowed from port 1
	}{
		{"HTTP", ModeHTTP, ModeHTTP},
		{"", ModeHTTP, ModeHTTP}, // Marathon's default protocol is HTTP
		{"HTTPS", ModeTCP, ModeHTTP},
		{"MESOS_HTTP", ModeTCP, ModeHTTP},
		{"MESOS_HTTPS", ModeTCP, ModeHTTP},
		{"TCP", ModeTCP, ModeTCP},
		{"MESOS_TCP", ModeTCP, ModeTCP},
	}
	for _, tc := range tests {
		t.Run("proto "+tc.proto, func(t *testing.T) {
			own := lt.App("own", lt.Group("external"), lt.PortDefinitions(10000), lt.HealthCheck(tc.proto, "/", 0, 10, 5, 3),
				lt.Tasks(lt.Task("h", 1)))
			borrowed := lt.App("borrowed", lt.Group("external"), lt.PortDefinitions(10001, 10002),
				lt.HealthCheck(tc.proto, "/", 1, 10, 5, 3), lt.Label("HAPROXY_0_BACKEND_HEALTHCHECK_PORT_INDEX", "1"),
				lt.Tasks(lt.Task("h", 2, 3)))
			vhost := lt.App("vhost", lt.Group("external"), lt.PortDefinitions(10003), lt.HealthCheck(tc.proto, "/", 0, 10, 5, 3),
				lt.Label("HAPROXY_0_VHOST", "v.example.com"), lt.Tasks(lt.Task("h", 4)))
			forced := lt.App("forced", lt.Group("external"), lt.PortDefinitions(10004), lt.HealthCheck(tc.proto, "/", 0, 10, 5, 3),
				lt.Label("HAPROXY_0_MODE", "TCP"), lt.Label("HAPROXY_0_VHOST", "f.example.com"), lt.Tasks(lt.Task("h", 5)))
			cfg, skipped := Build([]marathon.App{own, borrowed, vhost, forced}, Options{})
			require.Empty(t, skipped)
			assert.Equal(t, tc.own, service(t, cfg, "own_10000").Mode, "own check")
			b := service(t, cfg, "borrowed_10001")
			require.NotNil(t, b.HealthCheck)
			assert.Equal(t, tc.borrowed, b.Mode, "borrowed check")
			assert.Equal(t, ModeHTTP, service(t, cfg, "vhost_10003").Mode, "vhost")
			assert.Equal(t, ModeTCP, service(t, cfg, "forced_10004").Mode, "HAPROXY_0_MODE")
		})
	}
}
