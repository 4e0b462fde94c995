package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/scheduler/agentapi"
	"github.com/switchyard/switchyard/scheduler/leader"
	"github.com/switchyard/switchyard/scheduler/schedulertest"
	"github.com/switchyard/switchyard/scheduler/server"
	"github.com/switchyard/switchyard/scheduler/zk/zktest"
)

// builtBinary is a command of this module built once per test binary run
// (TestMain removes it).
type builtBinary struct {
	pkg, name string
	once      sync.Once
	path      string
	err       error
}

var (
	schedulerBuild = builtBinary{pkg: ".", name: "scheduler"}
	agentBuild     = builtBinary{pkg: "../agent", name: "agent"}
	lbBuild        = builtBinary{pkg: "../lb", name: "lb"}
)

// get builds the command on first use and returns its path.
func (b *builtBinary) get(t testing.TB) string {
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "sy-"+b.name+"-bin")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, b.name)
		out, err := exec.Command("go", "build", "-o", b.path, b.pkg).CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
		}
	})
	require.NoError(t, b.err)
	return b.path
}

// TestMain removes the binaries the HA tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	for _, b := range []*builtBinary{&schedulerBuild, &agentBuild, &lbBuild} {
		if b.path != "" {
			_ = os.RemoveAll(filepath.Dir(b.path))
		}
	}
	os.Exit(code)
}

// schedulerBinary builds this command once per test binary run.
func schedulerBinary(t testing.TB) string { return schedulerBuild.get(t) }

// agentBinary builds cmd/agent once per test binary run.
func agentBinary(t testing.TB) string { return agentBuild.get(t) }

// lbBinary builds cmd/lb once per test binary run.
func lbBinary(t testing.TB) string { return lbBuild.get(t) }

// master is one scheduler process of an HA cluster.
type master struct {
	addr string
	cmd  *exec.Cmd
	args []string
	log  string
}

func (m *master) url() string { return "http://" + m.addr }

func startMaster(t testing.TB, m *master) {
	logf, err := os.OpenFile(m.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	require.NoError(t, err)
	defer logf.Close()
	m.cmd = exec.Command(schedulerBinary(t), m.args...)
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	require.NoError(t, m.cmd.Start())
}

func (m *master) kill() {
	if m.cmd != nil && m.cmd.Process != nil {
		_ = m.cmd.Process.Kill()
		_ = m.cmd.Wait()
		m.cmd = nil
	}
}

// cluster starts n schedulers sharing the ensemble.
func cluster(t testing.TB, ens *zktest.Ensemble, n int, sessionTimeout time.Duration) []*master {
	dir := t.TempDir()
	var ms []*master
	for i := range n {
		addr := freeAddr(t)
		m := &master{addr: addr, log: filepath.Join(dir, fmt.Sprintf("m%d.log", i)), args: []string{
			"--http-addr", addr, "--advertise", addr, "--log-level", "info",
			"--zk", ens.URL("/switchyard"), "--zk-session-timeout", sessionTimeout.String(),
			"--agent-timeout", "60s",
		}}
		startMaster(t, m)
		ms = append(ms, m)
	}
	t.Cleanup(func() {
		for _, m := range ms {
			m.kill()
		}
		if t.Failed() {
			for _, m := range ms {
				b, _ := os.ReadFile(m.log)
				if len(b) > 6000 {
					b = b[len(b)-6000:]
				}
				t.Logf("%s log:\n%s", m.addr, b)
			}
		}
	})
	return ms
}

func call(method, url string, body any) (int, []byte, http.Header, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header, err
}

// leaderOf asks every live master for the leader and returns it when all
// agree ("" otherwise).
func leaderOf(ms []*master) string {
	got := ""
	for _, m := range ms {
		if m.cmd == nil {
			continue
		}
		code, b, _, err := call("GET", m.url()+"/v2/leader", nil)
		if err != nil || code != 200 {
			return ""
		}
		var l struct{ Leader string }
		if json.Unmarshal(b, &l) != nil || l.Leader == "" || (got != "" && l.Leader != got) {
			return ""
		}
		got = l.Leader
	}
	return got
}

func waitLeader(t testing.TB, ms []*master, not string) *master {
	t.Helper()
	var l string
	require.Eventually(t, func() bool {
		l = leaderOf(ms)
		return l != "" && l != not
	}, 60*time.Second, 20*time.Millisecond)
	for _, m := range ms {
		if m.addr == l {
			return m
		}
	}
	t.Fatalf("leader %s is not one of ours", l)
	return nil
}

func runningTasks(t *testing.T, base, app string) []string {
	code, b, _, err := call("GET", base+"/v2/apps"+app+"/tasks", nil)
	if err != nil || code != 200 {
		return nil
	}
	var body struct{ Tasks []marathon.Task }
	require.NoError(t, json.Unmarshal(b, &body))
	var out []string
	for _, tk := range body.Tasks {
		if tk.State == marathon.TaskRunning {
			out = append(out, tk.ID)
		}
	}
	return out
}

// TestHAFailover runs three schedulers on a three-node ZooKeeper
// ensemble with two agents, kills the leader with SIGKILL, and checks
// that another takes over: every acknowledged write is there, no task is
// restarted, and the new leader acts.
func TestHAFailover(t *testing.T) {
	for _, timeout := range []time.Duration{3 * time.Second, 10 * time.Second} {
		t.Run(timeout.String(), func(t *testing.T) { testFailover(t, timeout) })
	}
}

func testFailover(t *testing.T, sessionTimeout time.Duration) {
	ens := zktest.Start(t, 3)
	ms := cluster(t, ens, 3, sessionTimeout)
	lead := waitLeader(t, ms, "")
	var standby *master
	for _, m := range ms {
		if m != lead {
			standby = m
			break
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	masters, err := leader.ParseMasters(ms[0].url() + "," + ms[1].url() + "," + ms[2].url())
	require.NoError(t, err)
	var agents []*schedulertest.FakeAgent
	for i := range 2 {
		client := agentapi.NewClient(ms[i].url(), &http.Client{Transport: &leader.FailoverTransport{Masters: masters}})
		a := schedulertest.NewFakeAgent(client, fmt.Sprintf("agent%d", i))
		agents = append(agents, a)
		wg.Add(1)
		go func() { defer wg.Done(); _ = a.Run(ctx) }()
	}

	// The event stream through a standby is the leader's.
	events := make(chan string, 100)
	sreq, err := http.NewRequestWithContext(ctx, "GET", standby.url()+"/v2/events?event_type=api_post_event", nil)
	require.NoError(t, err)
	sreq.Header.Set("Accept", "text/event-stream")
	sresp, err := http.DefaultClient.Do(sreq)
	require.NoError(t, err)
	require.Equal(t, 200, sresp.StatusCode)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer sresp.Body.Close()
		sc := bufio.NewScanner(sresp.Body)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				events <- data
			}
		}
	}()

	// Writes through a standby are proxied to the leader.
	code, b, hdr, err := call("POST", standby.url()+"/v2/apps", map[string]any{"id": "/web", "cmd": "sleep 1000", "instances": 4, "cpus": 0.1, "mem": 16})
	require.NoError(t, err)
	require.Equal(t, 201, code, string(b))
	assert.Equal(t, "http://"+lead.addr, hdr.Get("X-Marathon-Leader"))
	var acked []string
	for i := range 20 {
		id := fmt.Sprintf("/svc/app%02d", i)
		code, b, _, err := call("POST", ms[i%3].url()+"/v2/apps", map[string]any{"id": id, "cmd": "sleep 1000", "instances": 0})
		require.NoError(t, err)
		require.Equal(t, 201, code, string(b))
		acked = append(acked, id)
	}
	select {
	case ev := <-events:
		assert.Contains(t, ev, `"/web"`, "the first api_post_event, streamed through the standby")
	case <-time.After(30 * time.Second):
		t.Fatal("no event through the standby")
	}
	require.Eventually(t, func() bool { return len(runningTasks(t, standby.url(), "/web")) == 4 }, 30*time.Second, 20*time.Millisecond)
	before := runningTasks(t, lead.url(), "/web")

	// A deployment in flight: 3 instances of 5 cpus fit 2 agents of 8
	// only twice.
	code, b, _, err = call("POST", standby.url()+"/v2/apps", map[string]any{"id": "/big", "cmd": "sleep 1000", "instances": 3, "cpus": 5, "mem": 16})
	require.NoError(t, err)
	require.Equal(t, 201, code, string(b))
	var deployID string
	require.Eventually(t, func() bool {
		_, b, _, err := call("GET", lead.url()+"/v2/deployments", nil)
		var ds []marathon.Deployment
		if err != nil || json.Unmarshal(b, &ds) != nil || len(ds) != 1 {
			return false
		}
		deployID = ds[0].ID
		return len(runningTasks(t, lead.url(), "/big")) == 2
	}, 30*time.Second, 20*time.Millisecond)
	bigBefore := runningTasks(t, lead.url(), "/big")
	onAgents := append(agents[0].Tasks(), agents[1].Tasks()...)
	assert.ElementsMatch(t, append(before, bigBefore...), onAgents)

	// Writes during the failover: a client creates apps through the
	// standbys, retrying each one on a connection error or a 5xx (the
	// proxy's 503 while no leader is known) until it gets 201, or 409 for
	// a create whose first try did land. None may be lost.
	var (
		duringMu    sync.Mutex
		duringAcked []string
		duringTries int
	)
	writerCtx, stopWriter := context.WithCancel(ctx)
	writerDone := make(chan struct{})
	wg.Add(1) // the cleanup waits for it too, should the test stop early
	go func() {
		defer wg.Done()
		defer close(writerDone)
		var targets []*master
		for _, m := range ms {
			if m != lead {
				targets = append(targets, m)
			}
		}
		for i := 0; writerCtx.Err() == nil; i++ {
			id := fmt.Sprintf("/during/app%03d", i)
			for try := 0; writerCtx.Err() == nil; try++ {
				code, _, _, err := call("POST", targets[(i+try)%len(targets)].url()+"/v2/apps",
					map[string]any{"id": id, "cmd": "sleep 1000", "instances": 0})
				duringMu.Lock()
				duringTries++
				duringMu.Unlock()
				if err == nil && (code == 201 || (code == 409 && try > 0)) {
					duringMu.Lock()
					duringAcked = append(duringAcked, id)
					duringMu.Unlock()
					break
				}
				if err == nil && code < 500 && code != 409 {
					t.Errorf("create %s: %d", id, code)
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}()

	// Kill -9 the leader.
	killed := time.Now()
	lead.kill()
	next := waitLeader(t, ms, lead.addr)
	elected := time.Since(killed)
	// The new leader acts: scaling up launches a task.
	var acted time.Duration
	require.Eventually(t, func() bool {
		code, _, _, err := call("PUT", next.url()+"/v2/apps/web?force=true", map[string]any{"instances": 5})
		return err == nil && code == 200
	}, 60*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool {
		if len(runningTasks(t, next.url(), "/web")) == 5 {
			acted = time.Since(killed)
			return true
		}
		return false
	}, 60*time.Second, 20*time.Millisecond)
	t.Logf("session timeout %s: new leader elected %.2fs after kill -9, launched a task %.2fs after", sessionTimeout, elected.Seconds(), acted.Seconds())

	// Let the writer go on a little under the new leader, then stop it:
	// every create it saw acknowledged is there.
	require.Eventually(t, func() bool {
		duringMu.Lock()
		defer duringMu.Unlock()
		return len(duringAcked) >= 5
	}, 60*time.Second, 20*time.Millisecond)
	stopWriter()
	<-writerDone
	duringMu.Lock()
	t.Logf("writes during the failover: %d apps acknowledged in %d tries", len(duringAcked), duringTries)
	for _, id := range duringAcked {
		code, _, _, err := call("GET", next.url()+"/v2/apps"+id, nil)
		require.NoError(t, err)
		assert.Equal(t, 200, code, "acknowledged during the failover: %s", id)
	}
	duringMu.Unlock()

	// Every acknowledged write is there; no task was restarted.
	for _, id := range acked {
		code, _, _, err := call("GET", next.url()+"/v2/apps"+id, nil)
		require.NoError(t, err)
		assert.Equal(t, 200, code, id)
	}
	after := runningTasks(t, next.url(), "/web")
	assert.Len(t, after, 5)
	assert.Subset(t, after, before, "the tasks of before the failover keep running")
	onAgents = append(agents[0].Tasks(), agents[1].Tasks()...)
	assert.ElementsMatch(t, append(append([]string(nil), after...), bigBefore...), onAgents)

	// The deployment in flight is resumed: with a third agent it ends.
	_, b, _, err = call("GET", next.url()+"/v2/deployments", nil)
	require.NoError(t, err)
	assert.Contains(t, string(b), deployID, "the deployment survived the failover")
	third0 := schedulertest.NewFakeAgent(agentapi.NewClient(ms[0].url(), &http.Client{Transport: &leader.FailoverTransport{Masters: masters}}), "agent2")
	wg.Add(1)
	go func() { defer wg.Done(); _ = third0.Run(ctx) }()
	require.Eventually(t, func() bool {
		_, b, _, err := call("GET", next.url()+"/v2/deployments", nil)
		return err == nil && strings.TrimSpace(string(b)) == "[]" && len(runningTasks(t, next.url(), "/big")) == 3
	}, 60*time.Second, 20*time.Millisecond)
	assert.Subset(t, runningTasks(t, next.url(), "/big"), bigBefore)

	// The killed scheduler comes back as a standby and proxies.
	startMaster(t, lead)
	assert.Equal(t, next, waitLeader(t, ms, ""))
	require.Eventually(t, func() bool {
		code, _, _, err := call("GET", lead.url()+"/v2/apps/web", nil)
		return err == nil && code == 200
	}, 30*time.Second, 20*time.Millisecond)

	// DELETE /v2/leader (through a standby) hands leadership over.
	code, b, _, err = call("DELETE", lead.url()+"/v2/leader", nil)
	require.NoError(t, err)
	require.Equal(t, 200, code, string(b))
	third := waitLeader(t, ms, next.addr)
	require.Eventually(t, func() bool {
		code, _, _, err := call("PUT", third.url()+"/v2/apps/web?force=true", map[string]any{"instances": 6})
		return err == nil && code == 200
	}, 60*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool { return len(runningTasks(t, third.url(), "/web")) == 6 }, 60*time.Second, 20*time.Millisecond)
	assert.Subset(t, runningTasks(t, third.url(), "/web"), after, "no task restarted by the abdication")
}

// served records which leader produced each agent API answer an agent got.
type served struct {
	base http.RoundTripper
	mu   sync.Mutex
	log  []servedAnswer
}

type servedAnswer struct {
	at   time.Time
	by   string
	code int
}

func (s *served) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := s.base.RoundTrip(r)
	if err == nil {
		s.mu.Lock()
		s.log = append(s.log, servedAnswer{at: time.Now(), by: resp.Header.Get(server.HeaderServedBy), code: resp.StatusCode})
		s.mu.Unlock()
	}
	return resp, err
}

func (s *served) since(t time.Time) []servedAnswer {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []servedAnswer
	for _, a := range s.log {
		if !a.at.Before(t) {
			out = append(out, a)
		}
	}
	return out
}

// TestHAFrozenLeader freezes the leader (SIGSTOP) past its session
// timeout: another takes over; when the old one resumes (SIGCONT) it
// gives no agent an answer (no launch, no kill) and becomes a standby.
func TestHAFrozenLeader(t *testing.T) {
	ens := zktest.Start(t, 3)
	ms := cluster(t, ens, 3, 3*time.Second)
	lead := waitLeader(t, ms, "")
	var others []*master
	list := lead.url()
	for _, m := range ms {
		if m != lead {
			others = append(others, m)
			list += "," + m.url()
		}
	}
	masters, err := leader.ParseMasters(list)
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	var agents []*schedulertest.FakeAgent
	var recs []*served
	for i := range 2 {
		// The agents talk to the leader first, and wait for it while it
		// is frozen: their pending polls are answered when it resumes.
		rec := &served{base: &leader.FailoverTransport{Masters: masters, AttemptTimeout: time.Minute}}
		recs = append(recs, rec)
		a := schedulertest.NewFakeAgent(agentapi.NewClient(lead.url(), &http.Client{Transport: rec}), fmt.Sprintf("agent%d", i))
		agents = append(agents, a)
		wg.Add(1)
		go func() { defer wg.Done(); _ = a.Run(ctx) }()
	}
	code, b, _, err := call("POST", lead.url()+"/v2/apps", map[string]any{"id": "/web", "cmd": "sleep 1000", "instances": 2, "cpus": 0.1, "mem": 16})
	require.NoError(t, err)
	require.Equal(t, 201, code, string(b))
	require.Eventually(t, func() bool { return len(runningTasks(t, lead.url(), "/web")) == 2 }, 30*time.Second, 20*time.Millisecond)
	before := runningTasks(t, lead.url(), "/web")

	require.NoError(t, lead.cmd.Process.Signal(syscall.SIGSTOP))
	t.Cleanup(func() {
		if lead.cmd != nil {
			_ = lead.cmd.Process.Signal(syscall.SIGCONT)
		}
	})
	next := waitLeader(t, others, lead.addr)
	// force: the end of /web's deployment, which the old leader's loop
	// flushes after the fact, may not have reached ZooKeeper.
	require.Eventually(t, func() bool {
		code, _, _, err := call("PUT", next.url()+"/v2/apps/web?force=true", map[string]any{"instances": 3})
		return err == nil && code == 200
	}, 30*time.Second, 20*time.Millisecond)

	resumed := time.Now()
	require.NoError(t, lead.cmd.Process.Signal(syscall.SIGCONT))
	// It steps down: it names the new leader.
	assert.Equal(t, next, waitLeader(t, ms, ""))
	var after []string
	require.Eventually(t, func() bool {
		after = runningTasks(t, next.url(), "/web")
		return len(after) == 3 && assert.ObjectsAreEqual(len(agents[0].Tasks())+len(agents[1].Tasks()), 3)
	}, 60*time.Second, 20*time.Millisecond)
	assert.Subset(t, after, before, "no task restarted")
	assert.ElementsMatch(t, after, append(agents[0].Tasks(), agents[1].Tasks()...))
	for _, rec := range recs {
		for _, a := range rec.since(resumed) {
			if a.code >= 200 && a.code < 300 {
				assert.NotEqual(t, lead.addr, a.by, "the resumed old leader answered an agent")
			}
		}
	}
	logb, err := os.ReadFile(lead.log)
	require.NoError(t, err)
	assert.Contains(t, string(logb), "leadership ended")
	assert.Contains(t, string(logb), "agent API answer held back", "the agents' pending polls were answered 503")
}

// TestHAZooKeeperLoss loses ZooKeeper nodes under a running cluster: one
// of three changes nothing; two (no quorum) make every scheduler answer
// 503 with a clear message; when they come back a leader serves again
// and no task was restarted.
func TestHAZooKeeperLoss(t *testing.T) {
	ens := zktest.Start(t, 3)
	ms := cluster(t, ens, 3, 3*time.Second)
	lead := waitLeader(t, ms, "")
	masters, err := leader.ParseMasters(ms[0].url() + "," + ms[1].url() + "," + ms[2].url())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	a := schedulertest.NewFakeAgent(agentapi.NewClient(ms[0].url(), &http.Client{Transport: &leader.FailoverTransport{Masters: masters, AttemptTimeout: 5 * time.Second}}), "agent0")
	wg.Add(1)
	go func() { defer wg.Done(); _ = a.Run(ctx) }()
	code, b, _, err := call("POST", ms[0].url()+"/v2/apps", map[string]any{"id": "/web", "cmd": "sleep 1000", "instances": 2, "cpus": 0.1, "mem": 16})
	require.NoError(t, err)
	require.Equal(t, 201, code, string(b))
	require.Eventually(t, func() bool { return len(runningTasks(t, lead.url(), "/web")) == 2 }, 30*time.Second, 20*time.Millisecond)
	before := runningTasks(t, lead.url(), "/web")

	// One ZooKeeper follower goes: the same leader keeps serving writes.
	var follower, other int
	for i := range 3 {
		if mode, _ := ens.Mode(i); mode == "follower" {
			follower = i
			break
		}
	}
	other = (follower + 1) % 3
	ens.Kill(follower)
	code, b, _, err = call("POST", ms[1].url()+"/v2/apps", map[string]any{"id": "/one-down", "cmd": "sleep 1000", "instances": 0})
	require.NoError(t, err)
	require.Equal(t, 201, code, string(b))
	assert.Equal(t, lead, waitLeader(t, ms, ""), "losing one ZooKeeper node of three changes nothing")
	assert.Equal(t, before, runningTasks(t, ms[2].url(), "/web"))

	// A second goes: no quorum, no leader, a clear 503 on every node.
	ens.Kill(other)
	for _, m := range ms {
		var msg string
		require.Eventually(t, func() bool {
			code, b, _, err := call("GET", m.url()+"/v2/apps", nil)
			msg = string(b)
			return err == nil && code == 503 && strings.Contains(msg, "ZooKeeper")
		}, 30*time.Second, 20*time.Millisecond, "last answer %s", msg)
		t.Logf("%s without ZooKeeper quorum: 503 %s", m.addr, strings.TrimSpace(msg))
	}

	// Back to quorum: a leader serves, the tasks were not restarted.
	ens.Restart(other)
	waitLeader(t, ms, "")
	require.Eventually(t, func() bool {
		code, _, _, err := call("GET", ms[0].url()+"/v2/apps/one-down", nil)
		return err == nil && code == 200
	}, 60*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool { return len(runningTasks(t, ms[0].url(), "/web")) == 2 }, 30*time.Second, 20*time.Millisecond)
	assert.Equal(t, before, runningTasks(t, ms[0].url(), "/web"), "no task restarted")
	assert.ElementsMatch(t, before, a.Tasks())
}

// TestHAFailoverRealAgent runs the agent binary with the three masters
// (--master m1,m2,m3) and real processes: after kill -9 of the leader the
// agent follows the new one, its tasks keep running (same ids and start
// times), and the new leader launches on it.
func TestHAFailoverRealAgent(t *testing.T) {
	ens := zktest.Start(t, 3)
	ms := cluster(t, ens, 3, 3*time.Second)
	lead := waitLeader(t, ms, "")

	dir := t.TempDir()
	logf, err := os.Create(filepath.Join(dir, "agent.log"))
	require.NoError(t, err)
	defer logf.Close()
	agentCmd := exec.Command(agentBinary(t), "--master", ms[0].url()+","+ms[1].url()+","+ms[2].url(),
		"--data-dir", filepath.Join(dir, "agent"), "--hostname", "127.0.0.1", "--address", "127.0.0.1",
		"--resources", "cpus:4;mem:1024;disk:1000;ports:[31000-31100]", "--default-user", "", "--allow-root-tasks", "--log-level", "info")
	agentCmd.Stdout, agentCmd.Stderr = logf, logf
	require.NoError(t, agentCmd.Start())
	t.Cleanup(func() {
		_ = agentCmd.Process.Signal(syscall.SIGTERM)
		_ = agentCmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "agent.log"))
			t.Logf("agent log:\n%s", b)
		}
	})

	// The agent leaves its tasks running when it stops; the test ends
	// them (and, should it fail midway, kills what runs its command).
	marker := fmt.Sprintf("sleep %d", 100000+time.Now().UnixNano()%800000)
	t.Cleanup(func() { killByCmdline(marker) })
	code, b, _, err := call("POST", ms[1].url()+"/v2/apps", map[string]any{"id": "/sleeper", "cmd": marker, "instances": 2, "cpus": 0.1, "mem": 16})
	require.NoError(t, err)
	require.Equal(t, 201, code, string(b))
	started := func(base string) map[string]string {
		code, b, _, err := call("GET", base+"/v2/apps/sleeper/tasks", nil)
		if err != nil || code != 200 {
			return nil
		}
		var body struct{ Tasks []marathon.Task }
		require.NoError(t, json.Unmarshal(b, &body))
		out := map[string]string{}
		for _, tk := range body.Tasks {
			if tk.State == marathon.TaskRunning && tk.StartedAt != "" {
				out[tk.ID] = tk.StartedAt
			}
		}
		return out
	}
	var before map[string]string
	require.Eventually(t, func() bool { before = started(lead.url()); return len(before) == 2 }, 60*time.Second, 50*time.Millisecond)

	lead.kill()
	next := waitLeader(t, ms, lead.addr)
	require.Eventually(t, func() bool {
		code, _, _, err := call("PUT", next.url()+"/v2/apps/sleeper?force=true", map[string]any{"instances": 3})
		return err == nil && code == 200
	}, 60*time.Second, 50*time.Millisecond)
	var after map[string]string
	require.Eventually(t, func() bool { after = started(next.url()); return len(after) == 3 }, 60*time.Second, 50*time.Millisecond)
	for id, at := range before {
		assert.Equal(t, at, after[id], "task %s kept running (not restarted)", id)
	}
	code, b, _, err = call("DELETE", next.url()+"/v2/apps/sleeper?force=true", nil)
	require.NoError(t, err)
	require.Equal(t, 200, code, string(b))
	require.Eventually(t, func() bool { return len(started(next.url())) == 0 && len(pidsByCmdline(marker)) == 0 }, 60*time.Second, 50*time.Millisecond)
}

// pidsByCmdline lists the processes whose command line contains s.
func pidsByCmdline(s string) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(strings.ReplaceAll(string(b), "\x00", " "), s) {
			out = append(out, pid)
		}
	}
	return out
}

func killByCmdline(s string) {
	for _, pid := range pidsByCmdline(s) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}
