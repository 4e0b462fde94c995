package lb

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	lt "github.com/switchyard/switchyard/lb/lbtest"
	"github.com/switchyard/switchyard/marathon"
)

// backends returns the backend names of cfg.
func backends(cfg *Config) []string {
	var out []string
	for _, s := range cfg.Services {
		out = append(out, s.Backend)
	}
	return out
}

func service(t *testing.T, cfg *Config, backend string) Service {
	t.Helper()
	for _, s := range cfg.Services {
		if s.Backend == backend {
			return s
		}
	}
	require.Failf(t, "backend not found", "%s not in %v", backend, backends(cfg))
	return Service{}
}

func TestBuildGroups(t *testing.T) {
	apps := []marathon.App{
		lt.App("ext", lt.Group("external"), lt.PortDefinitions(10000), lt.Tasks(lt.Task("h1", 31000))),
		lt.App("int", lt.Group("internal"), lt.PortDefinitions(10001), lt.Tasks(lt.Task("h1", 31001))),
		lt.App("both", lt.Group("internal, external"), lt.PortDefinitions(10002), lt.Tasks(lt.Task("h1", 31002))),
		lt.App("none", lt.PortDefinitions(10003), lt.Tasks(lt.Task("h1", 31003))),
		lt.App("split", lt.Group("internal"), lt.PortDefinitions(10004, 10005), lt.Label("HAPROXY_1_GROUP", "external"),
			lt.Tasks(lt.Task("h1", 31004, 31005))),
	}
	tests := []struct {
		name   string
		groups []string
		want   []string
	}{
		{"default external", nil, []string{"both_10002", "ext_10000", "split_10005"}},
		{"internal", []string{"internal"}, []string{"both_10002", "int_10001", "split_10004"}},
		{"two groups", []string{"internal", "external"}, []string{"both_10002", "ext_10000", "int_10001", "split_10004", "split_10005"}},
		{"all", []string{"*"}, []string{"both_10002", "ext_10000", "int_10001", "none_10003", "split_10004", "split_10005"}},
		{"unknown", []string{"nobody"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, skipped := Build(apps, Options{Groups: tc.groups})
			assert.Equal(t, tc.want, backends(cfg))
			assert.Empty(t, skipped, "apps of other groups are not reported")
		})
	}
}

func TestBuildStrictMode(t *testing.T) {
	apps := []marathon.App{
		lt.App("on", lt.Group("external"), lt.PortDefinitions(10000, 10001), lt.Label("HAPROXY_0_ENABLED", "true"), lt.Tasks(lt.Task("h", 1, 2))),
		lt.App("off", lt.Group("external"), lt.PortDefinitions(10002), lt.Label("HAPROXY_0_ENABLED", "false"), lt.Tasks(lt.Task("h", 3))),
		lt.App("bad", lt.Group("external"), lt.PortDefinitions(10003), lt.Label("HAPROXY_0_ENABLED", "perhaps"), lt.Tasks(lt.Task("h", 4))),
	}
	cfg, skipped := Build(apps, Options{StrictMode: true})
	assert.Equal(t, []string{"on_10000"}, backends(cfg))
	assert.Equal(t, []Skipped{
		{AppID: "/bad", PortIndex: 0, Reason: `label HAPROXY_0_ENABLED: "perhaps" is not a boolean (true or false)`},
		{AppID: "/off", PortIndex: 0, Reason: "strict mode: HAPROXY_0_ENABLED is not true", Filtered: true},
		{AppID: "/on", PortIndex: 1, Reason: "strict mode: HAPROXY_1_ENABLED is not true", Filtered: true},
	}, skipped)

	cfg, _ = Build(apps, Options{})
	assert.Equal(t, []string{"on_10000", "on_10001"}, backends(cfg), "without strict mode only ENABLED=false hides")
}

func TestBuildTaskFilter(t *testing.T) {
	app := lt.App("web", lt.Group("external"), lt.PortDefinitions(10000), lt.HealthCheck("HTTP", "/", 0, 10, 5, 3),
		lt.Tasks(
			lt.WithHealth(lt.Task("alive", 1), true),
			lt.WithHealth(lt.Task("dead", 2), false),
			lt.WithHealth(lt.Task("mixed", 3), true, false),
			lt.Task("nochecks", 4),
			lt.WithState(lt.WithHealth(lt.Task("staging", 5), true), marathon.TaskStaging),
			lt.WithState(lt.Task("killed", 6), marathon.TaskKilled),
			lt.WithState(lt.Task("unreachable", 7), marathon.TaskUnreachable),
			lt.Task("", 8),
			lt.Task("noports"),
			lt.WithState(lt.Task("lost", 9), marathon.TaskLost),
			lt.WithState(lt.WithHealth(lt.Task("lostdead", 10), false), marathon.TaskLost),
			lt.WithState(lt.Task("nostate", 11), ""),
			lt.WithState(lt.Task("killing", 12), marathon.TaskKilling),
			lt.WithState(lt.Task("starting", 13), marathon.TaskStarting),
			lt.WithState(lt.Task("gone", 14), marathon.TaskGone),
			lt.WithState(lt.Task("byoperator", 15), "TASK_GONE_BY_OPERATOR"),
			lt.WithState(lt.Task("unknown", 16), marathon.TaskUnknown),
			lt.WithState(lt.WithHealth(lt.Task("unreachablealive", 17), true), marathon.TaskUnreachable),
		))
	hosts := func(cfg *Config) []string {
		var out []string
		for _, s := range cfg.Services[0].Servers {
			out = append(out, s.Host)
		}
		return out
	}
	cfg, _ := Build([]marathon.App{app}, Options{})
	// As marathon-lb: TASK_LOST and TASK_UNREACHABLE tasks may still be
	// running and keep their traffic; a task without a state is running.
	assert.Equal(t, []string{"alive", "dead", "lost", "lostdead", "mixed", "nochecks", "nostate", "unreachable", "unreachablealive"},
		hosts(cfg), "running, lost, unreachable and state-less tasks with host and ports")
	cfg, _ = Build([]marathon.App{app}, Options{HealthCheck: true})
	assert.Equal(t, []string{"alive", "unreachablealive"}, hosts(cfg), "-H: all results alive, none missing")

	noChecks := lt.App("plain", lt.Group("external"), lt.PortDefinitions(10001), lt.Tasks(lt.Task("a", 1)))
	cfg, _ = Build([]marathon.App{noChecks}, Options{HealthCheck: true})
	assert.Equal(t, []string{"a"}, hosts(cfg), "-H does not filter apps without health checks")

	dead := lt.App("dead", lt.Group("external"), lt.PortDefinitions(10002), lt.HealthCheck("TCP", "", 0, 10, 5, 3),
		lt.Tasks(lt.WithHealth(lt.Task("a", 1), false)))
	cfg, skipped := Build([]marathon.App{dead}, Options{HealthCheck: true})
	assert.Empty(t, cfg.Services)
	assert.Equal(t, []Skipped{{AppID: "/dead", PortIndex: 0, Reason: "no running task with all health checks alive", Filtered: true}}, skipped)
}

func TestBuildServicePorts(t *testing.T) {
	dockerPM := lt.App("docker-pm", lt.Group("external"), lt.Bridge(80, 10010, 443, 10011), lt.Tasks(lt.Task("h", 31000, 31001)))
	containerPM := lt.App("container-pm", lt.Group("external"), lt.Tasks(lt.Task("h", 31002)))
	zero := 0
	containerPM.Container = &marathon.Container{Type: "MESOS", PortMappings: []marathon.PortMapping{{ContainerPort: 80, HostPort: &zero, ServicePort: 10012}}}
	containerPM.Networks = []marathon.Network{{Mode: "container/bridge"}}
	legacyPorts := lt.App("legacy-ports", lt.Group("external"), lt.Tasks(lt.Task("h", 31003)))
	legacyPorts.Ports = []int{10013}
	hostNoTaskPorts := lt.App("host-fixed", lt.Group("external"), lt.PortDefinitions(10014), lt.Tasks(lt.Task("h")))
	hostNoTaskPorts.RequirePorts = true
	hostNoTaskPorts.PortDefinitions[0].Port = 10014

	cfg, skipped := Build([]marathon.App{dockerPM, containerPM, legacyPorts, hostNoTaskPorts}, Options{})
	require.Empty(t, skipped)
	assert.Equal(t, []string{"container-pm_10012", "docker-pm_10010", "docker-pm_10011", "host-fixed_10014", "legacy-ports_10013"}, backends(cfg))
	assert.Equal(t, 31001, service(t, cfg, "docker-pm_10011").Servers[0].Port)
	assert.Equal(t, 10014, service(t, cfg, "host-fixed_10014").Servers[0].Port, "host mode without task ports uses portDefinitions")
}

func TestBuildIPPerTask(t *testing.T) {
	a := lt.App("calico/a", lt.Group("external"), lt.IPAddress(8080, 9090),
		lt.Tasks(lt.WithIP(lt.Task("agent1", 31000), "10.1.0.1"), lt.Task("agent2", 31001)))
	b := lt.App("calico/b", lt.Group("external"), lt.ContainerNetwork(80, 0, 81, 0),
		lt.Tasks(lt.WithIP(lt.Task("10.0.0.2"), "10.1.0.2")))
	opts := Options{MinServPortIPPerTask: 20000, MaxServPortIPPerTask: 20003}
	cfg, skipped := Build([]marathon.App{b, a}, opts)
	require.Empty(t, skipped)
	ports := map[int]bool{}
	for _, s := range cfg.Services {
		assert.GreaterOrEqual(t, s.ServicePort, 20000, s.Backend)
		assert.LessOrEqual(t, s.ServicePort, 20003, s.Backend)
		assert.False(t, ports[s.ServicePort], "port %d given twice", s.ServicePort)
		ports[s.ServicePort] = true
	}
	assert.Len(t, cfg.Services, 4)
	var sa Service
	for _, s := range cfg.Services {
		if s.AppID == "/calico/a" && s.PortIndex == 0 {
			sa = s
		}
	}
	require.Equal(t, "/calico/a", sa.AppID)
	require.Len(t, sa.Servers, 1, "a task without an IP address is left out")
	assert.Equal(t, Server{Name: "agent1_10_1_0_1_8080", ID: sa.Servers[0].ID, TaskID: sa.Servers[0].TaskID,
		Host: "agent1", IP: "10.1.0.1", Port: 8080}, sa.Servers[0])
	for _, s := range cfg.Services {
		if s.AppID == "/calico/b" && s.PortIndex == 1 {
			assert.Equal(t, "10_0_0_2_10_1_0_2_81", s.Servers[0].Name)
		}
	}

	// Same ports whatever the LB's group.
	cfg2, _ := Build([]marathon.App{b, a}, Options{Groups: []string{"*"}, MinServPortIPPerTask: 20000, MaxServPortIPPerTask: 20003})
	assert.Equal(t, backends(cfg), backends(cfg2))

	// Range exhausted: the port is skipped with a reason.
	c := lt.App("calico/c", lt.Group("external"), lt.IPAddress(1, 2, 3, 4, 5), lt.Tasks(lt.WithIP(lt.Task("h"), "10.1.0.3")))
	cfg3, skipped3 := Build([]marathon.App{c}, opts)
	assert.Len(t, cfg3.Services, 4)
	assert.Equal(t, []Skipped{{AppID: "/calico/c", PortIndex: 4, Reason: "port 4 has no service port"}}, skipped3)
}

func TestBuildNamesAndModes(t *testing.T) {
	apps := []marathon.App{
		lt.App("apache-nfs-lb-01", lt.Group("external"), lt.Bridge(80, 10240), lt.Tasks(lt.Task("192.168.2.16", 31677))),
		lt.App("/a/b", lt.Group("external"), lt.PortDefinitions(10001), lt.Label("HAPROXY_0_VHOST", "b.example.com"), lt.Tasks(lt.Task("node-1.example.com", 31001))),
		lt.App("hc", lt.Group("external"), lt.PortDefinitions(10002, 10003), lt.HealthCheck("HTTP", "", 0, 20, 20, 3),
			lt.HealthCheck("COMMAND", "", 0, 20, 20, 3), lt.Label("HAPROXY_0_MODE", "tcp"), lt.Tasks(lt.Task("h", 1, 2))),
		lt.App("hc2", lt.Group("external"), lt.PortDefinitions(10004), lt.HealthCheck("MESOS_HTTPS", "/x", 0, 20, 20, 3), lt.Tasks(lt.Task("h", 3))),
		lt.App("cmd", lt.Group("external"), lt.PortDefinitions(10005), lt.HealthCheck("COMMAND", "", 0, 20, 20, 3), lt.Tasks(lt.Task("h", 4))),
		lt.App("port", lt.Group("external"), lt.PortDefinitions(10006), lt.Label("HAPROXY_0_PORT", "10106"), lt.Tasks(lt.Task("h", 5))),
	}
	cfg, skipped := Build(apps, Options{})
	require.Empty(t, skipped)
	assert.Equal(t, []string{"a_b_10001", "apache-nfs-lb-01_10240", "cmd_10005", "hc2_10004", "hc_10002", "hc_10003", "port_10106"}, backends(cfg))

	web := service(t, cfg, "apache-nfs-lb-01_10240")
	assert.Equal(t, "192_168_2_16_31677", web.Servers[0].Name)
	assert.Equal(t, ModeTCP, web.Mode, "no vhost, no HTTP check: tcp")
	ab := service(t, cfg, "a_b_10001")
	assert.Equal(t, ModeHTTP, ab.Mode, "vhost: http")
	assert.Equal(t, "node-1_example_com_31001", ab.Servers[0].Name)
	assert.Equal(t, "node-1.example.com", ab.Servers[0].IP, "host names are not resolved")
	hc := service(t, cfg, "hc_10002")
	assert.Equal(t, ModeTCP, hc.Mode, "HAPROXY_0_MODE wins over the HTTP check")
	require.NotNil(t, hc.HealthCheck)
	assert.Equal(t, "/", hc.HealthCheck.Path, "empty HTTP path defaults to /")
	assert.Equal(t, 4, hc.HealthCheck.Falls())
	assert.Nil(t, service(t, cfg, "hc_10003").HealthCheck, "check on port index 0 only")
	hc2 := service(t, cfg, "hc2_10004")
	assert.Equal(t, ModeTCP, hc2.Mode, "only an HTTP check (not HTTPS or MESOS_*) makes a port http, as in marathon-lb")
	assert.Equal(t, "HTTPS", hc2.HealthCheck.Protocol)
	assert.Nil(t, service(t, cfg, "cmd_10005").HealthCheck, "COMMAND checks are ignored")
	assert.Equal(t, 10106, service(t, cfg, "port_10106").ServicePort)
}

func TestBuildBadLabelsIsolated(t *testing.T) {
	apps := []marathon.App{
		lt.App("good", lt.Group("external"), lt.PortDefinitions(10000), lt.Label("HAPROXY_0_VHOST", "good.example.com"), lt.Tasks(lt.Task("h", 1))),
		lt.App("badport", lt.Group("external"), lt.PortDefinitions(10001, 10002), lt.Label("HAPROXY_0_PORT", "x"), lt.Tasks(lt.Task("h", 2, 3))),
		lt.App("inject", lt.Group("external"), lt.PortDefinitions(10003), lt.Label("HAPROXY_0_BIND_ADDR", "1.2.3.4\nlisten x"), lt.Tasks(lt.Task("h", 4))),
		lt.App("badgroup", lt.Label("HAPROXY_GROUP", "external\nfrontend x"), lt.PortDefinitions(10004), lt.Tasks(lt.Task("h", 5))),
		lt.App("hcpath", lt.Group("external"), lt.PortDefinitions(10005), lt.HealthCheck("HTTP", "/a b", 0, 1, 1, 1), lt.Tasks(lt.Task("h", 6))),
		lt.App("zclash", lt.Group("external"), lt.PortDefinitions(10000), lt.Tasks(lt.Task("h", 7))),
		lt.App("http80", lt.Group("external"), lt.PortDefinitions(80), lt.Tasks(lt.Task("h", 8))),
	}
	cfg, skipped := Build(apps, Options{})
	assert.Equal(t, []string{"badport_10002", "good_10000"}, backends(cfg))
	var got []string
	for _, s := range skipped {
		assert.False(t, s.Filtered)
		got = append(got, s.AppID)
	}
	assert.Equal(t, []string{"/badgroup", "/badport", "/hcpath", "/http80", "/inject", "/zclash"}, got)

	cfg, _ = Build(apps[len(apps)-1:], Options{DontBindHTTPHTTPS: true})
	assert.Equal(t, []string{"http80_80"}, backends(cfg), "port 80 is free with --dont-bind-http-https")
}

func TestBuildDeterministic(t *testing.T) {
	var apps []marathon.App
	for i := range 30 {
		apps = append(apps, lt.App("app"+string(rune('a'+i%26))+"/x"+string(rune('a'+i/26)), lt.Group("external"),
			lt.ContainerNetwork(80, 11000+i), lt.Label("HAPROXY_0_VHOST", "v.example.com"),
			lt.Tasks(lt.WithIP(lt.Task("h2"), "10.0.0.2"), lt.WithIP(lt.Task("h1"), "10.0.0.1"))))
	}
	cfg, skipped := Build(apps, Options{})
	r := rand.New(rand.NewPCG(1, 2))
	for range 5 {
		shuffled := slices.Clone(apps)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		for i := range shuffled {
			tasks := slices.Clone(shuffled[i].Tasks)
			slices.Reverse(tasks)
			shuffled[i].Tasks = tasks
		}
		cfg2, skipped2 := Build(shuffled, Options{})
		assert.Equal(t, cfg, cfg2)
		assert.Equal(t, skipped, skipped2)
	}
	assert.True(t, slices.IsSorted(backends(cfg)))
}

func TestBuildDoesNotModifyInput(t *testing.T) {
	apps := []marathon.App{
		lt.App("blue", lt.Group("external"), lt.PortDefinitions(10000), lt.Label("HAPROXY_DEPLOYMENT_GROUP", "web"), lt.Tasks(lt.Task("h", 2), lt.Task("h", 1))),
		lt.App("green", lt.Group("external"), lt.PortDefinitions(10001), lt.Label("HAPROXY_DEPLOYMENT_GROUP", "web"), lt.Tasks(lt.Task("h", 3))),
	}
	before := slices.Clone(apps)
	before[0].Tasks = slices.Clone(apps[0].Tasks)
	cfg, _ := Build(apps, Options{})
	assert.Equal(t, before, apps)
	assert.Equal(t, []string{"web_10000"}, backends(cfg))
	assert.Len(t, cfg.Services[0].Servers, 3)
}

func TestBuildCanonicalID(t *testing.T) {
	app := lt.App("web", lt.Group("external"), lt.PortDefinitions(10000), lt.Tasks(lt.Task("h", 1)))
	app.ID = "web/"
	cfg, _ := Build([]marathon.App{app}, Options{})
	require.Len(t, cfg.Services, 1)
	assert.Equal(t, "/web", cfg.Services[0].AppID)
	assert.Equal(t, "web_10000", cfg.Services[0].Backend)
	assert.Equal(t, "web/", app.ID, "input untouched")
}

// TestServerID checks ids against the values marathon-lb's own tests give
// for its server id function, so that server state and stats carry over
// when a fleet switches from marathon-lb.
func TestServerID(t *testing.T) {
	tests := []struct {
		name  string
		cases [][2]any // name, id, in call order on one backend
	}{
		{"plain", [][2]any{{"0", 17068}, {"1", 25733}, {"a", 25929}, {"10_0_6_25_23336", 14676}}},
		{"collisions rehash", [][2]any{{"yftjqzplpu", 28876}, {"ttccbfrdhi", 7893}, {"ilvparharq", 22002},
			{"gpagkxfzou", 21805}, {"dcsfcvfolh", 20892}, {"tsqkugaath", 25675}}},
		{"server names", [][2]any{{"agent1_1_1_1_1_1024", 28363}, {"agent1_192_0_2_1_1234", 15582}, {"10_0_2_148_1565", 16827},
			{"10_0_1_147_25724", 9975}, {"10_0_6_25_16916", 14685}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			taken := map[int]bool{}
			for _, c := range tc.cases {
				assert.Equal(t, c[1], serverID(c[0].(string), taken), c[0])
			}
			assert.Len(t, taken, len(tc.cases))
		})
	}
	// A hash of 0 is never used as an id (each name alone).
	for name, id := range map[string]int{"uudnntiqtd": 26825, "rghtavdepy": 5030, "ofdsehlvjo": 26512, "adwquoyjfl": 24165, "oebmwvpofe": 11608} {
		assert.Equal(t, id, serverID(name, map[int]bool{}), name)
	}
	// Nearly full: every name still gets its own id.
	taken := map[int]bool{}
	for i := range 30000 {
		id := serverID(strconv.Itoa(i), taken)
		require.True(t, id > 0 && id < 32767, "id %d", id)
	}
	assert.Len(t, taken, 30000)
}

// TestBuildServerIDsInBackendOrder checks that ids are given in
// marathon-lb's order (servers sorted by host, then port), which decides
// who gets the rehashed id on a clash.
func TestBuildServerIDsInBackendOrder(t *testing.T) {
	app := lt.App("web", lt.Group("external"), lt.PortDefinitions(10000),
		lt.Tasks(lt.Task("10.0.6.25", 23336), lt.Task("10.0.1.147", 25724), lt.Task("10.0.6.25", 16916)))
	cfg, _ := Build([]marathon.App{app}, Options{})
	require.Len(t, cfg.Services, 1)
	var got [][2]any
	for _, s := range cfg.Services[0].Servers {
		got = append(got, [2]any{s.Name, s.ID})
	}
	assert.Equal(t, [][2]any{{"10_0_1_147_25724", 9975}, {"10_0_6_25_16916", 14685}, {"10_0_6_25_23336", 14676}}, got)
}

func TestBuildResolveHost(t *testing.T) {
	app := lt.App("web", lt.Group("external"), lt.PortDefinitions(10000),
		lt.Tasks(lt.Task("agent-1", 31000), lt.Task("agent-2", 31001), lt.Task("10.0.0.3", 31002), lt.Task("gone", 31003),
			lt.WithIP(lt.Task("gone-with-ip", 31004), "10.0.0.4")))
	table := map[string]string{"agent-1": "10.0.0.1", "agent-2": "10.0.0.2"}
	resolve := func(h string) (string, bool) { ip, ok := table[h]; return ip, ok }
	type srv struct{ name, host, ip string }
	servers := func(cfg *Config) []srv {
		var out []srv
		for _, s := range cfg.Services[0].Servers {
			out = append(out, srv{s.Name, s.Host, s.IP})
		}
		return out
	}
	tests := []struct {
		name    string
		resolve func(string) (string, bool)
		want    []srv
	}{
		{name: "no resolver: host names as they are", want: []srv{
			{"10_0_0_3_31002", "10.0.0.3", "10.0.0.3"}, {"agent-1_31000", "agent-1", "agent-1"},
			{"agent-2_31001", "agent-2", "agent-2"}, {"gone-with-ip_31004", "gone-with-ip", "gone-with-ip"}, {"gone_31003", "gone", "gone"},
		}},
		{name: "resolved: the address, both in the name; unresolved: the task's IP, else left out", resolve: resolve, want: []srv{
			{"10_0_0_3_31002", "10.0.0.3", "10.0.0.3"}, {"agent-1_10_0_0_1_31000", "agent-1", "10.0.0.1"},
			{"agent-2_10_0_0_2_31001", "agent-2", "10.0.0.2"}, {"gone-with-ip_10_0_0_4_31004", "gone-with-ip", "10.0.0.4"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _ := Build([]marathon.App{app}, Options{ResolveHost: tt.resolve})
			require.Len(t, cfg.Services, 1)
			got := servers(cfg)
			slices.SortFunc(got, func(a, b srv) int { return strings.Compare(a.name, b.name) })
			assert.Equal(t, tt.want, got)
		})
	}
}

// TestBuildUnresolvedHostReason checks that a port whose tasks all run on
// agents whose names do not resolve (and have no ipAddresses to fall back
// to) is skipped with that reason, not "no running task".
func TestBuildUnresolvedHostReason(t *testing.T) {
	app := lt.App("web", lt.Group("external"), lt.PortDefinitions(10000),
		lt.Tasks(lt.Task("gone-2", 31000), lt.Task("gone-1", 31001), lt.Task("gone-1", 31002)))
	none := func(string) (string, bool) { return "", false }
	cfg, skipped := Build([]marathon.App{app}, Options{ResolveHost: none})
	assert.Empty(t, cfg.Services)
	assert.Equal(t, []Skipped{{AppID: "/web", PortIndex: 0, Filtered: true,
		Reason: "no task with an address: agent host names gone-1, gone-2 do not resolve and the tasks have no ipAddresses"}}, skipped)
}

// BenchmarkServerID measures one id for a fresh backend (every server of
// every backend costs one).
func BenchmarkServerID(b *testing.B) {
	taken := map[int]bool{}
	for b.Loop() {
		clear(taken)
		if serverID("agent-1_10_0_0_1_31000", taken) == 0 {
			b.Fatal("no id")
		}
	}
}
