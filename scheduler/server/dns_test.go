package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/scheduler"
	"github.com/switchyard/switchyard/scheduler/dns"
	"github.com/switchyard/switchyard/scheduler/schedulertest"
	"github.com/switchyard/switchyard/scheduler/server"
)

// dnsEnv is a scheduler with three fake agents (127.0.0.2-4) and its DNS
// server on loopback, forwarding to a fake upstream on loopback.
type dnsEnv struct {
	*env
	dnsAddr string
	sick    *atomic.Bool // tasks of /sick fail their health checks
}

// newDNSEnv starts it; refresh 0 keeps the default (30s), so changes
// reach DNS through the scheduler's events alone.
func newDNSEnv(t *testing.T, refresh time.Duration) *dnsEnv {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	d, err := dns.New(dns.Config{
		Addr: "127.0.0.1:0", Domain: "mesos", Resolvers: []string{fakeUpstream(t)}, Timeout: 2 * time.Second, Refresh: refresh, Logger: logger,
		LookupHost: func(context.Context, string) ([]netip.Addr, error) { return nil, fmt.Errorf("no lookups in tests") },
	})
	require.NoError(t, err)
	require.NoError(t, d.Listen())
	h, sched, err := server.New(server.Config{
		Scheduler: scheduler.Config{AgentTimeout: 2 * time.Second, ReconcileInterval: 20 * time.Millisecond, Leader: "127.0.0.1:8080"},
		Logger:    logger,
		DNS:       d,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sched.Run(ctx) }()
	dnsDone := make(chan error, 1)
	go func() { dnsDone <- d.Run(ctx, server.DNSSource(sched)) }()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.BaseContext = func(net.Listener) context.Context { return ctx }
	srv.Start()

	e := &dnsEnv{env: &env{t: t, srv: srv, sched: sched, cancel: cancel, done: done}, dnsAddr: d.Addr(), sick: &atomic.Bool{}}
	agentCtx, stopAgents := context.WithCancel(context.Background())
	for i := range 3 {
		a := schedulertest.NewFakeAgent(sched, fmt.Sprintf("agent%d", i))
		a.Address = fmt.Sprintf("127.0.0.%d", i+2)
		a.Wait = 100 * time.Millisecond
		a.Healthy = func(id string) bool { return !strings.HasPrefix(id, "sick.") || !e.sick.Load() }
		e.agents = append(e.agents, a)
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			_ = a.Run(agentCtx)
		}()
	}
	t.Cleanup(func() {
		stopAgents()
		e.wg.Wait()
		e.stop()
		require.NoError(t, <-dnsDone)
	})
	e.waitFor("agents registered", func() bool {
		return !slices.ContainsFunc(e.agents, func(a *schedulertest.FakeAgent) bool { return a.ID() == "" })
	})
	<-d.Ready()
	return e
}

// fakeUpstream answers upstream.example. A 192.0.2.53, NXDOMAIN otherwise.
func fakeUpstream(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &mdns.Server{PacketConn: pc, Handler: mdns.HandlerFunc(func(w mdns.ResponseWriter, r *mdns.Msg) {
		m := new(mdns.Msg)
		m.SetReply(r)
		if r.Question[0].Name == "upstream.example." && r.Question[0].Qtype == mdns.TypeA {
			rr, _ := mdns.NewRR("upstream.example. 60 IN A 192.0.2.53")
			m.Answer = append(m.Answer, rr)
		} else {
			m.Rcode = mdns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return pc.LocalAddr().String()
}

func (e *dnsEnv) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, e.dnsAddr)
	}}
}

// tasks returns the running tasks of an app.
func (e *dnsEnv) runningTasks(id string) []marathon.Task {
	var r marathon.TasksResponse
	e.doJSON("GET", "/v2/apps"+id+"/tasks", nil, http.StatusOK, &r)
	var out []marathon.Task
	for _, t := range r.Tasks {
		if t.State == marathon.TaskRunning {
			out = append(out, t)
		}
	}
	return out
}

// agentAddr is the address of the fake agent a task runs on.
func (e *dnsEnv) agentAddr(t marathon.Task) string {
	for _, a := range e.agents {
		if a.ID() == t.SlaveID {
			return a.Address
		}
	}
	return ""
}

// wantDNS is what DNS should say about an app's tasks: the agents'
// addresses and, per host port, the agent address behind it.
func (e *dnsEnv) wantDNS(tasks []marathon.Task) (addrs []string, ports map[uint16]string) {
	ports = map[uint16]string{}
	for _, t := range tasks {
		if a := e.agentAddr(t); !slices.Contains(addrs, a) {
			addrs = append(addrs, a)
		}
		for _, p := range t.Ports {
			ports[uint16(p)] = e.agentAddr(t)
		}
	}
	sort.Strings(addrs)
	return addrs, ports
}

// gotDNS asks Go's resolver for name's A records and _name._tcp's SRV
// records, resolving every SRV target in turn.
func (e *dnsEnv) gotDNS(name string) (addrs []string, ports map[uint16]string, err error) {
	ctx := context.Background()
	r := e.resolver()
	ports = map[uint16]string{}
	addrs, err = r.LookupHost(ctx, name+".marathon.mesos.")
	if err != nil {
		return nil, nil, err
	}
	sort.Strings(addrs)
	_, srvs, err := r.LookupSRV(ctx, name, "tcp", "marathon.mesos.")
	if err != nil {
		return nil, nil, err
	}
	for _, s := range srvs {
		ips, err := r.LookupHost(ctx, s.Target)
		if err != nil || len(ips) != 1 {
			return nil, nil, fmt.Errorf("target %s: %v %w", s.Target, ips, err)
		}
		ports[s.Port] = ips[0]
	}
	return addrs, ports, nil
}

// waitDNSMatches waits until DNS shows exactly the app's running tasks.
func (e *dnsEnv) waitDNSMatches(appID, name string, n int) {
	e.t.Helper()
	var want, got []string
	var wantPorts, gotPorts map[uint16]string
	var err error
	e.waitFor(fmt.Sprintf("DNS shows the %d tasks of %s", n, appID), func() bool {
		tasks := e.runningTasks(appID)
		if len(tasks) != n {
			return false
		}
		want, wantPorts = e.wantDNS(tasks)
		got, gotPorts, err = e.gotDNS(name)
		return err == nil && slices.Equal(want, got) && fmt.Sprint(wantPorts) == fmt.Sprint(gotPorts)
	})
}

// nxdomain reports whether name is unknown to the DNS server.
func (e *dnsEnv) nxdomain(name string) bool {
	_, err := e.resolver().LookupHost(context.Background(), name)
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}

func TestDNSFollowsTasks(t *testing.T) {
	e := newDNSEnv(t, 0)
	e.doJSON("POST", "/v2/apps", map[string]any{"id": "/web", "cmd": "sleep 1000", "instances": 3, "cpus": 0.1, "mem": 16,
		"portDefinitions": []map[string]any{{"port": 0, "name": "http"}, {"port": 0}}}, http.StatusCreated, nil)
	e.doJSON("POST", "/v2/apps", map[string]any{"id": "/prod/api", "cmd": "sleep 1000", "instances": 1, "cpus": 0.1, "mem": 16,
		"portDefinitions": []map[string]any{{"port": 0}}}, http.StatusCreated, nil)
	e.settled("/web", 3)
	e.waitDNSMatches("/web", "web", 3)
	e.waitDNSMatches("/prod/api", "api-prod", 1) // nested group, flattened

	// A killed task leaves DNS once its status arrives.
	tasks := e.runningTasks("/web")
	victim := tasks[0]
	e.doJSON("DELETE", "/v2/apps/web/tasks/"+victim.ID+"?scale=true", nil, http.StatusOK, nil)
	e.waitDNSMatches("/web", "web", 2)
	_, ports, err := e.gotDNS("web")
	require.NoError(t, err)
	for _, p := range victim.Ports {
		assert.NotContains(t, ports, uint16(p), "the killed task's port is gone")
	}

	// Scaling down shows too.
	e.doJSON("PUT", "/v2/apps/web", map[string]any{"instances": 1}, http.StatusOK, nil)
	e.waitDNSMatches("/web", "web", 1)

	// Named ports and the HTTP API on the scheduler's own address.
	task := e.runningTasks("/web")[0]
	_, named, err := e.resolver().LookupSRV(context.Background(), "", "", "_http._web._tcp.marathon.mesos.")
	require.NoError(t, err)
	require.Len(t, named, 1)
	assert.Equal(t, uint16(task.Ports[0]), named[0].Port)
	var services []map[string]string
	e.doJSON("GET", "/v1/services/_web._tcp.marathon.mesos", nil, http.StatusOK, &services)
	require.Len(t, services, 2)
	for _, s := range services {
		assert.Equal(t, e.agentAddr(task), s["ip"])
		assert.Contains(t, []string{strconv.Itoa(task.Ports[0]), strconv.Itoa(task.Ports[1])}, s["port"])
	}
	var hosts []map[string]string
	e.doJSON("GET", "/v1/hosts/leader.mesos", nil, http.StatusOK, &hosts)
	assert.Equal(t, []map[string]string{{"host": "leader.mesos.", "ip": "127.0.0.1"}}, hosts)
	var version map[string]string
	e.doJSON("GET", "/v1/version", nil, http.StatusOK, &version)
	assert.Equal(t, "Mesos-DNS", version["Service"])

	// Cluster names; unknown names; forwarded names.
	slaves, err := e.resolver().LookupHost(context.Background(), "slave.mesos.")
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}, slaves)
	agent1, err := e.resolver().LookupHost(context.Background(), "agent1.slave.mesos.")
	require.NoError(t, err)
	assert.Equal(t, []string{"127.0.0.3"}, agent1)
	assert.True(t, e.nxdomain("nope.marathon.mesos."))
	up, err := e.resolver().LookupHost(context.Background(), "upstream.example.")
	require.NoError(t, err)
	assert.Equal(t, []string{"192.0.2.53"}, up)
	assert.True(t, e.nxdomain("missing.example."), "upstream NXDOMAIN comes through")

	// Deleting the app removes its names.
	e.doJSON("DELETE", "/v2/apps/web", nil, http.StatusOK, nil)
	e.waitFor("web gone from DNS", func() bool { return e.nxdomain("web.marathon.mesos.") })
}

func TestDNSHealthChecks(t *testing.T) {
	e := newDNSEnv(t, 0)
	e.doJSON("POST", "/v2/apps", map[string]any{"id": "/sick", "cmd": "sleep 1000", "instances": 2, "cpus": 0.1, "mem": 16,
		"portDefinitions": []map[string]any{{"port": 0}},
		"healthChecks": []map[string]any{{"protocol": "HTTP", "path": "/", "gracePeriodSeconds": 300, "intervalSeconds": 1,
			"timeoutSeconds": 1, "maxConsecutiveFailures": 0}}}, http.StatusCreated, nil)
	e.waitFor("healthy", func() bool { return e.app("/sick").TasksHealthy == 2 })
	e.waitDNSMatches("/sick", "sick", 2)

	// Failing health checks take the tasks out of DNS (the tasks keep
	// running: maxConsecutiveFailures 0 never kills them).
	e.sick.Store(true)
	e.waitFor("unhealthy", func() bool { return e.app("/sick").TasksUnhealthy == 2 })
	e.waitFor("sick gone from DNS", func() bool { return e.nxdomain("sick.marathon.mesos.") })
	assert.Len(t, e.runningTasks("/sick"), 2, "still running, just not in DNS")

	e.sick.Store(false)
	e.waitDNSMatches("/sick", "sick", 2)
}

func TestDNSDig(t *testing.T) {
	dig, err := exec.LookPath("dig")
	if err != nil {
		if testing.Short() {
			t.Skip("dig not installed (-short)")
		}
		t.Fatal("dig is missing: install dnsutils (.ci/prereqs.sh test)")
	}
	e := newDNSEnv(t, 0)
	e.doJSON("POST", "/v2/apps", map[string]any{"id": "/shop/cart", "cmd": "sleep 1000", "instances": 2, "cpus": 0.1, "mem": 16,
		"portDefinitions": []map[string]any{{"port": 0}}}, http.StatusCreated, nil)
	e.settled("/shop/cart", 2)
	e.waitDNSMatches("/shop/cart", "cart-shop", 2)
	host, port, err := net.SplitHostPort(e.dnsAddr)
	require.NoError(t, err)
	run := func(args ...string) []string {
		out, err := exec.Command(dig, append([]string{"@" + host, "-p", port, "+time=5", "+tries=1"}, args...)...).CombinedOutput()
		require.NoError(t, err, "%s", out)
		lines := strings.Fields(strings.TrimSpace(string(out)))
		sort.Strings(lines)
		return lines
	}
	want, wantPorts := e.wantDNS(e.runningTasks("/shop/cart"))
	assert.Equal(t, want, run("+short", "cart-shop.marathon.mesos", "A"))
	srv := strings.Join(run("+short", "_cart-shop._tcp.marathon.mesos", "SRV"), " ")
	for p := range wantPorts {
		assert.Contains(t, srv, " "+strconv.Itoa(int(p))+" ")
	}
	assert.Contains(t, strings.Join(run("nope.marathon.mesos", "A"), " "), "NXDOMAIN")
	assert.Equal(t, []string{"192.0.2.53"}, run("+short", "upstream.example", "A"))
}

func TestDNSAgentLeaves(t *testing.T) {
	// An agent without tasks publishes no event when it goes: the
	// periodic refresh notices.
	e := newDNSEnv(t, 100*time.Millisecond)
	slaves := func() []string {
		ips, err := e.resolver().LookupHost(context.Background(), "slave.mesos.")
		if err != nil {
			return nil // none yet
		}
		sort.Strings(ips)
		return ips
	}
	// Registering publishes no event either.
	e.waitFor("all agents in DNS", func() bool {
		return slices.Equal(slaves(), []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"})
	})
	e.agents[0].Pause()
	e.waitFor("agent0 unreachable and out of DNS", func() bool {
		return slices.Equal(slaves(), []string{"127.0.0.3", "127.0.0.4"}) && e.nxdomain("agent0.slave.mesos.")
	})
	e.agents[0].Resume()
	e.waitFor("agent0 back", func() bool { return len(slaves()) == 3 })
}
