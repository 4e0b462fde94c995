//go:build e2e_docker

// The Docker end-to-end test (issue 4): the operator walkthrough on a
// cluster of containers. It is behind the e2e_docker build tag because it
// takes over host-wide names (a docker network, a host interface) and
// minutes of wall time; run it with .ci/e2e-docker.sh, which builds the
// images first. The topology is described in docs/docker.md.
package docker_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/scheduler/agent/driver/docker"
)

const (
	e2eNetwork   = "sy-e2e"
	e2eSubnet    = "172.31.250.0/24"
	e2eGateway   = "172.31.250.1"
	e2eIPRange   = "172.31.250.128/25"
	e2eSchedIP   = "172.31.250.10"
	e2eHostIface = "sy-e2e0"
	e2eLabel     = "switchyard.e2e"

	vhost01 = "server-26.virtualstack2.gatuvelus.home"
	vhost02 = "server-24.virtualstack2.gatuvelus.home"
	text01  = "HELLO MESOS WORLD"
	text02  = "HELLO WORLD OF MARATHON-LB"

	// inactiveAfter is the apps' unreachableStrategy.inactiveAfterSeconds.
	inactiveAfter = 10
)

// e2eImage returns the image for a role, overridable by env (E2E_TAG).
func e2eImage(name string) string {
	tag := os.Getenv("E2E_TAG")
	if tag == "" {
		tag = "dev"
	}
	return "switchyard/" + name + ":" + tag
}

// node is one simulated machine: an agent container (whose network
// namespace the LB shares) and a host address its tasks publish on.
type node struct {
	name    string // "node-1"
	agent   string // container name
	lb      string // container name
	agentIP string // on the e2e network: where the LB answers
	nodeIP  string // on the host: where the node's tasks publish ports
	owner   string // the agent's docker driver owner (its --hostname)
	dataDir string // the agent's --data-dir: a host dir mounted at the same path
}

type cluster struct {
	t     *testing.T
	api   *client.Client
	http  *http.Client
	dir   string
	nodes []*node
}

func (c *cluster) marathonURL() string { return "http://" + e2eSchedIP + ":8080" }

// Role command lines. Keep them in one place: they follow cmd/scheduler,
// cmd/agent and cmd/lb's flags.
func schedulerCmd() []string {
	return []string{"scheduler", "--http-addr", ":8080", "--insecure-no-auth", "--data-dir", "/var/lib/switchyard", "--agent-timeout", "5s",
		"--agent-secret-file", e2eSecretPath}
}

// e2eSecretPath is where the cluster secret agents authenticate with is
// mounted in the scheduler and agent containers.
const e2eSecretPath = "/etc/switchyard/agent-secret"

func agentCmd(c *cluster, n *node) []string {
	return []string{"agent", "--docker",
		"--master", c.marathonURL(),
		"--hostname", n.nodeIP,
		"--address", n.nodeIP,
		// The same path on the host and in the agent container, so that
		// task sandboxes can be mounted into task containers.
		"--data-dir", n.dataDir,
		"--resources", "cpus:4;mem:4096;disk:10000;ports:[31000-32000]",
		"--attributes", "node:" + n.name,
		"--secret-file", e2eSecretPath,
	}
}

func agentEnv(n *node) []string {
	return []string{
		docker.EnvBridgeNetwork + "=" + e2eNetwork,
		docker.EnvPortBindIP + "=" + n.nodeIP,
	}
}

func lbCmd(c *cluster) []string {
	return []string{"sse", "--marathon", c.marathonURL(), "--group", "webapps01"}
}

func TestClusterE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("docker cluster e2e skipped in -short mode")
	}
	c := newCluster(t)
	report := &e2eReport{}
	defer func() { report.print(t) }()

	// 1. The walkthrough's apps, as DOCKER/BRIDGE apps on testweb.
	c.putApp(app("apache-nfs-lb-01", 10240, vhost01, filepath.Join(c.dir, "webdir-01"), 2))
	c.putApp(app("apache-nfs-lb-02", 10241, vhost02, filepath.Join(c.dir, "webdir-02"), 2))
	start := time.Now()
	c.waitConverged("apache-nfs-lb-01", 2, 90*time.Second)
	c.waitConverged("apache-nfs-lb-02", 2, 60*time.Second)
	report.add("initial deploy: both apps running and routed on every LB", time.Since(start), -1)

	hosts := c.taskHosts("apache-nfs-lb-01")
	t.Logf("apache-nfs-lb-01 tasks on hosts %v", hosts)
	c.checkSandboxMounted()

	// 2. The walkthrough's curl sequence, against both LB nodes.
	for _, n := range c.nodes {
		c.expect(n, "http://"+n.agentIP+":10240/", "", 200, text01)
		c.expect(n, "http://"+n.agentIP+":10241/", "", 200, text02)
		c.expect(n, "http://"+n.agentIP+"/", vhost01, 200, text01)
		c.expect(n, "http://"+n.agentIP+"/", vhost02, 200, text02)
		c.expect(n, "http://"+n.agentIP+"/", "unknown.example.com", 503, "No server is available to handle this request.")
		c.expect(n, "http://"+n.agentIP+":9090/haproxy?stats", "", 200, "Statistics Report")
	}

	// 3. A steady request loop against both nodes through scale and restart.
	probes := c.startProbes(c.nodes)

	probes.mark("scale")
	start = time.Now()
	c.scale("apache-nfs-lb-01", 3)
	c.waitConverged("apache-nfs-lb-01", 3, 60*time.Second)
	report.add("scale 2 -> 3: running, healthy and routed on every LB", time.Since(start), probes.failures("scale"))

	probes.mark("restart")
	start = time.Now()
	before := c.taskIDs("apache-nfs-lb-01")
	c.restart("apache-nfs-lb-01")
	c.waitReplaced("apache-nfs-lb-01", before, 3, 120*time.Second)
	report.add("rolling restart of 3 tasks: all replaced and routed", time.Since(start), probes.failures("restart"))
	assert.Zero(t, probes.failures("scale")+probes.failures("restart"), "requests failed during scale or rolling restart: %v", probes.failureSamples())

	// 4. Kill one task container behind the scheduler's back.
	probes.mark("kill")
	start = time.Now()
	victim := c.taskIDs("apache-nfs-lb-01")[0]
	c.killTaskContainer(victim)
	c.waitReplaced("apache-nfs-lb-01", []string{victim}, 3, 90*time.Second)
	report.add("docker kill of one task: replaced and routed", time.Since(start), probes.failures("kill"))

	// 5. Restart the scheduler: nothing is lost, traffic is untouched.
	probes.mark("scheduler-restart")
	ids01, ids02 := c.taskIDs("apache-nfs-lb-01"), c.taskIDs("apache-nfs-lb-02")
	start = time.Now()
	require.NoError(t, c.api.ContainerRestart(t.Context(), "sy-e2e-scheduler", container.StopOptions{}))
	c.waitAPI(60 * time.Second)
	apiBack := time.Since(start)
	c.waitConverged("apache-nfs-lb-01", 3, 60*time.Second)
	c.waitConverged("apache-nfs-lb-02", 2, 60*time.Second)
	report.add("scheduler restart: API back", apiBack, -1)
	report.add("scheduler restart: apps reconciled", time.Since(start), probes.failures("scheduler-restart"))
	require.ElementsMatch(t, ids01, c.taskIDs("apache-nfs-lb-01"), "tasks survive a scheduler restart")
	require.ElementsMatch(t, ids02, c.taskIDs("apache-nfs-lb-02"), "tasks survive a scheduler restart")
	assert.Zero(t, probes.failures("scheduler-restart"), "requests failed during the scheduler restart: %v", probes.failureSamples())

	// 6. Lose a node: the one running most tasks.
	lost, survivor := c.busiestNode()
	probes.stopNode(lost)
	probes.mark("node-loss")
	start = time.Now()
	c.loseNode(lost)
	c.waitAllOn(survivor, map[string]int{"apache-nfs-lb-01": 3, "apache-nfs-lb-02": 2}, time.Duration(inactiveAfter)*time.Second+120*time.Second)
	report.add(fmt.Sprintf("node loss (%s): all tasks replaced on %s and routed", lost.name, survivor.name), time.Since(start), probes.failures("node-loss"))
	span, bursts := probes.impaired("node-loss")
	report.add(fmt.Sprintf("node loss: traffic impaired on the surviving LB (%d bursts of failures)", bursts), span, -1)
	c.expect(survivor, "http://"+survivor.agentIP+":10240/", "", 200, text01)
	c.expect(survivor, "http://"+survivor.agentIP+"/", vhost02, 200, text02)
	probes.stop()
	report.add("requests sent in total", 0, probes.total())
	t.Logf("failed requests (first 10): %v", probes.failureSamples())
}

// ---- cluster setup and teardown ----

func newCluster(t *testing.T) *cluster {
	api, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	require.NoError(t, err)
	t.Cleanup(func() { _ = api.Close() })
	if _, err := api.Ping(t.Context()); err != nil {
		if os.Getenv("SKIP_DOCKER") == "1" {
			t.Skipf("SKIP_DOCKER=1: Docker tests left out on request (%v)", err)
		}
		t.Fatalf("prerequisite missing: no Docker engine answers (%v); SKIP_DOCKER=1 leaves the Docker tests out", err)
	}
	for _, img := range []string{e2eImage("cluster"), e2eImage("lb"), e2eImage("testweb")} {
		_, err := api.ImageInspect(t.Context(), img)
		require.NoError(t, err, "image %s missing: run .ci/images.sh first", img)
	}
	c := &cluster{
		t: t, api: api,
		http: &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
		dir:  t.TempDir(),
	}
	c.teardown() // leftovers of an interrupted run
	t.Cleanup(func() {
		if t.Failed() {
			c.dumpLogs()
		}
		if os.Getenv("E2E_KEEP") != "" {
			t.Log("E2E_KEEP set: leaving the cluster up (rerun the test to clean it up)")
			return
		}
		c.teardown()
	})

	// Shared "NFS" volumes.
	for dir, text := range map[string]string{"webdir-01": text01, "webdir-02": text02} {
		p := filepath.Join(c.dir, dir)
		require.NoError(t, os.MkdirAll(p, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(p, "index.html"), []byte(text+"\n"), 0o644))
	}
	require.NoError(t, os.Chmod(c.dir, 0o755))

	// Node addresses on the host, and the private network.
	run(t, "ip", "link", "add", e2eHostIface, "type", "bridge")
	run(t, "ip", "addr", "add", "10.213.0.1/32", "dev", e2eHostIface)
	run(t, "ip", "addr", "add", "10.213.0.2/32", "dev", e2eHostIface)
	run(t, "ip", "link", "set", e2eHostIface, "up")
	_, err = api.NetworkCreate(t.Context(), e2eNetwork, network.CreateOptions{
		Driver: "bridge",
		Labels: map[string]string{e2eLabel: "1"},
		// Task containers take addresses from the upper half only, so the
		// fixed addresses of the scheduler and agents stay free.
		IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: e2eSubnet, IPRange: e2eIPRange, Gateway: e2eGateway}}},
	})
	require.NoError(t, err)

	secret := filepath.Join(c.dir, "agent-secret")
	require.NoError(t, os.WriteFile(secret, []byte("e2e-cluster-secret\n"), 0o600))
	secretBind := secret + ":" + e2eSecretPath + ":ro"
	c.runContainer("sy-e2e-scheduler", e2eImage("cluster"), schedulerCmd(), nil, e2eSchedIP, []string{secretBind}, "")
	c.waitAPI(60 * time.Second)
	for i := 1; i <= 2; i++ {
		n := &node{
			name:    fmt.Sprintf("node-%d", i),
			agent:   fmt.Sprintf("sy-e2e-agent-%d", i),
			lb:      fmt.Sprintf("sy-e2e-lb-%d", i),
			agentIP: fmt.Sprintf("172.31.250.%d", 10+i),
			nodeIP:  fmt.Sprintf("10.213.0.%d", i),
		}
		n.owner = n.nodeIP // cmd/agent owns containers as its --hostname
		n.dataDir = filepath.Join(t.TempDir(), "agent")
		require.NoError(t, os.MkdirAll(n.dataDir, 0o755))
		c.nodes = append(c.nodes, n)
		c.runContainer(n.agent, e2eImage("cluster"), agentCmd(c, n), agentEnv(n), n.agentIP,
			[]string{"/var/run/docker.sock:/var/run/docker.sock", n.dataDir + ":" + n.dataDir, secretBind}, n.agent)
		c.runLB(n)
	}
	return c
}

func (c *cluster) runContainer(name, image string, cmd, env []string, ip string, binds []string, hostname string) {
	t := c.t
	cfg := &container.Config{Image: image, Cmd: cmd, Env: env, Hostname: hostname, Labels: map[string]string{e2eLabel: "1"}}
	host := &container.HostConfig{NetworkMode: e2eNetwork, Binds: binds, RestartPolicy: container.RestartPolicy{Name: "no"}}
	netcfg := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		e2eNetwork: {IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: ip}},
	}}
	_, err := c.api.ContainerCreate(t.Context(), cfg, host, netcfg, nil, name)
	require.NoError(t, err, "create %s", name)
	require.NoError(t, c.api.ContainerStart(t.Context(), name, container.StartOptions{}), "start %s", name)
}

// runLB starts the walkthrough's LB command in the agent's network
// namespace (`--net=host` semantics on a simulated node).
func (c *cluster) runLB(n *node) {
	t := c.t
	cfg := &container.Config{Image: e2eImage("lb"), Cmd: lbCmd(c), Env: []string{"PORTS=9090"}, Labels: map[string]string{e2eLabel: "1"}}
	// The walkthrough adds --privileged; this engine cannot grant it
	// ("unable to apply caps") and the LB does not need it.
	host := &container.HostConfig{NetworkMode: container.NetworkMode("container:" + n.agent)}
	_, err := c.api.ContainerCreate(t.Context(), cfg, host, nil, nil, n.lb)
	require.NoError(t, err, "create %s", n.lb)
	require.NoError(t, c.api.ContainerStart(t.Context(), n.lb, container.StartOptions{}), "start %s", n.lb)
}

// teardown removes everything the test created: its containers, the task
// containers its agents started, the network and the host interface.
func (c *cluster) teardown() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, f := range []filters.Args{
		filters.NewArgs(filters.Arg("label", e2eLabel)),
		filters.NewArgs(filters.Arg("label", docker.LabelOwner+"=10.213.0.1")),
		filters.NewArgs(filters.Arg("label", docker.LabelOwner+"=10.213.0.2")),
	} {
		list, err := c.api.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
		if err != nil {
			c.t.Logf("teardown: list: %v", err)
			continue
		}
		// LBs first: they share their agent's namespace.
		sort.Slice(list, func(i, j int) bool { return strings.Contains(list[i].Names[0], "-lb-") })
		for _, ct := range list {
			if err := c.api.ContainerRemove(ctx, ct.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !errdefs.IsNotFound(err) {
				c.t.Logf("teardown: remove %v: %v", ct.Names, err)
			}
		}
	}
	if err := c.api.NetworkRemove(ctx, e2eNetwork); err != nil && !errdefs.IsNotFound(err) {
		c.t.Logf("teardown: network: %v", err)
	}
	_ = exec.Command("ip", "link", "del", e2eHostIface).Run()
}

func (c *cluster) dumpLogs() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	names := []string{"sy-e2e-scheduler"}
	for _, n := range c.nodes {
		names = append(names, n.agent, n.lb)
	}
	for _, name := range names {
		rc, err := c.api.ContainerLogs(ctx, name, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: "60"})
		if err != nil {
			c.t.Logf("logs %s: %v", name, err)
			continue
		}
		var out bytes.Buffer
		_, _ = io.Copy(&out, rc)
		rc.Close()
		c.t.Logf("==== last logs of %s ====\n%s", name, demux(out.Bytes()))
	}
}

// demux strips the 8-byte frame headers of a non-TTY log stream.
func demux(b []byte) string {
	var out strings.Builder
	for len(b) >= 8 {
		n := int(b[4])<<24 | int(b[5])<<16 | int(b[6])<<8 | int(b[7])
		b = b[8:]
		if n > len(b) {
			n = len(b)
		}
		out.Write(b[:n])
		b = b[n:]
	}
	return out.String()
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	require.NoError(t, err, "%s %v: %s", name, args, out)
}

// ---- Marathon API ----

func app(id string, servicePort int, vhost, dir string, instances int) map[string]any {
	return map[string]any{
		"id": "/" + id, "instances": instances, "cpus": 0.1, "mem": 32,
		// httpd's htdocs, plus a drain: the scheduler signals a task while
		// the LBs are still being told it goes away (the same event), so
		// a task that closes its port at once fails the few requests
		// already on their way to it. testweb keeps serving for 1s after
		// SIGTERM (within the 3s kill grace period), as a production app
		// behind a load balancer should.
		"args": []string{"--listen", ":80", "--dir", "/usr/local/apache2/htdocs", "--shutdown-delay", "1s"},
		"container": map[string]any{
			"type": "DOCKER",
			"docker": map[string]any{
				"image": e2eImage("testweb"), "forcePullImage": true, "network": "BRIDGE",
				"portMappings": []any{map[string]any{"containerPort": 80, "hostPort": 0, "servicePort": servicePort, "protocol": "tcp"}},
			},
			"volumes": []any{map[string]any{"containerPath": "/usr/local/apache2/htdocs", "hostPath": dir, "mode": "RW"}},
		},
		"labels": map[string]string{"HAPROXY_GROUP": "webapps01", "HAPROXY_0_VHOST": vhost},
		"healthChecks": []any{map[string]any{
			"protocol": "HTTP", "path": "/", "portIndex": 0, "gracePeriodSeconds": 10,
			"intervalSeconds": 2, "timeoutSeconds": 2, "maxConsecutiveFailures": 3,
		}},
		"upgradeStrategy":     map[string]any{"minimumHealthCapacity": 1, "maximumOverCapacity": 1},
		"unreachableStrategy": map[string]any{"inactiveAfterSeconds": inactiveAfter, "expungeAfterSeconds": 2 * inactiveAfter},
	}
}

func (c *cluster) do(method, path string, body any, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(c.t.Context(), method, c.marathonURL()+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode >= 300 {
		return resp.StatusCode, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: decode: %w (%s)", method, path, err, b)
		}
	}
	return resp.StatusCode, nil
}

func (c *cluster) waitAPI(within time.Duration) {
	c.eventually(within, "scheduler API answers /v2/info", func() error {
		_, err := c.do("GET", "/v2/info", nil, nil)
		return err
	})
}

func (c *cluster) putApp(a map[string]any) {
	_, err := c.do("POST", "/v2/apps", a, nil)
	require.NoError(c.t, err)
}

func (c *cluster) scale(id string, n int) {
	_, err := c.do("PUT", "/v2/apps/"+id, map[string]any{"instances": n}, nil)
	require.NoError(c.t, err)
}

func (c *cluster) restart(id string) {
	_, err := c.do("POST", "/v2/apps/"+id+"/restart", map[string]any{}, nil)
	require.NoError(c.t, err)
}

type apiTask struct {
	ID                 string `json:"id"`
	Host               string `json:"host"`
	Ports              []int  `json:"ports"`
	State              string `json:"state"`
	HealthCheckResults []struct {
		Alive bool `json:"alive"`
	} `json:"healthCheckResults"`
}

func (c *cluster) tasks(id string) ([]apiTask, error) {
	var out struct {
		Tasks []apiTask `json:"tasks"`
	}
	_, err := c.do("GET", "/v2/apps/"+id+"/tasks", nil, &out)
	return out.Tasks, err
}

// healthyTasks are running tasks whose health checks all pass.
func (c *cluster) healthyTasks(id string) ([]apiTask, error) {
	all, err := c.tasks(id)
	if err != nil {
		return nil, err
	}
	var out []apiTask
	for _, tk := range all {
		if tk.State != "TASK_RUNNING" || len(tk.Ports) == 0 || len(tk.HealthCheckResults) == 0 {
			continue
		}
		alive := true
		for _, h := range tk.HealthCheckResults {
			alive = alive && h.Alive
		}
		if alive {
			out = append(out, tk)
		}
	}
	return out, nil
}

func (c *cluster) taskIDs(id string) []string {
	tks, err := c.healthyTasks(id)
	require.NoError(c.t, err)
	var ids []string
	for _, tk := range tks {
		ids = append(ids, tk.ID)
	}
	sort.Strings(ids)
	return ids
}

func (c *cluster) taskHosts(id string) []string {
	tks, err := c.tasks(id)
	require.NoError(c.t, err)
	var hosts []string
	for _, tk := range tks {
		hosts = append(hosts, tk.Host)
	}
	return hosts
}

// ---- convergence ----

func (c *cluster) eventually(within time.Duration, what string, f func() error) {
	c.t.Helper()
	deadline := time.Now().Add(within)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	c.t.Fatalf("%s: not reached within %s: %v", what, within, err)
}

// backends names the LB backend of each app (app id + servicePort).
var backends = map[string]string{"apache-nfs-lb-01": "apache-nfs-lb-01_10240", "apache-nfs-lb-02": "apache-nfs-lb-02_10241"}

// converged says whether the app has exactly n healthy tasks (and no
// deployment in flight) and every live LB routes to exactly those.
func (c *cluster) converged(id string, n int, nodes []*node) error {
	tks, err := c.healthyTasks(id)
	if err != nil {
		return err
	}
	all, err := c.tasks(id)
	if err != nil {
		return err
	}
	if len(tks) != n || len(all) != n {
		return fmt.Errorf("%s: %d healthy of %d tasks, want %d", id, len(tks), len(all), n)
	}
	var want []string
	for _, tk := range tks {
		// The LB names servers from host and port, as marathon-lb does
		// (HAProxy's CSV leaves the addr column empty without legends).
		want = append(want, strings.NewReplacer(".", "_", ":", "_").Replace(fmt.Sprintf("%s_%d", tk.Host, tk.Ports[0])))
	}
	sort.Strings(want)
	for _, nd := range nodes {
		got, err := c.lbServers(nd, backends[id])
		if err != nil {
			return err
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("%s on %s routes to %v, want %v", id, nd.name, got, want)
		}
	}
	return nil
}

func (c *cluster) waitConverged(id string, n int, within time.Duration) {
	c.t.Helper()
	c.eventually(within, fmt.Sprintf("%s converged to %d", id, n), func() error { return c.converged(id, n, c.nodes) })
}

// waitReplaced waits until none of old is among the app's tasks and the
// app has converged to n.
func (c *cluster) waitReplaced(id string, old []string, n int, within time.Duration) {
	c.t.Helper()
	c.eventually(within, fmt.Sprintf("%s replaced %d tasks", id, len(old)), func() error {
		tks, err := c.tasks(id)
		if err != nil {
			return err
		}
		for _, tk := range tks {
			if slices.Contains(old, tk.ID) {
				return fmt.Errorf("old task %s still there (%s)", tk.ID, tk.State)
			}
		}
		return c.converged(id, n, c.nodes)
	})
}

func (c *cluster) waitAllOn(n *node, want map[string]int, within time.Duration) {
	c.t.Helper()
	c.eventually(within, "all tasks on "+n.name, func() error {
		for id, count := range want {
			tks, err := c.tasks(id)
			if err != nil {
				return err
			}
			for _, tk := range tks {
				if tk.Host != n.nodeIP {
					return fmt.Errorf("%s task %s still on %s (%s)", id, tk.ID, tk.Host, tk.State)
				}
			}
			if err := c.converged(id, count, []*node{n}); err != nil {
				return err
			}
		}
		return nil
	})
}

// lbServers lists the names of the servers of a backend that take
// traffic, from the LB's HAProxy stats CSV.
func (c *cluster) lbServers(n *node, backend string) ([]string, error) {
	resp, err := c.http.Get("http://" + n.agentIP + ":9090/haproxy?stats;csv")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(b, []byte("# "))))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil || len(rows) == 0 {
		return nil, fmt.Errorf("stats csv from %s: %v", n.name, err)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	var out []string
	for _, row := range rows[1:] {
		if len(row) <= col["status"] || row[col["pxname"]] != backend {
			continue
		}
		sv, status := row[col["svname"]], row[col["status"]]
		if sv == "FRONTEND" || sv == "BACKEND" || !(strings.HasPrefix(status, "UP") || status == "no check") {
			continue
		}
		out = append(out, sv)
	}
	sort.Strings(out)
	return out, nil
}

// expect checks one curl of the walkthrough.
func (c *cluster) expect(n *node, url, host string, status int, contains string) {
	c.t.Helper()
	c.eventually(20*time.Second, fmt.Sprintf("%s: GET %s (Host %q)", n.name, url, host), func() error {
		req, err := http.NewRequest("GET", url, nil)
		if err != nil {
			return err
		}
		if host != "" {
			req.Host = host
		}
		resp, err := c.http.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != status || !strings.Contains(string(b), contains) {
			return fmt.Errorf("got %d %q, want %d containing %q", resp.StatusCode, truncate(string(b), 200), status, contains)
		}
		return nil
	})
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// checkSandboxMounted checks that task containers have their sandbox (a
// directory under their agent's data dir) at /mnt/mesos/sandbox, with
// MESOS_SANDBOX pointing there.
func (c *cluster) checkSandboxMounted() {
	t := c.t
	list, err := c.api.ContainerList(t.Context(), container.ListOptions{Filters: filters.NewArgs(filters.Arg("label", docker.LabelAppID+"=/apache-nfs-lb-01"))})
	require.NoError(t, err)
	require.NotEmpty(t, list)
	for _, ct := range list {
		info, err := c.api.ContainerInspect(t.Context(), ct.ID)
		require.NoError(t, err)
		var src string
		for _, m := range info.Mounts {
			if m.Destination == "/mnt/mesos/sandbox" {
				src = m.Source
			}
		}
		assert.True(t, slices.ContainsFunc(c.nodes, func(n *node) bool { return src != "" && strings.HasPrefix(src, n.dataDir+"/") }),
			"container %s: sandbox mounted from an agent data dir, got %q", ct.Names, src)
		assert.Contains(t, info.Config.Env, "MESOS_SANDBOX=/mnt/mesos/sandbox")
		if src != "" {
			_, err := os.Stat(filepath.Join(src, docker.StdoutFile))
			assert.NoError(t, err, "the task's output file is in the mounted sandbox")
		}
	}
}

func (c *cluster) killTaskContainer(taskID string) {
	list, err := c.api.ContainerList(c.t.Context(), container.ListOptions{Filters: filters.NewArgs(filters.Arg("label", docker.LabelTaskID+"="+taskID))})
	require.NoError(c.t, err)
	require.Len(c.t, list, 1, "container of task %s", taskID)
	require.NoError(c.t, c.api.ContainerKill(c.t.Context(), list[0].ID, "KILL"))
}

// busiestNode returns the node running most tasks, and the other one.
func (c *cluster) busiestNode() (lost, survivor *node) {
	count := map[string]int{}
	for id := range backends {
		for _, h := range c.taskHosts(id) {
			count[h]++
		}
	}
	a, b := c.nodes[0], c.nodes[1]
	if count[b.nodeIP] > count[a.nodeIP] {
		a, b = b, a
	}
	return a, b
}

// loseNode simulates a machine dying: its agent and LB stop and its task
// containers are killed.
func (c *cluster) loseNode(n *node) {
	ctx := c.t.Context()
	list, err := c.api.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(filters.Arg("label", docker.LabelOwner+"="+n.owner))})
	require.NoError(c.t, err)
	var wg sync.WaitGroup
	for _, ct := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.api.ContainerKill(ctx, ct.ID, "KILL")
		}()
	}
	zero := 0
	wg.Add(2)
	go func() { defer wg.Done(); _ = c.api.ContainerStop(ctx, n.lb, container.StopOptions{Timeout: &zero}) }()
	go func() { defer wg.Done(); _ = c.api.ContainerStop(ctx, n.agent, container.StopOptions{Timeout: &zero}) }()
	wg.Wait()
	c.t.Logf("lost %s: stopped %s, %s and %d task containers", n.name, n.agent, n.lb, len(list))
}

// ---- request loops ----

type probeResult struct {
	at    time.Time
	phase string
	node  string
	err   string
}

// probes send requests in a loop to each node's servicePort and vhost
// frontends and record failures by phase.
type probes struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	phase   string
	stopped map[string]bool
	sent    int
	failed  []probeResult
}

func (c *cluster) startProbes(nodes []*node) *probes {
	ctx, cancel := context.WithCancel(c.t.Context())
	p := &probes{cancel: cancel, phase: "steady", stopped: map[string]bool{}}
	c.t.Cleanup(p.stop)
	cl := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	type target struct {
		url, host, want string
	}
	for _, n := range nodes {
		for _, tg := range []target{
			{"http://" + n.agentIP + ":10240/", "", text01},
			{"http://" + n.agentIP + "/", vhost02, text02},
		} {
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				for ctx.Err() == nil {
					p.mu.Lock()
					skip := p.stopped[n.name]
					p.mu.Unlock()
					if skip {
						return
					}
					err := probeOnce(ctx, cl, tg.url, tg.host, tg.want)
					if ctx.Err() != nil {
						return
					}
					p.record(n.name, err)
					time.Sleep(20 * time.Millisecond)
				}
			}()
		}
	}
	return p
}

func probeOnce(ctx context.Context, cl *http.Client, url, host, want string) error {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return err
	}
	if host != "" {
		req.Host = host
	}
	resp, err := cl.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || strings.TrimSpace(string(b)) != want {
		return fmt.Errorf("%s (Host %q): %d %q", url, host, resp.StatusCode, truncate(string(b), 80))
	}
	return nil
}

func (p *probes) record(node string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sent++
	if err != nil {
		p.failed = append(p.failed, probeResult{at: time.Now(), phase: p.phase, node: node, err: err.Error()})
	}
}

func (p *probes) mark(phase string) {
	p.mu.Lock()
	p.phase = phase
	p.mu.Unlock()
}

// stopNode stops probing a node (before it is taken down).
func (p *probes) stopNode(n *node) {
	p.mu.Lock()
	p.stopped[n.name] = true
	p.mu.Unlock()
	time.Sleep(100 * time.Millisecond)
}

func (p *probes) stop() {
	p.cancel()
	p.wg.Wait()
}

func (p *probes) failures(phase string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, f := range p.failed {
		if f.phase == phase {
			n++
		}
	}
	return n
}

// impaired sums the spans of the bursts of failed requests in a phase (a
// burst: failures less than a second apart) and counts the bursts.
func (p *probes) impaired(phase string) (time.Duration, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var total time.Duration
	var first, last time.Time
	bursts := 0
	for _, f := range p.failed {
		if f.phase != phase {
			continue
		}
		if first.IsZero() || f.at.Sub(last) >= time.Second {
			total += last.Sub(first)
			first = f.at
			bursts++
		}
		last = f.at
	}
	return total + last.Sub(first), bursts
}

func (p *probes) total() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent
}

func (p *probes) failureSamples() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for i, f := range p.failed {
		if i >= 10 {
			break
		}
		out = append(out, f.at.Format("15:04:05.000")+" "+f.phase+"/"+f.node+": "+f.err)
	}
	return out
}

// ---- report ----

type e2eReport struct {
	lines []string
}

// add records a measured step; failed < 0 means "not measured".
func (r *e2eReport) add(what string, d time.Duration, failed int) {
	line := fmt.Sprintf("%-75s %8.1fs", what, d.Seconds())
	if d == 0 {
		line = fmt.Sprintf("%-75s %9s", what, "")
	}
	if failed >= 0 {
		line += fmt.Sprintf("  %d", failed)
	}
	r.lines = append(r.lines, line)
}

func (r *e2eReport) print(t *testing.T) {
	out := "docker e2e measurements (step, time, failed requests):\n" + strings.Join(r.lines, "\n")
	t.Log(out)
	if path := os.Getenv("E2E_REPORT"); path != "" {
		_ = os.WriteFile(path, []byte(out+"\n"), 0o644)
	}
}
