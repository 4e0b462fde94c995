//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Wire shapes read by the test, declared here on purpose (like a jq
// filter) rather than taken from package marathon: the test checks the
// JSON field names a curl user sees.
type (
	e2eHealthResult struct {
		Alive               bool   `json:"alive"`
		ConsecutiveFailures int    `json:"consecutiveFailures"`
		TaskID              string `json:"taskId"`
		InstanceID          string `json:"instanceId"`
	}
	e2eTask struct {
		ID                 string            `json:"id"`
		AppID              string            `json:"appId"`
		Host               string            `json:"host"`
		SlaveID            string            `json:"slaveId"`
		State              string            `json:"state"`
		StagedAt           string            `json:"stagedAt"`
		StartedAt          string            `json:"startedAt"`
		Version            string            `json:"version"`
		Ports              []int             `json:"ports"`
		ServicePorts       []int             `json:"servicePorts"`
		HealthCheckResults []e2eHealthResult `json:"healthCheckResults"`
	}
	e2eApp struct {
		ID              string `json:"id"`
		Instances       int    `json:"instances"`
		Version         string `json:"version"`
		Ports           []int  `json:"ports"`
		PortDefinitions []struct {
			Port int `json:"port"`
		} `json:"portDefinitions"`
		TasksStaged    int       `json:"tasksStaged"`
		TasksRunning   int       `json:"tasksRunning"`
		TasksHealthy   int       `json:"tasksHealthy"`
		TasksUnhealthy int       `json:"tasksUnhealthy"`
		Deployments    []e2eID   `json:"deployments"`
		Tasks          []e2eTask `json:"tasks"`
	}
	e2eID struct {
		ID string `json:"id"`
	}
	e2eDeploymentResult struct {
		DeploymentID string `json:"deploymentId"`
		Version      string `json:"version"`
	}
	// e2eError is Marathon's error body; details is a list of
	// {path, errors} for 400 "Invalid JSON" and 422, a string for 400
	// "Please specify data in JSON format".
	e2eError struct {
		Message     string          `json:"message"`
		Details     json.RawMessage `json:"details"`
		Deployments []e2eID         `json:"deployments"`
	}
	e2eErrorDetail struct {
		Path   string   `json:"path"`
		Errors []string `json:"errors"`
	}
)

// details decodes the list form of details (nil for the string form).
func (e e2eError) details() []e2eErrorDetail {
	var ds []e2eErrorDetail
	if json.Unmarshal(e.Details, &ds) != nil {
		return nil
	}
	return ds
}

// healthy reports whether the task is RUNNING with every health check
// alive (and at least one result).
func (tk e2eTask) healthy() bool {
	if tk.State != "TASK_RUNNING" || len(tk.HealthCheckResults) == 0 {
		return false
	}
	for _, r := range tk.HealthCheckResults {
		if !r.Alive {
			return false
		}
	}
	return true
}

// e2eAgentSpec is one agent of the test cluster.
type e2eAgentSpec struct {
	host  string // --hostname
	ports [2]int // port range offered
	rack  string
}

func (s e2eAgentSpec) inRange(p int) bool { return p >= s.ports[0] && p <= s.ports[1] }

// e2eCluster is a scheduler plus agents in one network namespace.
type e2eCluster struct {
	t         *testing.T
	dir       string
	bins      map[string]string
	ns        *e2eNetns
	api       *e2eAPI
	stream    *http.Client // no timeout, for /v2/events
	sched     *e2eProc
	agents    map[string]*e2eProc
	specs     map[string]e2eAgentSpec
	agentWait time.Duration // --agent-timeout
}

// e2eSchedulerPort is the scheduler's port inside the namespace.
const e2eSchedulerPort = 8080

// e2eNewCluster starts the scheduler and the agents and waits until both
// agents registered.
func e2eNewCluster(t *testing.T, bins map[string]string, agents ...e2eAgentSpec) *e2eCluster {
	t.Helper()
	hosts := make([]string, 0, len(agents))
	for _, a := range agents {
		hosts = append(hosts, a.host)
	}
	c := &e2eCluster{
		t:         t,
		dir:       t.TempDir(),
		bins:      bins,
		ns:        e2eNewNetns(t, hosts...),
		agents:    map[string]*e2eProc{},
		specs:     map[string]e2eAgentSpec{},
		agentWait: 3 * time.Second,
	}
	c.api = &e2eAPI{base: fmt.Sprintf("http://127.0.0.1:%d", e2eSchedulerPort), hc: c.ns.client(10 * time.Second)}
	c.stream = c.ns.client(0)
	// Agents authenticate with a cluster secret, and run tasks as nobody
	// (their default as root): task users must reach their sandboxes.
	require.NoError(t, os.WriteFile(filepath.Join(c.dir, "agent-secret"), []byte("e2e-cluster-secret\n"), 0o600))
	e2eTraversable(t, c.dir)
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		logs, _ := filepath.Glob(filepath.Join(c.dir, "*.log"))
		for _, l := range logs {
			t.Logf("--- tail of %s:\n%s", filepath.Base(l), e2eTail(l, 40))
		}
	})
	c.startScheduler()
	for _, a := range agents {
		c.specs[a.host] = a
		c.startAgent(a.host)
	}
	e2eEventually(t, 20*time.Second, 100*time.Millisecond, "agents registered", func() (bool, string) {
		n, desc := c.registeredAgents()
		return n == len(agents), desc
	})
	return c
}

// registeredAgents counts reachable agents: the scheduler's
// switchyard_scheduler_agents_reachable gauge, or else its "agent
// registered" log lines (the v2 API has no agent listing).
func (c *e2eCluster) registeredAgents() (int, string) {
	req, _ := http.NewRequest(http.MethodGet, c.api.base+"/metrics", nil)
	req.Header.Set("Accept", "text/plain")
	if res, err := c.api.hc.Do(req); err == nil {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "switchyard_scheduler_agents_reachable "); ok {
				n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err == nil {
					return int(n), "agents_reachable " + v
				}
			}
		}
	}
	b, _ := os.ReadFile(filepath.Join(c.dir, "scheduler.log"))
	seen := 0
	for h := range c.specs {
		if strings.Contains(string(b), "hostname="+h) {
			seen++
		}
	}
	return seen, fmt.Sprintf("%d agents in scheduler.log", seen)
}

func (c *e2eCluster) startScheduler() {
	t := c.t
	t.Helper()
	c.sched = e2eStart(t, c.ns, c.dir, "scheduler", nil, c.bins["scheduler"],
		"--http-addr", fmt.Sprintf(":%d", e2eSchedulerPort), "--insecure-no-auth",
		"--data-dir", filepath.Join(c.dir, "scheduler-data"),
		"--agent-timeout", c.agentWait.String(),
		"--agent-secret-file", filepath.Join(c.dir, "agent-secret"),
		"--event-keepalive", "2s",
		"--log-level", "debug")
	e2eEventually(t, 20*time.Second, 50*time.Millisecond, "scheduler /ping", func() (bool, string) {
		if c.sched.exited() {
			t.Fatalf("scheduler exited: %v\n%s", c.sched.err, e2eTail(filepath.Join(c.dir, "scheduler.log"), 20))
		}
		r, err := c.api.call(http.MethodGet, "/ping", nil)
		if err != nil {
			return false, err.Error()
		}
		return r.status == http.StatusOK, r.String()
	})
}

func (c *e2eCluster) startAgent(host string) {
	t := c.t
	t.Helper()
	s := c.specs[host]
	res := fmt.Sprintf("cpus:4;mem:4096;disk:10000;ports:[%d-%d]", s.ports[0], s.ports[1])
	c.agents[host] = e2eStart(t, c.ns, c.dir, host, nil, c.bins["agent"],
		"--master", c.api.base,
		"--hostname", host,
		"--address", "127.0.0.1",
		"--resources", res,
		"--attributes", "rack:"+s.rack,
		"--data-dir", filepath.Join(c.dir, host+"-data"),
		"--secret-file", filepath.Join(c.dir, "agent-secret"),
		"--log-level", "debug")
}

// e2eTraversable lets other users (tasks run as nobody) pass through dir
// and its parents, which t.TempDir makes 0700.
func e2eTraversable(t *testing.T, dir string) {
	t.Helper()
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		require.NoError(t, err)
		require.NoError(t, os.Chmod(d, fi.Mode().Perm()|0o011))
	}
}

// tasks returns the app's tasks (GET /v2/apps/ID/tasks).
func (c *e2eCluster) tasks(t *testing.T, id string) []e2eTask {
	t.Helper()
	var out struct {
		Tasks []e2eTask `json:"tasks"`
	}
	c.api.expect(t, http.StatusOK, http.MethodGet, "/v2/apps"+id+"/tasks", nil, &out)
	return out.Tasks
}

// app returns GET /v2/apps/ID's app.
func (c *e2eCluster) app(t *testing.T, id string) e2eApp {
	t.Helper()
	var out struct {
		App e2eApp `json:"app"`
	}
	c.api.expect(t, http.StatusOK, http.MethodGet, "/v2/apps"+id, nil, &out)
	return out.App
}

// running returns the app's RUNNING tasks sorted by id.
func (c *e2eCluster) running(t *testing.T, id string) []e2eTask {
	t.Helper()
	var out []e2eTask
	for _, tk := range c.tasks(t, id) {
		if tk.State == "TASK_RUNNING" {
			out = append(out, tk)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// waitTasks waits until the app has exactly n RUNNING tasks (all healthy
// when healthy is set) and no other task, and returns them.
func (c *e2eCluster) waitTasks(t *testing.T, id string, n int, healthy bool, timeout time.Duration) ([]e2eTask, time.Duration) {
	t.Helper()
	var got []e2eTask
	took := e2eEventually(t, timeout, 100*time.Millisecond, fmt.Sprintf("%s: %d running tasks (healthy=%v)", id, n, healthy), func() (bool, string) {
		all := c.tasks(t, id)
		got = got[:0]
		var desc []string
		for _, tk := range all {
			desc = append(desc, fmt.Sprintf("%s@%s:%s:%v", tk.ID, tk.Host, tk.State, tk.healthy()))
			if tk.State == "TASK_RUNNING" && (!healthy || tk.healthy()) {
				got = append(got, tk)
			}
		}
		return len(got) == n && len(all) == n, strings.Join(desc, " ")
	})
	sort.Slice(got, func(i, j int) bool { return got[i].ID < got[j].ID })
	return got, took
}

// waitNoDeployment waits until no deployment affects the app.
func (c *e2eCluster) waitNoDeployment(t *testing.T, id string, timeout time.Duration) {
	t.Helper()
	e2eEventually(t, timeout, 100*time.Millisecond, id+": deployments finished", func() (bool, string) {
		var deps []struct {
			ID           string   `json:"id"`
			AffectedApps []string `json:"affectedApps"`
		}
		r := c.api.expect(t, http.StatusOK, http.MethodGet, "/v2/deployments", nil, &deps)
		for _, d := range deps {
			if slices.Contains(d.AffectedApps, id) {
				return false, r.String()
			}
		}
		return true, ""
	})
}

// get fetches http://127.0.0.1:port/path from inside the namespace.
func (c *e2eCluster) get(port int, path string) (int, string, error) {
	r, err := (&e2eAPI{base: fmt.Sprintf("http://127.0.0.1:%d", port), hc: c.api.hc}).call(http.MethodGet, path, nil)
	if err != nil {
		return 0, "", err
	}
	return r.status, string(r.body), nil
}

// taskPID returns the pid listening on the task's first host port.
func (c *e2eCluster) taskPID(t *testing.T, tk e2eTask) int {
	t.Helper()
	require.NotEmpty(t, tk.Ports, "task %s has no host port", tk.ID)
	var pid int
	e2eEventually(t, 5*time.Second, 50*time.Millisecond, "listener of task "+tk.ID, func() (bool, string) {
		p, err := e2eListenerPID(c.ns, tk.Ports[0])
		if err != nil {
			return false, err.Error()
		}
		pid = p
		return true, ""
	})
	return pid
}

// killTaskGroup SIGKILLs the process group of the task's listener, as a
// node loss would.
func (c *e2eCluster) killTaskGroup(t *testing.T, tk e2eTask) {
	t.Helper()
	pid := c.taskPID(t, tk)
	pgid, err := e2ePGID(pid)
	require.NoError(t, err)
	require.NotEqual(t, syscall.Getpgrp(), pgid, "refusing to kill the test's own process group")
	require.Greater(t, pgid, 1)
	require.NoError(t, syscall.Kill(-pgid, syscall.SIGKILL))
}

// e2eIDs returns the ids of tasks.
func e2eIDs(ts []e2eTask) []string {
	out := make([]string, 0, len(ts))
	for _, tk := range ts {
		out = append(out, tk.ID)
	}
	sort.Strings(out)
	return out
}
