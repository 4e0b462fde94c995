package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/scheduler/agent/driver"
	"github.com/switchyard/switchyard/scheduler/agentapi"
	"github.com/switchyard/switchyard/scheduler/health"
)

// taskRunner drives one task through its life:
//
//	STAGING -> (start) -> RUNNING -> exit -> FINISHED | FAILED
//	                         \-> kill -> KILLING -> KILLED
//
// It owns the task's record in the store. It has two ways to stop: kill()
// (the task must die) and the end of Run's context (the agent is shutting
// down: leave the task alone).
type taskRunner struct {
	a         *Agent
	asg       agentapi.Assignment
	drv       driver.Driver
	recovered bool
	record    taskRecord // written only by the runner (or recovery before it runs)
	// user is who a command task runs as; userErr why it could not be
	// decided (set by run before the task starts).
	user    taskUser
	userErr error

	killOnce sync.Once
	killCh   chan struct{} // closed by kill()

	mu        sync.Mutex
	status    agentapi.TaskStatus          // guarded by mu: latest status
	health    []marathon.HealthCheckResult // guarded by mu
	startedAt string                       // guarded by mu
	ipAddress string                       // guarded by mu
}

// Execer is an optional driver ability the agent looks for by type
// assertion: running a command inside a task (Docker: exec in the
// container). When a task's driver has it, the task's COMMAND health
// checks run inside the task, as Marathon's executor-side checks do;
// otherwise they run on the agent host in the task's sandbox with the
// task's environment.
type Execer interface {
	// ExecTask runs argv inside the task and returns its exit code.
	ExecTask(ctx context.Context, taskID string, argv []string) (exitCode int, err error)
}

func newTaskRunner(a *Agent, asg agentapi.Assignment) *taskRunner {
	return &taskRunner{a: a, asg: asg, record: taskRecord{Assignment: asg}, killCh: make(chan struct{})}
}

// kill asks the runner to kill its task; it is idempotent.
func (r *taskRunner) kill() {
	r.killOnce.Do(func() { close(r.killCh) })
}

func (r *taskRunner) killed() bool {
	select {
	case <-r.killCh:
		return true
	default:
		return false
	}
}

// current returns the latest status.
func (r *taskRunner) current() agentapi.TaskStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}

func now() string { return time.Now().UTC().Format(health.TimeFormat) }

// statusLocked builds a status in state; r.mu must be held.
func (r *taskRunner) statusLocked(state, msg string) agentapi.TaskStatus {
	st := agentapi.TaskStatus{
		TaskID:    r.asg.TaskID,
		AppID:     r.asg.AppID,
		Version:   r.asg.Version,
		State:     state,
		Message:   msg,
		HostPorts: append([]int(nil), r.asg.HostPorts...),
		StartedAt: r.startedAt,
		Timestamp: now(),
	}
	if r.ipAddress != "" {
		st.IPAddresses = []marathon.TaskIPAddress{{IPAddress: r.ipAddress, Protocol: ipProtocol(r.ipAddress)}}
	}
	if len(r.health) > 0 {
		st.Health = append([]marathon.HealthCheckResult(nil), r.health...)
	}
	return st
}

func ipProtocol(ip string) string {
	if p := net.ParseIP(ip); p != nil && p.To4() == nil {
		return "IPv6"
	}
	return "IPv4"
}

// report records and queues a new state.
func (r *taskRunner) report(state, msg string) agentapi.TaskStatus {
	r.mu.Lock()
	st := r.statusLocked(state, msg)
	r.status = st
	r.mu.Unlock()
	r.a.rep.push(st)
	return st
}

func (r *taskRunner) log() *slog.Logger {
	return r.a.log.With("task_id", r.asg.TaskID, "app_id", r.asg.AppID)
}

// run drives the task until it ends (true) or ctx ends (false: the agent
// is shutting down and the task is left as it is).
func (r *taskRunner) run(ctx context.Context) bool {
	log := r.log()
	spec, drvName, specErr := TaskSpecFor(r.asg, r.a.cfg.Hostname, r.a.store.sandboxRoot())
	spec.Owner = r.a.owner
	if specErr == nil {
		r.a.baseTaskEnv(&spec, drvName)
		if drvName == DriverProcess {
			r.user, r.userErr = r.a.resolveTaskUser(r.asg.User)
			spec.User = r.user.name
		}
		specErr = resolveSecrets(spec.Env, r.asg.Secrets, r.a.cfg.SecretsDir)
	}
	if !r.recovered {
		r.report(marathon.TaskStaging, "")
		if specErr != nil {
			log.Warn("invalid task", "err", specErr)
			r.finish(ctx, marathon.TaskFailed, "invalid task: "+specErr.Error())
			return true
		}
		if r.userErr != nil {
			log.Warn("refusing task", "user", r.asg.User, "err", r.userErr)
			r.finish(ctx, marathon.TaskFailed, "refused: "+r.userErr.Error())
			return true
		}
		r.drv = r.a.cfg.Drivers[drvName]
		if r.drv == nil {
			r.finish(ctx, marathon.TaskFailed, fmt.Sprintf("driver %q is not enabled on this agent", drvName))
			return true
		}
		r.record.Driver = drvName
		if err := r.a.store.putTask(r.record); err != nil {
			log.Error("cannot persist task record", "err", err)
		}
		h, err := r.start(ctx, spec)
		if err != nil {
			if ctx.Err() != nil {
				// Shutting down while starting: forget the attempt; the
				// scheduler still assigns the task to the next run.
				_ = r.drv.DestroyTask(context.WithoutCancel(ctx), r.asg.TaskID, true)
				_ = r.a.store.deleteTask(r.asg.TaskID)
				return false
			}
			if r.killed() {
				r.finish(ctx, marathon.TaskKilled, "killed before it started")
				return true
			}
			log.Warn("task failed to start", "err", err)
			r.finish(ctx, marathon.TaskFailed, "failed to start: "+err.Error())
			return true
		}
		r.mu.Lock()
		r.startedAt = now()
		r.record.StartedAt = r.startedAt
		r.mu.Unlock()
		r.record.Handle = h
		if err := r.a.store.putTask(r.record); err != nil {
			log.Error("cannot persist task handle", "err", err)
		}
		r.inspect(ctx)
		r.report(marathon.TaskRunning, "")
		log.Info("task running")
	} else {
		r.inspect(ctx)
	}

	waitCh, err := r.drv.WaitTask(ctx, r.asg.TaskID)
	if err != nil {
		r.finish(ctx, marathon.TaskFailed, "lost track of task: "+err.Error())
		return true
	}
	hctx, hcancel := context.WithCancel(ctx)
	defer hcancel()
	hdone := r.startHealth(hctx, spec)
	defer func() { hcancel(); <-hdone }()

	select {
	case res, ok := <-waitCh:
		if !ok {
			return false // ctx ended
		}
		hcancel()
		r.exited(ctx, res)
		return true
	case <-r.killCh:
	case <-ctx.Done():
		return false
	}

	// Kill: TASK_KILLING first, so load balancers drop the task before
	// it goes away.
	hcancel()
	r.report(marathon.TaskKilling, "")
	delay := r.a.cfg.ShutdownDelay
	if r.asg.ShutdownDelay != nil {
		delay = time.Duration(*r.asg.ShutdownDelay)
	}
	log.Info("killing task", "shutdown_delay", delay)
	if d := delay; d > 0 {
		if done, ok := r.awaitKilledExit(ctx, waitCh, d); done {
			return ok
		}
	}
	grace := time.Duration(r.asg.KillGracePeriod)
	if grace <= 0 {
		grace = DefaultKillGracePeriod
	}
	// Stop, retrying while the driver fails (e.g. the Docker engine is
	// briefly unavailable), until the task has exited.
	for attempt := 1; ; attempt++ {
		err := r.drv.StopTask(ctx, r.asg.TaskID, grace)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return false
		}
		d := r.a.bo.delay(attempt)
		log.Warn("stop task failed, retrying", "err", err, "duration", d)
		if done, ok := r.awaitKilledExit(ctx, waitCh, d); done {
			return ok
		}
	}
	_, ok := r.awaitKilledExit(ctx, waitCh, 0)
	return ok
}

// awaitKilledExit waits up to d (without limit when d is 0) for a task
// being killed to exit. done reports whether the wait ended the run: the
// exit was reported as killed (ok true), or ctx ended or the driver closed
// the channel (ok false). done false means d elapsed with the task running.
func (r *taskRunner) awaitKilledExit(ctx context.Context, waitCh <-chan driver.ExitResult, d time.Duration) (done, ok bool) {
	var timeout <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case res, open := <-waitCh:
		if !open {
			return true, false
		}
		res.Killed = true
		r.exited(ctx, res)
		return true, true
	case <-ctx.Done():
		return true, false
	case <-timeout:
		return false, false
	}
}

// start puts the task's artifacts in its sandbox, then calls the driver,
// both with a context that a kill also cancels. A failed fetch is a
// failed start: nothing runs.
func (r *taskRunner) start(ctx context.Context, spec driver.TaskSpec) (*driver.TaskHandle, error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-r.killCh:
			cancel()
		case <-sctx.Done():
		}
	}()
	if err := prepareSandbox(spec.SandboxDir, r.user); err != nil {
		return nil, err
	}
	if arts := artifactsOf(r.asg); len(arts) > 0 {
		if err := r.a.fetcher.Fetch(sctx, spec.SandboxDir, arts); err != nil {
			return nil, err
		}
		if err := chownSandbox(spec.SandboxDir, r.user); err != nil {
			return nil, err
		}
		r.log().Debug("artifacts fetched", "count", len(arts))
	}
	return r.drv.StartTask(sctx, spec)
}

// inspect records the task's own IP address (a container's), or the
// agent's when it is an IP.
func (r *taskRunner) inspect(ctx context.Context) {
	ip := ""
	if info, err := r.drv.InspectTask(ctx, r.asg.TaskID); err == nil && info.IPAddress != "" {
		ip = info.IPAddress
	} else if net.ParseIP(r.a.cfg.Address) != nil {
		ip = r.a.cfg.Address
	}
	r.mu.Lock()
	r.ipAddress = ip
	r.mu.Unlock()
}

// exited reports how a task ended: killed, finished (exit 0) or failed.
func (r *taskRunner) exited(ctx context.Context, res driver.ExitResult) {
	switch {
	case res.Killed:
		r.finish(ctx, marathon.TaskKilled, "")
	case res.Successful():
		r.finish(ctx, marathon.TaskFinished, "")
	default:
		sandbox := ""
		if r.record.Driver == DriverProcess {
			sandbox, _ = sandboxPath(r.a.store.sandboxRoot(), r.asg.TaskID)
		}
		r.finish(ctx, marathon.TaskFailed, exitMessage(res, sandbox))
	}
}

// finish persists a terminal status, releases the task in the driver and
// then queues the status: once the scheduler hears the task ended, its
// resources (container, ports) are free for a replacement. The record is
// deleted once the scheduler accepted the status.
func (r *taskRunner) finish(ctx context.Context, state, msg string) {
	r.mu.Lock()
	st := r.statusLocked(state, msg)
	r.status = st
	r.mu.Unlock()
	// Persist before queueing: the record is deleted when the report is
	// accepted, which must not happen before this write.
	r.record.Terminal = &st
	if err := r.a.store.putTask(r.record); err != nil {
		r.log().Error("cannot persist final status", "err", err)
	}
	if r.drv != nil {
		err := r.drv.DestroyTask(context.WithoutCancel(ctx), r.asg.TaskID, true)
		if err != nil && !errors.Is(err, driver.ErrTaskNotFound) {
			r.log().Warn("destroy task", "err", err)
		}
	}
	r.a.rep.push(st)
	r.log().Info("task ended", "state", state, "reason", msg)
}

// finishRecovered is finish for a task found dead at recovery, before
// any runner goroutine exists. The report is queued after the others.
func (r *taskRunner) finishRecovered(state, msg string) {
	r.mu.Lock()
	r.startedAt = r.record.StartedAt
	st := r.statusLocked(state, msg)
	r.status = st
	r.mu.Unlock()
	r.record.Terminal = &st
	if err := r.a.store.putTask(r.record); err != nil {
		r.log().Error("cannot persist final status", "err", err)
	}
	r.a.rep.push(st)
}

// startHealth runs the task's health checks until ctx ends; the returned
// channel is closed when they have stopped. A change of a check's alive
// flag or failure count is reported as a new TASK_RUNNING status.
func (r *taskRunner) startHealth(ctx context.Context, spec driver.TaskSpec) <-chan struct{} {
	done := make(chan struct{})
	var checks []health.Check
	for i, hc := range r.asg.HealthChecks {
		c, err := health.CheckFor(hc, r.a.cfg.Address, r.asg.HostPorts)
		if err != nil {
			r.log().Warn("skipping health check", "index", i, "err", err)
			continue
		}
		checks = append(checks, c)
	}
	if len(checks) == 0 {
		close(done)
		return done
	}
	var started time.Time
	r.mu.Lock()
	if t, err := time.Parse(health.TimeFormat, r.startedAt); err == nil {
		started = t
	}
	r.mu.Unlock()
	hcfg := health.Config{
		TaskID:     r.asg.TaskID,
		InstanceID: instanceID(r.asg.TaskID),
		Checks:     checks,
		Started:    started,
		Env:        spec.Env,
		Dir:        spec.SandboxDir,
		OnChange:   r.healthChanged,
	}
	switch ex, ok := r.drv.(Execer); {
	case !ok && r.userErr != nil:
		hcfg.Exec = func(context.Context, string) error { return r.userErr }
	case !ok:
		// On the agent host, as the task's user, never as the agent.
		hcfg.Exec = commandExec(spec, r.user)
	default:
		id := r.asg.TaskID
		hcfg.Exec = func(ctx context.Context, command string) error {
			code, err := ex.ExecTask(ctx, id, []string{"/bin/sh", "-c", command})
			if err != nil {
				return err
			}
			if code != 0 {
				return fmt.Errorf("exit status %d", code)
			}
			return nil
		}
	}
	hr := health.NewRunner(hcfg)
	go func() {
		defer close(done)
		hr.Run(ctx)
	}()
	return done
}

func (r *taskRunner) healthChanged(res []marathon.HealthCheckResult) {
	r.mu.Lock()
	changed := health.Changed(r.health, res)
	r.health = res
	if !changed || r.status.State != marathon.TaskRunning {
		r.mu.Unlock()
		return
	}
	st := r.statusLocked(marathon.TaskRunning, "")
	r.status = st
	r.mu.Unlock()
	r.a.rep.push(st)
}

// instanceID derives Marathon's instance id from a task id
// ("app.uuid" -> "app.marathon-uuid").
func instanceID(taskID string) string {
	i := strings.LastIndexByte(taskID, '.')
	if i < 0 {
		return taskID
	}
	return taskID[:i] + ".marathon-" + taskID[i+1:]
}

// exitMessage describes a failed exit in Mesos' words, with the end of
// the task's stderr when there is one.
func exitMessage(res driver.ExitResult, sandbox string) string {
	var msg string
	switch {
	case res.Err != nil:
		msg = res.Err.Error()
	case res.Signal != 0:
		msg = fmt.Sprintf("Command terminated by signal %d", res.Signal)
	default:
		msg = fmt.Sprintf("Command exited with status %d", res.ExitCode)
	}
	if tail := stderrTail(sandbox); tail != "" {
		msg += "; stderr: " + tail
	}
	return msg
}

// stderrTail returns the last few hundred bytes of a task's stderr file
// in its sandbox. The file is opened through an os.Root: a task can put a
// symbolic link there (a container sees its sandbox), and one leading out
// of the sandbox must not make the agent quote a host file.
func stderrTail(sandbox string) string {
	if sandbox == "" {
		return ""
	}
	root, err := os.OpenRoot(sandbox)
	if err != nil {
		return ""
	}
	defer root.Close()
	// Non-blocking: a FIFO planted there must not hang the agent.
	f, err := root.OpenFile("stderr", os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return ""
	}
	defer f.Close()
	const n = 400
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return ""
	}
	off := max(fi.Size()-n, 0)
	b := make([]byte, fi.Size()-off)
	if _, err := f.ReadAt(b, off); err != nil {
		return ""
	}
	return strings.TrimSpace(strings.ToValidUTF8(string(b), ""))
}
