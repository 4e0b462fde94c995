//go:build linux

package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestClusterE2E is issue 3's acceptance test, run as a new user would
// run it: the real scheduler and two real agents (and the real lb) as
// processes in a private network namespace, driven with plain HTTP+JSON
// like curl and jq. Subtests share the cluster and run in order; one that
// depends on an earlier one's app is skipped when that one failed.
//
// Measured numbers are logged as "MEASURE <name>: <duration>"; run
//
//	go test ./cmd/switchyard -run TestClusterE2E -v -count=1 | grep MEASURE
func TestClusterE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	_, err := exec.LookPath("python3")
	e2eRequire(t, err == nil, "python3 (task command): %v", err)
	e2eRequire(t, os.Geteuid() == 0, "root (network namespaces)")

	binDir := t.TempDir()
	bins, err := e2eBuild(t, binDir, "scheduler", "agent")
	require.NoError(t, err)
	lbBin := ""
	if e2eHasGoFiles("lb") {
		lb, err := e2eBuild(t, binDir, "lb")
		require.NoError(t, err, "cmd/lb exists but does not build")
		lbBin = lb["lb"]
	}

	agentA := e2eAgentSpec{host: "agent-a", ports: [2]int{31000, 31099}, rack: "r1"}
	agentB := e2eAgentSpec{host: "agent-b", ports: [2]int{31100, 31199}, rack: "r2"}
	c := e2eNewCluster(t, bins, agentA, agentB)
	root := t
	events := e2eSubscribe(t, t, c.stream, c.api.base, "")
	filtered := e2eSubscribe(t, t, c.stream, c.api.base, "event_type=status_update_event&event_type=api_post_event")
	marker := t.TempDir()
	e2eTraversable(t, marker)
	require.NoError(t, os.Chmod(marker, 0o777)) // tasks (nobody) mkdir there

	ok := map[string]bool{}
	run := func(name string, deps []string, fn func(t *testing.T)) {
		done := false
		passed := t.Run(name, func(t *testing.T) {
			for _, d := range deps {
				if !ok[d] {
					t.Skipf("needs %q, which failed or was skipped", d)
				}
			}
			fn(t)
			done = !t.Skipped()
		})
		ok[name] = passed && done
	}

	// --- bad input ---------------------------------------------------------
	run("bad input is rejected with Marathon's error body", nil, func(t *testing.T) {
		cases := []struct {
			name     string
			body     string
			statuses []int
			path     string // a details[].path that must be named ("" = any)
		}{
			{"invalid JSON", `{"id": "/bad", "cmd": `, []int{400}, ""},
			{"not JSON at all", `hello`, []int{400}, ""},
			{"wrong type", `{"id":"/bad","cmd":"sleep 100","instances":"two"}`, []int{400, 422}, "/instances"},
			{"illegal id", `{"id":"/Bad_App!","cmd":"sleep 100"}`, []int{422}, "/id"},
			{"negative instances", `{"id":"/bad","cmd":"sleep 100","instances":-1}`, []int{422}, "/instances"},
			{"unknown constraint operator", `{"id":"/bad","cmd":"sleep 100","constraints":[["hostname","SOMETIMES"]]}`, []int{422}, ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r := c.api.do(t, http.MethodPost, "/v2/apps", tc.body)
				require.Contains(t, tc.statuses, r.status, "POST %s: %s", tc.body, r)
				var e e2eError
				r.decode(t, &e)
				assert.NotEmpty(t, e.Message, "error body needs a message: %s", r)
				if r.status == http.StatusUnprocessableEntity {
					require.NotEmpty(t, e.details(), "422 needs details [{path, errors}]: %s", r)
					assert.Equal(t, "Object is not valid", e.Message)
					for _, d := range e.details() {
						assert.NotEmpty(t, d.Errors, "details[%s] needs errors: %s", d.Path, r)
					}
				}
				if tc.path != "" {
					paths := []string{}
					for _, d := range e.details() {
						paths = append(paths, d.Path)
					}
					assert.Contains(t, paths, tc.path, "details must name the bad field: %s", r)
				}
			})
		}
		var list struct {
			Apps []e2eApp `json:"apps"`
		}
		c.api.expect(t, http.StatusOK, http.MethodGet, "/v2/apps", nil, &list)
		assert.Empty(t, list.Apps, "rejected apps must not be stored")
		r := c.api.expect(t, http.StatusNotFound, http.MethodGet, "/v2/apps/bad", nil, nil)
		var e e2eError
		r.decode(t, &e)
		assert.Equal(t, "App '/bad' does not exist", e.Message)
	})

	// --- create / place / serve --------------------------------------------
	web := "/web"
	webApp := map[string]any{
		"id": web, "cmd": "python3 -m http.server $PORT0", "instances": 2, "cpus": 0.1, "mem": 32,
		"constraints":     [][]string{{"hostname", "UNIQUE"}},
		"portDefinitions": []map[string]any{{"port": 0, "protocol": "tcp"}},
		"healthChecks": []map[string]any{{"protocol": "HTTP", "path": "/", "portIndex": 0,
			"gracePeriodSeconds": 10, "intervalSeconds": 1, "timeoutSeconds": 1, "maxConsecutiveFailures": 3}},
	}
	run("POST a command app: 201, placed UNIQUE, tasks serve", nil, func(t *testing.T) {
		start := time.Now()
		var created e2eApp
		r := c.api.expect(t, http.StatusCreated, http.MethodPost, "/v2/apps", webApp, &created)
		assert.Equal(t, web, created.ID)
		require.Len(t, created.PortDefinitions, 1)
		sp := created.PortDefinitions[0].Port
		assert.True(t, sp >= 10000 && sp <= 20000, "servicePort %d outside 10000-20000", sp)
		assert.Equal(t, []int{sp}, created.Ports, "ports mirrors the service ports")
		_, err := time.Parse(time.RFC3339Nano, created.Version)
		assert.NoError(t, err, "version %q is a timestamp", created.Version)
		require.Len(t, created.Deployments, 1, "201 body lists the deployment")
		assert.Equal(t, created.Deployments[0].ID, r.header.Get("Marathon-Deployment-Id"))

		tasks, _ := c.waitTasks(t, web, 2, false, 30*time.Second)
		t.Logf("MEASURE POST to 2 tasks RUNNING: %s", time.Since(start).Round(time.Millisecond))
		hosts := []string{tasks[0].Host, tasks[1].Host}
		slices.Sort(hosts)
		assert.Equal(t, []string{"agent-a", "agent-b"}, hosts, "UNIQUE hostname puts one task per agent")
		for _, tk := range tasks {
			require.Len(t, tk.Ports, 1)
			assert.True(t, c.specs[tk.Host].inRange(tk.Ports[0]), "task %s port %d outside %s's range", tk.ID, tk.Ports[0], tk.Host)
			assert.Equal(t, []int{sp}, tk.ServicePorts)
			assert.True(t, strings.HasPrefix(tk.ID, "web."), "task id %q is <safe app id>.<uuid>", tk.ID)
			assert.Equal(t, created.Version, tk.Version)
			var status int
			e2eEventually(t, 10*time.Second, 100*time.Millisecond, "task answers", func() (bool, string) {
				st, _, err := c.get(tk.Ports[0], "/")
				status = st
				return err == nil && st == 200, fmt.Sprint(st, err)
			})
			assert.Equal(t, 200, status)
		}

		e2eEventually(t, 20*time.Second, 100*time.Millisecond, "embed=apps.tasks shows 2 running, 2 healthy", func() (bool, string) {
			var list struct {
				Apps []e2eApp `json:"apps"`
			}
			r := c.api.expect(t, http.StatusOK, http.MethodGet, "/v2/apps?embed=apps.tasks", nil, &list)
			for _, a := range list.Apps {
				if a.ID == web {
					return a.TasksRunning == 2 && a.TasksHealthy == 2 && len(a.Tasks) == 2 && len(a.Deployments) == 0, r.String()
				}
			}
			return false, r.String()
		})
		t.Logf("MEASURE POST to 2 tasks healthy and deployment done: %s", time.Since(start).Round(time.Millisecond))
		c.waitNoDeployment(t, web, 5*time.Second)

		// A bad update is rejected and changes nothing.
		r = c.api.do(t, http.MethodPut, "/v2/apps"+web, `{"instances":-2}`)
		assert.Equal(t, http.StatusUnprocessableEntity, r.status, "PUT negative instances: %s", r)
		assert.Equal(t, 2, c.app(t, web).Instances)
	})

	// --- scale beyond UNIQUE, 409 lock, force ------------------------------
	run("PUT while a deployment runs: 409, then ?force=true", []string{"POST a command app: 201, placed UNIQUE, tasks serve"}, func(t *testing.T) {
		var dr e2eDeploymentResult
		r := c.api.expect(t, http.StatusOK, http.MethodPut, "/v2/apps"+web, `{"instances":3}`, &dr)
		require.NotEmpty(t, dr.DeploymentID, "PUT answers {deploymentId, version}: %s", r)
		require.NotEmpty(t, dr.Version)
		// Two agents, UNIQUE hostname: the third instance cannot be placed,
		// so the deployment keeps running and locks the app.
		time.Sleep(2 * time.Second)
		assert.Len(t, c.running(t, web), 2, "a third UNIQUE task has no agent to go to")
		var deps []struct {
			ID string `json:"id"`
		}
		c.api.expect(t, http.StatusOK, http.MethodGet, "/v2/deployments", nil, &deps)
		ids := []string{}
		for _, d := range deps {
			ids = append(ids, d.ID)
		}
		require.Contains(t, ids, dr.DeploymentID, "the scale deployment is still running")

		r = c.api.expect(t, http.StatusConflict, http.MethodPut, "/v2/apps"+web, `{"instances":2}`, nil)
		var e e2eError
		r.decode(t, &e)
		assert.Contains(t, e.Message, "locked", "409 message: %s", r)
		require.Len(t, e.Deployments, 1, "409 names the deployment: %s", r)
		assert.Equal(t, dr.DeploymentID, e.Deployments[0].ID)
		assert.Equal(t, 3, c.app(t, web).Instances, "a refused PUT changes nothing")

		c.api.expect(t, http.StatusOK, http.MethodPut, "/v2/apps"+web+"?force=true", `{"instances":2}`, &dr)
		c.waitNoDeployment(t, web, 10*time.Second)
		assert.Equal(t, 2, c.app(t, web).Instances)
		c.waitTasks(t, web, 2, true, 10*time.Second)
		events.waitFor(t, 5*time.Second, "deployment_failed", func(e e2eEvent) bool { return e.str("id") != "" })
	})

	// --- kill -9 a task's process ------------------------------------------
	run("kill -9 of a task's process relaunches it", []string{"POST a command app: 201, placed UNIQUE, tasks serve"}, func(t *testing.T) {
		before, _ := c.waitTasks(t, web, 2, true, 20*time.Second)
		victim := before[0]
		pid := c.taskPID(t, victim)
		start := time.Now()
		require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
		var after []e2eTask
		e2eEventually(t, 30*time.Second, 100*time.Millisecond, "replacement RUNNING", func() (bool, string) {
			after = c.running(t, web)
			ids := e2eIDs(after)
			return len(after) == 2 && !slices.Contains(ids, victim.ID), strings.Join(ids, " ")
		})
		t.Logf("MEASURE kill -9 to replacement RUNNING: %s", time.Since(start).Round(time.Millisecond))
		assert.False(t, e2eAlive(pid), "killed process stays dead")
		for _, tk := range after {
			if !slices.Contains(e2eIDs(before), tk.ID) {
				assert.Equal(t, victim.Host, tk.Host, "UNIQUE: the replacement goes where the hole is")
			}
		}
		events.waitFor(t, 5*time.Second, "status_update_event", func(e e2eEvent) bool {
			return e.str("taskId") == victim.ID && (e.str("taskStatus") == "TASK_FAILED" || e.str("taskStatus") == "TASK_KILLED")
		})
		c.waitTasks(t, web, 2, true, 20*time.Second)
	})

	// --- scale up and down without constraints, rolling restart -----------
	scale := "/scale"
	run("PUT instances scales up and down", nil, func(t *testing.T) {
		app := map[string]any{
			"id": scale, "cmd": "echo $MESOS_TASK_ID > id; exec python3 -m http.server $PORT0", "instances": 2, "cpus": 0.1, "mem": 32,
			"portDefinitions": []map[string]any{{"port": 0}},
			"healthChecks": []map[string]any{{"protocol": "HTTP", "path": "/id", "portIndex": 0,
				"gracePeriodSeconds": 10, "intervalSeconds": 1, "timeoutSeconds": 1, "maxConsecutiveFailures": 3}},
			"upgradeStrategy": map[string]any{"minimumHealthCapacity": 1, "maximumOverCapacity": 1},
		}
		c.api.expect(t, http.StatusCreated, http.MethodPost, "/v2/apps", app, nil)
		two, _ := c.waitTasks(t, scale, 2, true, 30*time.Second)
		c.waitNoDeployment(t, scale, 10*time.Second)

		start := time.Now()
		var dr e2eDeploymentResult
		c.api.expect(t, http.StatusOK, http.MethodPut, "/v2/apps"+scale, `{"instances":3}`, &dr)
		require.NotEmpty(t, dr.DeploymentID)
		three, _ := c.waitTasks(t, scale, 3, true, 30*time.Second)
		t.Logf("MEASURE scale 2->3 to 3 healthy: %s", time.Since(start).Round(time.Millisecond))
		assert.Subset(t, e2eIDs(three), e2eIDs(two), "scaling up keeps the running tasks")
		c.waitNoDeployment(t, scale, 10*time.Second)
		for _, tk := range three {
			_, body, err := c.get(tk.Ports[0], "/id")
			require.NoError(t, err)
			assert.Equal(t, tk.ID, strings.TrimSpace(body), "task env MESOS_TASK_ID")
		}

		c.api.expect(t, http.StatusOK, http.MethodPut, "/v2/apps"+scale, `{"instances":2}`, nil)
		down, _ := c.waitTasks(t, scale, 2, true, 20*time.Second)
		c.waitNoDeployment(t, scale, 10*time.Second)
		for _, tk := range three {
			if !slices.Contains(e2eIDs(down), tk.ID) {
				e2eEventually(t, 10*time.Second, 100*time.Millisecond, "scaled-down task stops", func() (bool, string) {
					_, err := e2eListenerPID(c.ns, tk.Ports[0])
					return err != nil, fmt.Sprint(err)
				})
			}
		}
	})

	run("rolling restart with minimumHealthCapacity 1 never drops to zero healthy", []string{"PUT instances scales up and down"}, func(t *testing.T) {
		before, _ := c.waitTasks(t, scale, 2, true, 20*time.Second)
		start := time.Now()
		var dr e2eDeploymentResult
		c.api.expect(t, http.StatusOK, http.MethodPost, "/v2/apps"+scale+"/restart", `{}`, &dr)
		require.NotEmpty(t, dr.DeploymentID)
		minHealthy, minServing, polls := 99, 99, 0
		e2eEventually(t, 60*time.Second, 100*time.Millisecond, "restart done with 2 new healthy tasks", func() (bool, string) {
			polls++
			ts := c.tasks(t, scale)
			healthy, serving := 0, 0
			newHealthy := 0
			for _, tk := range ts {
				if !tk.healthy() {
					continue
				}
				healthy++
				if st, _, err := c.get(tk.Ports[0], "/id"); err == nil && st == 200 {
					serving++
				}
				if !slices.Contains(e2eIDs(before), tk.ID) {
					newHealthy++
				}
			}
			minHealthy = min(minHealthy, healthy)
			minServing = min(minServing, serving)
			return newHealthy == 2 && len(ts) == 2, fmt.Sprintf("%d tasks, %d healthy, %d new healthy", len(ts), healthy, newHealthy)
		})
		c.waitNoDeployment(t, scale, 10*time.Second)
		t.Logf("MEASURE rolling restart of 2 tasks: %s (min healthy %d, min serving %d over %d polls)",
			time.Since(start).Round(time.Millisecond), minHealthy, minServing, polls)
		assert.GreaterOrEqual(t, minHealthy, 1, "the API never showed zero healthy tasks")
		assert.GreaterOrEqual(t, minServing, 1, "some healthy task always answered HTTP")
		after := c.running(t, scale)
		for _, tk := range after {
			assert.NotContains(t, e2eIDs(before), tk.ID, "all tasks replaced")
			assert.Equal(t, dr.Version, tk.Version, "new tasks run the restart's version")
		}
	})

	// --- unhealthy task killed and replaced --------------------------------
	run("a task failing its health check is killed and replaced", nil, func(t *testing.T) {
		id := "/flaky"
		// The first task serves /ok for 3 s, then the file disappears and
		// the check gets 404; later tasks keep the file (marker dir exists).
		cmd := fmt.Sprintf("echo ok > ok; if mkdir %s/flaky 2>/dev/null; then (sleep 3; rm -f ok) & fi; exec python3 -m http.server $PORT0", marker)
		app := map[string]any{
			"id": id, "cmd": cmd, "instances": 1, "cpus": 0.1, "mem": 32,
			"portDefinitions": []map[string]any{{"port": 0}},
			"healthChecks": []map[string]any{{"protocol": "HTTP", "path": "/ok", "portIndex": 0,
				"gracePeriodSeconds": 2, "intervalSeconds": 1, "timeoutSeconds": 1, "maxConsecutiveFailures": 2}},
		}
		c.api.expect(t, http.StatusCreated, http.MethodPost, "/v2/apps", app, nil)
		first, _ := c.waitTasks(t, id, 1, true, 30*time.Second)
		victim := first[0]
		unhealthy := events.waitFor(t, 20*time.Second, "health_status_changed_event", func(e e2eEvent) bool {
			return e.str("taskId") == victim.ID && e.Data["alive"] == false
		})
		e2eEventually(t, 30*time.Second, 100*time.Millisecond, "replacement healthy", func() (bool, string) {
			ts := c.tasks(t, id)
			return len(ts) == 1 && ts[0].ID != victim.ID && ts[0].healthy(), fmt.Sprint(e2eIDs(ts))
		})
		t.Logf("MEASURE unhealthy (alive=false event) to replacement healthy: %s", time.Since(unhealthy.At).Round(time.Millisecond))
		assert.NotEmpty(t, events.find("failed_health_check_event", func(e e2eEvent) bool { return e.str("appId") == id }),
			"failed_health_check_event published")
		assert.NotEmpty(t, events.find("status_update_event", func(e e2eEvent) bool {
			return e.str("taskId") == victim.ID && e.str("taskStatus") == "TASK_KILLED"
		}), "the unhealthy task ends TASK_KILLED")
		assert.NotEmpty(t, events.find("unhealthy_instance_kill_event", func(e e2eEvent) bool { return e.str("taskId") == victim.ID }),
			"unhealthy_instance_kill_event published")
		_, err := e2eListenerPID(c.ns, victim.Ports[0])
		assert.Error(t, err, "the unhealthy task's process is gone")
	})

	run("health failures inside the grace period are ignored", nil, func(t *testing.T) {
		id := "/sick"
		const grace = 4
		app := map[string]any{
			"id": id, "cmd": "exec python3 -m http.server $PORT0", "instances": 1, "cpus": 0.1, "mem": 32,
			"portDefinitions": []map[string]any{{"port": 0}},
			"healthChecks": []map[string]any{{"protocol": "HTTP", "path": "/missing", "portIndex": 0,
				"gracePeriodSeconds": grace, "intervalSeconds": 1, "timeoutSeconds": 1, "maxConsecutiveFailures": 1}},
		}
		c.api.expect(t, http.StatusCreated, http.MethodPost, "/v2/apps", app, nil)
		first, _ := c.waitTasks(t, id, 1, false, 30*time.Second)
		kill := events.waitFor(t, 30*time.Second, "unhealthy_instance_kill_event", func(e e2eEvent) bool { return e.str("taskId") == first[0].ID })
		started, err := time.Parse(time.RFC3339Nano, first[0].StartedAt)
		require.NoError(t, err, "startedAt %q", first[0].StartedAt)
		killedAt, err := time.Parse(time.RFC3339Nano, kill.str("timestamp"))
		require.NoError(t, err)
		t.Logf("MEASURE task start to unhealthy kill (grace %ds, 1 failure allowed): %s", grace, killedAt.Sub(started).Round(time.Millisecond))
		assert.GreaterOrEqual(t, killedAt.Sub(started), grace*time.Second-250*time.Millisecond,
			"a never-healthy task is not killed inside its grace period")
		for _, e := range events.find("failed_health_check_event", func(e e2eEvent) bool { return e.str("appId") == id }) {
			at, err := time.Parse(time.RFC3339Nano, e.str("timestamp"))
			require.NoError(t, err)
			assert.GreaterOrEqual(t, at.Sub(started), grace*time.Second-250*time.Millisecond,
				"failures inside the grace period are not counted (failed_health_check_event at %s)", at.Sub(started))
		}
		c.api.expect(t, http.StatusOK, http.MethodDelete, "/v2/apps"+id, nil, nil)
	})

	run("a crash-looping task is relaunched with growing backoff", nil, func(t *testing.T) {
		id := "/crash"
		app := map[string]any{
			"id": id, "cmd": "sleep 0.2; exit 1", "instances": 1, "cpus": 0.1, "mem": 16,
			"backoffSeconds": 1, "backoffFactor": 2, "maxLaunchDelaySeconds": 30,
		}
		c.api.expect(t, http.StatusCreated, http.MethodPost, "/v2/apps", app, nil)
		// Launch time of a task = its first status_update_event (server clock).
		launches := func() []time.Time {
			first := map[string]time.Time{}
			for _, e := range events.find("status_update_event", func(e e2eEvent) bool { return e.str("appId") == id }) {
				at, err := time.Parse(time.RFC3339Nano, e.str("timestamp"))
				if err != nil {
					continue
				}
				if f, ok := first[e.str("taskId")]; !ok || at.Before(f) {
					first[e.str("taskId")] = at
				}
			}
			out := make([]time.Time, 0, len(first))
			for _, at := range first {
				out = append(out, at)
			}
			slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
			return out
		}
		var ls []time.Time
		e2eEventually(t, 30*time.Second, 200*time.Millisecond, "4 launches", func() (bool, string) {
			ls = launches()
			return len(ls) >= 4, fmt.Sprintf("%d launches", len(ls))
		})
		c.api.expect(t, http.StatusOK, http.MethodDelete, "/v2/apps"+id, nil, nil)
		gaps := []time.Duration{ls[1].Sub(ls[0]), ls[2].Sub(ls[1]), ls[3].Sub(ls[2])}
		t.Logf("MEASURE relaunch gaps of a crash-looping task (backoff 1s x2): %v", gaps)
		assert.GreaterOrEqual(t, gaps[0], 900*time.Millisecond, "first relaunch waits backoffSeconds")
		assert.Greater(t, gaps[1], gaps[0]+500*time.Millisecond, "backoff grows")
		assert.Greater(t, gaps[2], gaps[1]+500*time.Millisecond, "backoff keeps growing")
		var failed int
		for _, e := range events.find("status_update_event", func(e e2eEvent) bool { return e.str("appId") == id }) {
			if e.str("taskStatus") == "TASK_FAILED" {
				failed++
			}
		}
		assert.GreaterOrEqual(t, failed, 3, "exit 1 ends TASK_FAILED")
	})

	// --- events --------------------------------------------------------------
	run("/v2/events streams Marathon event types and payloads", []string{"POST a command app: 201, placed UNIQUE, tasks serve"}, func(t *testing.T) {
		all := events.snapshot()
		require.NotEmpty(t, all)
		assert.Equal(t, "event_stream_attached", all[0].Type, "first event of a stream")
		assert.NotEmpty(t, all[0].str("remoteAddress"))

		post := events.find("api_post_event", func(e e2eEvent) bool {
			d, _ := e.Data["appDefinition"].(map[string]any)
			return d != nil && d["id"] == web
		})
		require.NotEmpty(t, post, "api_post_event for POST /v2/apps")
		assert.Equal(t, "/v2/apps", post[0].str("uri"))
		assert.NotEmpty(t, post[0].str("clientIp"))

		st := events.find("status_update_event", func(e e2eEvent) bool {
			return e.str("appId") == web && e.str("taskStatus") == "TASK_RUNNING"
		})
		require.NotEmpty(t, st)
		for _, k := range []string{"slaveId", "taskId", "host", "version"} {
			assert.NotEmpty(t, st[0].str(k), "status_update_event.%s", k)
		}
		assert.Contains(t, st[0].Data, "message")
		ports, _ := st[0].Data["ports"].([]any)
		assert.Len(t, ports, 1, "status_update_event.ports")
		ips, _ := st[0].Data["ipAddresses"].([]any)
		require.NotEmpty(t, ips, "status_update_event.ipAddresses")
		ip0, _ := ips[0].(map[string]any)
		assert.Equal(t, "127.0.0.1", ip0["ipAddress"])
		assert.Equal(t, "IPv4", ip0["protocol"])

		hs := events.find("health_status_changed_event", func(e e2eEvent) bool { return e.str("appId") == web && e.Data["alive"] == true })
		require.NotEmpty(t, hs)
		assert.NotEmpty(t, hs[0].str("taskId"), "taskId (go-marathon)")
		assert.NotEmpty(t, hs[0].str("instanceId"), "instanceId (1.4+)")
		assert.NotEmpty(t, hs[0].str("version"))

		di := events.find("deployment_info", nil)
		require.NotEmpty(t, di)
		plan, _ := di[0].Data["plan"].(map[string]any)
		require.NotNil(t, plan, "deployment_info.plan")
		assert.NotEmpty(t, plan["id"])
		assert.NotEmpty(t, plan["steps"])
		cur, _ := di[0].Data["currentStep"].(map[string]any)
		require.NotNil(t, cur, "deployment_info.currentStep")
		acts, _ := cur["actions"].([]any)
		require.NotEmpty(t, acts)
		act0, _ := acts[0].(map[string]any)
		assert.NotEmpty(t, act0["action"])
		assert.NotEmpty(t, act0["app"])
		ds := events.find("deployment_success", nil)
		require.NotEmpty(t, ds)
		assert.NotEmpty(t, ds[0].str("id"))
		assert.NotNil(t, ds[0].Data["plan"])

		problems, lfOnly, comments := events.stats()
		assert.Empty(t, problems, "SSE framing problems")
		assert.Zero(t, lfOnly, "frames end lines with CRLF (spec D5)")
		assert.Positive(t, comments, "keepalive ': ping' comments (--event-keepalive 2s)")

		fe := filtered.snapshot()
		require.NotEmpty(t, fe)
		for _, e := range fe {
			assert.Contains(t, []string{"status_update_event", "api_post_event", "event_stream_attached"}, e.Type,
				"event_type filter lets only the asked types through")
		}
		assert.NotEmpty(t, filtered.find("status_update_event", nil))
	})

	// --- lb follows the scheduler ------------------------------------------
	run("lb sse routes to the tasks and follows scale and kill", nil, func(t *testing.T) {
		e2eRequire(t, lbBin != "", "cmd/lb has no Go files yet")
		_, err := exec.LookPath("haproxy")
		if err != nil {
			_, err = os.Stat("/usr/sbin/haproxy")
		}
		e2eRequire(t, err == nil, "haproxy binary: %v", err)
		e2eLB(t, c, lbBin)
	})

	// --- scheduler restart ---------------------------------------------------
	run("restarting the scheduler loses no app and no task", []string{"PUT instances scales up and down"}, func(t *testing.T) {
		apps := []string{scale}
		if ok["POST a command app: 201, placed UNIQUE, tasks serve"] {
			apps = append(apps, web)
		}
		type snap struct {
			ids  []string
			pids map[string]int
			sp   []int
		}
		before := map[string]snap{}
		for _, id := range apps {
			ts, _ := c.waitTasks(t, id, 2, true, 20*time.Second)
			s := snap{ids: e2eIDs(ts), pids: map[string]int{}, sp: c.app(t, id).Ports}
			for _, tk := range ts {
				s.pids[tk.ID] = c.taskPID(t, tk)
			}
			before[id] = s
		}
		c.sched.stop(10 * time.Second)
		require.True(t, c.sched.exited())
		for _, s := range before {
			for id, pid := range s.pids {
				assert.True(t, e2eAlive(pid), "task %s keeps running while the scheduler is down", id)
			}
		}
		start := time.Now()
		c.startScheduler()
		// The old stream ended with the scheduler; later checks read this one.
		events = e2eSubscribe(t, root, c.stream, c.api.base, "")
		for _, id := range apps {
			e2eEventually(t, 30*time.Second, 100*time.Millisecond, id+" reconciled", func() (bool, string) {
				r, err := c.api.call(http.MethodGet, "/v2/apps"+id+"/tasks", nil)
				if err != nil || r.status != http.StatusOK {
					return false, fmt.Sprint(r, err)
				}
				var out struct {
					Tasks []e2eTask `json:"tasks"`
				}
				r.decode(t, &out)
				running := []e2eTask{}
				for _, tk := range out.Tasks {
					if tk.State == "TASK_RUNNING" {
						running = append(running, tk)
					}
				}
				return slices.Equal(e2eIDs(running), before[id].ids), r.String()
			})
		}
		t.Logf("MEASURE scheduler restart to all tasks reconciled RUNNING: %s", time.Since(start).Round(time.Millisecond))
		time.Sleep(2 * time.Second) // room for a wrong relaunch to show up
		for _, id := range apps {
			a := c.app(t, id)
			assert.Equal(t, 2, a.Instances, "%s instances survive", id)
			assert.Equal(t, before[id].sp, a.Ports, "%s service ports survive", id)
			ts := c.tasks(t, id)
			assert.Equal(t, before[id].ids, e2eIDs(ts), "%s: same task ids, no extra launch", id)
			for _, tk := range ts {
				assert.Equal(t, before[id].pids[tk.ID], c.taskPID(t, tk), "task %s: same process", tk.ID)
			}
		}

		// A task that dies while the scheduler is down is found out by
		// reconciliation and replaced; the others are left alone.
		ts, _ := c.waitTasks(t, scale, 2, true, 20*time.Second)
		dead, kept := ts[0], ts[1]
		keptPID := c.taskPID(t, kept)
		c.sched.stop(10 * time.Second)
		require.NoError(t, syscall.Kill(c.taskPID(t, dead), syscall.SIGKILL))
		time.Sleep(500 * time.Millisecond) // the agent notices while the scheduler is away
		start = time.Now()
		c.startScheduler()
		events = e2eSubscribe(t, root, c.stream, c.api.base, "")
		e2eEventually(t, 30*time.Second, 100*time.Millisecond, "task that died during the outage replaced", func() (bool, string) {
			ids := e2eIDs(c.running(t, scale))
			return len(ids) == 2 && slices.Contains(ids, kept.ID) && !slices.Contains(ids, dead.ID), fmt.Sprint(ids)
		})
		t.Logf("MEASURE scheduler restart to replacement of a task that died during the outage: %s", time.Since(start).Round(time.Millisecond))
		assert.Equal(t, keptPID, c.taskPID(t, kept), "the surviving task keeps its process")
	})

	// --- agent restart -------------------------------------------------------
	run("restarting an agent re-adopts its tasks", []string{"PUT instances scales up and down"}, func(t *testing.T) {
		ts, _ := c.waitTasks(t, scale, 2, true, 20*time.Second)
		host := ts[0].Host
		pids := map[string]int{}
		for _, tk := range ts {
			if tk.Host == host {
				pids[tk.ID] = c.taskPID(t, tk)
			}
		}
		c.agents[host].stop(10 * time.Second)
		for id, pid := range pids {
			assert.True(t, e2eAlive(pid), "task %s survives its agent's shutdown", id)
		}
		c.startAgent(host)
		// Give the new agent time to register and report before judging.
		time.Sleep(c.agentWait)
		after, _ := c.waitTasks(t, scale, 2, true, 30*time.Second)
		readopted := 0
		for _, tk := range after {
			if old, ok := pids[tk.ID]; ok {
				assert.Equal(t, old, c.taskPID(t, tk), "re-adopted task %s keeps its process", tk.ID)
				readopted++
			}
		}
		for id, pid := range pids {
			if !slices.Contains(e2eIDs(after), id) {
				assert.False(t, e2eAlive(pid), "replaced task %s must not leave its process behind", id)
			}
		}
		t.Logf("agent restart: %d of %d tasks re-adopted, the rest cleanly replaced", readopted, len(pids))
		assert.Equal(t, len(pids), readopted, "an agent restart re-adopts its tasks")

		// The restarted agent really watches an adopted task (it is no
		// longer its child): a kill -9 is noticed and the task replaced.
		var adopted e2eTask
		for _, tk := range after {
			if _, ok := pids[tk.ID]; ok {
				adopted = tk
			}
		}
		require.NotEmpty(t, adopted.ID, "no re-adopted task to kill")
		start := time.Now()
		require.NoError(t, syscall.Kill(c.taskPID(t, adopted), syscall.SIGKILL))
		e2eEventually(t, 30*time.Second, 100*time.Millisecond, "adopted task's death noticed and replaced", func() (bool, string) {
			ts := c.running(t, scale)
			return len(ts) == 2 && !slices.Contains(e2eIDs(ts), adopted.ID), fmt.Sprint(e2eIDs(ts))
		})
		t.Logf("MEASURE kill -9 of a re-adopted task to replacement RUNNING: %s", time.Since(start).Round(time.Millisecond))
		c.waitTasks(t, scale, 2, true, 20*time.Second)
	})

	// --- agent loss ----------------------------------------------------------
	lost := "/lost"
	run("a lost agent's tasks become unreachable and are replaced after inactiveAfterSeconds", nil, func(t *testing.T) {
		const inactive = 3
		app := map[string]any{
			"id": lost, "cmd": "exec python3 -m http.server $PORT0", "instances": 2, "cpus": 0.1, "mem": 32,
			"portDefinitions":     []map[string]any{{"port": 0}},
			"unreachableStrategy": map[string]any{"inactiveAfterSeconds": inactive, "expungeAfterSeconds": 2 * inactive},
		}
		c.api.expect(t, http.StatusCreated, http.MethodPost, "/v2/apps", app, nil)
		ts, _ := c.waitTasks(t, lost, 2, false, 30*time.Second)
		victimHost := ts[0].Host
		survivor := "agent-a"
		if victimHost == survivor {
			survivor = "agent-b"
		}
		var victims []e2eTask
		// Node loss: the agent dies with every task on it.
		var list struct {
			Apps []e2eApp `json:"apps"`
		}
		c.api.expect(t, http.StatusOK, http.MethodGet, "/v2/apps?embed=apps.tasks", nil, &list)
		var doomed []e2eTask
		for _, a := range list.Apps {
			for _, tk := range a.Tasks {
				if tk.Host == victimHost && tk.State == "TASK_RUNNING" {
					doomed = append(doomed, tk)
					if a.ID == lost {
						victims = append(victims, tk)
					}
				}
			}
		}
		require.NotEmpty(t, victims)
		require.NoError(t, c.agents[victimHost].signal(syscall.SIGKILL))
		c.agents[victimHost].wait(5 * time.Second)
		for _, tk := range doomed {
			c.killTaskGroup(t, tk)
		}
		start := time.Now()
		ue := events.waitFor(t, 30*time.Second, "status_update_event", func(e e2eEvent) bool {
			return e.str("taskId") == victims[0].ID && e.str("taskStatus") == "TASK_UNREACHABLE"
		})
		t.Logf("MEASURE agent SIGKILL to TASK_UNREACHABLE event: %s (--agent-timeout %s)", ue.At.Sub(start).Round(time.Millisecond), c.agentWait)
		unreachableTS, err := time.Parse(time.RFC3339Nano, ue.str("timestamp"))
		require.NoError(t, err)
		var replacements []e2eTask
		e2eEventually(t, 30*time.Second, 100*time.Millisecond, "replacements RUNNING on "+survivor, func() (bool, string) {
			on := 0
			replacements = replacements[:0]
			for _, tk := range c.running(t, lost) {
				if tk.Host == survivor {
					on++
				}
				if !slices.Contains(e2eIDs(ts), tk.ID) {
					replacements = append(replacements, tk)
				}
			}
			return on == 2, fmt.Sprintf("%d running on %s", on, survivor)
		})
		t.Logf("MEASURE agent SIGKILL to replacement RUNNING: %s (TASK_UNREACHABLE event to replacement RUNNING: %s, inactiveAfterSeconds %d)",
			time.Since(start).Round(time.Millisecond), time.Since(ue.At).Round(time.Millisecond), inactive)
		require.Len(t, replacements, len(victims))
		for _, r := range replacements {
			staged, err := time.Parse(time.RFC3339Nano, r.StagedAt)
			require.NoError(t, err, "stagedAt of %s", r.ID)
			// Server-side clocks on both ends: no test-side polling lag.
			assert.GreaterOrEqual(t, staged.Sub(unreachableTS), time.Duration(inactive)*time.Second-250*time.Millisecond,
				"replacement %s staged before inactiveAfterSeconds passed", r.ID)
		}

		// The node comes back (same agent data dir, its tasks dead): it
		// re-registers, nothing is resurrected, the app keeps 2 instances.
		c.startAgent(victimHost)
		e2eEventually(t, 20*time.Second, 100*time.Millisecond, "agent back", func() (bool, string) {
			n, desc := c.registeredAgents()
			return n == 2, desc
		})
		e2eEventually(t, 20*time.Second, 200*time.Millisecond, "no leftover of the lost tasks", func() (bool, string) {
			all := c.tasks(t, lost)
			states := []string{}
			for _, tk := range all {
				states = append(states, tk.ID+":"+tk.State)
			}
			return len(all) == 2 && len(c.running(t, lost)) == 2, strings.Join(states, " ")
		})
		time.Sleep(2 * time.Second)
		assert.Len(t, c.tasks(t, lost), 2, "the returning agent adds no task")
		for _, v := range victims {
			assert.NotContains(t, e2eIDs(c.tasks(t, lost)), v.ID, "the lost task is not resurrected")
		}
	})

	// --- delete --------------------------------------------------------------
	run("DELETE answers {deploymentId, version} and stops the tasks", nil, func(t *testing.T) {
		var list struct {
			Apps []e2eApp `json:"apps"`
		}
		c.api.expect(t, http.StatusOK, http.MethodGet, "/v2/apps?embed=apps.tasks", nil, &list)
		require.NotEmpty(t, list.Apps)
		del := e2eSubscribe(t, t, c.stream, c.api.base, "")
		for _, a := range list.Apps {
			var dr e2eDeploymentResult
			r := c.api.expect(t, http.StatusOK, http.MethodDelete, "/v2/apps"+a.ID, nil, &dr)
			assert.NotEmpty(t, dr.DeploymentID, "DELETE %s: %s", a.ID, r)
			assert.NotEmpty(t, dr.Version, "DELETE %s: %s", a.ID, r)
			for _, tk := range a.Tasks {
				if tk.State != "TASK_RUNNING" || len(tk.Ports) == 0 {
					continue
				}
				e2eEventually(t, 15*time.Second, 100*time.Millisecond, "task "+tk.ID+" stopped", func() (bool, string) {
					_, err := e2eListenerPID(c.ns, tk.Ports[0])
					return err != nil, "still listening"
				})
			}
			del.waitFor(t, 15*time.Second, "app_terminated_event", func(e e2eEvent) bool { return e.str("appId") == a.ID })
			c.api.expect(t, http.StatusNotFound, http.MethodGet, "/v2/apps"+a.ID, nil, nil)
		}
		c.api.expect(t, http.StatusOK, http.MethodGet, "/v2/apps", nil, &list)
		assert.Empty(t, list.Apps)
	})

}
