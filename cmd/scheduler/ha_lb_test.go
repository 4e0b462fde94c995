package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/haproxy/haproxytest"
	"github.com/switchyard/switchyard/scheduler/zk/zktest"
)

// lbServicePort is the servicePort of the app the LB test routes.
const lbServicePort = 10000

// TestHAFailoverWithLB runs three schedulers on a three-node ZooKeeper
// ensemble, a real agent running an HTTP app, and the real lb (with
// HAProxy 2.6) given all three schedulers in --marathon, all in a network
// namespace. Client goroutines send requests through HAProxy while the
// leader is killed with SIGKILL: none fails (the tasks keep running), lb
// re-attaches to a live scheduler's event stream and resyncs, and a scale
// up made through the new leader reaches traffic. How long lb took to
// resync is logged, not asserted.
func TestHAFailoverWithLB(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: ZooKeeper, real HAProxy in a network namespace; skipped with -short")
	}
	if haproxytest.InNetns(t) {
		return
	}
	haproxyBin := haproxytest.Binary(t)
	lbExe := lbBinary(t)

	ens := zktest.Start(t, 3)
	ms := cluster(t, ens, 3, 3*time.Second)
	lead := waitLeader(t, ms, "")
	urls := ms[0].url() + "," + ms[1].url() + "," + ms[2].url()

	dir := t.TempDir()
	agentLog := filepath.Join(dir, "agent.log")
	logf, err := os.Create(agentLog)
	require.NoError(t, err)
	defer logf.Close()
	agentCmd := exec.Command(agentBinary(t), "--master", urls,
		"--data-dir", filepath.Join(dir, "agent"), "--hostname", "127.0.0.1", "--address", "127.0.0.1",
		"--resources", "cpus:4;mem:1024;disk:1000;ports:[31000-31100]", "--default-user", "", "--allow-root-tasks", "--log-level", "info")
	agentCmd.Stdout, agentCmd.Stderr = logf, logf
	require.NoError(t, agentCmd.Start())
	// The agent leaves its tasks running when it stops: the marker in the
	// command names them for the cleanup.
	marker := fmt.Sprintf("SYLBTEST%d", time.Now().UnixNano())
	t.Cleanup(func() {
		_ = agentCmd.Process.Signal(syscall.SIGTERM)
		_ = agentCmd.Wait()
		killByCmdline(marker)
		if t.Failed() {
			b, _ := os.ReadFile(agentLog)
			t.Logf("agent log:\n%s", tail(b, 6000))
		}
	})

	// Each task serves its own id at /id.
	code, b, _, err := call("POST", ms[1].url()+"/v2/apps", map[string]any{
		"id": "/web", "instances": 2, "cpus": 0.1, "mem": 32,
		"cmd":             "mkdir " + marker + " && echo $MESOS_TASK_ID > " + marker + "/id && exec python3 -m http.server $PORT0 --bind 127.0.0.1 --directory " + marker,
		"labels":          map[string]string{"HAPROXY_GROUP": "external"},
		"portDefinitions": []map[string]any{{"port": lbServicePort}},
	})
	require.NoError(t, err)
	require.Equal(t, 201, code, string(b))
	require.Eventually(t, func() bool { return len(runningTasks(t, lead.url(), "/web")) == 2 }, 60*time.Second, 50*time.Millisecond)

	// A short directory: HAProxy refuses unix socket paths over 97 bytes.
	lbDir, err := os.MkdirTemp("", "sylb")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(lbDir) })
	lbLog := filepath.Join(lbDir, "lb.log")
	lbOut, err := os.Create(lbLog)
	require.NoError(t, err)
	defer lbOut.Close()
	lbCmd := exec.Command(lbExe, "sse", "--marathon", urls, "--group", "external",
		"--haproxy-config", filepath.Join(lbDir, "haproxy.cfg"), "--dont-bind-http-https",
		"--syslog-socket", "/dev/null", "--haproxy-binary", haproxyBin)
	lbCmd.Stdout, lbCmd.Stderr = lbOut, lbOut
	lbCmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, lbCmd.Start())
	t.Cleanup(func() {
		_ = lbCmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = lbCmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Errorf("lb did not stop within 15s of SIGTERM")
		}
		_ = syscall.Kill(-lbCmd.Process.Pid, syscall.SIGKILL) // HAProxy
		if t.Failed() || os.Getenv("LB_E2E_LOGS") != "" {
			b, _ := os.ReadFile(lbLog)
			t.Logf("lb log:\n%s", tail(b, 8000))
		}
	})

	hc := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	// served asks the service port once and returns the task id that
	// answered.
	served := func() (string, error) {
		resp, err := hc.Get(fmt.Sprintf("http://127.0.0.1:%d/id", lbServicePort))
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return "", err
		}
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
		}
		return strings.TrimSpace(string(body)), nil
	}
	before := runningTasks(t, lead.url(), "/web")
	seen := map[string]bool{}
	require.Eventually(t, func() bool {
		if id, err := served(); err == nil {
			seen[id] = true
		}
		return len(seen) == 2
	}, 60*time.Second, 10*time.Millisecond, "both tasks reached through HAProxy")
	assert.ElementsMatch(t, before, keys(seen))

	// Bounded clients: four goroutines, one request at a time each.
	var ok, failed atomic.Int64
	var errMu sync.Mutex
	var errs []string
	var mu sync.Mutex
	answered := map[string]int{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				id, err := served()
				if err != nil {
					failed.Add(1)
					errMu.Lock()
					if len(errs) < 10 {
						errs = append(errs, time.Now().Format("15:04:05.000")+" "+err.Error())
					}
					errMu.Unlock()
					continue
				}
				ok.Add(1)
				mu.Lock()
				answered[id]++
				mu.Unlock()
			}
		}()
	}
	stopClients := func() {
		cancel()
		wg.Wait()
	}
	t.Cleanup(stopClients)
	require.Eventually(t, func() bool { return ok.Load() >= 20 }, 30*time.Second, 10*time.Millisecond)

	attachesBefore := countLines(t, lbLog, "event stream connected")
	fullBefore := lbFullSyncs(t)
	killed := time.Now()
	lead.kill()
	next := waitLeader(t, ms, lead.addr)
	elected := time.Since(killed)
	require.Eventually(t, func() bool { return countLines(t, lbLog, "event stream connected") > attachesBefore },
		60*time.Second, 10*time.Millisecond, "lb re-attaches to a live scheduler's event stream")
	attached := time.Since(killed)
	require.Eventually(t, func() bool { return lbFullSyncs(t) > fullBefore },
		60*time.Second, 10*time.Millisecond, "lb resyncs after re-attaching")
	resynced := time.Since(killed)
	okAtResync, failedAtResync := ok.Load(), failed.Load()
	t.Logf("after kill -9 of the leader: new leader %s elected after %s, lb re-attached after %s, resynced after %s (%s after the election); requests so far %d ok, %d failed",
		next.addr, elected.Round(time.Millisecond), attached.Round(time.Millisecond), resynced.Round(time.Millisecond),
		(resynced - elected).Round(time.Millisecond), okAtResync, failedAtResync)

	// A change made after the failover reaches traffic.
	require.Eventually(t, func() bool {
		code, _, _, err := call("PUT", next.url()+"/v2/apps/web", map[string]any{"instances": 3})
		return err == nil && code == 200
	}, 60*time.Second, 50*time.Millisecond)
	var after []string
	require.Eventually(t, func() bool { after = runningTasks(t, next.url(), "/web"); return len(after) == 3 }, 60*time.Second, 50*time.Millisecond)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(answered) == 3
	}, 60*time.Second, 10*time.Millisecond, "the new task serves traffic through HAProxy")
	stopClients()

	for _, id := range before {
		assert.Contains(t, after, id, "task %s kept running through the failover", id)
	}
	mu.Lock()
	assert.ElementsMatch(t, after, keys(answered), "traffic reached exactly the app's tasks")
	mu.Unlock()
	t.Logf("requests through HAProxy: %d ok, %d failed", ok.Load(), failed.Load())
	assert.Zero(t, failed.Load(), "no request failed through the failover and the scale up; first errors: %v", errs)
}

// lbFullSyncs is lb's count of full syncs (Marathon re-read), from its
// /metrics on the stats port.
func lbFullSyncs(t *testing.T) float64 {
	t.Helper()
	resp, err := http.Get("http://127.0.0.1:9090/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	metric := func(name string) float64 {
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, name+" "); ok {
				v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
				require.NoError(t, err, line)
				return v
			}
		}
		return 0
	}
	return metric("switchyard_lb_syncs_total") - metric("switchyard_lb_incremental_syncs_total")
}

// countLines counts the lines of a file that contain s.
func countLines(t *testing.T, path, s string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return strings.Count(string(b), s)
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
