package agent_test

import (
	"bytes"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/user"
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
	"github.com/switchyard/switchyard/scheduler/agent"
	"github.com/switchyard/switchyard/scheduler/agentapi"
)

// logSink collects log lines; safe for concurrent use.
type logSink struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// traversableDir is a data directory tasks of other users can reach:
// the test's temporary directories are 0700.
func traversableDir(t *testing.T) string {
	t.Helper()
	base := t.TempDir()
	for d := base; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		require.NoError(t, os.Chmod(d, 0o711))
	}
	return filepath.Join(base, "agent")
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run tasks as other users")
	}
}

func lookupUID(t *testing.T, name string) int {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		t.Skipf("no user %s: %v", name, err)
	}
	uid, err := strconv.Atoi(u.Uid)
	require.NoError(t, err)
	return uid
}

// waitFile waits until path exists and has content, then returns it.
func waitFile(t *testing.T, path string) string {
	t.Helper()
	var b []byte
	require.Eventually(t, func() bool {
		var err error
		b, err = os.ReadFile(path)
		return err == nil && bytes.HasSuffix(b, []byte("END\n"))
	}, 15*time.Second, 20*time.Millisecond, "%s never completed", path)
	return string(b)
}

// The agent's own environment (an AWS key, say) never reaches a task or
// its health checks; only Marathon's variables, a minimal PATH and the
// variables the operator passes through do.
func TestAttackTaskEnvLeak(t *testing.T) {
	t.Setenv("AWS_SECRET_ACCESS_KEY", "agent-secret-key")
	t.Setenv("HTTP_PROXY", "http://proxy:3128")
	f, url := newFakeScheduler(t)
	dataDir := t.TempDir()
	runAgent(t, url, dataDir, func(c *agent.Config) { c.TaskEnvPassthrough = []string{"HTTP_PROXY", "NOT_SET_ANYWHERE"} })
	port := freePort(t)
	f.assign(agentapi.Assignment{
		TaskID: "env.1", AppID: "/env", Version: "v1",
		Cmd:          `env | sort > env.txt; echo END >> env.txt; exec sleep 60`,
		Env:          map[string]string{"APP_SETTING": "x"},
		HostPorts:    []int{port},
		ServicePorts: []int{10000},
		HealthChecks: []marathon.HealthCheck{{
			Protocol: "COMMAND", Command: &marathon.CommandCheck{Value: `test -z "$AWS_SECRET_ACCESS_KEY" && test "$APP_SETTING" = x`},
			IntervalSeconds: 1, TimeoutSeconds: 5, MaxConsecutiveFailures: 3,
		}},
	})
	got := waitFile(t, filepath.Join(dataDir, "sandbox", "env.1", "env.txt"))
	env := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(got), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	assert.NotContains(t, got, "agent-secret-key")
	assert.NotContains(t, env, "AWS_SECRET_ACCESS_KEY")
	assert.NotContains(t, env, "NOT_SET_ANYWHERE")
	assert.Equal(t, "http://proxy:3128", env["HTTP_PROXY"], "passed through on request")
	assert.Equal(t, agent.TaskPath, env["PATH"])
	assert.Equal(t, "x", env["APP_SETTING"])
	assert.Equal(t, strconv.Itoa(port), env["PORT0"])
	assert.Equal(t, strconv.Itoa(port), env["PORTS"])
	assert.Equal(t, "env.1", env["MESOS_TASK_ID"])
	assert.Equal(t, "/env", env["MARATHON_APP_ID"])
	assert.Equal(t, "localhost", env["HOST"])
	assert.Equal(t, filepath.Join(dataDir, "sandbox", "env.1"), env["MESOS_SANDBOX"])
	// Anything else comes from the shell itself (PWD, SHLVL, _), or is
	// the agent's mark that finds its processes after a crash
	// (SWITCHYARD_OWNER: the agent's data dir; SWITCHYARD_TASK_ID).
	for k := range env {
		switch {
		case strings.HasPrefix(k, "PORT"), strings.HasPrefix(k, "MARATHON_"), strings.HasPrefix(k, "MESOS_"),
			k == "HOST", k == "PATH", k == "APP_SETTING", k == "HTTP_PROXY", k == "PWD", k == "SHLVL", k == "_",
			k == "SWITCHYARD_OWNER", k == "SWITCHYARD_TASK_ID":
		default:
			t.Errorf("unexpected variable %s in the task's environment", k)
		}
	}
	// The COMMAND health check sees the task's environment too.
	require.Eventually(t, func() bool {
		st, ok := f.last("env.1", marathon.TaskRunning)
		return ok && len(st.Health) == 1 && st.Health[0].Alive
	}, 15*time.Second, 20*time.Millisecond, "health check never passed")
}

// A task cannot read another task's sandbox, logs or the agent's task
// records when they run as different users.
func TestAttackSandboxReadAcrossUsers(t *testing.T) {
	requireRoot(t)
	nobody, daemon := lookupUID(t, "nobody"), lookupUID(t, "daemon")
	f, url := newFakeScheduler(t)
	dataDir := traversableDir(t)
	runAgent(t, url, dataDir, func(c *agent.Config) { c.AllowRootTasks = false; c.DefaultUser = "nobody" })

	f.assign(agentapi.Assignment{
		TaskID: "victim.1", AppID: "/victim", Version: "v1",
		Env: map[string]string{"DB_PASSWORD": "hunter2"},
		Cmd: `echo hunter2-in-log; echo hunter2 > secret.txt; id -u > uid; exec sleep 60`,
	})
	victim := filepath.Join(dataDir, "sandbox", "victim.1")
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(filepath.Join(victim, "uid"))
		return err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(nobody)
	}, 15*time.Second, 20*time.Millisecond, "victim runs as nobody (the agent's --default-user)")
	f.waitState(t, "victim.1", marathon.TaskRunning)

	probe := `for p in ../victim.1/secret.txt ../victim.1/stdout ../../tasks/victim.1.json ../../agent-token; do
  if out=$(cat "$p" 2>&1); then echo "READ $p: $out"; else echo "DENIED $p: $out"; fi
done
if ls ../victim.1 >/dev/null 2>&1; then echo "LISTED victim"; else echo "DENIED list"; fi
if ls .. >/dev/null 2>&1; then echo "LISTED sandboxes"; else echo "DENIED sandboxes"; fi
id -u; echo END`
	f.assign(
		agentapi.Assignment{TaskID: "victim.1", AppID: "/victim", Version: "v1", Env: map[string]string{"DB_PASSWORD": "hunter2"},
			Cmd: `echo hunter2-in-log; echo hunter2 > secret.txt; id -u > uid; exec sleep 60`},
		agentapi.Assignment{TaskID: "attacker.1", AppID: "/attacker", Version: "v1", User: "daemon",
			Cmd: `(` + probe + `) > probe.txt 2>&1; exec sleep 60`},
	)
	out := waitFile(t, filepath.Join(dataDir, "sandbox", "attacker.1", "probe.txt"))
	t.Log(out)
	assert.NotContains(t, out, "READ ")
	assert.NotContains(t, out, "hunter2")
	assert.NotContains(t, out, "LISTED")
	assert.Equal(t, 4, strings.Count(out, "Permission denied"), "every read is refused by the kernel")
	assert.Contains(t, out, strconv.Itoa(daemon)+"\nEND", "the attacker ran as daemon")

	// What the modes are.
	mode := func(p string) (os.FileMode, int) {
		fi, err := os.Stat(p)
		require.NoError(t, err)
		return fi.Mode().Perm(), int(fi.Sys().(*syscall.Stat_t).Uid)
	}
	m, uid := mode(victim)
	assert.Equal(t, os.FileMode(0o700), m)
	assert.Equal(t, nobody, uid, "the sandbox belongs to the task's user")
	m, uid = mode(filepath.Join(victim, "stdout"))
	assert.Equal(t, os.FileMode(0o600), m)
	assert.Equal(t, nobody, uid)
	m, _ = mode(filepath.Join(dataDir, "tasks"))
	assert.Equal(t, os.FileMode(0o700), m)
	m, uid = mode(filepath.Join(dataDir, "tasks", "victim.1.json"))
	assert.Equal(t, os.FileMode(0o600), m)
	assert.Equal(t, 0, uid)
	m, _ = mode(filepath.Join(dataDir, "agent-token"))
	assert.Equal(t, os.FileMode(0o600), m)
	m, _ = mode(filepath.Join(dataDir, "sandbox"))
	assert.Equal(t, os.FileMode(0o711), m)
}

// An app asking for root is refused unless the agent allows root tasks;
// so is running as root by default.
func TestRootTasksRefused(t *testing.T) {
	requireRoot(t)
	tests := []struct {
		name        string
		defaultUser string
		appUser     string
		allowRoot   bool
		wantUID     string // "" = refused
	}{
		{"app asks for root", "nobody", "root", false, ""},
		{"app asks for uid 0", "nobody", "0", false, ""},
		{"no default user on a root agent", "", "", false, ""},
		{"default user", "nobody", "", false, strconv.Itoa(lookupUID(t, "nobody"))},
		{"root allowed", "nobody", "root", true, "0"},
		{"unknown user", "nobody", "no-such-user-here", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, url := newFakeScheduler(t)
			dataDir := traversableDir(t)
			var logs logSink
			runAgent(t, url, dataDir, func(c *agent.Config) {
				c.DefaultUser, c.AllowRootTasks = tt.defaultUser, tt.allowRoot
				c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			})
			f.assign(agentapi.Assignment{TaskID: "t.1", AppID: "/t", User: tt.appUser, Cmd: `id -u > uid; echo END >> uid; exec sleep 60`})
			if tt.wantUID == "" {
				st := f.waitState(t, "t.1", marathon.TaskFailed)
				assert.Contains(t, st.Message, "refused")
				assert.Contains(t, logs.String(), "refusing task")
				assert.NoFileExists(t, filepath.Join(dataDir, "sandbox", "t.1", "uid"))
				return
			}
			assert.Equal(t, tt.wantUID+"\nEND\n", waitFile(t, filepath.Join(dataDir, "sandbox", "t.1", "uid")))
		})
	}
}

// The agent presents the cluster secret, keeps the token it is given
// (0600, in its data dir) and presents it when it registers again.
func TestAgentSecretAndToken(t *testing.T) {
	f := &fakeScheduler{changed: make(chan struct{}), known: map[string]bool{}, tokens: map[string]string{}}
	var logs logSink
	srv := httptest.NewServer(agentapi.NewHandler(f, agentapi.HandlerConfig{Secrets: []string{"s3cret"},
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}))
	t.Cleanup(srv.Close)
	dataDir := t.TempDir()

	// Without the secret the agent cannot register.
	_, _, stop := runAgent(t, srv.URL, dataDir)
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "missing or wrong cluster secret") },
		5*time.Second, 10*time.Millisecond)
	stop()
	assert.Empty(t, f.registrations())

	a, _, stop := runAgent(t, srv.URL, dataDir, func(c *agent.Config) { c.Secret = "s3cret" })
	require.Eventually(t, func() bool { return a.ID() != "" }, 5*time.Second, 10*time.Millisecond)
	id := a.ID()
	f.assign(agentapi.Assignment{TaskID: "t.1", AppID: "/t", Cmd: "exec sleep 60"})
	f.waitState(t, "t.1", marathon.TaskRunning) // polls and reports carry the token
	stop()
	b, err := os.ReadFile(filepath.Join(dataDir, "agent-token"))
	require.NoError(t, err)
	assert.Equal(t, "tok-"+id+"\n", string(b))

	// Restarted, it registers under its id with its token (the fake
	// refuses a known id without it).
	_, _, stop = runAgent(t, srv.URL, dataDir, func(c *agent.Config) { c.Secret = "s3cret" })
	defer stop()
	require.Eventually(t, func() bool { return len(f.registrations()) >= 2 }, 5*time.Second, 10*time.Millisecond)
	regs := f.registrations()
	assert.Equal(t, id, regs[1].AgentID)
	assert.Equal(t, "tok-"+id, regs[1].AgentToken)
}
