package process

import (
	"context"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/scheduler/agent/driver"
)

func newDriver(t *testing.T) *Driver {
	t.Helper()
	d := New(Config{PollInterval: 20 * time.Millisecond})
	t.Cleanup(func() {
		// Kill whatever a failed test left running.
		hs, _ := d.ListTasks(context.Background())
		for _, h := range hs {
			_ = d.DestroyTask(context.Background(), h.TaskID, true)
		}
	})
	return d
}

func spec(t *testing.T, id, cmd string) driver.TaskSpec {
	return driver.TaskSpec{TaskID: id, AppID: "/test", Cmd: cmd, SandboxDir: filepath.Join(t.TempDir(), id)}
}

func wait(t *testing.T, d *Driver, id string, within time.Duration) driver.ExitResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), within)
	defer cancel()
	ch, err := d.WaitTask(ctx, id)
	require.NoError(t, err)
	res, ok := <-ch
	require.True(t, ok, "task %s did not exit within %s", id, within)
	return res
}

func TestExitStatus(t *testing.T) {
	tests := []struct {
		name string
		cmd  string
		want driver.ExitResult
	}{
		{"success", "true", driver.ExitResult{}},
		{"exit 3", "exit 3", driver.ExitResult{ExitCode: 3}},
		{"self kill", "kill -KILL $$", driver.ExitResult{ExitCode: 128 + 9, Signal: 9}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := newDriver(t)
			h, err := d.StartTask(t.Context(), spec(t, "t1", tt.cmd))
			require.NoError(t, err)
			assert.Equal(t, Name, h.Driver)
			assert.Equal(t, tt.want, wait(t, d, "t1", 5*time.Second))
			info, err := d.InspectTask(t.Context(), "t1")
			require.NoError(t, err)
			assert.False(t, info.Running)
		})
	}
}

func TestEnvSandboxAndLogs(t *testing.T) {
	d := newDriver(t)
	s := spec(t, "env", `echo "port=$PORT0 host=$HOST"; echo oops >&2; pwd`)
	s.Env = map[string]string{"PORT0": "31005", "HOST": "node-a"}
	_, err := d.StartTask(t.Context(), s)
	require.NoError(t, err)
	require.True(t, wait(t, d, "env", 5*time.Second).Successful())
	out, err := os.ReadFile(filepath.Join(s.SandboxDir, StdoutFile))
	require.NoError(t, err)
	assert.Equal(t, "port=31005 host=node-a\n"+s.SandboxDir+"\n", string(out))
	errOut, err := os.ReadFile(filepath.Join(s.SandboxDir, StderrFile))
	require.NoError(t, err)
	assert.Equal(t, "oops\n", string(errOut))
}

func TestCurrentUser(t *testing.T) {
	u, err := user.Current()
	require.NoError(t, err)
	d := newDriver(t)
	s := spec(t, "me", "id -u")
	s.User = u.Username
	_, err = d.StartTask(t.Context(), s)
	require.NoError(t, err)
	require.True(t, wait(t, d, "me", 5*time.Second).Successful())
	out, err := os.ReadFile(filepath.Join(s.SandboxDir, StdoutFile))
	require.NoError(t, err)
	assert.Equal(t, u.Uid+"\n", string(out))
}

func TestArgv(t *testing.T) {
	d := newDriver(t)
	s := spec(t, "argv", "")
	s.Args = []string{"/bin/sh", "-c", "exit 7", "ignored"}
	_, err := d.StartTask(t.Context(), s)
	require.NoError(t, err)
	assert.Equal(t, 7, wait(t, d, "argv", 5*time.Second).ExitCode)
}

func TestStartErrors(t *testing.T) {
	d := newDriver(t)
	tests := []struct {
		name string
		spec driver.TaskSpec
		msg  string
	}{
		{"no id", driver.TaskSpec{Cmd: "true", SandboxDir: t.TempDir()}, "empty task id"},
		{"no cmd", driver.TaskSpec{TaskID: "x", SandboxDir: t.TempDir()}, "neither cmd nor args"},
		{"no sandbox", driver.TaskSpec{TaskID: "x", Cmd: "true"}, "no sandbox"},
		{"bad binary", driver.TaskSpec{TaskID: "x", Args: []string{"/nonexistent/bin"}, SandboxDir: t.TempDir()}, "no such file"},
		{"bad user", driver.TaskSpec{TaskID: "x", Cmd: "true", User: "no-such-user-xyz", SandboxDir: t.TempDir()}, "no-such-user-xyz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := d.StartTask(t.Context(), tt.spec)
			assert.ErrorContains(t, err, tt.msg)
		})
	}
	_, err := d.WaitTask(t.Context(), "missing")
	assert.ErrorIs(t, err, driver.ErrTaskNotFound)
}

func TestStopGraceful(t *testing.T) {
	d := newDriver(t)
	s := spec(t, "trap", `trap 'echo got-term; exit 0' TERM; echo ready; while :; do sleep 0.05; done`)
	_, err := d.StartTask(t.Context(), s)
	require.NoError(t, err)
	waitForFile(t, filepath.Join(s.SandboxDir, StdoutFile), "ready")
	start := time.Now()
	require.NoError(t, d.StopTask(t.Context(), "trap", 5*time.Second))
	assert.Less(t, time.Since(start), 4*time.Second, "trap handler should end the task before the grace period")
	res := wait(t, d, "trap", time.Second)
	assert.Equal(t, driver.ExitResult{Killed: true}, res)
	waitForFile(t, filepath.Join(s.SandboxDir, StdoutFile), "got-term")
}

func TestStopEscalatesToKillAndKillsGroup(t *testing.T) {
	d := newDriver(t)
	s := spec(t, "stubborn", `trap '' TERM; sleep 300 & echo $! > child.pid; echo ready; wait`)
	_, err := d.StartTask(t.Context(), s)
	require.NoError(t, err)
	waitForFile(t, filepath.Join(s.SandboxDir, StdoutFile), "ready")
	b, err := os.ReadFile(filepath.Join(s.SandboxDir, "child.pid"))
	require.NoError(t, err)
	childPID, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)

	start := time.Now()
	require.NoError(t, d.StopTask(t.Context(), "stubborn", 200*time.Millisecond))
	assert.GreaterOrEqual(t, time.Since(start), 200*time.Millisecond)
	res := wait(t, d, "stubborn", time.Second)
	assert.True(t, res.Killed)
	assert.Equal(t, int(syscall.SIGKILL), res.Signal)
	// The background sleep was in the same group and must be gone too.
	require.Eventually(t, func() bool {
		alive, _ := sameProcessAlive(childPID, mustStart(childPID))
		return !alive
	}, 5*time.Second, 20*time.Millisecond, "child %d of the task survived", childPID)
}

func TestRecover(t *testing.T) {
	d1 := newDriver(t)
	s := spec(t, "long", "sleep 300")
	h, err := d1.StartTask(t.Context(), s)
	require.NoError(t, err)
	pid, err := d1.PID("long")
	require.NoError(t, err)

	// A new driver (as after an agent restart) re-attaches by handle.
	d2 := newDriver(t)
	require.NoError(t, d2.RecoverTask(t.Context(), h))
	pid2, err := d2.PID("long")
	require.NoError(t, err)
	assert.Equal(t, pid, pid2)
	info, err := d2.InspectTask(t.Context(), "long")
	require.NoError(t, err)
	assert.True(t, info.Running)

	require.NoError(t, d2.StopTask(t.Context(), "long", time.Second))
	res := wait(t, d2, "long", 5*time.Second)
	assert.True(t, res.Killed)
	assert.ErrorIs(t, res.Err, ErrExitUnknown)

	// Now it is gone: recovering the same handle again fails.
	d3 := newDriver(t)
	assert.ErrorIs(t, d3.RecoverTask(t.Context(), h), driver.ErrTaskNotFound)
}

func TestRecoverRejectsRecycledPID(t *testing.T) {
	d := newDriver(t)
	// Our own pid with a wrong start time stands for a recycled pid.
	st, err := readProcStat(os.Getpid())
	require.NoError(t, err)
	tests := []struct {
		name  string
		state string
		err   error
	}{
		{"recycled", `{"pid":` + strconv.Itoa(os.Getpid()) + `,"startTicks":` + strconv.FormatUint(st.StartTime+1, 10) + `}`, driver.ErrTaskNotFound},
		{"no such pid", `{"pid":999999999,"startTicks":1}`, driver.ErrTaskNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := d.RecoverTask(t.Context(), &driver.TaskHandle{TaskID: "x", Driver: Name, State: []byte(tt.state)})
			assert.ErrorIs(t, err, tt.err)
		})
	}
	assert.Error(t, d.RecoverTask(t.Context(), &driver.TaskHandle{TaskID: "x", Driver: Name, State: []byte(`{`)}))
	assert.Error(t, d.RecoverTask(t.Context(), &driver.TaskHandle{TaskID: "x", Driver: "docker", State: []byte(`{}`)}))
}

func TestRecoveredTaskExitIsSeen(t *testing.T) {
	d1 := newDriver(t)
	s := spec(t, "short", "sleep 0.3")
	h, err := d1.StartTask(t.Context(), s)
	require.NoError(t, err)
	d2 := newDriver(t)
	require.NoError(t, d2.RecoverTask(t.Context(), h))
	res := wait(t, d2, "short", 5*time.Second)
	assert.False(t, res.Killed)
	assert.ErrorIs(t, res.Err, ErrExitUnknown)
}

func TestDestroy(t *testing.T) {
	d := newDriver(t)
	_, err := d.StartTask(t.Context(), spec(t, "d", "sleep 300"))
	require.NoError(t, err)
	assert.ErrorContains(t, d.DestroyTask(t.Context(), "d", false), "still running")
	require.NoError(t, d.DestroyTask(t.Context(), "d", true))
	_, err = d.InspectTask(t.Context(), "d")
	assert.ErrorIs(t, err, driver.ErrTaskNotFound)
}

func TestParseProcStat(t *testing.T) {
	line := func(comm string) string {
		// pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime prio nice threads itreal starttime ...
		return "123 (" + comm + ") S 1 123 123 0 -1 4194304 100 0 0 0 0 0 0 0 20 0 1 0 987654 1000 200"
	}
	tests := []struct {
		name    string
		in      string
		want    procStat
		wantErr bool
	}{
		{"plain", line("sleep"), procStat{State: 'S', PGID: 123, StartTime: 987654}, false},
		{"spaces and parens", line("a) b (c"), procStat{State: 'S', PGID: 123, StartTime: 987654}, false},
		{"truncated", "123 (x) S 1 2", procStat{}, true},
		{"no paren", "garbage", procStat{}, true},
		{"empty", "", procStat{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProcStat([]byte(tt.in))
			if tt.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func FuzzParseProcStat(f *testing.F) {
	f.Add([]byte("1 (init) S 0 1 1 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0 5 6 7"))
	f.Add([]byte("1 ()) S"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseProcStat(b) // must not panic
	})
}

func mustStart(pid int) uint64 {
	st, err := readProcStat(pid)
	if err != nil {
		return 0
	}
	return st.StartTime
}

func waitForFile(t *testing.T, path, substr string) {
	t.Helper()
	require.Eventually(t, func() bool {
		b, _ := os.ReadFile(path)
		return strings.Contains(string(b), substr)
	}, 5*time.Second, 10*time.Millisecond, "%s never contained %q", path, substr)
}
