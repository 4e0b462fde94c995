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

// FindTasks implements driver.Finder: it scans /proc for live process
// group leaders whose environment carries owner's marker. A task found
// twice (which the agent never does) is returned once, the older process.
func (d *Driver) FindTasks(ctx context.Context, owner string) ([]driver.TaskHandle, error) {
	if owner == "" {
		return nil, errors.New("process: find tasks: empty owner")
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("process: find tasks: %w", err)
	}
	boot := bootTime()
	self := os.Getpid()
	found := map[string]handleState{}
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("process: find tasks: %w", err)
		}
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		st, err := readProcStat(pid)
		if err != nil || st.PGID != pid || st.State == 'Z' || st.State == 'X' {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil {
			continue // gone, or not ours to read
		}
		o, id := markerOf(env)
		if o != owner || id == "" {
			continue
		}
		if prev, dup := found[id]; dup {
			d.log.Warn("task found twice", "task_id", id, "pid", pid, "other_pid", prev.PID)
			if prev.StartTicks <= st.StartTime {
				continue
			}
		}
		hs := handleState{PID: pid, StartTicks: st.StartTime}
		if !boot.IsZero() {
			hs.StartedAt = boot.Add(time.Duration(st.StartTime) * time.Second / clockTicks).UTC().Format(time.RFC3339Nano)
		}
		if dir, err := os.Readlink("/proc/" + e.Name() + "/cwd"); err == nil {
			hs.SandboxDir = dir
		}
		found[id] = hs
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
