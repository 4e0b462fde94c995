package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/haproxy/haproxytest"
	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/marathon/marathontest"
	"github.com/switchyard/switchyard/templates"
)

// externalApp is an app in group "external" on servicePort with the given
// HAPROXY_0_* labels (VHOST, PATH, ...) and one task per backend.
func externalApp(id string, servicePort int, labels map[string]string, tasks ...*backend) marathon.App {
	all := map[string]string{"HAPROXY_GROUP": "external"}
	for k, v := range labels {
		all["HAPROXY_0_"+k] = v
	}
	opts := []marathontest.AppOption{marathontest.WithLabels(all), marathontest.WithServicePorts(servicePort)}
	for _, b := range tasks {
		opts = append(opts, marathontest.WithTask("127.0.0.1", b.port))
	}
	return marathontest.App(id, opts...)
}

// getByAppID is GET / on :9091 with an x-marathon-app-id header.
func getByAppID(id string) (reply, error) {
	req, err := http.NewRequest(http.MethodGet, "http://127.0.0.1:9091/", nil)
	if err != nil {
		return reply{}, err
	}
	req.Header.Set("x-marathon-app-id", id)
	resp, err := client.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	return reply{status: resp.StatusCode, body: strings.TrimSpace(string(b)), port: resp.Header.Get("X-Backend-Port"), header: resp.Header}, nil
}

// answersWith reports whether GET port+path with Host host answers status and
// body (body is ignored when empty).
func answersWith(port int, path, host string, status int, body string) bool {
	r, err := get(port, path, host)
	return err == nil && r.status == status && (body == "" || r.body == body)
}

// TestE2EHAProxyMap runs lb sse --haproxy-map: vhosts (one app with two)
// and app ids are routed through map files written next to the
// configuration, an app with HAPROXY_0_PATH keeps its own ACLs, the admin
// endpoints serve the maps, and a new vhost app is routed after its
// api_post_event.
func TestE2EHAProxyMap(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: real HAProxy in a network namespace; skipped with -short")
	}
	if haproxytest.InNetns(t) {
		return
	}
	haproxyBin := haproxytest.Binary(t)

	a, b, c := newBackend(t, "APP A"), newBackend(t, "APP B"), newBackend(t, "APP C")
	fake := marathontest.New(t)
	fake.SetApps([]marathon.App{
		externalApp("/map/a", 10300, map[string]string{"VHOST": "a.example.com"}, a),
		externalApp("/map/b", 10301, map[string]string{"VHOST": "b.example.com,b2.example.com"}, b),
		externalApp("/map/c", 10302, map[string]string{"VHOST": "c.example.com", "PATH": "/api"}, c),
	})
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "haproxy.cfg")
	startLB(t, haproxyBin, "sse", "--marathon", fake.URL, "--group", "external", "--haproxy-config", cfgPath, "--haproxy-map")
	waitReady(t)

	t.Run("map files", func(t *testing.T) {
		cfg, err := os.ReadFile(cfgPath)
		require.NoError(t, err)
		domainMap := filepath.Join(dir, templates.DomainMapFile)
		appMap := filepath.Join(dir, templates.AppMapFile)
		assert.Contains(t, string(cfg), "map("+domainMap+")", "vhosts routed through the domain map")
		assert.Contains(t, string(cfg), "map("+appMap+")", "app ids routed through the app map")
		assert.Contains(t, string(cfg), "path_beg /api", "the app with a path keeps its own ACL")
		assert.NotContains(t, string(cfg), "a.example.com", "no per-vhost ACL for an app in the domain map")

		dm, err := os.ReadFile(domainMap)
		require.NoError(t, err)
		for _, line := range []string{"a.example.com map_a_10300", "b.example.com map_b_10301", "b2.example.com map_b_10301"} {
			assert.Contains(t, strings.Split(string(dm), "\n"), line, "domain map %s", domainMap)
		}
		assert.NotContains(t, string(dm), "c.example.com", "a vhost with a path is not in the domain map")
		am, err := os.ReadFile(appMap)
		require.NoError(t, err)
		for _, line := range []string{"/map/a map_a_10300", "/map/b map_b_10301", "/map/c map_c_10302"} {
			assert.Contains(t, strings.Split(string(am), "\n"), line, "app map %s", appMap)
		}

		r, err := get(9090, "/_haproxy_getvhostmap", "")
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, r.status)
		assert.Equal(t, strings.TrimSpace(string(dm)), r.body, "/_haproxy_getvhostmap is the domain map file")
		r, err = get(9090, "/_haproxy_getappmap", "")
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, r.status)
		assert.Equal(t, strings.TrimSpace(string(am)), r.body, "/_haproxy_getappmap is the app map file")
	})

	t.Run("routing by Host", func(t *testing.T) {
		roundRobin(t, 80, "a.example.com", "APP A", []*backend{a})
		roundRobin(t, 80, "b.example.com", "APP B", []*backend{b})
		roundRobin(t, 80, "b2.example.com", "APP B", []*backend{b})
		roundRobin(t, 80, "B2.Example.COM:80", "APP B", []*backend{b}) // lower-cased, port stripped
		r, err := get(80, "/api/x", "c.example.com")
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, r.status)
		assert.Equal(t, "APP C", r.body, "vhost and path")
		for _, tc := range []struct{ path, host string }{
			{"/", "unknown.example.com"},
			{"/other", "c.example.com"}, // right host, wrong path
			{"/", ""},                   // 127.0.0.1:80
		} {
			r, err := get(80, tc.path, tc.host)
			require.NoError(t, err)
			assert.Equal(t, http.StatusServiceUnavailable, r.status, "GET %s Host %q", tc.path, tc.host)
		}
		// The service ports still answer directly.
		roundRobin(t, 10300, "", "APP A", []*backend{a})
		roundRobin(t, 10301, "", "APP B", []*backend{b})
	})

	t.Run("routing by app id", func(t *testing.T) {
		for _, tc := range []struct{ id, body string }{{"/map/a", "APP A"}, {"/map/b", "APP B"}, {"/map/c", "APP C"}, {"/MAP/B", "APP B"}} {
			r, err := getByAppID(tc.id)
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, r.status, "x-marathon-app-id %s", tc.id)
			assert.Equal(t, tc.body, r.body, "x-marathon-app-id %s", tc.id)
		}
		r, err := getByAppID("/no/such/app")
		require.NoError(t, err)
		assert.Equal(t, http.StatusServiceUnavailable, r.status, "unknown app id")
	})

	t.Run("new vhost app", func(t *testing.T) {
		d := newBackend(t, "APP D")
		app := externalApp("/map/d", 10303, map[string]string{"VHOST": "d.example.com"}, d)
		fake.UpsertApp(app)
		start := time.Now()
		fake.Publish(marathon.EventAPIPost, marathon.APIPostEvent{URI: "/v2/apps/map/d", AppDefinition: app})
		eventually(t, 10*time.Second, "new vhost routed", func() bool {
			return answersWith(80, "/", "d.example.com", http.StatusOK, "APP D")
		})
		t.Logf("--haproxy-map: api_post_event -> new vhost routed: %s", time.Since(start))
		dm, err := os.ReadFile(filepath.Join(dir, templates.DomainMapFile))
		require.NoError(t, err)
		assert.Contains(t, string(dm), "d.example.com map_d_10303")
		// lb records the new maps once HAProxy confirms the reload, a
		// moment after the new worker already routes.
		eventually(t, 5*time.Second, "/_haproxy_getvhostmap has the new vhost", func() bool {
			r, err := get(9090, "/_haproxy_getvhostmap", "")
			return err == nil && strings.Contains(r.body, "d.example.com map_d_10303")
		})
		r, err := getByAppID("/map/d")
		require.NoError(t, err)
		assert.Equal(t, "APP D", r.body, "new app routed by app id")
		roundRobin(t, 80, "a.example.com", "APP A", []*backend{a})

		// And deleted: its vhost is unrouted.
		fake.RemoveApp("/map/d")
		fake.Publish(marathon.EventAppTerminated, marathon.AppTerminatedEvent{AppID: "/map/d"})
		eventually(t, 10*time.Second, "deleted vhost unrouted", func() bool {
			return answersWith(80, "/", "d.example.com", http.StatusServiceUnavailable, "")
		})
		dm, err = os.ReadFile(filepath.Join(dir, templates.DomainMapFile))
		require.NoError(t, err)
		assert.NotContains(t, string(dm), "d.example.com")
		roundRobin(t, 80, "b2.example.com", "APP B", []*backend{b})
	})
}

// reloadScript is the --command of TestE2ECommand: the classic
// marathon-lb deployment, where an external command (re)starts a daemon
// HAProxy on the file lb wrote, replacing the previous one with -sf. Each
// run is numbered in runs, keeps a copy of the configuration it saw
// (run-N.cfg) and records HAProxy's pids in allpids.
const reloadScript = `#!/bin/sh
set -e
d='%[1]s'
n=$(cat "$d/runs" 2>/dev/null | wc -l)
n=$((n + 1))
cp "$d/haproxy.cfg" "$d/run-$n.cfg"
old=""
if [ -s "$d/haproxy.pid" ]; then old=$(cat "$d/haproxy.pid"); fi
if [ -n "$old" ]; then
	'%[2]s' -D -f "$d/haproxy.cfg" -p "$d/haproxy.pid" -sf $old >>"$d/haproxy.log" 2>&1
else
	'%[2]s' -D -f "$d/haproxy.cfg" -p "$d/haproxy.pid" >>"$d/haproxy.log" 2>&1
fi
cat "$d/haproxy.pid" >>"$d/allpids"
echo "$n" >>"$d/runs"
`

// commandRuns is how many times the reload script has completed.
func commandRuns(t *testing.T, dir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "runs"))
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	require.NoError(t, err)
	return strings.Count(string(b), "\n")
}

// runsHAProxyOn reports whether pid is a live process whose command line
// names cfgPath (an HAProxy daemon the reload script started).
func runsHAProxyOn(pid int, cfgPath string) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), cfgPath) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err == nil && !strings.Contains(string(stat), ") Z ")
}

// readPIDs reads the pids listed in file (none when it does not exist).
func readPIDs(t *testing.T, file string) []int {
	t.Helper()
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	require.NoError(t, err)
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		require.NoError(t, err, "pid in %s", file)
		pids = append(pids, pid)
	}
	return pids
}

// oldDaemonsGone reports whether every HAProxy the reload script started,
// except the current one (haproxy.pid), has exited: after -sf the old
// process closes its listeners and leaves once its connections are done.
func oldDaemonsGone(t *testing.T, dir, cfgPath string) bool {
	t.Helper()
	current := readPIDs(t, filepath.Join(dir, "haproxy.pid"))
	for _, pid := range readPIDs(t, filepath.Join(dir, "allpids")) {
		if !slices.Contains(current, pid) && runsHAProxyOn(pid, cfgPath) {
			return false
		}
	}
	return true
}

// killDaemons stops the HAProxy daemons the reload script started: every
// pid it recorded that still runs haproxy on cfgPath.
func killDaemons(t *testing.T, dir, cfgPath string) {
	var pids []int
	for _, pid := range readPIDs(t, filepath.Join(dir, "allpids")) {
		if runsHAProxyOn(pid, cfgPath) {
			pids = append(pids, pid)
			_ = syscall.Kill(pid, syscall.SIGTERM)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for runsHAProxyOn(pid, cfgPath) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if runsHAProxyOn(pid, cfgPath) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Errorf("haproxy daemon %d ignored SIGTERM", pid)
		}
	}
	if t.Failed() {
		if b, err := os.ReadFile(filepath.Join(dir, "haproxy.log")); err == nil {
			t.Logf("output of the HAProxy daemons:\n%s", b)
		}
	}
}

// TestE2ECommand runs lb sse --command: lb writes the configuration and
// runs the command, which (re)starts HAProxy itself. Routing follows a new
// task and a new app; an app whose labels HAProxy rejects is left out, and
// a configuration that fails validation is never written nor followed by a
// run of the command.
func TestE2ECommand(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: real HAProxy in a network namespace; skipped with -short")
	}
	if haproxytest.InNetns(t) {
		return
	}
	haproxyBin := haproxytest.Binary(t)

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "haproxy.cfg")
	script := filepath.Join(dir, "reload.sh")
	require.NoError(t, os.WriteFile(script, []byte(fmt.Sprintf(reloadScript, dir, haproxyBin)), 0o755))
	t.Cleanup(func() { killDaemons(t, dir, cfgPath) }) // after lb has stopped (cleanups run last first)

	// The configuration file must never hold the rejected option, at any
	// moment: watch it for the whole test.
	const badOption = "no-such-bind-option-e2e"
	var badWritten atomic.Bool
	watchCtx, stopWatch := context.WithCancel(context.Background())
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-watchCtx.Done():
				return
			case <-tick.C:
			}
			if b, err := os.ReadFile(cfgPath); err == nil && strings.Contains(string(b), badOption) {
				badWritten.Store(true)
			}
		}
	}()
	t.Cleanup(func() {
		stopWatch()
		<-watchDone
	})

	web := []*backend{newBackend(t, "WEB"), newBackend(t, "WEB")}
	fake := marathontest.New(t)
	fake.SetApps([]marathon.App{externalApp("/web", 10400, map[string]string{"VHOST": "web.example.com"}, web...)})
	lbp := startLB(t, haproxyBin, "sse", "--marathon", fake.URL, "--group", "external",
		"--haproxy-config", cfgPath, "--command", script)
	waitReady(t)

	t.Run("initial", func(t *testing.T) {
		assert.Equal(t, 1, commandRuns(t, dir), "the command ran once for the first configuration")
		roundRobin(t, 10400, "", "WEB", web)
		roundRobin(t, 80, "web.example.com", "WEB", web)
		r, err := get(80, "/", "unknown.example.com")
		require.NoError(t, err)
		assert.Equal(t, http.StatusServiceUnavailable, r.status, "unknown Host")
		seen, err := os.ReadFile(filepath.Join(dir, "run-1.cfg"))
		require.NoError(t, err)
		onDisk, err := os.ReadFile(cfgPath)
		require.NoError(t, err)
		assert.Equal(t, string(onDisk), string(seen), "the command saw the configuration lb wrote")
		r, err = get(9090, "/_haproxy_getconfig", "")
		require.NoError(t, err)
		assert.Equal(t, strings.TrimSpace(string(onDisk)), r.body, "getconfig is the file the command loaded")
	})

	// change publishes ev after upserting app and waits for routing to
	// follow; it checks the file was rewritten with want and the command
	// ran once more, on that file.
	change := func(t *testing.T, what string, app marathon.App, ev func(), want string, routed func() bool) {
		t.Helper()
		runs := commandRuns(t, dir)
		fake.UpsertApp(app)
		ev()
		took := eventually(t, 10*time.Second, what+" routed", routed)
		t.Logf("--command: %s -> routing %s", what, took)
		eventually(t, 5*time.Second, what+": command ran", func() bool { return commandRuns(t, dir) > runs })
		onDisk, err := os.ReadFile(cfgPath)
		require.NoError(t, err)
		assert.Contains(t, string(onDisk), want, "%s: configuration file rewritten", what)
		seen, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("run-%d.cfg", runs+1)))
		require.NoError(t, err)
		assert.Contains(t, string(seen), want, "%s: the command ran on the new file", what)
		eventually(t, 5*time.Second, what+": the previous HAProxy exited", func() bool { return oldDaemonsGone(t, dir, cfgPath) })
	}

	outer := t // tasks that become part of an app outlive the subtest adding them
	t.Run("new task", func(t *testing.T) {
		nb := newBackend(outer, "WEB")
		tasks := append(append([]*backend(nil), web...), nb)
		app := externalApp("/web", 10400, map[string]string{"VHOST": "web.example.com"}, tasks...)
		change(t, "new task", app, func() {
			fake.Publish(marathon.EventStatusUpdate, marathon.StatusUpdateEvent{
				AppID: "/web", TaskID: fmt.Sprintf("web.%d", nb.port), TaskStatus: marathon.TaskRunning,
				Host: "127.0.0.1", Ports: []int{nb.port},
			})
		}, fmt.Sprintf("127.0.0.1:%d", nb.port), func() bool { return reaches(10400, nb) })
		roundRobin(t, 10400, "", "WEB", tasks)
		web = tasks
	})

	t.Run("new app", func(t *testing.T) {
		nb := newBackend(t, "NEW APP")
		app := externalApp("/newapp", 10401, map[string]string{"VHOST": "new.example.com"}, nb)
		change(t, "new app", app, func() {
			fake.Publish(marathon.EventAPIPost, marathon.APIPostEvent{URI: "/v2/apps/newapp", AppDefinition: app})
		}, "frontend newapp_10401", func() bool {
			return answersWith(10401, "/", "", http.StatusOK, "NEW APP") && answersWith(80, "/", "new.example.com", http.StatusOK, "NEW APP")
		})
		roundRobin(t, 80, "web.example.com", "WEB", web)
	})

	t.Run("rejected app", func(t *testing.T) {
		runs := commandRuns(t, dir)
		failuresBefore := metricValue(t, "switchyard_lb_validation_failures_total")
		bad := externalApp("/bad-bind", 10402, map[string]string{"BIND_OPTIONS": badOption}, newBackend(t, "BAD"))
		fake.UpsertApp(bad)
		fake.Publish(marathon.EventAPIPost, marathon.APIPostEvent{URI: "/v2/apps/bad-bind", AppDefinition: bad})
		eventually(t, 10*time.Second, "app HAProxy rejects counted as invalid", func() bool {
			return metricValue(t, "switchyard_lb_invalid_apps") == 1
		})
		assert.Greater(t, metricValue(t, "switchyard_lb_validation_failures_total"), failuresBefore, "validation failure counted")
		assert.Equal(t, runs, commandRuns(t, dir), "no command run for a configuration that fails validation")
		assert.False(t, listening(10402), "rejected app not bound")
		assert.Contains(t, lbp.logs.String(), "app_id=/bad-bind", "rejected app logged")
		r, err := get(9090, "/_switchyard/skipped", "")
		require.NoError(t, err)
		assert.Contains(t, r.body, `"appId": "/bad-bind"`, "rejected app listed on /_switchyard/skipped")
		assert.Contains(t, r.body, `"rejectedByHAProxy": true`)

		// The other apps still follow changes, with the bad one left out.
		nb := newBackend(outer, "WEB")
		tasks := append(append([]*backend(nil), web...), nb)
		app := externalApp("/web", 10400, map[string]string{"VHOST": "web.example.com"}, tasks...)
		change(t, "new task next to a rejected app", app, func() {
			fake.Publish(marathon.EventStatusUpdate, marathon.StatusUpdateEvent{
				AppID: "/web", TaskID: fmt.Sprintf("web.%d", nb.port), TaskStatus: marathon.TaskRunning,
				Host: "127.0.0.1", Ports: []int{nb.port},
			})
		}, fmt.Sprintf("127.0.0.1:%d", nb.port), func() bool { return reaches(10400, nb) })
		roundRobin(t, 10400, "", "WEB", tasks)
		web = tasks
		assert.False(t, listening(10402), "rejected app still not bound")
	})

	require.True(t, lbp.alive(), "lb still running")
	assert.False(t, badWritten.Load(), "the configuration file never held the rejected option")
	n := commandRuns(t, dir)
	for i := 1; i <= n; i++ {
		seen, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("run-%d.cfg", i)))
		require.NoError(t, err)
		assert.NotContains(t, string(seen), badOption, "run %d of the command saw the rejected option", i)
	}
	t.Logf("--command: %d runs of the reload command", n)
	assert.Len(t, readPIDs(t, filepath.Join(dir, "allpids")), n, "one HAProxy daemon per run")
	assert.True(t, oldDaemonsGone(t, dir, cfgPath), "only the last HAProxy daemon runs")
	for _, pid := range readPIDs(t, filepath.Join(dir, "haproxy.pid")) {
		assert.True(t, runsHAProxyOn(pid, cfgPath), "the last HAProxy daemon (%d) runs", pid)
	}
}
