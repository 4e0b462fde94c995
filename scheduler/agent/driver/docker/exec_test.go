package docker

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/scheduler/agent/driver"
)

func TestDockerExecTask(t *testing.T) {
	env := newDockerEnv(t)
	d := env.newDriver(t, nil)
	ctx := t.Context()
	id := "exec." + randHex(t, 4)
	_, err := d.StartTask(ctx, driver.TaskSpec{TaskID: id, Image: env.image})
	require.NoError(t, err)

	// The agent's COMMAND health checks arrive as ["/bin/sh", "-c", cmd].
	for _, tc := range []struct {
		name   string
		script string
		want   int
	}{
		{"success", "true", 0},
		{"exit status", "echo checking; echo not ready >&2; exit 3", 3},
		{"last status", "false", 1},
		{"unknown command", "pg_isready", 127},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, err := d.ExecTask(ctx, id, []string{"/bin/sh", "-c", tc.script})
			require.NoError(t, err)
			assert.Equal(t, tc.want, code)
		})
	}

	t.Run("binary missing in the container", func(t *testing.T) {
		// The engine reports it as an exit status, as "docker exec" does.
		code, err := d.ExecTask(ctx, id, []string{"/no/such/binary"})
		require.NoError(t, err)
		assert.Contains(t, []int{126, 127}, code)
	})

	t.Run("timeout", func(t *testing.T) {
		tctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := d.ExecTask(tctx, id, []string{"/bin/sh", "-c", "sleep 30"})
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Less(t, time.Since(start), 5*time.Second, "returns when the context ends")
	})

	t.Run("bad input", func(t *testing.T) {
		_, err := d.ExecTask(ctx, id, nil)
		assert.ErrorContains(t, err, "empty command")
		_, err = d.ExecTask(ctx, "never-started."+randHex(t, 4), []string{"/bin/sh", "-c", "true"})
		assert.ErrorIs(t, err, driver.ErrTaskNotFound)
	})

	t.Run("stopped task", func(t *testing.T) {
		require.NoError(t, d.StopTask(ctx, id, 5*time.Second))
		_, err := d.ExecTask(ctx, id, []string{"/bin/sh", "-c", "true"})
		require.Error(t, err)
		assert.NotErrorIs(t, err, driver.ErrTaskNotFound)
		assert.ErrorContains(t, err, "not running")
	})
}

func TestDockerLogsIntoSandbox(t *testing.T) {
	env := newDockerEnv(t)
	d := env.newDriver(t, nil)
	ctx := t.Context()
	sandbox := filepath.Join(t.TempDir(), "sandbox")
	id := "logs." + randHex(t, 4)
	_, err := d.StartTask(ctx, driver.TaskSpec{
		TaskID: id, Image: env.image, SandboxDir: sandbox,
		Cmd: "echo hello from the container; echo something broke >&2; exit 2",
	})
	require.NoError(t, err)
	assert.Equal(t, driver.ExitResult{ExitCode: 2}, waitResult(t, d, id, 15*time.Second))
	// Once the exit is reported the files are complete: the agent reads
	// the stderr tail for the failure message right then.
	assert.Equal(t, "hello from the container\n", readFile(t, filepath.Join(sandbox, StdoutFile)))
	assert.Equal(t, "something broke\n", readFile(t, filepath.Join(sandbox, StderrFile)))
	require.NoError(t, d.DestroyTask(ctx, id, false))
	assert.Eventually(t, func() bool { return goroutinesIn("followLogs") == 0 }, 10*time.Second, 10*time.Millisecond,
		"the log copy ended with the container")
}

func TestDockerLogsFollowStopsOnDestroy(t *testing.T) {
	env := newDockerEnv(t)
	d := env.newDriver(t, nil)
	ctx := t.Context()
	require.Eventually(t, func() bool { return goroutinesIn("followLogs") == 0 }, 10*time.Second, 50*time.Millisecond,
		"no log copy left over from earlier tests")
	sandbox := t.TempDir()
	id := "logsdestroy." + randHex(t, 4)
	_, err := d.StartTask(ctx, driver.TaskSpec{TaskID: id, Image: env.image, SandboxDir: sandbox, Cmd: "echo started; sleep 60"})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		b, _ := os.ReadFile(filepath.Join(sandbox, StdoutFile))
		return string(b) == "started\n"
	}, 15*time.Second, 50*time.Millisecond)
	assert.Equal(t, 1, goroutinesIn("followLogs"), "one log copy while the task runs")

	require.NoError(t, d.DestroyTask(ctx, id, true))
	// DestroyTask waits for the copy to end (its goroutine is returning).
	assert.Eventually(t, func() bool { return goroutinesIn("followLogs") == 0 }, 10*time.Second, 10*time.Millisecond,
		"log copy ended")
	assert.Eventually(t, func() bool { return goroutinesIn("watch") == 0 }, 5*time.Second, 20*time.Millisecond, "watcher ended")
}

func TestDockerLogsResumeAfterAgentRestart(t *testing.T) {
	env := newDockerEnv(t)
	ctx := t.Context()
	sandbox := t.TempDir()
	first := env.newDriver(t, nil)
	id := "logsresume." + randHex(t, 4)
	h, err := first.StartTask(ctx, driver.TaskSpec{TaskID: id, Image: env.image, SandboxDir: sandbox, Cmd: "echo one; sleep 2; echo two >&2"})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		b, _ := os.ReadFile(filepath.Join(sandbox, StdoutFile))
		return string(b) == "one\n"
	}, 15*time.Second, 20*time.Millisecond)
	require.NoError(t, first.Close())

	second := env.newDriver(t, nil)
	require.NoError(t, second.RecoverTask(ctx, h))
	assert.Equal(t, driver.ExitResult{}, waitResult(t, second, id, 15*time.Second))
	assert.Equal(t, "one\n", readFile(t, filepath.Join(sandbox, StdoutFile)), "no output copied twice")
	assert.Equal(t, "two\n", readFile(t, filepath.Join(sandbox, StderrFile)), "output during the restart is copied")
}

func TestTailBuffer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		max    int
		writes []string
		want   string
	}{
		{"fits", 8, []string{"abc", "de"}, "abcde"},
		{"keeps the end", 4, []string{"abc", "defg"}, "defg"},
		{"one big write", 3, []string{"abcdefgh"}, "fgh"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &tailBuffer{max: tc.max}
			for _, w := range tc.writes {
				n, err := b.Write([]byte(w))
				require.NoError(t, err)
				assert.Equal(t, len(w), n)
			}
			assert.Equal(t, tc.want, b.String())
		})
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

// goroutinesIn counts the goroutines running the named Driver method.
func goroutinesIn(method string) int {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "docker.(*Driver)."+method+"(") {
			n++
		}
	}
	return n
}

func TestDockerLogsUnreadableLogDriver(t *testing.T) {
	env := newDockerEnv(t)
	var logs syncBuffer
	d := env.newDriver(t, &logs)
	ctx := t.Context()
	sandbox := t.TempDir()
	id := "nologs." + randHex(t, 4)
	_, err := d.StartTask(ctx, driver.TaskSpec{
		TaskID: id, Image: env.image, SandboxDir: sandbox,
		Cmd: "echo lost; exit 4", Parameters: [][2]string{{"log-driver", "none"}},
	})
	require.NoError(t, err)
	// The task still runs and reports its exit; the copy gives up at once.
	assert.Equal(t, driver.ExitResult{ExitCode: 4}, waitResult(t, d, id, 15*time.Second))
	assert.Contains(t, logs.String(), "container logs not copied to the sandbox")
	assert.NotContains(t, logs.String(), "retrying")
	assert.Empty(t, readFile(t, filepath.Join(sandbox, StdoutFile)))
}

// The sandbox is mounted in the container as Mesos does: a task reads what
// the agent fetched into it through $MESOS_SANDBOX, and writes there.
func TestDockerSandboxMounted(t *testing.T) {
	env := newDockerEnv(t)
	d, err := New(Config{Owner: env.owner, SandboxMount: "/mnt/mesos/sandbox", Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	sandbox := filepath.Join(t.TempDir(), "sandboxes", "mount.1")
	require.NoError(t, os.MkdirAll(sandbox, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(sandbox, "fetched.txt"), []byte("from the agent\n"), 0o644))
	id := "mount." + randHex(t, 4)
	_, err = d.StartTask(t.Context(), driver.TaskSpec{TaskID: id, Image: env.image, SandboxDir: sandbox,
		Cmd: `echo $MESOS_SANDBOX; cat $MESOS_SANDBOX/fetched.txt; echo written > $MESOS_SANDBOX/out.txt`})
	require.NoError(t, err)
	assert.Equal(t, driver.ExitResult{}, waitResult(t, d, id, 30*time.Second))
	assert.Equal(t, "/mnt/mesos/sandbox\nfrom the agent\n", readFile(t, filepath.Join(sandbox, StdoutFile)))
	assert.Equal(t, "written\n", readFile(t, filepath.Join(sandbox, "out.txt")))
}
