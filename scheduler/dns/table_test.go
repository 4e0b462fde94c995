package dns

import (
	"net/netip"
	"sort"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
)

func ips(ss ...string) []netip.Addr {
	out := make([]netip.Addr, 0, len(ss))
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func running(id, agent string, ports ...int) marathon.Task {
	return marathon.Task{ID: id, SlaveID: agent, Host: agent + ".example", State: marathon.TaskRunning, Ports: ports}
}

// testSnapshot is a small cluster: two agents, apps of every kind.
func testSnapshot() Snapshot {
	alive := marathon.HealthCheckResult{Alive: true}
	dead := marathon.HealthCheckResult{Alive: false}
	hc := []marathon.HealthCheck{{Protocol: "HTTP"}}
	staging := running("web.3", "a1-S1", 31003)
	staging.State = marathon.TaskStaging
	ok, bad, unknown := running("checked.1", "a1-S1", 31010), running("checked.2", "a2-S2", 31011), running("checked.3", "a2-S2", 31012)
	ok.HealthCheckResults = []marathon.HealthCheckResult{alive}
	bad.HealthCheckResults = []marathon.HealthCheckResult{dead}
	cni := running("cni.1", "a2-S2")
	cni.IPAddresses = []marathon.TaskIPAddress{{IPAddress: "172.16.0.9"}, {IPAddress: "fd00::9"}}
	return Snapshot{
		Agents: []Agent{
			{ID: "a1-S1", Hostname: "agent1.example", IPs: ips("10.0.0.1")},
			{ID: "a2-S2", Hostname: "agent2.example", IPs: ips("10.0.0.2", "2001:db8::2")},
		},
		Leader:     ips("10.0.0.100"),
		LeaderPort: 8080,
		Apps: []marathon.App{
			{ID: "/web", PortDefinitions: []marathon.PortDefinition{{Name: "http"}, {Protocol: "udp,tcp"}},
				Tasks: []marathon.Task{running("web.1", "a1-S1", 31001, 31101), running("web.2", "a2-S2", 31002, 31102), staging}},
			{ID: "/prod/api", Tasks: []marathon.Task{running("api.1", "a1-S1", 31020)}},
			{ID: "/checked", HealthChecks: hc, Tasks: []marathon.Task{ok, bad, unknown}},
			{ID: "/cni", Networks: []marathon.Network{{Mode: "container", Name: "dcos"}},
				Container: &marathon.Container{PortMappings: []marathon.PortMapping{{ContainerPort: 8080, Name: "api"}}},
				Tasks:     []marathon.Task{cni}},
		},
	}
}

func addrs(rs *rrset) []string {
	if rs == nil {
		return nil
	}
	var out []string
	for _, a := range append(append([]netip.Addr{}, rs.a...), rs.aaaa...) {
		out = append(out, a.String())
	}
	sort.Strings(out)
	return out
}

func srvs(rs *rrset) []string {
	if rs == nil {
		return nil
	}
	var out []string
	for _, s := range rs.srv {
		out = append(out, s.target+":"+strconv.Itoa(int(s.port)))
	}
	sort.Strings(out)
	return out
}

func TestBuild(t *testing.T) {
	tab := build("mesos.", "marathon", testSnapshot(), ips("10.0.0.53"))
	w1 := "web-" + taskHash("web.1") + "-s1.marathon."
	w2 := "web-" + taskHash("web.2") + "-s2.marathon."
	a := func(name string) []string { return addrs(tab.names[name]) }
	s := func(name string) []string { return srvs(tab.names[name]) }

	// Running tasks only; the agents' addresses (v4 and v6).
	assert.Equal(t, []string{"10.0.0.1", "10.0.0.2", "2001:db8::2"}, a("web.marathon.mesos."))
	assert.Equal(t, []string{"10.0.0.1"}, a(w1+"mesos."))
	assert.Equal(t, []string{"10.0.0.1", "10.0.0.2", "2001:db8::2"}, a("web.marathon.slave.mesos."))
	assert.Equal(t, []string{w1 + "mesos.:31001", w2 + "mesos.:31002"}, s("_http._web._tcp.marathon.mesos."))
	assert.Equal(t, []string{w1 + "mesos.:31001", w1 + "mesos.:31101", w2 + "mesos.:31002", w2 + "mesos.:31102"}, s("_web._tcp.marathon.mesos."))
	assert.Equal(t, []string{w1 + "mesos.:31101", w2 + "mesos.:31102"}, s("_web._udp.marathon.mesos."))
	assert.Len(t, s("_web._tcp.marathon.slave.mesos."), 4)
	assert.Equal(t, s("_web._tcp.marathon.slave.mesos."), s("_web._udp.marathon.slave.mesos."))
	assert.Contains(t, s("_web._tcp.marathon.slave.mesos."), w1+"slave.mesos.:31001")

	// Nested groups are flattened into one label.
	assert.Equal(t, []string{"10.0.0.1"}, a("api-prod.marathon.mesos."))
	assert.Len(t, s("_api-prod._tcp.marathon.mesos."), 1)

	// With health checks only the healthy tasks count.
	assert.Equal(t, []string{"10.0.0.1"}, a("checked.marathon.mesos."))
	assert.Len(t, s("_checked._tcp.marathon.mesos."), 1)

	// IP-per-task: the task's own addresses and its container port.
	c1 := "cni-" + taskHash("cni.1") + "-s2.marathon.mesos."
	assert.Equal(t, []string{"172.16.0.9", "fd00::9"}, a("cni.marathon.mesos."))
	assert.Equal(t, []string{"10.0.0.2", "2001:db8::2"}, a("cni.marathon.slave.mesos."))
	assert.Equal(t, []string{c1 + ":8080"}, s("_cni._tcp.marathon.mesos."))
	assert.Equal(t, []string{c1 + ":8080"}, s("_api._cni._tcp.marathon.mesos."))

	// Cluster records.
	assert.Equal(t, []string{"10.0.0.100"}, a("leader.mesos."))
	assert.Equal(t, []string{"10.0.0.100"}, a("master.mesos."))
	assert.Equal(t, []string{"10.0.0.100"}, a("marathon.mesos."))
	assert.Equal(t, []string{"leader.mesos.:8080"}, s("_leader._tcp.mesos."))
	assert.Equal(t, []string{"marathon.mesos.:8080"}, s("_framework._tcp.marathon.mesos."))
	assert.Equal(t, []string{"10.0.0.1", "10.0.0.2", "2001:db8::2"}, a("slave.mesos."))
	assert.Equal(t, []string{"10.0.0.2", "2001:db8::2"}, a("agent2.example.slave.mesos."))
	assert.Equal(t, []string{"10.0.0.53"}, a("ns1.mesos."))

	// Empty non-terminals exist; nothing else does.
	for _, ent := range []string{"_tcp.marathon.mesos.", "_web._tcp.marathon.mesos.", "marathon.slave.mesos.", "example.slave.mesos."} {
		_, isENT := tab.ents[ent]
		_, isName := tab.names[ent]
		assert.True(t, isENT || isName, ent)
	}
	_, ok := tab.ents["mesos."]
	assert.False(t, ok, "the apex is not an empty non-terminal")
	assert.Nil(t, tab.names["nope.marathon.mesos."])
	require.Equal(t, 5, tab.tasks) // web.1, web.2, api.1, checked.1, cni.1
}

func TestBuildSkipsWhatItCannot(t *testing.T) {
	snap := Snapshot{Apps: []marathon.App{
		{ID: "/", Tasks: []marathon.Task{running("x.1", "a-S0", 1)}},                       // no name
		{ID: "/nowhere", Tasks: []marathon.Task{{ID: "n.1", State: marathon.TaskRunning}}}, // no address at all
		{ID: "/badport", Tasks: []marathon.Task{{ID: "b.1", State: marathon.TaskRunning, Host: "10.1.1.1", Ports: []int{0, 70000, 80}}}},
	}}
	tab := build("mesos.", "marathon", snap, nil)
	assert.Equal(t, 1, tab.tasks)
	assert.Equal(t, []string{"10.1.1.1"}, addrs(tab.names["badport.marathon.mesos."]))
	assert.Len(t, srvs(tab.names["_badport._tcp.marathon.mesos."]), 1, "only the valid port")
	assert.Nil(t, tab.names["nowhere.marathon.mesos."])
}
