package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/haproxy/haproxytest"
	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/marathon/marathontest"
)

// killPhase counts the requests made after one kill.
type killPhase struct {
	name   string
	at     time.Time
	total  int
	failed int
	// late counts what happened more than killGrace after the kill.
	lateTotal, lateFailed int
	firstLateErr          string
}

// killGrace is how long after a kill failed requests are tolerated (the
// time to notice and restart HAProxy).
const killGrace = time.Second

// traffic runs a few clients against :10240 and counts the outcomes per
// phase.
type traffic struct {
	mu     sync.Mutex // guards phase and the phases' counters
	phase  *killPhase
	phases []*killPhase

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startTraffic(t *testing.T, clients int) *traffic {
	ctx, cancel := context.WithCancel(t.Context())
	tr := &traffic{cancel: cancel}
	tr.begin("start")
	for range clients {
		tr.wg.Add(1)
		go func() {
			defer tr.wg.Done()
			for ctx.Err() == nil {
				err := tr.request()
				if ctx.Err() != nil {
					return
				}
				tr.record(err)
				if err != nil {
					// Do not spin on refused connections: a failed
					// request is followed by a 5 ms pause.
					select {
					case <-ctx.Done():
					case <-time.After(5 * time.Millisecond):
					}
				}
			}
		}()
	}
	t.Cleanup(tr.stop)
	return tr
}

func (tr *traffic) request() error {
	resp, err := client.Get("http://127.0.0.1:10240/")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(b)) != body01 {
		return fmt.Errorf("status %d body %q", resp.StatusCode, b)
	}
	return nil
}

func (tr *traffic) record(err error) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	ph := tr.phase
	ph.total++
	late := time.Since(ph.at) > killGrace
	if late {
		ph.lateTotal++
	}
	if err == nil {
		return
	}
	ph.failed++
	if late {
		ph.lateFailed++
		if ph.firstLateErr == "" {
			ph.firstLateErr = err.Error()
		}
	}
}

// begin starts counting a new phase; call it just before the kill.
func (tr *traffic) begin(name string) *killPhase {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.phase = &killPhase{name: name, at: time.Now()}
	tr.phases = append(tr.phases, tr.phase)
	return tr.phase
}

// settle waits until n requests have succeeded in phase ph more than
// killGrace after its kill.
func (tr *traffic) settle(t *testing.T, ph *killPhase, n int) {
	t.Helper()
	eventually(t, 90*time.Second, ph.name+": traffic after the grace period", func() bool {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return ph.lateTotal-ph.lateFailed >= n
	})
}

func (tr *traffic) stop() {
	tr.cancel()
	tr.wg.Wait()
}

// snapshot returns a copy of the phases' counters.
func (tr *traffic) snapshot() []killPhase {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	out := make([]killPhase, len(tr.phases))
	for i, ph := range tr.phases {
		out[i] = *ph
	}
	return out
}

// waitTakeover waits until a restarted lb has started (taken over)
// HAProxy. Until then HAProxy forwards lb's paths to the killed lb, and
// each such request takes seconds (HAProxy retries the refused connection
// once a second), so a slow answer is not an error here.
func waitTakeover(t *testing.T) {
	t.Helper()
	eventually(t, 60*time.Second, "lb took HAProxy over", func() bool {
		r, err := get(9090, "/metrics", "")
		return err == nil && strings.Contains(r.body, `switchyard_lb_reloads_total{reason="initial"} 1`)
	})
}

// tryMetric reads one sample from lb's /metrics, or returns -1 while
// HAProxy (which forwards /metrics to lb) is down.
func tryMetric(series string) float64 {
	r, err := get(9090, "/metrics", "")
	if err != nil || r.status != http.StatusOK {
		return -1
	}
	for _, line := range strings.Split(r.body, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			if v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64); err == nil {
				return v
			}
		}
	}
	return 0
}

// requireOneMaster asserts that exactly one HAProxy master runs cfgPath and
// returns its pid.
func requireOneMaster(t *testing.T, cfgPath, when string) int {
	t.Helper()
	var masters []int
	eventually(t, 30*time.Second, when+": exactly one HAProxy master", func() bool {
		masters = haproxytest.Masters(cfgPath)
		return len(masters) == 1
	})
	// Confirm it stays one (a second one would appear within a start).
	for range 3 {
		require.Equal(t, masters, haproxytest.Masters(cfgPath), "%s: HAProxy masters", when)
	}
	return masters[0]
}

// currentWorker returns the pid of HAProxy's current worker, from lb's
// /_haproxy_getpids (master first, then the current worker).
func currentWorker(t *testing.T) int {
	t.Helper()
	var worker int
	eventually(t, 30*time.Second, "HAProxy pids", func() bool {
		r, err := get(9090, "/_haproxy_getpids", "")
		if err != nil || r.status != http.StatusOK {
			return false
		}
		f := strings.Fields(r.body)
		if len(f) < 2 {
			return false
		}
		worker, err = strconv.Atoi(f[1])
		return err == nil
	})
	return worker
}

// moveTask replaces the first task of app 01 by a new one, the way a
// deployment does: the new task is routed first, the old one is closed
// once unrouted.
func moveTask(t *testing.T, w *world) {
	t.Helper()
	nb := newBackend(t, body01)
	tasks := append(slices.Clone(w.tasks01), nb)
	w.fake.UpsertApp(app01(false, nil, tasks...))
	w.publishStatus("/apache-nfs-lb-01", nb, marathon.TaskRunning)
	eventually(t, 30*time.Second, "new task routed", func() bool { return reaches(10240, nb) })
	old := tasks[0]
	tasks = tasks[1:]
	w.fake.UpsertApp(app01(false, nil, tasks...))
	w.publishStatus("/apache-nfs-lb-01", old, marathon.TaskKilled)
	eventually(t, 30*time.Second, "old task unrouted", func() bool {
		for range 6 {
			if r, err := get(10240, "/", ""); err != nil || r.port == strconv.Itoa(old.port) {
				return false
			}
		}
		return true
	})
	old.close()
	w.tasks01 = tasks
}

// TestE2EKill kills lb (then starts it again), HAProxy's worker and
// HAProxy's master with SIGKILL under traffic. After each kill, requests
// may fail for killGrace at most, and exactly one HAProxy master runs.
func TestE2EKill(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: real HAProxy in a network namespace; skipped with -short")
	}
	if haproxytest.InNetns(t) {
		return
	}
	haproxyBin := haproxytest.Binary(t)
	w := newWorld(t)
	cfgPath := filepath.Join(t.TempDir(), "haproxy.cfg")
	t.Cleanup(func() {
		// Runs last: nothing may be left, but never leak a process.
		for pid := range haproxytest.Processes(cfgPath) {
			t.Errorf("HAProxy process %d left behind", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	args := []string{"sse", "--marathon", w.fake.URL, "--group", "webapps01", "--haproxy-config", cfgPath}
	lb1 := startLB(t, haproxyBin, args...)
	waitReady(t)
	requireOneMaster(t, cfgPath, "start")

	tr := startTraffic(t, 4)
	tr.settle(t, tr.phase, 100)

	// lb killed: HAProxy keeps serving; the next lb takes it over.
	ph := tr.begin("lb")
	require.NoError(t, syscall.Kill(lb1.cmd.Process.Pid, syscall.SIGKILL))
	<-lb1.done
	master := requireOneMaster(t, cfgPath, "lb killed")
	lb2 := startLB(t, haproxyBin, args...)
	waitTakeover(t)
	assert.Equal(t, master, requireOneMaster(t, cfgPath, "lb restarted"), "the new lb adopted the running master")
	moveTask(t, w) // follows Marathon again
	moveTask(t, w)
	tr.settle(t, ph, 300)
	requireOneMaster(t, cfgPath, "tasks moved")

	for i, victim := range []string{"haproxy worker", "haproxy master"} {
		// Every task moves just before the kill: the file HAProxy restarts
		// from may not have the runtime updates yet, and then lists only
		// closed tasks; lb must bring the restarted HAProxy up to date.
		moveTask(t, w)
		moveTask(t, w)
		pid := currentWorker(t)
		if victim == "haproxy master" {
			pid = requireOneMaster(t, cfgPath, victim)
		}
		ph := tr.begin(victim)
		require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
		eventually(t, 60*time.Second, victim+": restart counted", func() bool {
			return tryMetric("switchyard_lb_haproxy_restarts_total") >= float64(i+1)
		})
		require.True(t, lb2.alive(), "lb keeps running when HAProxy's %s is killed", victim)
		tr.settle(t, ph, 300)
		requireOneMaster(t, cfgPath, victim+" killed")
		moveTask(t, w) // lb still follows Marathon
	}
	tr.stop()
	assert.Contains(t, lb2.logs.String(), "haproxy restarted", "the restart is logged")

	for _, ph := range tr.snapshot() {
		t.Logf("kill %-15s %5d requests, %3d failed (%3d more than %s after the kill)",
			ph.name+":", ph.total, ph.failed, ph.lateFailed, killGrace)
		if ph.name == "start" {
			assert.Zero(t, ph.failed, "requests failed before any kill")
			continue
		}
		assert.Zero(t, ph.lateFailed, "kill %s: requests failed more than %s after it (first: %s)", ph.name, killGrace, ph.firstLateErr)
	}

	// A clean stop leaves nothing behind.
	require.NoError(t, lb2.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-lb2.done:
	case <-time.After(30 * time.Second):
		t.Fatal("lb did not stop")
	}
	eventually(t, 10*time.Second, "no HAProxy process after lb stopped", func() bool {
		return len(haproxytest.Processes(cfgPath)) == 0
	})
}

// debianConfig is the configuration Debian's haproxy package installs as
// /etc/haproxy/haproxy.cfg (the default --haproxy-config): it says daemon.
// The stats socket moves to dir so that the test does not touch the host's.
func debianConfig(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile("/etc/haproxy/haproxy.cfg")
	if err != nil || !strings.Contains(string(b), "daemon") {
		b = []byte("global\n\tlog /dev/log local0\n\tstats socket /run/haproxy/admin.sock mode 660 level admin\n" +
			"\tstats timeout 30s\n\tdaemon\n\ndefaults\n\tlog global\n\tmode http\n\toption httplog\n" +
			"\ttimeout connect 5000\n\ttimeout client 50000\n\ttimeout server 50000\n")
	}
	return strings.ReplaceAll(string(b), "/run/haproxy/admin.sock", filepath.Join(dir, "admin.sock"))
}

// TestE2EDaemonConfigLeavesNoProcess starts lb on an existing
// configuration that says "daemon" while Marathon is down (so lb runs
// HAProxy on that file): HAProxy must stay lb's child, and nothing may be
// left once lb exits.
func TestE2EDaemonConfigLeavesNoProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: real HAProxy in a network namespace; skipped with -short")
	}
	if haproxytest.InNetns(t) {
		return
	}
	haproxyBin := haproxytest.Binary(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "haproxy.cfg")
	require.NoError(t, os.WriteFile(cfgPath, []byte(debianConfig(t, dir)), 0o644))
	t.Cleanup(func() {
		for pid := range haproxytest.Processes(cfgPath) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	fake := marathontest.New(t)
	fake.SetDown(true)

	lbp := startLB(t, haproxyBin, "sse", "--marathon", fake.URL, "--haproxy-config", cfgPath)
	eventually(t, 60*time.Second, "HAProxy started on the existing configuration", func() bool {
		return strings.Contains(lbp.logs.String(), "HAProxy started") || !lbp.alive()
	})
	require.True(t, lbp.alive(), "lb runs; logs:\n%s", lbp.logs.String())
	master := requireOneMaster(t, cfgPath, "started")
	ppid, err := parentOf(master)
	require.NoError(t, err)
	assert.Equal(t, lbp.cmd.Process.Pid, ppid, "HAProxy's master is lb's child: it did not daemonize")

	require.NoError(t, lbp.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-lbp.done:
	case <-time.After(30 * time.Second):
		t.Fatal("lb did not stop")
	}
	assert.Zero(t, lbp.cmd.ProcessState.ExitCode(), "exit code; logs:\n%s", lbp.logs.String())
	eventually(t, 10*time.Second, "no HAProxy process after lb exited", func() bool {
		return len(haproxytest.Processes(cfgPath)) == 0
	})
}

// parentOf returns a process's parent pid.
func parentOf(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 2 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	return strconv.Atoi(f[1])
}
