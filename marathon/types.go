package marathon

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"strings"
)

// App is a Marathon app definition as returned by GET /v2/apps (AppInfo),
// including the read-only fields the API adds (counts, tasks, deployments).
// Field names and JSON keys follow Marathon's v2 API. Pointer fields
// distinguish "absent" from a zero value where Marathon's defaults differ
// from Go's.
type App struct {
	ID                         string               `json:"id"`
	Cmd                        string               `json:"cmd,omitempty"`
	Args                       []string             `json:"args,omitempty"`
	User                       string               `json:"user,omitempty"`
	Env                        EnvVars              `json:"env,omitempty"`
	Instances                  int                  `json:"instances"`
	CPUs                       float64              `json:"cpus"`
	Mem                        float64              `json:"mem"`
	Disk                       float64              `json:"disk"`
	GPUs                       int                  `json:"gpus"`
	Executor                   string               `json:"executor"`
	Constraints                [][]string           `json:"constraints"`
	URIs                       []string             `json:"uris,omitempty"`
	Fetch                      []Fetch              `json:"fetch,omitempty"`
	StoreURLs                  []string             `json:"storeUrls,omitempty"`
	Ports                      []int                `json:"ports"`
	PortDefinitions            []PortDefinition     `json:"portDefinitions"`
	RequirePorts               bool                 `json:"requirePorts"`
	BackoffSeconds             float64              `json:"backoffSeconds"`
	BackoffFactor              float64              `json:"backoffFactor"`
	MaxLaunchDelaySeconds      float64              `json:"maxLaunchDelaySeconds"`
	TaskKillGracePeriodSeconds *float64             `json:"taskKillGracePeriodSeconds,omitempty"`
	Container                  *Container           `json:"container,omitempty"`
	HealthChecks               []HealthCheck        `json:"healthChecks"`
	ReadinessChecks            []ReadinessCheck     `json:"readinessChecks"`
	Dependencies               []string             `json:"dependencies"`
	UpgradeStrategy            *UpgradeStrategy     `json:"upgradeStrategy,omitempty"`
	UnreachableStrategy        *UnreachableStrategy `json:"unreachableStrategy,omitempty"`
	KillSelection              string               `json:"killSelection,omitempty"`
	Labels                     map[string]string    `json:"labels"`
	AcceptedResourceRoles      []string             `json:"acceptedResourceRoles,omitempty"`
	IPAddress                  *IPAddress           `json:"ipAddress,omitempty"`
	Networks                   []Network            `json:"networks,omitempty"`
	Version                    string               `json:"version,omitempty"`
	VersionInfo                *VersionInfo         `json:"versionInfo,omitempty"`

	// Fields Switchyard accepts and stores but does not act on (Marathon
	// features outside its scope: secrets, resident tasks, roles, ...);
	// they round-trip verbatim.
	Secrets           Opaque `json:"secrets,omitempty"`
	Residency         Opaque `json:"residency,omitempty"`
	TTY               *bool  `json:"tty,omitempty"`
	Role              string `json:"role,omitempty"`
	ResourceLimits    Opaque `json:"resourceLimits,omitempty"`
	Check             Opaque `json:"check,omitempty"`
	ExecutorResources Opaque `json:"executorResources,omitempty"`

	// Read-only AppInfo additions.
	TasksStaged     int             `json:"tasksStaged"`
	TasksRunning    int             `json:"tasksRunning"`
	TasksHealthy    int             `json:"tasksHealthy"`
	TasksUnhealthy  int             `json:"tasksUnhealthy"`
	Deployments     []DeploymentRef `json:"deployments"`
	Tasks           []Task          `json:"tasks,omitempty"`
	LastTaskFailure *TaskFailure    `json:"lastTaskFailure,omitempty"`
}

// Opaque is JSON that Switchyard stores and returns verbatim without
// reading it; null is the same as absent.
type Opaque []byte

// UnmarshalJSON keeps a copy of b (nothing for null).
func (o *Opaque) UnmarshalJSON(b []byte) error {
	if string(bytes.TrimSpace(b)) == "null" {
		*o = nil
		return nil
	}
	*o = append((*o)[:0], b...)
	return nil
}

// MarshalJSON writes the stored JSON (null when empty).
func (o Opaque) MarshalJSON() ([]byte, error) {
	if len(o) == 0 {
		return []byte("null"), nil
	}
	return o, nil
}

// Fetch is one artifact downloaded into a task's sandbox before it starts.
type Fetch struct {
	URI        string `json:"uri"`
	Executable bool   `json:"executable"`
	// Extract defaults to true when the field is absent, as in Marathon.
	Extract  bool   `json:"extract"`
	Cache    bool   `json:"cache"`
	DestPath string `json:"destPath,omitempty"`
}

// UnmarshalJSON reads a fetch entry with Marathon's defaults (extract
// true).
func (f *Fetch) UnmarshalJSON(b []byte) error {
	type plain Fetch
	v := plain{Extract: true}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = Fetch(v)
	return nil
}

// PortDefinition is one host-mode port of an app; Port is the service port.
type PortDefinition struct {
	Port     int               `json:"port"`
	Protocol string            `json:"protocol,omitempty"`
	Name     string            `json:"name,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
}

// Container describes how a task runs inside a container.
//
// Volumes is written as [] when empty, as Marathon does, so an empty list
// a client sent reads back as sent.
type Container struct {
	Type         string        `json:"type,omitempty"`
	Docker       *Docker       `json:"docker,omitempty"`
	Volumes      []Volume      `json:"volumes"`
	PortMappings []PortMapping `json:"portMappings,omitempty"`
	// LinuxInfo (seccomp, ipcInfo, shared memory) is stored verbatim, not
	// acted on.
	LinuxInfo Opaque `json:"linuxInfo,omitempty"`
}

// MarshalJSON writes a nil Volumes as [].
func (c Container) MarshalJSON() ([]byte, error) {
	type plain Container
	if c.Volumes == nil {
		c.Volumes = []Volume{}
	}
	return json.Marshal(plain(c))
}

// Docker holds the Docker-specific part of a container definition.
// Parameters is written as [] when empty, as Marathon does.
type Docker struct {
	Image          string        `json:"image"`
	Network        string        `json:"network,omitempty"`
	PortMappings   []PortMapping `json:"portMappings,omitempty"`
	Privileged     bool          `json:"privileged"`
	Parameters     []Parameter   `json:"parameters"`
	ForcePullImage bool          `json:"forcePullImage"`
	// Stored verbatim, not acted on.
	Credential Opaque `json:"credential,omitempty"`
	PullConfig Opaque `json:"pullConfig,omitempty"`
}

// MarshalJSON writes a nil Parameters as [].
func (d Docker) MarshalJSON() ([]byte, error) {
	type plain Docker
	if d.Parameters == nil {
		d.Parameters = []Parameter{}
	}
	return json.Marshal(plain(d))
}

// Parameter is a docker run long option, passed verbatim (--key=value).
type Parameter struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// PortMapping maps a container port to a host port and a service port.
// HostPort is a pointer because an absent hostPort means "dynamic" in
// bridge mode and "no host port" on a container network.
type PortMapping struct {
	ContainerPort int               `json:"containerPort"`
	HostPort      *int              `json:"hostPort,omitempty"`
	ServicePort   int               `json:"servicePort"`
	Protocol      string            `json:"protocol,omitempty"`
	Name          string            `json:"name,omitempty"`
	Labels        map[string]string `json:"labels,omitempty"`
	NetworkNames  []string          `json:"networkNames,omitempty"`
}

// Volume is a container volume (host path, persistent or external).
type Volume struct {
	ContainerPath string          `json:"containerPath"`
	HostPath      string          `json:"hostPath,omitempty"`
	Mode          string          `json:"mode,omitempty"`
	Persistent    json.RawMessage `json:"persistent,omitempty"`
	External      json.RawMessage `json:"external,omitempty"`
	// Secret names a secret volume (stored, not acted on).
	Secret string `json:"secret,omitempty"`
}

// HealthCheck is a Marathon health check definition.
type HealthCheck struct {
	Protocol               string        `json:"protocol,omitempty"`
	Path                   string        `json:"path,omitempty"`
	PortIndex              *int          `json:"portIndex,omitempty"`
	Port                   *int          `json:"port,omitempty"`
	Command                *CommandCheck `json:"command,omitempty"`
	GracePeriodSeconds     int           `json:"gracePeriodSeconds"`
	IntervalSeconds        int           `json:"intervalSeconds"`
	TimeoutSeconds         int           `json:"timeoutSeconds"`
	MaxConsecutiveFailures int           `json:"maxConsecutiveFailures"`
	DelaySeconds           int           `json:"delaySeconds"`
	IgnoreHTTP1xx          bool          `json:"ignoreHttp1xx"`
	IPProtocol             string        `json:"ipProtocol,omitempty"`
}

// CommandCheck is the shell command of a COMMAND health check.
type CommandCheck struct {
	Value string `json:"value"`
}

// ReadinessCheck is a Marathon readiness check definition.
type ReadinessCheck struct {
	Name                    string `json:"name,omitempty"`
	Protocol                string `json:"protocol,omitempty"`
	Path                    string `json:"path,omitempty"`
	PortName                string `json:"portName,omitempty"`
	IntervalSeconds         int    `json:"intervalSeconds"`
	TimeoutSeconds          int    `json:"timeoutSeconds"`
	HTTPStatusCodesForReady []int  `json:"httpStatusCodesForReady,omitempty"`
	PreserveLastResponse    bool   `json:"preserveLastResponse"`
}

// UpgradeStrategy controls rolling replacement capacity.
type UpgradeStrategy struct {
	MinimumHealthCapacity float64 `json:"minimumHealthCapacity"`
	MaximumOverCapacity   float64 `json:"maximumOverCapacity"`
}

// UnreachableStrategy controls how long a task on a lost agent is kept.
// On the wire it is either an object or the string "disabled" (keep such
// tasks forever, for resident apps); both forms round-trip.
type UnreachableStrategy struct {
	InactiveAfterSeconds int `json:"inactiveAfterSeconds"`
	ExpungeAfterSeconds  int `json:"expungeAfterSeconds"`
	// Disabled marks the "disabled" form. Both waits then hold
	// UnreachableDisabledSeconds, so code that only reads the waits never
	// replaces nor expunges the tasks.
	Disabled bool `json:"-"`
}

// UnreachableDisabledSeconds is the wait both fields of a disabled
// UnreachableStrategy hold: the largest value Marathon's schema allows
// (about 68 years).
const UnreachableDisabledSeconds = math.MaxInt32

// DisabledUnreachableStrategy returns the "disabled" strategy.
func DisabledUnreachableStrategy() UnreachableStrategy {
	return UnreachableStrategy{
		InactiveAfterSeconds: UnreachableDisabledSeconds,
		ExpungeAfterSeconds:  UnreachableDisabledSeconds,
		Disabled:             true,
	}
}

// unreachableDisabled is the JSON of a disabled UnreachableStrategy.
const unreachableDisabled = `"disabled"`

// MarshalJSON writes "disabled" for a disabled strategy and the object
// form otherwise.
func (u UnreachableStrategy) MarshalJSON() ([]byte, error) {
	if u.Disabled {
		return []byte(unreachableDisabled), nil
	}
	type plain UnreachableStrategy
	return json.Marshal(plain(u))
}

// UnmarshalJSON reads the object form or the string "disabled"; any other
// string is an error.
func (u *UnreachableStrategy) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if s != "disabled" {
			return &json.UnmarshalTypeError{Value: "string " + strconv.Quote(s), Type: reflect.TypeFor[UnreachableStrategy]()}
		}
		*u = DisabledUnreachableStrategy()
		return nil
	}
	type plain UnreachableStrategy
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*u = UnreachableStrategy(p)
	return nil
}

// IPAddress is the pre-1.5 IP-per-task definition.
type IPAddress struct {
	NetworkName string            `json:"networkName,omitempty"`
	Groups      []string          `json:"groups,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Discovery   *Discovery        `json:"discovery,omitempty"`
}

// Discovery lists the ports an IP-per-task app exposes.
type Discovery struct {
	Ports []DiscoveryPort `json:"ports"`
}

// DiscoveryPort is one port of an IP-per-task app.
type DiscoveryPort struct {
	Number   int    `json:"number"`
	Name     string `json:"name,omitempty"`
	Protocol string `json:"protocol,omitempty"`
}

// Network is one entry of the 1.5+ networks list: mode host,
// container/bridge or container (named).
type Network struct {
	Mode   string            `json:"mode,omitempty"`
	Name   string            `json:"name,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
}

// VersionInfo tells when an app was last scaled and last reconfigured.
type VersionInfo struct {
	LastScalingAt      string `json:"lastScalingAt"`
	LastConfigChangeAt string `json:"lastConfigChangeAt"`
}

// DeploymentRef names a deployment affecting an app.
type DeploymentRef struct {
	ID string `json:"id"`
}

// TaskFailure describes the last failed task of an app.
type TaskFailure struct {
	AppID     string `json:"appId"`
	Host      string `json:"host"`
	Message   string `json:"message"`
	State     string `json:"state"`
	TaskID    string `json:"taskId"`
	Timestamp string `json:"timestamp"`
	Version   string `json:"version"`
	SlaveID   string `json:"slaveId"`
}

// Task states, as Mesos and Marathon name them.
const (
	TaskStaging     = "TASK_STAGING"
	TaskStarting    = "TASK_STARTING"
	TaskRunning     = "TASK_RUNNING"
	TaskKilling     = "TASK_KILLING"
	TaskFinished    = "TASK_FINISHED"
	TaskFailed      = "TASK_FAILED"
	TaskKilled      = "TASK_KILLED"
	TaskLost        = "TASK_LOST"
	TaskError       = "TASK_ERROR"
	TaskUnreachable = "TASK_UNREACHABLE"
	TaskGone        = "TASK_GONE"
	TaskDropped     = "TASK_DROPPED"
	TaskUnknown     = "TASK_UNKNOWN"
)

// Task is one running (or recently ended) instance of an app.
type Task struct {
	ID                 string              `json:"id"`
	AppID              string              `json:"appId"`
	Host               string              `json:"host"`
	SlaveID            string              `json:"slaveId,omitempty"`
	State              string              `json:"state,omitempty"`
	StagedAt           string              `json:"stagedAt,omitempty"`
	StartedAt          string              `json:"startedAt,omitempty"`
	Version            string              `json:"version,omitempty"`
	Role               string              `json:"role,omitempty"`
	Ports              []int               `json:"ports"`
	ServicePorts       []int               `json:"servicePorts"`
	IPAddresses        []TaskIPAddress     `json:"ipAddresses,omitempty"`
	HealthCheckResults []HealthCheckResult `json:"healthCheckResults,omitempty"`
}

// TaskIPAddress is one IP address of a task.
type TaskIPAddress struct {
	IPAddress string `json:"ipAddress"`
	Protocol  string `json:"protocol,omitempty"`
}

// HealthCheckResult is the state of one health check for one task.
// Timestamps are pointers because Marathon writes null for "never".
type HealthCheckResult struct {
	Alive               bool    `json:"alive"`
	ConsecutiveFailures int     `json:"consecutiveFailures"`
	FirstSuccess        *string `json:"firstSuccess"`
	LastSuccess         *string `json:"lastSuccess"`
	LastFailure         *string `json:"lastFailure"`
	LastFailureCause    *string `json:"lastFailureCause"`
	TaskID              string  `json:"taskId,omitempty"`
	InstanceID          string  `json:"instanceId,omitempty"`
}

// Deployment is one entry of GET /v2/deployments.
type Deployment struct {
	ID             string             `json:"id"`
	Version        string             `json:"version"`
	AffectedApps   []string           `json:"affectedApps"`
	AffectedPods   []string           `json:"affectedPods"`
	Steps          []DeploymentStep   `json:"steps"`
	CurrentActions []DeploymentAction `json:"currentActions"`
	CurrentStep    int                `json:"currentStep"`
	TotalSteps     int                `json:"totalSteps"`
}

// DeploymentStep is a set of actions run together.
type DeploymentStep struct {
	Actions []DeploymentAction `json:"actions"`
}

// DeploymentAction is one action of a deployment step, e.g.
// StartApplication, ScaleApplication, RestartApplication, StopApplication.
type DeploymentAction struct {
	Action string `json:"action"`
	App    string `json:"app"`
	// ReadinessCheckResults is only set in a deployment's currentActions
	// (GET /v2/deployments): the readiness check results of the tasks the
	// action waits for, [] when none. Steps and events leave it out.
	ReadinessCheckResults *[]ReadinessCheckResult `json:"readinessCheckResults,omitempty"`
}

// DeploymentResult is the body of every call that starts a deployment.
type DeploymentResult struct {
	DeploymentID string `json:"deploymentId"`
	Version      string `json:"version"`
}

// AppsResponse is the body of GET /v2/apps.
type AppsResponse struct {
	Apps []App `json:"apps"`
}

// AppResponse is the body of GET /v2/apps/{id}.
type AppResponse struct {
	App App `json:"app"`
}

// TasksResponse is the body of GET /v2/tasks and GET /v2/apps/{id}/tasks.
type TasksResponse struct {
	Tasks []Task `json:"tasks"`
}

// ErrorResponse is Marathon's error body.
type ErrorResponse struct {
	Message     string          `json:"message"`
	Details     []ErrorDetail   `json:"details,omitempty"`
	Deployments []DeploymentRef `json:"deployments,omitempty"`
}

// ErrorDetail is one validation failure: a JSON-pointer-like path and the
// messages for it.
type ErrorDetail struct {
	Path   string   `json:"path"`
	Errors []string `json:"errors"`
}

// CanonicalID returns id with exactly one leading slash and no trailing
// slash: "my-app" and "/my-app/" both become "/my-app".
func CanonicalID(id string) string {
	id = strings.Trim(id, "/")
	return "/" + id
}

// SafeID returns the "safe" form of an app id used in task ids and HAProxy
// names: the leading slash stripped and the others replaced by '_'
// ("/prod/web" becomes "prod_web").
func SafeID(id string) string {
	return strings.ReplaceAll(strings.Trim(id, "/"), "/", "_")
}

// IsTerminal reports whether a task state is final.
func IsTerminal(state string) bool {
	switch state {
	case TaskFinished, TaskFailed, TaskKilled, TaskLost, TaskError, TaskGone, TaskDropped:
		return true
	}
	return false
}
