// Package driver is the contract between the agent and the things that run
// tasks (plain processes, Docker containers), in database/sql/driver style:
// a small core interface and optional abilities discovered by type
// assertion.
package driver

import (
	"context"
	"errors"
	"time"
)

// ErrTaskNotFound is returned when a driver has no task with that id.
var ErrTaskNotFound = errors.New("driver: task not found")

// Volume is a host path mounted into a container task.
type Volume struct {
	HostPath      string
	ContainerPath string
	ReadOnly      bool
}

// PortBinding binds a host port to a container port (bridge networking).
type PortBinding struct {
	HostPort      int
	ContainerPort int
	Protocol      string // "tcp", "udp" or "udp,tcp"
}

// TaskSpec is everything a driver needs to start one task. The agent has
// already chosen host ports and built the environment (PORT0.., PORTS,
// HOST, MARATHON_APP_ID, MESOS_TASK_ID, app env).
type TaskSpec struct {
	TaskID string
	AppID  string
	// Cmd runs through "/bin/sh -c" when set; otherwise Args is an argv.
	// For Docker tasks both are optional and become the container command.
	Cmd  string
	Args []string
	User string
	Env  map[string]string
	// SandboxDir is the task's working directory on the agent (process
	// driver) and where its stdout/stderr files go.
	SandboxDir string

	// Docker fields (ignored by the process driver).
	Image          string
	Network        string // "HOST" or "BRIDGE" (default BRIDGE for Docker)
	PortBindings   []PortBinding
	Volumes        []Volume
	Privileged     bool
	Parameters     [][2]string // docker run long options: key, value
	ForcePullImage bool
	Labels         map[string]string

	// KillGracePeriod is the SIGTERM to SIGKILL delay.
	KillGracePeriod time.Duration

	// Owner names the agent that starts the task (its data directory).
	// A driver that implements Finder marks the task with it, so the
	// agent finds the task again after a crash even when it had not
	// recorded the handle yet.
	Owner string
}

// ExitResult says how a task ended.
type ExitResult struct {
	ExitCode int
	Signal   int
	Err      error // set when the driver lost track of the task
	// Killed is true when the task ended because StopTask was called.
	Killed bool
}

// Successful reports whether the task exited 0 without a signal or error.
func (r ExitResult) Successful() bool { return r.ExitCode == 0 && r.Signal == 0 && r.Err == nil }

// TaskHandle is what a driver persists so it can find a task again after
// the agent restarts (a pid and start time, or a container id).
type TaskHandle struct {
	TaskID string `json:"taskId"`
	Driver string `json:"driver"`
	// State is driver-specific JSON.
	State []byte `json:"state"`
}

// TaskInfo is a snapshot of a running task.
type TaskInfo struct {
	TaskID    string
	Running   bool
	StartedAt time.Time
	// IPAddress is the task's own address when it has one (container IP).
	IPAddress string
}

// Driver runs tasks.
type Driver interface {
	// Name is the driver's name ("process", "docker").
	Name() string
	// StartTask starts a task and returns a handle to persist.
	StartTask(ctx context.Context, spec TaskSpec) (*TaskHandle, error)
	// WaitTask returns a channel that yields the task's exit result once.
	WaitTask(ctx context.Context, taskID string) (<-chan ExitResult, error)
	// StopTask signals the task to stop, waits up to grace, then kills it.
	StopTask(ctx context.Context, taskID string, grace time.Duration) error
	// DestroyTask releases everything the task used; force kills it first.
	DestroyTask(ctx context.Context, taskID string, force bool) error
	// InspectTask describes a task.
	InspectTask(ctx context.Context, taskID string) (*TaskInfo, error)
	// RecoverTask re-attaches to a task from a persisted handle after an
	// agent restart. It returns ErrTaskNotFound when the task is gone.
	RecoverTask(ctx context.Context, handle *TaskHandle) error
}

// Lister is an optional ability: a driver that can list the tasks it owns
// (for example by container label), so an agent can find orphans.
type Lister interface {
	ListTasks(ctx context.Context) ([]TaskHandle, error)
}

// Finder is an optional ability: a driver that marks every task it starts
// with TaskSpec.Owner and can find the live ones again without a handle.
// A restarted agent uses it to adopt or kill tasks it started but had not
// recorded when it stopped (killed between StartTask and saving the
// handle).
type Finder interface {
	// FindTasks returns a handle for every live task marked with owner,
	// sorted by task id.
	FindTasks(ctx context.Context, owner string) ([]TaskHandle, error)
}
