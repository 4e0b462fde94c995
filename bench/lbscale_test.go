package bench

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/haproxy/haproxytest"
	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/marathon/marathontest"
)

// scaleEnv selects the sizes TestLBScale runs ("100,1000,5000"); unset, it
// is skipped. scaleBinEnv names an lb binary to measure instead of
// building ./cmd/lb (to compare with another revision).
const (
	scaleEnv    = "SWITCHYARD_LB_SCALE"
	scaleBinEnv = "SWITCHYARD_LB_BIN"
)

// TestLBScale measures lb alone, as a subprocess, against the fake
// Marathon and a real HAProxy in a network namespace, with n apps of 2
// tasks each (half with a vhost), for each n in $SWITCHYARD_LB_SCALE:
//
//   - first config routed: lb start to every app answering;
//   - scale-up: a status_update_event for a new task of one app to the
//     task answering through HAProxy (p50, p99 of 20);
//   - new app: api_post_event and the task's status_update_event to the
//     app answering (median of 3);
//   - burst: 50 apps get a new task, one event every 20 ms; time from
//     the last event to all 50 new tasks answering;
//   - lb's CPU time (user+system) over the run, its peak RSS (VmHWM) and
//     its RSS at the end (VmRSS).
//
// It reports timings, it asserts nothing about them (speed is not a test
// verdict); it fails only when something is not routed at all.
//
//	SWITCHYARD_LB_SCALE=100,1000,5000 go test ./bench -run TestLBScale -v -timeout 60m
func TestLBScale(t *testing.T) {
	sizes := os.Getenv(scaleEnv)
	if sizes == "" {
		t.Skipf("set %s=100,1000,5000 to run", scaleEnv)
	}
	if haproxytest.InNetns(t) {
		return
	}
	bin := os.Getenv(scaleBinEnv)
	if bin == "" {
		bin = filepath.Join(t.TempDir(), "lb")
		out, err := exec.Command("go", "build", "-o", bin, "../cmd/lb").CombinedOutput()
		require.NoError(t, err, "go build ./cmd/lb: %s", out)
	}
	haproxyBin := haproxytest.Binary(t)
	var rows []string
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		require.NoError(t, err)
		rows = append(rows, scaleRun(t, bin, haproxyBin, n))
	}
	t.Logf("\n| apps | first config routed | scale-up p50 | scale-up p99 | new app routed | 50-app burst | lb CPU | lb peak RSS | lb RSS at end |\n|---|---|---|---|---|---|---|---|---|\n%s",
		strings.Join(rows, "\n"))
}

// scaleApp is app i: service port 10000+i, a vhost when i is even, and a
// task on each of ports.
func scaleApp(i int, ports ...int) marathon.App {
	opts := []marathontest.AppOption{marathontest.WithLabel("HAPROXY_GROUP", "external"), marathontest.WithServicePorts(10000 + i)}
	if i%2 == 0 {
		opts = append(opts, marathontest.WithLabel("HAPROXY_0_VHOST", fmt.Sprintf("app%d.example.com", i)))
	}
	for _, p := range ports {
		opts = append(opts, marathontest.WithTask("127.0.0.1", p))
	}
	return marathontest.App(fmt.Sprintf("/scale/app-%05d", i), opts...)
}

func runningEvent(a marathon.App, t marathon.Task, status string) marathon.StatusUpdateEvent {
	return marathon.StatusUpdateEvent{TaskID: t.ID, TaskStatus: status, AppID: a.ID, Host: t.Host,
		SlaveID: t.SlaveID, IPAddresses: t.IPAddresses, Ports: t.Ports, Version: t.Version}
}

// scaleRun measures one size and returns its table row.
func scaleRun(t *testing.T, bin, haproxyBin string, n int) string {
	fake := marathontest.New(t)
	base := [2]int{tbackend(t), tbackend(t)}
	apps := make([]marathon.App, n)
	for i := range apps {
		apps[i] = scaleApp(i, base[0], base[1])
	}
	fake.SetApps(apps)

	dir := t.TempDir()
	cmd := exec.Command(bin, "sse", "--marathon", fake.URL, "--haproxy-config", filepath.Join(dir, "haproxy.cfg"))
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(haproxyBin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	logs, err := os.Create(filepath.Join(dir, "lb.log"))
	require.NoError(t, err)
	defer logs.Close()
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := time.Now()
	require.NoError(t, cmd.Start())
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
		}
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if t.Failed() || os.Getenv("SWITCHYARD_LB_SCALE_LOGS") != "" {
			if b, err := os.ReadFile(logs.Name()); err == nil {
				t.Logf("lb logs:\n%s", b)
			}
		}
	}()
	routed := func(i, port int, timeout time.Duration) {
		t.Helper()
		require.NoError(t, waitRouted(10000+i, port, timeout), "app %d", i)
	}
	routed(n-1, base[0], 5*time.Minute)
	routed(0, base[1], time.Minute)
	first := time.Since(start)

	// Scale-up: one app at a time gets a third task, then loses it.
	extra := tbackend(t)
	var up []time.Duration
	for k := range 20 {
		i := (k * 7919) % n
		a := scaleApp(i, base[0], base[1], extra)
		task := a.Tasks[2]
		fake.UpsertApp(a)
		s := time.Now()
		fake.Publish(marathon.EventStatusUpdate, runningEvent(a, task, marathon.TaskRunning))
		routed(i, extra, 30*time.Second)
		up = append(up, time.Since(s))
		fake.UpsertApp(apps[i])
		fake.Publish(marathon.EventStatusUpdate, runningEvent(a, task, marathon.TaskKilled))
		require.NoError(t, waitGone(10000+i, extra, 30*time.Second))
	}
	slices.Sort(up)

	// New apps: api_post_event, then the task's status_update_event.
	var newApp []time.Duration
	for k := range 3 {
		i := n + k
		a := scaleApp(i, base[0])
		fake.UpsertApp(a)
		s := time.Now()
		fake.Publish(marathon.EventAPIPost, marathon.APIPostEvent{URI: "/v2/apps" + a.ID, AppDefinition: a})
		fake.Publish(marathon.EventStatusUpdate, runningEvent(a, a.Tasks[0], marathon.TaskRunning))
		routed(i, base[0], time.Minute)
		newApp = append(newApp, time.Since(s))
	}
	slices.Sort(newApp)

	// Burst: 50 apps get a new task each within a second.
	var burstApps []int
	var burstPorts []int
	for k := range 50 {
		burstApps = append(burstApps, (k*104729+13)%n)
		burstPorts = append(burstPorts, tbackend(t))
	}
	slices.Sort(burstApps)
	burstApps = slices.Compact(burstApps)
	var last time.Time
	for k, i := range burstApps {
		a := scaleApp(i, base[0], base[1], burstPorts[k])
		fake.UpsertApp(a)
		fake.Publish(marathon.EventStatusUpdate, runningEvent(a, a.Tasks[2], marathon.TaskRunning))
		last = time.Now()
		time.Sleep(20 * time.Millisecond) // the burst's pace, not a wait for a condition
	}
	for k, i := range burstApps {
		routed(i, burstPorts[k], time.Minute)
	}
	burst := time.Since(last)

	cpu, hwm, rss := procStats(t, cmd.Process.Pid)
	row := fmt.Sprintf("| %d | %s | %s | %s | %s | %s | %s | %d MiB | %d MiB |", n, first.Round(time.Millisecond),
		up[len(up)/2].Round(100*time.Microsecond), up[(len(up)-1)*99/100].Round(100*time.Microsecond),
		newApp[len(newApp)/2].Round(time.Millisecond), burst.Round(time.Millisecond), cpu.Round(10*time.Millisecond), hwm>>20, rss>>20)
	t.Log(row)
	return row
}

// tbackend starts an HTTP server answering its own port, for a test.
func tbackend(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(strconv.Itoa(port)))
	}), ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return port
}

// procStats returns a process's CPU time (user+system), its peak RSS
// (VmHWM) and its RSS (VmRSS).
func procStats(t *testing.T, pid int) (cpu time.Duration, hwm, rss int64) {
	t.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(t, err)
	// Fields after the command name (which may hold spaces): utime and
	// stime are the 12th and 13th of them.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	stt, _ := strconv.ParseInt(f[12], 10, 64)
	cpu = time.Duration(ut+stt) * time.Second / 100 // USER_HZ
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	for _, line := range strings.Split(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmHWM":
			hwm = kb << 10
		case "VmRSS":
			rss = kb << 10
		}
	}
	return cpu, hwm, rss
}
