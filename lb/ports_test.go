package lb

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"

	lt "github.com/switchyard/switchyard/lb/lbtest"
	"github.com/switchyard/switchyard/marathon"
)

// servicePortsOf returns the service port of every (app id, port index) in
// cfg.
func servicePortsOf(cfg *Config) map[string]int {
	out := map[string]int{}
	for _, s := range cfg.Services {
		out[s.AppID+"#"+strconv.Itoa(s.PortIndex)] = s.ServicePort
	}
	return out
}

// TestServicePortAssignerMatchesMarathonLB checks the service ports given
// to IP-per-task apps without any against marathon-lb's
// ServicePortAssigner: try i = 0..49 takes the SHA-1 of
// "<app id>-<container port>-<i>", its first 8 hex digits as a number,
// modulo the range size, from the low end; a port already given goes to
// the next try. Apps are visited in Marathon's order, deployment groups
// last; only apps with a task get ports. (Expected values worked out from
// that formula.)
func TestServicePortAssignerMatchesMarathonLB(t *testing.T) {
	ipApp := func(id string, ports ...int) marathon.App {
		return lt.App(id, lt.Group("external"), lt.IPAddress(ports...), lt.Tasks(lt.WithIP(lt.Task("agent"), "10.1.0.1")))
	}
	taskless := lt.App("web", lt.Group("external"), lt.IPAddress(80))
	group := ipApp("x10-blue", 80)
	group.Labels["HAPROXY_DEPLOYMENT_GROUP"] = "x10"
	mixed := lt.App("mixed", lt.Group("external"), lt.ContainerNetwork(80, 0, 81, 12345),
		lt.Tasks(lt.WithIP(lt.Task("agent"), "10.1.0.2")))
	tests := []struct {
		name string
		apps []marathon.App
		want map[string]int
	}{
		{"first try", []marathon.App{ipApp("web", 80), ipApp("api", 80, 81)},
			map[string]int{"/web#0": 10071, "/api#0": 10081, "/api#1": 10051}},
		{"clash within an app", []marathon.App{ipApp("calico/a", 8080, 9090)},
			map[string]int{"/calico/a#0": 10057, "/calico/a#1": 10093}},
		{"clash: Marathon's order decides", []marathon.App{ipApp("web", 80), ipApp("x10", 80)},
			map[string]int{"/web#0": 10071, "/x10#0": 10060}},
		{"clash: other order", []marathon.App{ipApp("x10", 80), ipApp("web", 80)},
			map[string]int{"/x10#0": 10071, "/web#0": 10056}},
		{"an app without tasks takes no port", []marathon.App{taskless, ipApp("x10", 80)},
			map[string]int{"/x10#0": 10071}},
		{"deployment groups after the other apps", []marathon.App{group, ipApp("web", 80)},
			map[string]int{"/web#0": 10071, "/x10#0": 10060}},
		{"an app with some service ports gets none assigned", []marathon.App{mixed, ipApp("web", 80)},
			map[string]int{"/mixed#1": 12345, "/web#0": 10071}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _ := Build(tc.apps, Options{})
			assert.Equal(t, tc.want, servicePortsOf(cfg))
		})
	}

	// A one-port range: the second port finds it taken.
	cfg, skipped := Build([]marathon.App{ipApp("api", 80, 81)}, Options{MinServPortIPPerTask: 20000, MaxServPortIPPerTask: 20000})
	assert.Equal(t, map[string]int{"/api#0": 20000}, servicePortsOf(cfg))
	assert.Equal(t, []Skipped{{AppID: "/api", PortIndex: 1, Reason: "port 1 has no service port"}}, skipped)
}
