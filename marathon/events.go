package marathon

import "encoding/json"

// Event type names as they appear in the SSE "event:" line and in the
// JSON "eventType" field.
const (
	EventStreamAttached        = "event_stream_attached"
	EventStreamDetached        = "event_stream_detached"
	EventAPIPost               = "api_post_event"
	EventStatusUpdate          = "status_update_event"
	EventInstanceChanged       = "instance_changed_event"
	EventHealthStatusChanged   = "health_status_changed_event"
	EventInstanceHealthChanged = "instance_health_changed_event"
	EventFailedHealthCheck     = "failed_health_check_event"
	EventUnhealthyInstanceKill = "unhealthy_instance_kill_event"
	EventAddHealthCheck        = "add_health_check_event"
	EventRemoveHealthCheck     = "remove_health_check_event"
	EventDeploymentInfo        = "deployment_info"
	EventDeploymentStepSuccess = "deployment_step_success"
	EventDeploymentStepFailure = "deployment_step_failure"
	EventDeploymentSuccess     = "deployment_success"
	EventDeploymentFailed      = "deployment_failed"
	EventGroupChangeSuccess    = "group_change_success"
	EventGroupChangeFailed     = "group_change_failed"
	EventAppTerminated         = "app_terminated_event"
)

// Event is one event of /v2/events: its type, its timestamp and the raw
// JSON payload (which also carries eventType and timestamp). Decode Data
// into one of the typed payloads below when the fields are needed.
type Event struct {
	Type      string          `json:"eventType"`
	Timestamp string          `json:"timestamp"`
	Data      json.RawMessage `json:"-"`
}

// EventHeader is the part every event payload shares.
type EventHeader struct {
	EventType string `json:"eventType"`
	Timestamp string `json:"timestamp"`
}

// StreamAttachedEvent is event_stream_attached / event_stream_detached.
type StreamAttachedEvent struct {
	EventHeader
	RemoteAddress string `json:"remoteAddress"`
}

// APIPostEvent is api_post_event.
type APIPostEvent struct {
	EventHeader
	ClientIP      string `json:"clientIp"`
	URI           string `json:"uri"`
	AppDefinition App    `json:"appDefinition"`
}

// StatusUpdateEvent is status_update_event.
type StatusUpdateEvent struct {
	EventHeader
	SlaveID     string          `json:"slaveId"`
	TaskID      string          `json:"taskId"`
	TaskStatus  string          `json:"taskStatus"`
	Message     string          `json:"message"`
	AppID       string          `json:"appId"`
	Host        string          `json:"host"`
	IPAddresses []TaskIPAddress `json:"ipAddresses"`
	Ports       []int           `json:"ports"`
	Version     string          `json:"version"`
}

// HealthStatusChangedEvent is health_status_changed_event.
type HealthStatusChangedEvent struct {
	EventHeader
	AppID      string `json:"appId"`
	TaskID     string `json:"taskId"`
	InstanceID string `json:"instanceId"`
	Version    string `json:"version"`
	Alive      bool   `json:"alive"`
}

// FailedHealthCheckEvent is failed_health_check_event.
type FailedHealthCheckEvent struct {
	EventHeader
	AppID       string      `json:"appId"`
	TaskID      string      `json:"taskId"`
	InstanceID  string      `json:"instanceId,omitempty"`
	HealthCheck HealthCheck `json:"healthCheck"`
}

// UnhealthyInstanceKillEvent is unhealthy_instance_kill_event.
type UnhealthyInstanceKillEvent struct {
	EventHeader
	AppID      string `json:"appId"`
	TaskID     string `json:"taskId"`
	InstanceID string `json:"instanceId"`
	Version    string `json:"version"`
	Reason     string `json:"reason"`
	Host       string `json:"host"`
	SlaveID    string `json:"slaveId"`
}

// AppTerminatedEvent is app_terminated_event.
type AppTerminatedEvent struct {
	EventHeader
	AppID string `json:"appId"`
}

// DeploymentPlan is the light plan carried by deployment events.
type DeploymentPlan struct {
	ID      string           `json:"id"`
	Steps   []DeploymentStep `json:"steps"`
	Version string           `json:"version"`
}

// DeploymentEvent is deployment_info, deployment_step_success,
// deployment_step_failure, deployment_success and deployment_failed.
type DeploymentEvent struct {
	EventHeader
	ID          string          `json:"id,omitempty"`
	Plan        DeploymentPlan  `json:"plan"`
	CurrentStep *DeploymentStep `json:"currentStep,omitempty"`
	Reason      string          `json:"reason,omitempty"`
}

// GroupChangeEvent is group_change_success / group_change_failed.
type GroupChangeEvent struct {
	EventHeader
	GroupID string `json:"groupId"`
	Version string `json:"version"`
	Reason  string `json:"reason,omitempty"`
}
