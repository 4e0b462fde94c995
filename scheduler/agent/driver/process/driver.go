// Package process is the task driver for command tasks: "/bin/sh -c cmd"
// (or an argv) run as plain processes on the agent.
//
// Each task gets its own process group, so it survives an agent restart
// and can be stopped as a group (SIGTERM, grace, SIGKILL). Its handle is
// the pid plus the process start time from /proc/PID/stat, so a restarted
// agent re-attaches only to the very same process, never to a recycled
// pid. A recovered task is not a child of the new agent: its exit is seen
// by polling /proc and its exit status is unknown.
package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/switchyard/switchyard/scheduler/agent/driver"
)

// Name is the driver's name in task handles and agent configs.
const Name = "process"

// Log file names in a task's sandbox directory.
const (
	StdoutFile = "stdout"
	StderrFile = "stderr"
)

// ErrExitUnknown is the ExitResult.Err of a recovered task that ended: it
// was not the agent's child, so its exit status could not be collected.
var ErrExitUnknown = errors.New("process: task exited while not a child of this agent; exit status unknown")

// Config tunes a Driver.
type Config struct {
	// Logger receives driver logs; nil discards them.
	Logger *slog.Logger
	// PollInterval is how often a recovered task's /proc entry is
	// checked; default 250ms.
	PollInterval time.Duration
	// BaseEnv is the environment every task starts from before its own
	// TaskSpec.Env is applied; nil means none. A task never inherits
	// the agent's own environment (it may hold the agent's secrets).
	BaseEnv []string
}

// Driver runs command tasks as process groups. It is safe for concurrent
// use. Its goroutines live as long as the tasks they watch.
type Driver struct {
	cfg Config
	log *slog.Logger

	mu    sync.Mutex
	tasks map[string]*task // guarded by mu
}

var (
	_ driver.Driver = (*Driver)(nil)
	_ driver.Lister = (*Driver)(nil)
)

// New returns a process driver.
func New(cfg Config) *Driver {
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 250 * time.Millisecond
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Driver{cfg: cfg, log: log.With("driver", Name), tasks: map[string]*task{}}
}

// handleState is the JSON persisted in driver.TaskHandle.State.
type handleState struct {
	PID        int    `json:"pid"`
	StartTicks uint64 `json:"startTicks"`
	StartedAt  string `json:"startedAt"`
	SandboxDir string `json:"sandboxDir,omitempty"`
	// Owner is the mark the task was started with (driver.TaskSpec.Owner).
	Owner string `json:"owner,omitempty"`
}

// task is one started or recovered process group.
type task struct {
	id        string
	pid       int
	startTick uint64
	startedAt time.Time
	sandbox   string
	owner     string        // the task's mark; "" when unmarked
	done      chan struct{} // closed when the process has exited

	mu     sync.Mutex
	killed bool              // guarded by mu: StopTask/DestroyTask was called
	result driver.ExitResult // guarded by mu; final once done is closed
}

// Name implements driver.Driver.
func (d *Driver) Name() string { return Name }

// StartTask implements driver.Driver.
func (d *Driver) StartTask(ctx context.Context, spec driver.TaskSpec) (*driver.TaskHandle, error) {
	if spec.TaskID == "" {
		return nil, errors.New("process: start task: empty task id")
	}
	if spec.Cmd == "" && len(spec.Args) == 0 {
		return nil, fmt.Errorf("process: start task %s: neither cmd nor args", spec.TaskID)
	}
	if spec.SandboxDir == "" {
		return nil, fmt.Errorf("process: start task %s: no sandbox dir", spec.TaskID)
	}
	d.mu.Lock()
	_, exists := d.tasks[spec.TaskID]
	d.mu.Unlock()
	if exists {
		return nil, fmt.Errorf("process: start task %s: already running", spec.TaskID)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("process: start task %s: %w", spec.TaskID, err)
	}
	if err := os.MkdirAll(spec.SandboxDir, 0o700); err != nil {
		return nil, fmt.Errorf("process: start task %s: sandbox: %w", spec.TaskID, err)
	}

	var cmd *exec.Cmd
	if spec.Cmd != "" {
		cmd = exec.Command("/bin/sh", "-c", spec.Cmd)
	} else {
		cmd = exec.Command(spec.Args[0], spec.Args[1:]...)
	}
	cmd.Dir = spec.SandboxDir
	cmd.Env = withMarker(d.environ(spec.Env), spec.Owner, spec.TaskID)
	// Own process group: not hit by signals to the agent's group, killable
	// as a whole. Not exec.CommandContext: the task must outlive ctx.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if spec.User != "" && !isCurrentUser(spec.User) {
		cred, err := credentialFor(spec.User)
		if err != nil {
			return nil, fmt.Errorf("process: start task %s: %w", spec.TaskID, err)
		}
		cmd.SysProcAttr.Credential = cred
	}
	stdout, err := openLog(filepath.Join(spec.SandboxDir, StdoutFile), cmd.SysProcAttr.Credential)
	if err != nil {
		return nil, fmt.Errorf("process: start task %s: %w", spec.TaskID, err)
	}
	defer stdout.Close()
	stderr, err := openLog(filepath.Join(spec.SandboxDir, StderrFile), cmd.SysProcAttr.Credential)
	if err != nil {
		return nil, fmt.Errorf("process: start task %s: %w", spec.TaskID, err)
	}
	defer stderr.Close()
	cmd.Stdout, cmd.Stderr = stdout, stderr

	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("process: start task %s: %w", spec.TaskID, err)
	}
	pid := cmd.Process.Pid
	st, err := readProcStat(pid)
	if err != nil {
		// The process exited (and is a zombie until Wait) or /proc is
		// unreadable; without a start time there is no safe handle.
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = cmd.Wait()
		return nil, fmt.Errorf("process: start task %s: read start time: %w", spec.TaskID, err)
	}
	t := &task{id: spec.TaskID, pid: pid, startTick: st.StartTime, startedAt: time.Now(), sandbox: spec.SandboxDir,
		owner: spec.Owner, done: make(chan struct{})}
	go t.waitChild(cmd)

	d.mu.Lock()
	d.tasks[spec.TaskID] = t
	d.mu.Unlock()
	d.log.Debug("task started", "task_id", spec.TaskID, "pid", pid)
	return t.handle()
}

// openLog opens a task's log file for appending, readable by the task's
// user only (cred nil: the agent's user).
func openLog(path string, cred *syscall.Credential) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, err
	}
	if cred != nil {
		if err := f.Chown(int(cred.Uid), int(cred.Gid)); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}

func (d *Driver) environ(env map[string]string) []string {
	base := d.cfg.BaseEnv
	out := make([]string, 0, len(base)+len(env))
	for _, kv := range base {
		k, _, _ := cutEnv(kv)
		if _, override := env[k]; !override {
			out = append(out, kv)
		}
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, k+"="+env[k])
	}
	return out
}

func cutEnv(kv string) (string, string, bool) {
	for i := 0; i < len(kv); i++ {
		if kv[i] == '=' {
			return kv[:i], kv[i+1:], true
		}
	}
	return kv, "", false
}

// isCurrentUser reports whether name is the user the agent runs as (no
// credential switch needed, and a non-root agent could not do one).
func isCurrentUser(name string) bool {
	u, err := user.Current()
	return err == nil && (u.Username == name || u.Uid == name)
}

func credentialFor(name string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("user %q: %w", name, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %q: uid %q: %w", name, u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %q: gid %q: %w", name, u.Gid, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func (t *task) handle() (*driver.TaskHandle, error) {
	b, err := json.Marshal(handleState{PID: t.pid, StartTicks: t.startTick, StartedAt: t.startedAt.UTC().Format(time.RFC3339Nano),
		SandboxDir: t.sandbox, Owner: t.owner})
	if err != nil {
		return nil, fmt.Errorf("process: encode handle: %w", err)
	}
	return &driver.TaskHandle{TaskID: t.id, Driver: Name, State: b}, nil
}

// waitChild reaps a child process and records how it ended.
func (t *task) waitChild(cmd *exec.Cmd) {
	err := cmd.Wait()
	res := driver.ExitResult{}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			res.Signal = int(ws.Signal())
			res.ExitCode = 128 + res.Signal
		} else {
			res.ExitCode = ee.ExitCode()
		}
	default:
		res.Err = fmt.Errorf("wait for task: %w", err)
	}
	t.finish(res)
}

// pollGone waits, by polling /proc, until a recovered process is gone.
func (t *task) pollGone(every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for range tick.C {
		alive, err := sameProcessAlive(t.pid, t.startTick)
		if err == nil && !alive {
			t.finish(driver.ExitResult{ExitCode: -1, Err: ErrExitUnknown})
			return
		}
	}
}

func (t *task) finish(res driver.ExitResult) {
	t.mu.Lock()
	res.Killed = t.killed
	t.result = res
	t.mu.Unlock()
	close(t.done)
}

func (t *task) exited() bool {
	select {
	case <-t.done:
		return true
	default:
		return false
	}
}

// signalGroup signals the task's process group, after checking that the
// group leader is still the same process when it is not our child (a
// recovered task), so a recycled pid is never signalled.
func (t *task) signalGroup(sig syscall.Signal) error {
	if t.exited() {
		// The leader is gone; stragglers of the group may remain.
		err := syscall.Kill(-t.pid, sig)
		if err != nil && !errors.Is(err, syscall.ESRCH) {
			return err
		}
		return nil
	}
	alive, err := sameProcessAlive(t.pid, t.startTick)
	if err != nil {
		return err
	}
	if !alive {
		// A zombie child (not reaped yet) or exited since; the group may
		// still have members.
		if st, err := readProcStat(t.pid); err != nil || st.StartTime != t.startTick {
			return nil
		}
	}
	err = syscall.Kill(-t.pid, sig)
	if err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

func (d *Driver) get(id string) (*task, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, ok := d.tasks[id]
	if !ok {
		return nil, fmt.Errorf("process: task %s: %w", id, driver.ErrTaskNotFound)
	}
	return t, nil
}

// WaitTask implements driver.Driver. The channel yields one result when
// the task ends, or is closed without a value when ctx ends first.
func (d *Driver) WaitTask(ctx context.Context, taskID string) (<-chan driver.ExitResult, error) {
	t, err := d.get(taskID)
	if err != nil {
		return nil, err
	}
	ch := make(chan driver.ExitResult, 1)
	go func() {
		defer close(ch)
		select {
		case <-t.done:
			t.mu.Lock()
			res := t.result
			t.mu.Unlock()
			ch <- res
		case <-ctx.Done():
		}
	}()
	return ch, nil
}

// StopTask implements driver.Driver: SIGTERM to the process group, up to
// grace for it to exit, then SIGKILL. It returns once the task has exited
// or ctx ends.
func (d *Driver) StopTask(ctx context.Context, taskID string, grace time.Duration) error {
	t, err := d.get(taskID)
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.killed = true
	t.mu.Unlock()
	if t.exited() {
		return nil
	}
	if err := t.signalGroup(syscall.SIGTERM); err != nil {
		return fmt.Errorf("process: stop task %s: %w", taskID, err)
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-t.done:
		// Leave no stragglers in the group.
		_ = t.signalGroup(syscall.SIGKILL)
		return nil
	case <-ctx.Done():
		return fmt.Errorf("process: stop task %s: %w", taskID, ctx.Err())
	case <-timer.C:
	}
	d.log.Debug("grace period over, killing", "task_id", taskID, "grace", grace)
	if err := t.signalGroup(syscall.SIGKILL); err != nil {
		return fmt.Errorf("process: kill task %s: %w", taskID, err)
	}
	select {
	case <-t.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("process: kill task %s: %w", taskID, ctx.Err())
	}
}

// DestroyTask implements driver.Driver. Without force it refuses to
// destroy a running task; with force it kills the group first. The
// sandbox directory (with the logs) is left in place.
func (d *Driver) DestroyTask(ctx context.Context, taskID string, force bool) error {
	t, err := d.get(taskID)
	if err != nil {
		return err
	}
	if !t.exited() {
		if !force {
			return fmt.Errorf("process: destroy task %s: still running", taskID)
		}
		if err := d.StopTask(ctx, taskID, 0); err != nil {
			return fmt.Errorf("process: destroy task %s: %w", taskID, err)
		}
	}
	// A task leaves nothing behind: background processes it started
	// outlive its leader otherwise. Those still in its group go with the
	// group; marked ones that left it are found by their mark.
	_ = t.signalGroup(syscall.SIGKILL)
	d.killStraysOf(t)
	d.mu.Lock()
	delete(d.tasks, taskID)
	d.mu.Unlock()
	return nil
}

// InspectTask implements driver.Driver.
func (d *Driver) InspectTask(_ context.Context, taskID string) (*driver.TaskInfo, error) {
	t, err := d.get(taskID)
	if err != nil {
		return nil, err
	}
	return &driver.TaskInfo{TaskID: t.id, Running: !t.exited(), StartedAt: t.startedAt}, nil
}

// RecoverTask implements driver.Driver: it re-attaches to the process in
// handle if a live process with the same pid and start time exists, and
// returns driver.ErrTaskNotFound otherwise.
func (d *Driver) RecoverTask(_ context.Context, handle *driver.TaskHandle) error {
	if handle == nil || handle.TaskID == "" {
		return errors.New("process: recover task: empty handle")
	}
	if handle.Driver != "" && handle.Driver != Name {
		return fmt.Errorf("process: recover task %s: handle belongs to driver %q", handle.TaskID, handle.Driver)
	}
	var hs handleState
	if err := json.Unmarshal(handle.State, &hs); err != nil {
		return fmt.Errorf("process: recover task %s: decode handle: %w", handle.TaskID, err)
	}
	if hs.PID <= 0 {
		return fmt.Errorf("process: recover task %s: bad pid %d", handle.TaskID, hs.PID)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.tasks[handle.TaskID]; ok {
		return nil // still tracked: the driver outlived the agent loop
	}
	alive, err := sameProcessAlive(hs.PID, hs.StartTicks)
	if err != nil {
		return fmt.Errorf("process: recover task %s: %w", handle.TaskID, err)
	}
	if !alive {
		return fmt.Errorf("process: recover task %s (pid %d): %w", handle.TaskID, hs.PID, driver.ErrTaskNotFound)
	}
	started, err := time.Parse(time.RFC3339Nano, hs.StartedAt)
	if err != nil {
		started = time.Time{}
	}
	t := &task{id: handle.TaskID, pid: hs.PID, startTick: hs.StartTicks, startedAt: started, sandbox: hs.SandboxDir,
		owner: hs.Owner, done: make(chan struct{})}
	d.tasks[handle.TaskID] = t
	go t.pollGone(d.cfg.PollInterval)
	d.log.Debug("task recovered", "task_id", handle.TaskID, "pid", hs.PID)
	return nil
}

// ListTasks implements driver.Lister: the handles of the tasks the driver
// tracks (started or recovered), sorted by task id.
func (d *Driver) ListTasks(_ context.Context) ([]driver.TaskHandle, error) {
	d.mu.Lock()
	ts := make([]*task, 0, len(d.tasks))
	for _, t := range d.tasks {
		ts = append(ts, t)
	}
	d.mu.Unlock()
	out := make([]driver.TaskHandle, 0, len(ts))
	for _, t := range ts {
		h, err := t.handle()
		if err != nil {
			return nil, err
		}
		out = append(out, *h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TaskID < out[j].TaskID })
	return out, nil
}

// PID returns the process id of a tracked task (for tests and logs).
func (d *Driver) PID(taskID string) (int, error) {
	t, err := d.get(taskID)
	if err != nil {
		return 0, err
	}
	return t.pid, nil
}
