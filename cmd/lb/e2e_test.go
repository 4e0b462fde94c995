package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
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
	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/marathon/marathontest"
	"github.com/switchyard/switchyard/templates"
)

// lbExecEnv makes the test binary act as the lb command (see TestMain), so
// the end-to-end test runs the real command line as a subprocess without
// a separate go build.
const lbExecEnv = "SWITCHYARD_LB_E2E_EXEC"

func TestMain(m *testing.M) {
	if os.Getenv(lbExecEnv) == "1" {
		os.Exit(run(append([]string{"lb"}, os.Args[1:]...), os.Stdout, os.Stderr, os.Getenv))
	}
	os.Exit(m.Run())
}

// Issue 2's hosts and bodies.
const (
	vhost01 = "server-26.virtualstack2.gatuvelus.home"
	vhost02 = "server-24.virtualstack2.gatuvelus.home"
	body01  = "HELLO MESOS WORLD"
	body02  = "HELLO WORLD OF MARATHON-LB"
)

// backend is a task's process: an HTTP server on 127.0.0.1 answering a
// fixed body and naming its port in X-Backend-Port.
type backend struct {
	port int
	srv  *http.Server
}

func newBackend(t *testing.T, body string) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	b := &backend{port: ln.Addr().(*net.TCPAddr).Port}
	b.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend-Port", strconv.Itoa(b.port))
		_, _ = io.WriteString(w, body+"\n")
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = b.srv.Serve(ln) }()
	t.Cleanup(b.close)
	return b
}

func (b *backend) close() { _ = b.srv.Close() }

// lbProcess is lb running as a subprocess of the test.
type lbProcess struct {
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startLB runs "lb args..." with haproxy's directory on PATH.
func startLB(t *testing.T, haproxyBin string, args ...string) *lbProcess {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	p := &lbProcess{logs: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(exe, args...)
	p.cmd.Env = append(os.Environ(), lbExecEnv+"=1",
		"PATH="+filepath.Dir(haproxyBin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, p.cmd.Start())
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() || os.Getenv("LB_E2E_LOGS") != "" {
			t.Logf("lb %s logs:\n%s", strings.Join(args, " "), p.logs.String())
		}
	})
	return p
}

// stop sends SIGTERM and waits; anything left in the process group
// (HAProxy) is killed after a grace period.
func (p *lbProcess) stop(t *testing.T) {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			t.Errorf("lb did not stop within 15s of SIGTERM")
		}
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
}

func (p *lbProcess) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// client makes one request per connection, so each request sees the
// current routing.
var client = &http.Client{
	Timeout:   3 * time.Second,
	Transport: &http.Transport{DisableKeepAlives: true},
}

type reply struct {
	status int
	body   string
	port   string // X-Backend-Port
	header http.Header
}

func get(port int, path, host string) (reply, error) {
	req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", port, path), nil)
	if err != nil {
		return reply{}, err
	}
	if host != "" {
		req.Host = host
	}
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

// eventually polls cond every 2 ms until it holds, and returns how long
// that took; it fails the test after timeout.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("%s: not true after %s", what, timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Since(start)
}

// listening reports whether something accepts connections on port.
func listening(port int) bool {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 500*time.Millisecond)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// listeningPorts returns the TCP ports in LISTEN state in this network
// namespace, from /proc/net/tcp{,6}.
func listeningPorts(t *testing.T) []int {
	t.Helper()
	set := map[int]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 4 || fields[3] != "0A" {
				continue
			}
			_, hexPort, ok := strings.Cut(fields[1], ":")
			if !ok {
				continue
			}
			p, err := strconv.ParseInt(hexPort, 16, 32)
			if err == nil {
				set[int(p)] = true
			}
		}
	}
	out := make([]int, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Ints(out)
	return out
}

// world is the issue's cluster: the fake Marathon and the tasks' backends.
type world struct {
	t       *testing.T
	fake    *marathontest.Server
	mu      sync.Mutex
	tasks01 []*backend
	tasks02 []*backend
}

func app01(healthChecked bool, unhealthy map[int]bool, tasks ...*backend) marathon.App {
	return issueApp("/apache-nfs-lb-01", vhost01, 10240, healthChecked, unhealthy, tasks...)
}

func app02(tasks ...*backend) marathon.App {
	return issueApp("/apache-nfs-lb-02", vhost02, 10241, false, nil, tasks...)
}

func issueApp(id, vhost string, servicePort int, healthChecked bool, unhealthy map[int]bool, tasks ...*backend) marathon.App {
	opts := []marathontest.AppOption{
		marathontest.WithLabels(map[string]string{"HAPROXY_GROUP": "webapps01", "HAPROXY_0_VHOST": vhost}),
		marathontest.WithBridgePorts(80, servicePort),
	}
	if healthChecked {
		opts = append(opts, marathontest.WithHTTPHealthCheck("/"))
	}
	for _, b := range tasks {
		switch {
		case !healthChecked:
			opts = append(opts, marathontest.WithTask("127.0.0.1", b.port))
		case unhealthy[b.port]:
			opts = append(opts, marathontest.WithUnhealthyTask("127.0.0.1", b.port))
		default:
			opts = append(opts, marathontest.WithHealthyTask("127.0.0.1", b.port))
		}
	}
	return marathontest.App(id, opts...)
}

func otherApps() []marathon.App {
	return []marathon.App{
		marathontest.App("/mywebservernew", marathontest.WithLabel("HAPROXY_GROUP", "external"),
			marathontest.WithServicePorts(10004), marathontest.WithTask("127.0.0.1", 31004)),
		marathontest.App("/nolabels", marathontest.WithServicePorts(10005), marathontest.WithTask("127.0.0.1", 31005)),
	}
}

func newWorld(t *testing.T) *world {
	w := &world{t: t, fake: marathontest.New(t)}
	w.tasks01 = []*backend{newBackend(t, body01), newBackend(t, body01)}
	w.tasks02 = []*backend{newBackend(t, body02), newBackend(t, body02)}
	w.fake.SetApps(append([]marathon.App{app01(false, nil, w.tasks01...), app02(w.tasks02...)}, otherApps()...))
	return w
}

// publishStatus sends a status_update_event for the task of app on b, as
// Marathon would: with the task's id and host from the fake's apps (or,
// for a task already gone, those marathontest gives a task on 127.0.0.1).
func (w *world) publishStatus(appID string, b *backend, state string) {
	task := marathontest.Task(appID, "127.0.0.1", b.port)
	for _, a := range w.fake.Apps() {
		for _, t := range a.Tasks {
			if a.ID == appID && slices.Contains(t.Ports, b.port) {
				task = t
			}
		}
	}
	w.fake.Publish(marathon.EventStatusUpdate, marathon.StatusUpdateEvent{
		AppID: appID, TaskID: task.ID, TaskStatus: state, Host: task.Host, Ports: []int{b.port},
	})
}

// roundRobin asserts that requests to port (with host) reach every
// backend in want, and only those, with the expected body.
func roundRobin(t *testing.T, port int, host, body string, want []*backend) {
	t.Helper()
	seen := map[string]int{}
	for range 4 * len(want) {
		r, err := get(port, "/", host)
		require.NoError(t, err, "GET :%d host %q", port, host)
		require.Equal(t, http.StatusOK, r.status, "GET :%d host %q", port, host)
		require.Equal(t, body, r.body, "GET :%d host %q", port, host)
		seen[r.port]++
	}
	var wantPorts []string
	for _, b := range want {
		wantPorts = append(wantPorts, strconv.Itoa(b.port))
	}
	var gotPorts []string
	for p := range seen {
		gotPorts = append(gotPorts, p)
	}
	assert.ElementsMatch(t, wantPorts, gotPorts, "GET :%d host %q: tasks reached (round robin)", port, host)
}

// reaches reports whether some request to port reaches backend b within a
// few tries (round robin over at most a handful of tasks).
func reaches(port int, b *backend) bool {
	for range 8 {
		r, err := get(port, "/", "")
		if err == nil && r.port == strconv.Itoa(b.port) {
			return true
		}
	}
	return false
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p)
	return s[i]
}

func TestE2EIssue2(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: real HAProxy in a network namespace; skipped with -short")
	}
	if haproxytest.InNetns(t) {
		return
	}
	haproxyBin := haproxytest.Binary(t)

	w := newWorld(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "haproxy.cfg")
	lbp := startLB(t, haproxyBin, "sse", "--marathon", w.fake.URL, "--group", "webapps01", "--haproxy-config", cfgPath)
	waitReady(t)

	t.Run("routing", func(t *testing.T) {
		roundRobin(t, 10240, "", body01, w.tasks01)
		roundRobin(t, 10241, "", body02, w.tasks02)
		roundRobin(t, 80, vhost01, body01, w.tasks01)
		roundRobin(t, 80, vhost02, body02, w.tasks02)
		r, err := get(80, "/", "unknown.example.com")
		require.NoError(t, err)
		assert.Equal(t, http.StatusServiceUnavailable, r.status, "unknown Host")
		assert.False(t, listening(10004), "app of another group not bound")
		assert.False(t, listening(10005), "app without labels not bound")
	})

	t.Run("special endpoints", func(t *testing.T) {
		r, err := get(9090, "/haproxy?stats", "")
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, r.status)
		assert.Contains(t, r.body, "apache-nfs-lb-01_10240")
		assert.Contains(t, r.body, "apache-nfs-lb-02_10241")

		r, err = get(9090, "/_haproxy_getconfig", "")
		require.NoError(t, err)
		onDisk, err := os.ReadFile(cfgPath)
		require.NoError(t, err)
		assert.Equal(t, strings.TrimSpace(string(onDisk)), r.body, "getconfig is the running config (status %d)", r.status)
		assert.Contains(t, r.body, "frontend apache-nfs-lb-01_10240")

		r, err = get(9090, "/_haproxy_getpids", "")
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, r.status, r.body)
		pids := strings.Fields(r.body)
		require.NotEmpty(t, pids)
		for _, p := range pids {
			_, err := strconv.Atoi(p)
			assert.NoError(t, err, "pid %q", p)
		}

		r, err = get(9090, "/_haproxy_getvhostmap", "")
		require.NoError(t, err)
		assert.Contains(t, r.body, vhost01+" apache-nfs-lb-01_10240")
		r, err = get(9090, "/_haproxy_getappmap", "")
		require.NoError(t, err)
		assert.Contains(t, r.body, "/apache-nfs-lb-01 apache-nfs-lb-01_10240")

		r, err = get(9090, "/metrics", "")
		require.NoError(t, err)
		assert.Contains(t, r.body, "switchyard_lb_reloads_total")

		before := metricValue(t, `switchyard_lb_reloads_total{reason="signal"}`)
		r, err = get(9090, "/_mlb_signal/usr1", "")
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, r.status)
		eventually(t, 10*time.Second, "usr1 reloads", func() bool {
			return metricValue(t, `switchyard_lb_reloads_total{reason="signal"}`) > before
		})
		r, err = get(9090, "/_mlb_signal/hup", "")
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, r.status)
		eventually(t, 10*time.Second, "hup reloads", func() bool {
			return metricValue(t, `switchyard_lb_reloads_total{reason="signal"}`) > before+1
		})
		// The same through signals, as marathon-lb's run script sends them.
		require.NoError(t, lbp.cmd.Process.Signal(syscall.SIGUSR1))
		eventually(t, 10*time.Second, "SIGUSR1 reloads", func() bool {
			return metricValue(t, `switchyard_lb_reloads_total{reason="signal"}`) > before+2
		})
		require.NoError(t, lbp.cmd.Process.Signal(syscall.SIGHUP))
		eventually(t, 10*time.Second, "SIGHUP reloads", func() bool {
			return metricValue(t, `switchyard_lb_reloads_total{reason="signal"}`) > before+3
		})
		roundRobin(t, 10240, "", body01, w.tasks01)
	})

	t.Run("new task", func(t *testing.T) {
		// Server-only changes, applied through the runtime API: add a task
		// and remove it again, 20 times, measuring event -> routing.
		var adds, removes []time.Duration
		runtimeBefore := metricValue(t, "switchyard_lb_runtime_updates_total")
		for i := range 20 {
			nb := newBackend(t, body01)
			w.fake.UpsertApp(app01(false, nil, append(slices.Clone(w.tasks01), nb)...))
			start := time.Now()
			w.publishStatus("/apache-nfs-lb-01", nb, marathon.TaskRunning)
			eventually(t, 5*time.Second, fmt.Sprintf("round %d: new task routed", i), func() bool { return reaches(10240, nb) })
			adds = append(adds, time.Since(start))

			w.fake.UpsertApp(app01(false, nil, w.tasks01...))
			start = time.Now()
			w.publishStatus("/apache-nfs-lb-01", nb, marathon.TaskKilled)
			eventually(t, 5*time.Second, fmt.Sprintf("round %d: killed task unrouted", i), func() bool {
				for range 6 {
					if r, err := get(10240, "/", ""); err != nil || r.port == strconv.Itoa(nb.port) {
						return false
					}
				}
				return true
			})
			removes = append(removes, time.Since(start))
			nb.close()
		}
		t.Logf("event -> routing, server-only change (runtime API), add: median %s p99 %s; remove: median %s p99 %s",
			percentile(adds, 0.5), percentile(adds, 0.99), percentile(removes, 0.5), percentile(removes, 0.99))
		assert.Greater(t, metricValue(t, "switchyard_lb_runtime_updates_total"), runtimeBefore, "runtime API used")
		roundRobin(t, 10240, "", body01, w.tasks01)
	})

	t.Run("task on a host name", func(t *testing.T) {
		// Real Mesos agents report host names: lb resolves them (HAProxy's
		// runtime "add server" cannot), so the change still goes through
		// the runtime API and the new server has an address.
		nb := newBackend(t, body01)
		withName := app01(false, nil, w.tasks01...)
		onName := marathontest.App("/x", marathontest.WithBridgePorts(80, 10240), marathontest.WithTask("localhost", nb.port))
		withName.Tasks = append(withName.Tasks, onName.Tasks[0])
		withName.Tasks[len(withName.Tasks)-1].AppID = withName.ID
		runtimeBefore := metricValue(t, "switchyard_lb_runtime_updates_total")
		reloadsBefore := metricValue(t, `switchyard_lb_reloads_total{reason="config_change"}`)
		w.fake.UpsertApp(withName)
		w.publishStatus("/apache-nfs-lb-01", nb, marathon.TaskRunning)
		eventually(t, 10*time.Second, "task on host localhost routed", func() bool { return reaches(10240, nb) })
		assert.Greater(t, metricValue(t, "switchyard_lb_runtime_updates_total"), runtimeBefore, "runtime API used")
		assert.Equal(t, reloadsBefore, metricValue(t, `switchyard_lb_reloads_total{reason="config_change"}`), "no reload")
		r, err := get(9090, "/_haproxy_getconfig", "")
		require.NoError(t, err)
		assert.Contains(t, r.body, fmt.Sprintf("localhost_127_0_0_1_%d", nb.port), "server named <host>_<ip>_<port>")

		w.fake.UpsertApp(app01(false, nil, w.tasks01...))
		w.publishStatus("/apache-nfs-lb-01", nb, marathon.TaskKilled)
		eventually(t, 10*time.Second, "task on host localhost unrouted", func() bool { return !reaches(10240, nb) })
	})

	t.Run("new app", func(t *testing.T) {
		nb := newBackend(t, "NEW APP")
		a := marathontest.App("/newapp", marathontest.WithLabel("HAPROXY_GROUP", "webapps01"),
			marathontest.WithServicePorts(10242), marathontest.WithTask("127.0.0.1", nb.port))
		w.fake.UpsertApp(a)
		start := time.Now()
		w.fake.Publish(marathon.EventAPIPost, marathon.APIPostEvent{URI: "/v2/apps/newapp", AppDefinition: a})
		eventually(t, 10*time.Second, "new app routed on :10242", func() bool {
			r, err := get(10242, "/", "")
			return err == nil && r.body == "NEW APP"
		})
		t.Logf("event -> routing, structural change (new app, reload): %s", time.Since(start))

		// A label change that leaves the group: the port goes away.
		a.Labels["HAPROXY_GROUP"] = "elsewhere"
		w.fake.UpsertApp(a)
		w.fake.Publish(marathon.EventAPIPost, marathon.APIPostEvent{URI: "/v2/apps/newapp", AppDefinition: a})
		eventually(t, 10*time.Second, "app that left the group unbound", func() bool { return !listening(10242) })

		// Back in the group, then deleted.
		a.Labels["HAPROXY_GROUP"] = "webapps01"
		w.fake.UpsertApp(a)
		w.fake.Publish(marathon.EventAPIPost, marathon.APIPostEvent{URI: "/v2/apps/newapp", AppDefinition: a})
		eventually(t, 10*time.Second, "app back in the group", func() bool { return listening(10242) })
		w.fake.RemoveApp("/newapp")
		w.fake.Publish(marathon.EventAppTerminated, marathon.AppTerminatedEvent{AppID: "/newapp"})
		eventually(t, 10*time.Second, "deleted app unbound", func() bool { return !listening(10242) })
		roundRobin(t, 10241, "", body02, w.tasks02)
	})

	t.Run("stream dropped", func(t *testing.T) {
		// The apps change without any event (as if it was lost while the
		// stream was down), then the stream drops: only the resync after
		// the reconnect can show the change.
		nb := newBackend(t, body02)
		w.fake.UpsertApp(app02(append(slices.Clone(w.tasks02), nb)...))
		w.fake.DropStreams()
		eventually(t, 20*time.Second, "resync after reconnect", func() bool { return reaches(10241, nb) })
		w.fake.UpsertApp(app02(w.tasks02...))
		w.fake.DropStreams()
		eventually(t, 20*time.Second, "second resync", func() bool {
			for range 6 {
				if r, err := get(10241, "/", ""); err != nil || r.port == strconv.Itoa(nb.port) {
					return false
				}
			}
			return true
		})
	})

	t.Run("marathon down", func(t *testing.T) {
		w.fake.SetDown(true)
		deadline := time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) {
			roundRobin(t, 10240, "", body01, w.tasks01)
			time.Sleep(100 * time.Millisecond)
		}
		require.True(t, lbp.alive(), "lb keeps running while Marathon is down")
		w.fake.SetDown(false)
		nb := newBackend(t, body01)
		w.fake.UpsertApp(app01(false, nil, append(slices.Clone(w.tasks01), nb)...))
		w.publishStatus("/apache-nfs-lb-01", nb, marathon.TaskRunning)
		eventually(t, 30*time.Second, "changes followed again once Marathon is back", func() bool { return reaches(10240, nb) })
		w.fake.UpsertApp(app01(false, nil, w.tasks01...))
		w.publishStatus("/apache-nfs-lb-01", nb, marathon.TaskKilled)
	})

	t.Run("bad input", func(t *testing.T) {
		before := listeningPorts(t)
		skippedBefore := metricValue(t, "switchyard_lb_skipped_apps")
		evil := marathontest.App("/evil-newline", marathontest.WithLabels(map[string]string{
			"HAPROXY_GROUP": "webapps01", "HAPROXY_0_VHOST": "evil.example.com\n  bind :7777",
		}), marathontest.WithServicePorts(10250), marathontest.WithTask("127.0.0.1", 31250))
		badPort := marathontest.App("/bad-port", marathontest.WithLabels(map[string]string{
			"HAPROXY_GROUP": "webapps01", "HAPROXY_0_PORT": "eighty",
		}), marathontest.WithServicePorts(10251), marathontest.WithTask("127.0.0.1", 31251))
		w.fake.UpsertApp(evil)
		w.fake.UpsertApp(badPort)
		w.fake.Publish(marathon.EventAPIPost, marathon.APIPostEvent{URI: "/v2/apps/evil-newline", AppDefinition: evil})
		w.fake.PublishRaw(marathon.EventStatusUpdate, []byte(`{"eventType": "status_update_event", "taskStatus": `))
		w.fake.PublishRaw("", []byte("\x00\x01 garbage \xff"))
		w.fake.PublishRaw(marathon.EventAPIPost, bytes.Repeat([]byte("x"), 4<<20))
		eventually(t, 10*time.Second, "bad apps counted as skipped", func() bool {
			return metricValue(t, "switchyard_lb_skipped_apps") >= skippedBefore+2
		})
		// And a good change right after still goes through.
		nb := newBackend(t, body01)
		w.fake.UpsertApp(app01(false, nil, append(slices.Clone(w.tasks01), nb)...))
		w.publishStatus("/apache-nfs-lb-01", nb, marathon.TaskRunning)
		eventually(t, 10*time.Second, "good change after bad input", func() bool { return reaches(10240, nb) })
		w.fake.UpsertApp(app01(false, nil, w.tasks01...))
		w.publishStatus("/apache-nfs-lb-01", nb, marathon.TaskKilled)
		eventually(t, 10*time.Second, "extra task removed", func() bool { return !reaches(10240, nb) })

		require.True(t, lbp.alive(), "lb survives bad input")
		logs := lbp.logs.String()
		assert.Contains(t, logs, "app_id=/evil-newline", "skipped app logged")
		assert.Contains(t, logs, "app_id=/bad-port", "skipped app logged")
		// Why the two apps are not routed, without reading the logs.
		r, err := get(9090, "/_switchyard/skipped", "")
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, r.status)
		var skipped struct {
			Skipped []struct {
				AppID  string `json:"appId"`
				Reason string `json:"reason"`
			} `json:"skipped"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.body), &skipped), r.body)
		reasons := map[string]string{}
		for _, s := range skipped.Skipped {
			reasons[s.AppID] = s.Reason
		}
		assert.Contains(t, reasons, "/evil-newline", "listed on /_switchyard/skipped: %s", r.body)
		assert.Contains(t, reasons["/bad-port"], "HAPROXY_0_PORT", "listed with its reason: %s", r.body)
		assert.False(t, listening(7777), "no port from an injected bind line")
		assert.False(t, listening(10250), "app with a newline in a label not bound")
		assert.False(t, listening(10251), "app with a non-numeric HAPROXY_0_PORT not bound")
		after := slices.DeleteFunc(listeningPorts(t), func(p int) bool { return p == nb.port })
		assert.Subset(t, before, after, "no new listening port")
		roundRobin(t, 10240, "", body01, w.tasks01)
		roundRobin(t, 80, vhost02, body02, w.tasks02)
		w.fake.RemoveApp("/evil-newline")
		w.fake.RemoveApp("/bad-port")
	})

	t.Run("tasks replaced under load", func(t *testing.T) {
		hammer(t, w)
	})

	require.True(t, lbp.alive(), "lb still running")
	t.Logf("metrics: reloads %v, runtime updates %v, validation failures %v",
		metricValue(t, `switchyard_lb_reloads_total{reason="config_change"}`),
		metricValue(t, "switchyard_lb_runtime_updates_total"),
		metricValue(t, "switchyard_lb_validation_failures_total"))
	lbp.stop(t)
	assert.False(t, listening(10240), "HAProxy stopped with lb")

	t.Run("poll with health checks", func(t *testing.T) {
		// lb poll -H: the same routing without the stream; a task that
		// turns unhealthy gets no traffic.
		w.fake.SetApps(append([]marathon.App{app01(true, nil, w.tasks01...), app02(w.tasks02...)}, otherApps()...))
		tdir := t.TempDir()
		startLB(t, haproxyBin, "poll", "--poll-interval", "1", "-H", "--marathon", w.fake.URL,
			"--group", "webapps01", "--haproxy-config", filepath.Join(t.TempDir(), "haproxy.cfg"), "--templates-dir", tdir)
		waitReady(t)
		roundRobin(t, 10240, "", body01, w.tasks01)
		roundRobin(t, 10241, "", body02, w.tasks02)
		roundRobin(t, 80, vhost01, body01, w.tasks01)
		assert.False(t, listening(10004))

		w.fake.UpsertApp(app01(true, map[int]bool{w.tasks01[0].port: true}, w.tasks01...))
		took := eventually(t, 10*time.Second, "unhealthy task gets no traffic", func() bool {
			for range 6 {
				if r, err := get(10240, "/", ""); err != nil || r.port == strconv.Itoa(w.tasks01[0].port) {
					return false
				}
			}
			return true
		})
		t.Logf("poll mode: unhealthy task removed after %s (poll interval 1s)", took)
		roundRobin(t, 10240, "", body01, w.tasks01[1:])

		// Editing a template in --templates-dir re-renders without a restart.
		text := templates.Default().Get("HAPROXY_BACKEND_HTTP_OPTIONS") + "  http-response set-header X-Templated yes\n"
		require.NoError(t, os.WriteFile(filepath.Join(tdir, "HAPROXY_BACKEND_HTTP_OPTIONS"), []byte(text), 0o644))
		took = eventually(t, 10*time.Second, "template edit applied", func() bool {
			r, err := get(10241, "/", "")
			return err == nil && r.header.Get("X-Templated") == "yes"
		})
		t.Logf("template edit -> routing: %s", took)
		// HAProxy serves the new config before its reload is confirmed;
		// wait for lb to record it before stopping lb.
		eventually(t, 10*time.Second, "template reload recorded", func() bool {
			return metricValue(t, `switchyard_lb_reloads_total{reason="config_change"}`) >= 1
		})
	})
}

// hammer runs 4 clients against :10240 while the app's tasks are replaced
// one by one for 30 rounds: new task added, old task removed from
// Marathon, its process closed 1.5 s later. No request may fail.
func hammer(t *testing.T, w *world) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 5 * time.Second}
			for ctx.Err() == nil {
				resp, err := c.Get("http://127.0.0.1:10240/")
				if err == nil {
					b, rerr := io.ReadAll(resp.Body)
					_ = resp.Body.Close()
					if rerr == nil && resp.StatusCode == http.StatusOK && strings.TrimSpace(string(b)) == body01 {
						ok.Add(1)
						continue
					}
					err = fmt.Errorf("status %d body %q read error %v", resp.StatusCode, b, rerr)
				}
				if ctx.Err() != nil {
					return
				}
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
			}
		}()
	}

	tasks := slices.Clone(w.tasks01)
	var closers sync.WaitGroup
	start := time.Now()
	for round := range 30 {
		nb := newBackend(w.t, body01) // outlives this subtest: it becomes one of the app's tasks
		tasks = append(tasks, nb)
		w.fake.UpsertApp(app01(false, nil, tasks...))
		w.publishStatus("/apache-nfs-lb-01", nb, marathon.TaskRunning)
		time.Sleep(100 * time.Millisecond)

		old := tasks[0]
		tasks = tasks[1:]
		w.fake.UpsertApp(app01(false, nil, tasks...))
		w.publishStatus("/apache-nfs-lb-01", old, marathon.TaskKilled)
		closers.Add(1)
		time.AfterFunc(1500*time.Millisecond, func() {
			defer closers.Done()
			old.close()
		})
		time.Sleep(100 * time.Millisecond)
		_ = round
	}
	closers.Wait()
	time.Sleep(200 * time.Millisecond)
	cancel()
	wg.Wait()
	w.tasks01 = tasks
	t.Logf("tasks replaced under load: 30 rounds in %s, %d requests ok, %d failed", time.Since(start), ok.Load(), failed.Load())
	assert.Zero(t, failed.Load(), "failed requests (first: %v)", firstErr.Load())
	assert.Greater(t, ok.Load(), int64(100))
	roundRobin(t, 10240, "", body01, tasks)
}

// waitReady waits until lb has started HAProxy with its first
// configuration: the stats listener answers and lb counted the initial
// start.
func waitReady(t *testing.T) {
	t.Helper()
	eventually(t, 60*time.Second, "lb ready", func() bool {
		r, err := get(9090, "/_haproxy_health_check", "")
		if err != nil || r.status != http.StatusOK {
			return false
		}
		return metricValue(t, `switchyard_lb_reloads_total{reason="initial"}`) == 1
	})
}

// metricValue reads one sample from lb's /metrics (0 when absent).
func metricValue(t *testing.T, series string) float64 {
	t.Helper()
	r, err := get(9090, "/metrics", "")
	require.NoError(t, err)
	for _, line := range strings.Split(r.body, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			require.NoError(t, err, line)
			return v
		}
	}
	return 0
}

// TestE2EThousandApps measures lb with 1,000 exposed apps: the time from an
// api_post_event for one more app to its port routing (a structural
// change: validate + reload), a server-only change, and lb's own RSS.
func TestE2EThousandApps(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: real HAProxy in a network namespace; skipped with -short")
	}
	if haproxytest.InNetns(t) {
		return
	}
	haproxyBin := haproxytest.Binary(t)

	fake := marathontest.New(t)
	be := newBackend(t, "ANY")
	apps := make([]marathon.App, 0, 1000)
	for i := range 1000 {
		apps = append(apps, marathontest.App(fmt.Sprintf("/bulk/app-%04d", i),
			marathontest.WithLabel("HAPROXY_GROUP", "external"),
			marathontest.WithServicePorts(11000+i), marathontest.WithTask("127.0.0.1", be.port)))
	}
	fake.SetApps(apps)
	lbp := startLB(t, haproxyBin, "sse", "--marathon", fake.URL, "--haproxy-config", filepath.Join(t.TempDir(), "haproxy.cfg"))
	waitReady(t)
	eventually(t, 60*time.Second, "all 1,000 apps routed", func() bool {
		r, err := get(11999, "/", "")
		return err == nil && r.body == "ANY"
	})

	nb := newBackend(t, "NEW")
	a := marathontest.App("/bulk/app-1000", marathontest.WithLabel("HAPROXY_GROUP", "external"),
		marathontest.WithServicePorts(12000), marathontest.WithTask("127.0.0.1", nb.port))
	fake.UpsertApp(a)
	start := time.Now()
	fake.Publish(marathon.EventAPIPost, marathon.APIPostEvent{URI: "/v2/apps/bulk/app-1000", AppDefinition: a})
	eventually(t, 30*time.Second, "app 1,001 routed", func() bool {
		r, err := get(12000, "/", "")
		return err == nil && r.body == "NEW"
	})
	structural := time.Since(start)

	var serverOnly []time.Duration
	for i := range 5 {
		nb2 := newBackend(t, fmt.Sprintf("EXTRA-%d", i))
		a2 := marathontest.App("/bulk/app-0500", marathontest.WithLabel("HAPROXY_GROUP", "external"),
			marathontest.WithServicePorts(11500), marathontest.WithTask("127.0.0.1", be.port), marathontest.WithTask("127.0.0.1", nb2.port))
		fake.UpsertApp(a2)
		start = time.Now()
		fake.Publish(marathon.EventStatusUpdate, marathon.StatusUpdateEvent{AppID: a2.ID, TaskStatus: marathon.TaskRunning})
		eventually(t, 30*time.Second, "extra task routed", func() bool { return reaches(11500, nb2) })
		serverOnly = append(serverOnly, time.Since(start))
		fake.UpsertApp(apps[500])
		fake.Publish(marathon.EventStatusUpdate, marathon.StatusUpdateEvent{AppID: a2.ID, TaskStatus: marathon.TaskKilled})
		eventually(t, 30*time.Second, "extra task unrouted", func() bool { return !reaches(11500, nb2) })
	}
	rss := vmRSS(t, lbp.cmd.Process.Pid)
	t.Logf("lb memory: heap in use %.1f MiB, heap sys %.1f MiB, go sys %.1f MiB",
		metricValue(t, "go_memstats_heap_inuse_bytes")/(1<<20), metricValue(t, "go_memstats_heap_sys_bytes")/(1<<20),
		metricValue(t, "go_memstats_sys_bytes")/(1<<20))
	t.Logf("1,000 apps: structural change (new app) event -> routing %s; server-only change median %s; lb RSS %d MiB",
		structural, percentile(serverOnly, 0.5), rss>>20)
	// Speed and memory are measured here, not asserted: on a loaded 2-core
	// machine they say more about the machine than about lb. The targets
	// live in the benchmarks (bench/).
}

// vmRSS reads a process's resident set size in bytes.
func vmRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			require.NoError(t, err)
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// TestE2EHAProxyStartFailure: when HAProxy cannot start (here: the stats
// port is taken), lb says why in HAProxy's own words and exits non-zero.
func TestE2EHAProxyStartFailure(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: real HAProxy in a network namespace; skipped with -short")
	}
	if haproxytest.InNetns(t) {
		return
	}
	haproxyBin := haproxytest.Binary(t)
	ln, err := net.Listen("tcp", ":9090")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	fake := marathontest.New(t)
	p := startLB(t, haproxyBin, "sse", "--marathon", fake.URL, "--haproxy-config", filepath.Join(t.TempDir(), "haproxy.cfg"))
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("lb still running although HAProxy cannot bind its stats port")
	}
	assert.NotZero(t, p.cmd.ProcessState.ExitCode(), "exit code")
	logs := p.logs.String()
	assert.Contains(t, logs, "haproxy failed to start", "lb says HAProxy did not start")
	assert.Contains(t, logs, "9090", "with HAProxy's reason (the port it could not bind)")
}
