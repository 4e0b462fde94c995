//go:build linux

package main

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// e2eLBGroup is the HAPROXY_GROUP the lb test exposes.
const e2eLBGroup = "e2e"

// e2eLB runs `lb sse --marathon SCHEDULER --group e2e` in the cluster's
// namespace and checks that the app's servicePort reaches exactly the
// app's (healthy) tasks while it is scaled, a task is killed and a task
// turns unhealthy and back.
func e2eLB(t *testing.T, c *e2eCluster, lbBin string) {
	id := "/lbweb"
	app := map[string]any{
		"id": id, "cmd": "echo $MESOS_TASK_ID > id; echo ok > ok; exec python3 -m http.server $PORT0",
		"instances": 2, "cpus": 0.1, "mem": 32,
		"labels":          map[string]string{"HAPROXY_GROUP": e2eLBGroup},
		"portDefinitions": []map[string]any{{"port": 0}},
		// maxConsecutiveFailures 0: an unhealthy task is never killed, so
		// the lb must stop routing to it on its own.
		"healthChecks": []map[string]any{{"protocol": "HTTP", "path": "/ok", "portIndex": 0,
			"gracePeriodSeconds": 5, "intervalSeconds": 1, "timeoutSeconds": 1, "maxConsecutiveFailures": 0}},
	}
	var created e2eApp
	c.api.expect(t, http.StatusCreated, http.MethodPost, "/v2/apps", app, &created)
	require.Len(t, created.PortDefinitions, 1)
	sp := created.PortDefinitions[0].Port
	c.waitTasks(t, id, 2, true, 30*time.Second)
	c.waitNoDeployment(t, id, 10*time.Second)

	// A short directory: HAProxy refuses unix socket paths over 97 bytes,
	// and t.TempDir() names grow with the test name.
	lbDir, err := os.MkdirTemp("", "sylb")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(lbDir) })
	cfg := filepath.Join(lbDir, "haproxy.cfg")
	lb := e2eStart(t, c.ns, c.dir, "lb", []string{"PORTS=9090"}, lbBin,
		"sse", "--marathon", c.api.base, "--group", e2eLBGroup,
		"--haproxy-config", cfg, "--dont-bind-http-https", "--health-check")
	t.Cleanup(func() { lb.stop(10 * time.Second) })

	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DialContext: c.ns.DialContext, DisableKeepAlives: true}}
	// sample asks the servicePort n times and returns the distinct task ids
	// that answered, plus how many requests failed.
	sample := func(n int) ([]string, int) {
		seen := map[string]bool{}
		failed := 0
		for range n {
			res, err := hc.Get(fmt.Sprintf("http://127.0.0.1:%d/id", sp))
			if err != nil {
				failed++
				continue
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				failed++
				continue
			}
			seen[strings.TrimSpace(string(b))] = true
		}
		out := make([]string, 0, len(seen))
		for k := range seen {
			out = append(out, k)
		}
		sort.Strings(out)
		return out, failed
	}
	// servers reads HAProxy's stats CSV (the stats listener on $PORTS) and
	// returns the host ports of the app backend's servers that are not in
	// maintenance: what HAProxy may send traffic to, independent of its
	// retries hiding a dead server from the sampled requests.
	backend := fmt.Sprintf("lbweb_%d", sp)
	servers := func() ([]int, error) {
		res, err := hc.Get("http://127.0.0.1:9090/haproxy?stats;csv")
		if err != nil {
			return nil, err
		}
		defer res.Body.Close()
		rows, err := csv.NewReader(res.Body).ReadAll()
		if err != nil {
			return nil, fmt.Errorf("stats csv: %w", err)
		}
		if len(rows) == 0 {
			return nil, errors.New("empty stats csv")
		}
		col := map[string]int{}
		for i, h := range rows[0] {
			col[strings.TrimPrefix(strings.TrimSpace(h), "# ")] = i
		}
		for _, k := range []string{"pxname", "svname", "status"} {
			if _, ok := col[k]; !ok {
				return nil, fmt.Errorf("stats csv has no %q column", k)
			}
		}
		var ports []int
		for _, r := range rows[1:] {
			if len(r) <= col["status"] || r[col["pxname"]] != backend || r[col["svname"]] == "BACKEND" || r[col["svname"]] == "FRONTEND" {
				continue
			}
			if strings.HasPrefix(r[col["status"]], "MAINT") {
				continue
			}
			// addr is empty in HAProxy 2.6's CSV; server names are
			// "<host>_<port>" (README §2: named from host and port).
			p := r[col["svname"]][strings.LastIndexByte(r[col["svname"]], '_')+1:]
			if i, ok := col["addr"]; ok && i < len(r) {
				if _, ap, err := net.SplitHostPort(r[i]); err == nil {
					p = ap
				}
			}
			n, err := strconv.Atoi(p)
			if err != nil {
				return nil, fmt.Errorf("server %q: no port in its name or addr", r[col["svname"]])
			}
			ports = append(ports, n)
		}
		sort.Ints(ports)
		return ports, nil
	}
	// routesExactly waits until the servicePort reaches exactly the tasks
	// want, and HAProxy's backend holds exactly their servers.
	routesExactly := func(what string, want []e2eTask) time.Duration {
		t.Helper()
		wantIDs := e2eIDs(want)
		var wantPorts []int
		for _, tk := range want {
			wantPorts = append(wantPorts, tk.Ports[0])
		}
		sort.Ints(wantPorts)
		return e2eEventually(t, 20*time.Second, 100*time.Millisecond, "lb routes "+what, func() (bool, string) {
			if lb.exited() {
				t.Fatalf("lb exited: %v\n%s", lb.err, e2eTail(filepath.Join(c.dir, "lb.log"), 30))
			}
			got, failed := sample(4 * len(want))
			ports, err := servers()
			return failed == 0 && slices.Equal(got, wantIDs) && err == nil && slices.Equal(ports, wantPorts),
				fmt.Sprintf("answers from %v (%d failed), backend servers %v (%v); want %v on %v", got, failed, ports, err, wantIDs, wantPorts)
		})
	}

	start := time.Now()
	routesExactly("to the 2 tasks", c.running(t, id))
	t.Logf("MEASURE lb start to servicePort %d serving both tasks: %s", sp, time.Since(start).Round(time.Millisecond))
	if b, err := os.ReadFile(cfg); assert.NoError(t, err, "lb writes --haproxy-config") {
		assert.Contains(t, string(b), fmt.Sprintf("lbweb_%d", sp), "frontend/backend named <app>_<servicePort>")
	}

	start = time.Now()
	c.api.expect(t, http.StatusOK, http.MethodPut, "/v2/apps"+id, `{"instances":3}`, nil)
	three, _ := c.waitTasks(t, id, 3, true, 30*time.Second)
	routesExactly("to 3 tasks after scale up", three)
	t.Logf("MEASURE PUT instances 3 to lb routing to the new healthy task: %s", time.Since(start).Round(time.Millisecond))
	c.waitNoDeployment(t, id, 10*time.Second)

	victim := three[0]
	start = time.Now()
	var killed struct {
		Task e2eTask `json:"task"`
	}
	c.api.expect(t, http.StatusOK, http.MethodDelete, "/v2/apps"+id+"/tasks/"+victim.ID, nil, &killed)
	assert.Equal(t, victim.ID, killed.Task.ID)
	var now []e2eTask
	e2eEventually(t, 30*time.Second, 100*time.Millisecond, "killed task replaced", func() (bool, string) {
		now = nil
		for _, tk := range c.tasks(t, id) {
			if tk.healthy() {
				now = append(now, tk)
			}
		}
		return len(now) == 3 && !slices.Contains(e2eIDs(now), victim.ID), fmt.Sprint(e2eIDs(now))
	})
	routesExactly("around the killed task", now)
	t.Logf("MEASURE task kill to lb routing to its healthy replacement only: %s", time.Since(start).Round(time.Millisecond))

	// Health: remove the health file of one task (its sandbox is its cwd).
	sick := now[0]
	okFile := fmt.Sprintf("/proc/%d/cwd/ok", c.taskPID(t, sick))
	require.NoError(t, os.Remove(okFile))
	start = time.Now()
	routesExactly("around the unhealthy task", now[1:])
	t.Logf("MEASURE health file removed to lb dropping the task: %s", time.Since(start).Round(time.Millisecond))
	require.NoError(t, os.WriteFile(okFile, []byte("ok\n"), 0o644))
	routesExactly("to the recovered task again", now)

	start = time.Now()
	c.api.expect(t, http.StatusOK, http.MethodPut, "/v2/apps"+id+"?force=true", `{"instances":1}`, nil)
	one, _ := c.waitTasks(t, id, 1, true, 20*time.Second)
	routesExactly("to the one task left", one)
	t.Logf("MEASURE scale 3->1 to lb routing to one task: %s", time.Since(start).Round(time.Millisecond))
	c.waitNoDeployment(t, id, 10*time.Second)
}
