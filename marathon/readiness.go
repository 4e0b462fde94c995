package marathon

// ReadinessCheckResult is the latest outcome of one readiness check for
// one task, as AppInfo's readinessCheckResults lists it (embed=apps.readiness)
// while a deployment waits for the task.
type ReadinessCheckResult struct {
	Name   string `json:"name"`
	TaskID string `json:"taskId"`
	Ready  bool   `json:"ready"`
	// LastResponse is the last HTTP answer; Marathon keeps it only for
	// checks with preserveLastResponse.
	LastResponse *ReadinessCheckResponse `json:"lastResponse,omitempty"`
}

// ReadinessCheckResponse is an HTTP answer to a readiness check.
type ReadinessCheckResponse struct {
	Status      int    `json:"status"`
	ContentType string `json:"contentType"`
	Body        string `json:"body"`
}
