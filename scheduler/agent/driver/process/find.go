package process

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/switchyard/switchyard/scheduler/agent/driver"
)

// Environment variables that mark a task's process group as started by
// this driver for an owner (driver.TaskSpec.Owner). The marker is in the
// environment the task is exec'd with, so /proc/PID/environ shows it for
// the task's whole life, whatever the task does with its own environment
// later; FindTasks reads it back.
const (
	EnvOwner  = "SWITCHYARD_OWNER"
	EnvTaskID = "SWITCHYARD_TASK_ID"
)

var _ driver.Finder = (*Driver)(nil)

// withMarker returns env with the owner marker of a task set (replacing
// any inherited one). It returns env unchanged when owner is empty.
func withMarker(env []string, owner, taskID string) []string {
	if owner == "" {
		return env
	}
	out := make([]string, 0, len(env)+2)
	for _, kv := range env {
		k, _, _ := cutEnv(kv)
		if k != EnvOwner && k != EnvTaskID {
			out = append(out, kv)
		}
	}
	return append(out, EnvOwner+"="+owner, EnvTaskID+"="+taskID)
}

// markerOf returns the owner and task id marked in a NUL-separated
// environment block (the last occurrence of each wins).
func markerOf(environ []byte) (owner, taskID string) {
	for _, kv := range bytes.Split(environ, []byte{0}) {
		k, v, ok := cutEnv(string(kv))
		if !ok {
			continue
		}
		switch k {
		case EnvOwner:
			owner = v
		case EnvTaskID:
			taskID = v
		}
	}
	return owner, taskID
}

// markedProc is a live process carrying an owner's mark.
type markedProc struct {
	pid, pgid int
	start     uint64 // start time in clock ticks since boot
	taskID    string
}

// scanMarked lists the live (not zombie) processes marked with owner:
// tasks' group leaders and everything they started, in pid order.
func scanMarked(ctx context.Context, owner string) ([]markedProc, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	self := os.Getpid()
	var out []markedProc
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		st, err := readProcStat(pid)
		if err != nil || st.State == 'Z' || st.State == 'X' {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil {
			continue // gone, or not ours to read
		}
		if o, id := markerOf(env); o == owner && id != "" {
			out = append(out, markedProc{pid: pid, pgid: st.PGID, start: st.StartTime, taskID: id})
		}
	}
	return out, nil
}

// FindTasks implements driver.Finder: it scans /proc for live process
// group leaders whose environment carries owner's mark. A task found
// twice (which the agent never does) is returned once, the older process.
func (d *Driver) FindTasks(ctx context.Context, owner string) ([]driver.TaskHandle, error) {
	if owner == "" {
		return nil, errors.New("process: find tasks: empty owner")
	}
	procs, err := scanMarked(ctx, owner)
	if err != nil {
		return nil, fmt.Errorf("process: find tasks: %w", err)
	}
	boot := bootTime()
	found := map[string]handleState{}
	for _, p := range procs {
		if p.pid != p.pgid {
			continue
		}
		if prev, dup := found[p.taskID]; dup {
			d.log.Warn("task found twice", "task_id", p.taskID, "pid", p.pid, "other_pid", prev.PID)
			if prev.StartTicks <= p.start {
				continue
			}
		}
		hs := handleState{PID: p.pid, StartTicks: p.start, Owner: owner}
		if !boot.IsZero() {
			hs.StartedAt = boot.Add(time.Duration(p.start) * time.Second / clockTicks).UTC().Format(time.RFC3339Nano)
		}
		if dir, err := os.Readlink("/proc/" + strconv.Itoa(p.pid) + "/cwd"); err == nil {
			hs.SandboxDir = dir
		}
		found[p.taskID] = hs
	}
	out := make([]driver.TaskHandle, 0, len(found))
	for id, hs := range found {
		b, err := json.Marshal(hs)
		if err != nil {
			return nil, fmt.Errorf("process: encode handle: %w", err)
		}
		out = append(out, driver.TaskHandle{TaskID: id, Driver: Name, State: b})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TaskID < out[j].TaskID })
	return out, nil
}

// KillStrays kills every live process marked with owner whose task keep
// rejects: leftovers of a task whose group leader is gone (background
// children, which keep the mark wherever they moved), or of tasks the
// agent has no record of. It returns how many it killed.
func (d *Driver) KillStrays(ctx context.Context, owner string, keep func(taskID string) bool) (int, error) {
	if owner == "" {
		return 0, errors.New("process: kill strays: empty owner")
	}
	procs, err := scanMarked(ctx, owner)
	if err != nil {
		return 0, fmt.Errorf("process: kill strays: %w", err)
	}
	n := 0
	for _, p := range procs {
		if keep(p.taskID) {
			continue
		}
		if killSame(p) {
			d.log.Info("killed stray process", "task_id", p.taskID, "pid", p.pid)
			n++
		}
	}
	return n, nil
}

// killStraysOf kills what is left of one task after its leader ended.
func (d *Driver) killStraysOf(t *task) {
	if t.owner == "" {
		return
	}
	if _, err := d.KillStrays(context.Background(), t.owner, func(id string) bool { return id != t.id }); err != nil {
		d.log.Warn("cannot look for leftover processes", "task_id", t.id, "err", err)
	}
}

// killSame sends SIGKILL to p if it is still the very process scanned: the
// pid is pinned with a pidfd (os.FindProcess) and its start time checked
// again, so a recycled pid is never hit.
func killSame(p markedProc) bool {
	proc, err := os.FindProcess(p.pid)
	if err != nil {
		return false
	}
	defer proc.Release()
	if alive, err := sameProcessAlive(p.pid, p.start); err != nil || !alive {
		return false
	}
	return proc.Signal(syscall.SIGKILL) == nil
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's starttime (100 on
// every Linux architecture Go supports).
const clockTicks = 100

// bootTime reads the system boot time from /proc/stat; zero when unknown.
func bootTime() time.Time {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
				return time.Unix(n, 0)
			}
		}
	}
	return time.Time{}
}
