// Package lbtest builds Marathon apps and tasks for tests of the load
// balancer: small functional options instead of long struct literals.
package lbtest

import (
	"fmt"
	"strings"

	"github.com/switchyard/switchyard/marathon"
)

// AppOption changes an app under construction.
type AppOption func(*marathon.App)

// App returns an app with id (a leading "/" is added when missing), no
// ports and no tasks, changed by opts in order.
func App(id string, opts ...AppOption) marathon.App {
	a := marathon.App{ID: marathon.CanonicalID(id), Instances: 1, Labels: map[string]string{}}
	for _, o := range opts {
		o(&a)
	}
	return a
}

// Label sets one label.
func Label(k, v string) AppOption {
	return func(a *marathon.App) { a.Labels[k] = v }
}

// Labels sets several labels given as key, value pairs.
func Labels(kv ...string) AppOption {
	return func(a *marathon.App) {
		for i := 0; i+1 < len(kv); i += 2 {
			a.Labels[kv[i]] = kv[i+1]
		}
	}
}

// Group sets HAPROXY_GROUP.
func Group(g string) AppOption { return Label("HAPROXY_GROUP", g) }

// Instances sets the app's instance count.
func Instances(n int) AppOption {
	return func(a *marathon.App) { a.Instances = n }
}

// PortDefinitions gives a host-networking app these service ports.
func PortDefinitions(ports ...int) AppOption {
	return func(a *marathon.App) {
		a.PortDefinitions = nil
		for _, p := range ports {
			a.PortDefinitions = append(a.PortDefinitions, marathon.PortDefinition{Port: p, Protocol: "tcp"})
		}
	}
}

// Bridge makes the app a Docker BRIDGE app with one port mapping per
// (containerPort, servicePort) pair.
func Bridge(pairs ...int) AppOption {
	return func(a *marathon.App) {
		a.Container = &marathon.Container{Type: "DOCKER", Docker: &marathon.Docker{Image: "httpd:2.4-alpine", Network: "BRIDGE"}}
		zero := 0
		for i := 0; i+1 < len(pairs); i += 2 {
			a.Container.Docker.PortMappings = append(a.Container.Docker.PortMappings,
				marathon.PortMapping{ContainerPort: pairs[i], HostPort: &zero, ServicePort: pairs[i+1], Protocol: "tcp"})
		}
	}
}

// ContainerNetwork makes the app an IP-per-task app on a named network
// (networks: [{mode: container}]) with container.portMappings given as
// (containerPort, servicePort) pairs; servicePort 0 means "none".
func ContainerNetwork(pairs ...int) AppOption {
	return func(a *marathon.App) {
		a.Networks = []marathon.Network{{Mode: "container", Name: "dcos"}}
		a.Container = &marathon.Container{Type: "MESOS"}
		for i := 0; i+1 < len(pairs); i += 2 {
			a.Container.PortMappings = append(a.Container.PortMappings,
				marathon.PortMapping{ContainerPort: pairs[i], ServicePort: pairs[i+1], Protocol: "tcp"})
		}
	}
}

// IPAddress makes the app a pre-1.5 IP-per-task app (ipAddress with
// discovery ports).
func IPAddress(ports ...int) AppOption {
	return func(a *marathon.App) {
		a.IPAddress = &marathon.IPAddress{NetworkName: "calico", Discovery: &marathon.Discovery{}}
		for _, p := range ports {
			a.IPAddress.Discovery.Ports = append(a.IPAddress.Discovery.Ports, marathon.DiscoveryPort{Number: p, Protocol: "tcp"})
		}
	}
}

// HealthCheck adds a health check on portIndex with Marathon's usual
// fields; protocol is HTTP, HTTPS, TCP or COMMAND.
func HealthCheck(protocol, path string, portIndex, intervalSeconds, timeoutSeconds, maxFailures int) AppOption {
	return func(a *marathon.App) {
		hc := marathon.HealthCheck{
			Protocol: protocol, Path: path, GracePeriodSeconds: 300,
			IntervalSeconds: intervalSeconds, TimeoutSeconds: timeoutSeconds, MaxConsecutiveFailures: maxFailures,
		}
		if protocol == "COMMAND" {
			hc.Command = &marathon.CommandCheck{Value: "true"}
		} else {
			pi := portIndex
			hc.PortIndex = &pi
		}
		a.HealthChecks = append(a.HealthChecks, hc)
	}
}

// TaskOption changes a task under construction.
type TaskOption func(*marathon.Task)

// Task returns a running task on host with these host ports; its id is
// derived from the host and ports so that it is stable.
func Task(host string, ports ...int) marathon.Task {
	parts := make([]string, len(ports))
	for i, p := range ports {
		parts[i] = fmt.Sprint(p)
	}
	return marathon.Task{
		ID:    "task." + host + "." + strings.Join(parts, "."),
		Host:  host,
		State: marathon.TaskRunning,
		Ports: append([]int(nil), ports...),
	}
}

// Tasks appends tasks to the app (their AppID is set).
func Tasks(ts ...marathon.Task) AppOption {
	return func(a *marathon.App) {
		for _, t := range ts {
			t.AppID = a.ID
			a.Tasks = append(a.Tasks, t)
		}
	}
}

// WithState returns t in another state.
func WithState(t marathon.Task, state string) marathon.Task {
	t.State = state
	return t
}

// WithIP returns t with its own IP address (IP-per-task).
func WithIP(t marathon.Task, ip string) marathon.Task {
	t.IPAddresses = []marathon.TaskIPAddress{{IPAddress: ip, Protocol: "IPv4"}}
	return t
}

// WithHealth returns t with one health check result per value.
func WithHealth(t marathon.Task, alive ...bool) marathon.Task {
	t.HealthCheckResults = nil
	for _, a := range alive {
		t.HealthCheckResults = append(t.HealthCheckResults, marathon.HealthCheckResult{Alive: a, TaskID: t.ID})
	}
	return t
}
