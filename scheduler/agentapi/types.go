// Package agentapi is the contract between the scheduler and its agents:
// the wire types, an HTTP client used by the agent, and HTTP handlers used
// by the scheduler (served over the Scheduler interface declared here).
//
// The protocol is level-triggered. An agent registers, then keeps one
// long-poll open on its assignments (which doubles as its heartbeat) and
// pushes task status changes as they happen. The assignment list is the
// complete desired set of tasks for that agent: the agent starts what is
// missing and kills what is no longer listed.
//
//	POST /agentapi/v1/register            RegisterRequest  -> RegisterResponse
//	GET  /agentapi/v1/assignments?agentId=ID&index=N&wait=5s  -> AssignmentList
//	POST /agentapi/v1/status              StatusReport     -> 204
//
// Authentication (see HandlerConfig): every request carries the cluster
// secret as "Authorization: Bearer <secret>" when the scheduler has one.
// Registration returns a per-agent token bound to the agent id; the agent
// sends it back in RegisterRequest.AgentToken when it registers again
// under that id, and in the X-Switchyard-Agent-Token header of its
// assignments and status requests.
package agentapi

import (
	"context"
	"time"

	"github.com/switchyard/switchyard/marathon"
)

// Paths served by the scheduler for agents.
const (
	PathRegister    = "/agentapi/v1/register"
	PathAssignments = "/agentapi/v1/assignments"
	PathStatus      = "/agentapi/v1/status"
)

// PortRange is an inclusive range of host ports an agent offers.
type PortRange struct {
	Begin int `json:"begin"`
	End   int `json:"end"`
}

// Resources are what an agent offers to tasks.
type Resources struct {
	CPUs  float64     `json:"cpus"`
	Mem   float64     `json:"mem"`
	Disk  float64     `json:"disk"`
	Ports []PortRange `json:"ports"`
}

// RegisterRequest announces an agent. AgentID is empty on first start and
// the one the scheduler gave on later starts (kept in the agent's data dir).
// Tasks lists the tasks the agent found still running (re-adopted) so the
// scheduler can reconcile. AgentToken is the token the scheduler gave
// with AgentID; registering under a known id requires it.
type RegisterRequest struct {
	AgentID    string            `json:"agentId,omitempty"`
	AgentToken string            `json:"agentToken,omitempty"`
	Hostname   string            `json:"hostname"`
	Address    string            `json:"address"` // host or IP tasks are reached at
	Resources  Resources         `json:"resources"`
	Attributes map[string]string `json:"attributes,omitempty"`
	Tasks      []TaskStatus      `json:"tasks,omitempty"`
}

// RegisterResponse gives the agent its id, the token bound to it and
// heartbeat timing. The agent keeps the token secret, with its id.
type RegisterResponse struct {
	AgentID    string `json:"agentId"`
	AgentToken string `json:"agentToken,omitempty"`
	// HeartbeatTimeout is how long the scheduler waits without an
	// assignments poll before it marks the agent unreachable.
	HeartbeatTimeout Duration `json:"heartbeatTimeout"`
}

// Assignment is one task the scheduler wants running on an agent.
type Assignment struct {
	TaskID  string            `json:"taskId"`
	AppID   string            `json:"appId"`
	Version string            `json:"version"`
	Cmd     string            `json:"cmd,omitempty"`
	Args    []string          `json:"args,omitempty"`
	User    string            `json:"user,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
	// Secrets maps env variables to the source of the secret they take
	// their value from; the agent reads it (agent --secrets-dir).
	Secrets   map[string]string   `json:"secrets,omitempty"`
	CPUs      float64             `json:"cpus"`
	Mem       float64             `json:"mem"`
	Disk      float64             `json:"disk"`
	Container *marathon.Container `json:"container,omitempty"`
	Networks  []marathon.Network  `json:"networks,omitempty"`
	// HostPorts are the host ports the scheduler reserved for this task,
	// in port-index order (PORT0, PORT1, ...).
	HostPorts []int `json:"hostPorts"`
	// ServicePorts are the app's service ports, same order.
	ServicePorts []int `json:"servicePorts"`
	// PortNames are the names of the ports (PORT_NAME env), same order.
	PortNames    []string               `json:"portNames,omitempty"`
	HealthChecks []marathon.HealthCheck `json:"healthChecks,omitempty"`
	// KillGracePeriod is the SIGTERM to SIGKILL delay.
	KillGracePeriod Duration `json:"killGracePeriod"`
	// ShutdownDelay, when set, is how long the task keeps running after
	// it is reported TASK_KILLING before it is signalled (the app's
	// SWITCHYARD_SHUTDOWN_DELAY label); unset means the agent's default.
	ShutdownDelay *Duration         `json:"shutdownDelay,omitempty"`
	Labels        map[string]string `json:"labels,omitempty"`
	// Fetch and URIs are the app's artifacts (fetch, and the legacy uris
	// list), downloaded into the task's sandbox before it starts.
	Fetch []marathon.Fetch `json:"fetch,omitempty"`
	URIs  []string         `json:"uris,omitempty"`
}

// AssignmentList is the complete desired task set of one agent at Index.
type AssignmentList struct {
	Index uint64       `json:"index"`
	Tasks []Assignment `json:"tasks"`
	// Unknown lists tasks the agent reported that the scheduler has no
	// record of (a scheduler started with empty or lost state). The agent
	// keeps them running for its reconcile grace instead of killing them
	// at once; tasks neither assigned nor unknown are killed.
	Unknown []string `json:"unknown,omitempty"`
}

// TaskStatus is what an agent reports about one task.
type TaskStatus struct {
	TaskID      string                       `json:"taskId"`
	AppID       string                       `json:"appId"`
	Version     string                       `json:"version,omitempty"`
	State       string                       `json:"state"` // marathon.Task* constants
	Message     string                       `json:"message,omitempty"`
	HostPorts   []int                        `json:"hostPorts,omitempty"`
	IPAddresses []marathon.TaskIPAddress     `json:"ipAddresses,omitempty"`
	Health      []marathon.HealthCheckResult `json:"healthCheckResults,omitempty"`
	StartedAt   string                       `json:"startedAt,omitempty"`
	Timestamp   string                       `json:"timestamp"`
}

// StatusReport carries one or more task status changes from an agent.
type StatusReport struct {
	AgentID  string       `json:"agentId"`
	Statuses []TaskStatus `json:"statuses"`
}

// Scheduler is what the agent-facing handlers need from the scheduler.
type Scheduler interface {
	// Register records (or re-records) an agent. Registering under a
	// known agent id bound to a token requires req.AgentToken to match
	// (ErrForbidden otherwise).
	Register(ctx context.Context, req RegisterRequest) (RegisterResponse, error)
	// AuthenticateAgent checks that token is the one bound to agentID;
	// the handlers call it before Assignments and ReportStatus. It
	// returns ErrUnknownAgent for an unknown id (or one registered
	// before tokens existed: the agent registers again) and ErrForbidden
	// for a wrong token.
	AuthenticateAgent(ctx context.Context, agentID, token string) error
	// Assignments returns the agent's desired task set once its index is
	// greater than afterIndex, or the current set when wait elapses or ctx
	// ends. Each call also counts as a heartbeat.
	Assignments(ctx context.Context, agentID string, afterIndex uint64, wait time.Duration) (AssignmentList, error)
	// ReportStatus folds task status changes into the scheduler's state.
	// Statuses for tasks another agent runs are refused (ErrForbidden,
	// after the others are applied).
	ReportStatus(ctx context.Context, report StatusReport) error
}

// Duration is a time.Duration that travels as a Go duration string ("5s").
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}
