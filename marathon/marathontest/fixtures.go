package marathontest

import (
	"fmt"
	"hash/fnv"
	"maps"
	"net/netip"
	"strconv"

	"github.com/switchyard/switchyard/marathon"
)

// FixtureVersion is the version (and staged/started time) every fixture
// carries, so that rendered output stays the same from run to run.
const FixtureVersion = "2026-01-01T00:00:00.000Z"

// AppOption changes an app built by App. Options apply in order; App then
// completes the tasks (app id, version, service ports) and the instance
// count, so options may come in any order.
type AppOption func(*marathon.App)

// App returns an app as GET /v2/apps shows it, with Marathon's defaults
// (cpus 0.1, mem 32, empty labels, no health checks, host networking, no
// ports) changed by opts. id gets a leading slash if it lacks one. Unless
// WithInstances is given, instances is the number of tasks (1 without
// tasks). Every task gets the app's id and version, and the app's service
// ports when it has none.
func App(id string, opts ...AppOption) marathon.App {
	a := marathon.App{
		ID:                    marathon.CanonicalID(id),
		Cmd:                   "sleep 3600",
		Instances:             -1, // "not set", resolved below
		CPUs:                  0.1,
		Mem:                   32,
		Constraints:           [][]string{},
		BackoffSeconds:        1,
		BackoffFactor:         1.15,
		MaxLaunchDelaySeconds: 300,
		HealthChecks:          []marathon.HealthCheck{},
		ReadinessChecks:       []marathon.ReadinessCheck{},
		Dependencies:          []string{},
		UpgradeStrategy:       &marathon.UpgradeStrategy{MinimumHealthCapacity: 1, MaximumOverCapacity: 1},
		Labels:                map[string]string{},
		Version:               FixtureVersion,
		VersionInfo:           &marathon.VersionInfo{LastScalingAt: FixtureVersion, LastConfigChangeAt: FixtureVersion},
		Deployments:           []marathon.DeploymentRef{},
	}
	for _, opt := range opts {
		opt(&a)
	}
	if a.Instances < 0 {
		a.Instances = max(1, len(a.Tasks))
	}
	sp := ServicePorts(a)
	for i := range a.Tasks {
		t := &a.Tasks[i]
		t.AppID = a.ID
		if t.Version == "" {
			t.Version = a.Version
		}
		if t.ServicePorts == nil {
			t.ServicePorts = append([]int{}, sp...)
		}
	}
	return a
}

// ServicePorts returns an app's service ports the way marathon-lb picks
// them: container port mappings first, then portDefinitions, then ports.
func ServicePorts(a marathon.App) []int {
	var ports []int
	if c := a.Container; c != nil {
		mappings := c.PortMappings
		if len(mappings) == 0 && c.Docker != nil {
			mappings = c.Docker.PortMappings
		}
		for _, m := range mappings {
			ports = append(ports, m.ServicePort)
		}
		if len(ports) > 0 {
			return ports
		}
	}
	for _, p := range a.PortDefinitions {
		ports = append(ports, p.Port)
	}
	if len(ports) > 0 {
		return ports
	}
	return append(ports, a.Ports...)
}

// WithInstances sets the instance count (by default the number of tasks).
func WithInstances(n int) AppOption {
	return func(a *marathon.App) { a.Instances = n }
}

// WithLabels adds labels (e.g. HAPROXY_GROUP) to the app.
func WithLabels(labels map[string]string) AppOption {
	return func(a *marathon.App) { maps.Copy(a.Labels, labels) }
}

// WithLabel adds one label to the app.
func WithLabel(key, value string) AppOption {
	return func(a *marathon.App) { a.Labels[key] = value }
}

// WithServicePorts adds host-mode portDefinitions with these service ports
// (tcp), one per port index.
func WithServicePorts(ports ...int) AppOption {
	return func(a *marathon.App) {
		for _, p := range ports {
			a.PortDefinitions = append(a.PortDefinitions, marathon.PortDefinition{Port: p, Protocol: "tcp"})
		}
	}
}

// WithBridgePorts makes the app a Docker container on the BRIDGE network
// (1.5+ form: networks [{mode: container/bridge}] and
// container.portMappings) and adds one port mapping with a dynamic host
// port (hostPort 0). Call it once per port index.
func WithBridgePorts(containerPort, servicePort int) AppOption {
	return func(a *marathon.App) {
		if a.Container == nil {
			a.Container = &marathon.Container{Type: "DOCKER"}
		}
		if a.Container.Docker == nil {
			a.Container.Docker = &marathon.Docker{Image: "nginx:alpine"}
		}
		a.Cmd = ""
		hostPort := 0
		a.Container.PortMappings = append(a.Container.PortMappings, marathon.PortMapping{
			ContainerPort: containerPort, HostPort: &hostPort, ServicePort: servicePort, Protocol: "tcp",
		})
		a.Networks = []marathon.Network{{Mode: "container/bridge"}}
	}
}

// WithTask adds a TASK_RUNNING task on host with these host ports (see
// Task); its service ports are filled by App.
func WithTask(host string, ports ...int) AppOption {
	return func(a *marathon.App) { addTask(a, Task(a.ID, host, ports...)) }
}

// WithHealthyTask adds a running task whose one health check result is
// alive.
func WithHealthyTask(host string, ports ...int) AppOption {
	return func(a *marathon.App) {
		t := Task(a.ID, host, ports...)
		t.HealthCheckResults = []marathon.HealthCheckResult{healthResult(t.ID, true)}
		addTask(a, t)
	}
}

// WithUnhealthyTask adds a running task whose one health check result is
// not alive (one consecutive failure).
func WithUnhealthyTask(host string, ports ...int) AppOption {
	return func(a *marathon.App) {
		t := Task(a.ID, host, ports...)
		t.HealthCheckResults = []marathon.HealthCheckResult{healthResult(t.ID, false)}
		addTask(a, t)
	}
}

// WithTasks adds tasks as given (built with Task and then changed, for
// instance to another state).
func WithTasks(tasks ...marathon.Task) AppOption {
	return func(a *marathon.App) {
		for _, t := range tasks {
			addTask(a, t)
		}
	}
}

// WithHTTPHealthCheck adds a Marathon HTTP health check on port index 0
// with Marathon's default timings (grace 300s, interval 60s, timeout 20s,
// 3 consecutive failures).
func WithHTTPHealthCheck(path string) AppOption {
	return func(a *marathon.App) {
		hc := defaultHealthCheck("HTTP")
		hc.Path = path
		a.HealthChecks = append(a.HealthChecks, hc)
	}
}

// WithTCPHealthCheck adds a Marathon TCP health check on port index 0 with
// Marathon's default timings.
func WithTCPHealthCheck() AppOption {
	return func(a *marathon.App) { a.HealthChecks = append(a.HealthChecks, defaultHealthCheck("TCP")) }
}

func defaultHealthCheck(protocol string) marathon.HealthCheck {
	portIndex := 0
	return marathon.HealthCheck{
		Protocol:               protocol,
		PortIndex:              &portIndex,
		GracePeriodSeconds:     300,
		IntervalSeconds:        60,
		TimeoutSeconds:         20,
		MaxConsecutiveFailures: 3,
		DelaySeconds:           15,
		IPProtocol:             "IPv4",
	}
}

func healthResult(taskID string, alive bool) marathon.HealthCheckResult {
	r := marathon.HealthCheckResult{Alive: alive, TaskID: taskID}
	ts := FixtureVersion
	if alive {
		r.FirstSuccess, r.LastSuccess = &ts, &ts
	} else {
		cause := "connection refused"
		r.ConsecutiveFailures = 1
		r.LastFailure, r.LastFailureCause = &ts, &cause
	}
	return r
}

// addTask appends t, renaming it if its id is already taken in the app.
func addTask(a *marathon.App, t marathon.Task) {
	taken := func(id string) bool {
		for _, o := range a.Tasks {
			if o.ID == id {
				return true
			}
		}
		return false
	}
	base := t.ID
	for n := 1; taken(t.ID); n++ {
		t.ID = marathon.SafeID(a.ID) + "." + uuidOf(base, strconv.Itoa(n))
	}
	a.Tasks = append(a.Tasks, t)
}

// Task returns a TASK_RUNNING task of app appID on host with these host
// ports, staged and started at FixtureVersion. Its id has Marathon's
// "<safe app id>.<uuid>" form, the uuid derived from the arguments so it
// is the same in every run. When host is an IP address it is also the
// task's ipAddresses[0]. ServicePorts is empty (App fills it).
func Task(appID, host string, ports ...int) marathon.Task {
	appID = marathon.CanonicalID(appID)
	t := marathon.Task{
		ID:        marathon.SafeID(appID) + "." + uuidOf(appID, host, fmt.Sprint(ports)),
		AppID:     appID,
		Host:      host,
		SlaveID:   "marathontest-" + host,
		State:     marathon.TaskRunning,
		StagedAt:  FixtureVersion,
		StartedAt: FixtureVersion,
		Version:   FixtureVersion,
		Ports:     append([]int{}, ports...),
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		proto := "IPv4"
		if ip.Is6() {
			proto = "IPv6"
		}
		t.IPAddresses = []marathon.TaskIPAddress{{IPAddress: host, Protocol: proto}}
	}
	return t
}

// uuidOf formats a 128-bit hash of parts like a uuid.
func uuidOf(parts ...string) string {
	h := fnv.New128a()
	for _, p := range parts {
		_, _ = h.Write([]byte(p))
		_, _ = h.Write([]byte{0})
	}
	b := h.Sum(nil)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
