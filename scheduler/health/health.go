// Package health runs Marathon health checks (HTTP, HTTPS, TCP, COMMAND
// and their MESOS_* aliases) against one task and keeps Marathon's
// healthCheckResults for it: grace period, interval, timeout and
// consecutive failures. It only observes; killing unhealthy tasks is the
// scheduler's decision.
package health

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/switchyard/switchyard/marathon"
)

// Protocols, as Marathon names them.
const (
	ProtocolHTTP         = "HTTP"
	ProtocolHTTPS        = "HTTPS"
	ProtocolTCP          = "TCP"
	ProtocolCommand      = "COMMAND"
	ProtocolMesosHTTP    = "MESOS_HTTP"
	ProtocolMesosHTTPS   = "MESOS_HTTPS"
	ProtocolMesosTCP     = "MESOS_TCP"
	ProtocolMesosCommand = "MESOS_COMMAND"
)

// Marathon's defaults for checks whose timing fields are unset.
const (
	DefaultInterval = 60 * time.Second
	DefaultTimeout  = 20 * time.Second
)

// Kind is the way a check probes a task.
type Kind int

// Check kinds.
const (
	KindHTTP Kind = iota + 1
	KindHTTPS
	KindTCP
	KindCommand
)

// TimeFormat is how result timestamps are written (Marathon's ISO 8601
// with milliseconds).
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// Check is one resolved health check: what to probe and how often. Its
// durations allow sub-second values; CheckFor derives them from a
// Marathon definition's seconds.
type Check struct {
	Kind Kind
	// Host and Port are the address probed by HTTP(S) and TCP checks.
	Host string
	Port int
	// Path is the HTTP(S) request path (default "/").
	Path string
	// Command is the shell command of a COMMAND check.
	Command string
	// Grace is how long failures are ignored after the task started
	// running, until its first success.
	Grace time.Duration
	// Interval is the time between two probes.
	Interval time.Duration
	// Timeout bounds one probe.
	Timeout time.Duration
	// MaxConsecutiveFailures is kept for the scheduler's kill decision;
	// the runner only counts failures.
	MaxConsecutiveFailures int
	// IgnoreHTTP1xx leaves the result unchanged on a 1xx answer.
	IgnoreHTTP1xx bool
}

// ParseKind maps a Marathon protocol name to a Kind. An empty protocol is
// Marathon's default, HTTP.
func ParseKind(protocol string) (Kind, error) {
	switch strings.ToUpper(protocol) {
	case "", ProtocolHTTP, ProtocolMesosHTTP:
		return KindHTTP, nil
	case ProtocolHTTPS, ProtocolMesosHTTPS:
		return KindHTTPS, nil
	case ProtocolTCP, ProtocolMesosTCP:
		return KindTCP, nil
	case ProtocolCommand, ProtocolMesosCommand:
		return KindCommand, nil
	}
	return 0, fmt.Errorf("unknown health check protocol %q", protocol)
}

// CheckFor resolves a Marathon health check for a task reached at host
// whose host ports are hostPorts (PORT0...). A fixed port wins over
// portIndex; portIndex defaults to 0. Unset interval and timeout get
// Marathon's defaults.
func CheckFor(hc marathon.HealthCheck, host string, hostPorts []int) (Check, error) {
	kind, err := ParseKind(hc.Protocol)
	if err != nil {
		return Check{}, err
	}
	c := Check{
		Kind:                   kind,
		Host:                   host,
		Path:                   hc.Path,
		Grace:                  time.Duration(hc.GracePeriodSeconds) * time.Second,
		Interval:               time.Duration(hc.IntervalSeconds) * time.Second,
		Timeout:                time.Duration(hc.TimeoutSeconds) * time.Second,
		MaxConsecutiveFailures: hc.MaxConsecutiveFailures,
		IgnoreHTTP1xx:          hc.IgnoreHTTP1xx,
	}
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Grace < 0 {
		c.Grace = 0
	}
	if c.Path == "" {
		c.Path = "/"
	}
	if kind == KindCommand {
		if hc.Command == nil || hc.Command.Value == "" {
			return Check{}, errors.New("COMMAND health check without command")
		}
		c.Command = hc.Command.Value
		return c, nil
	}
	switch {
	case hc.Port != nil && *hc.Port > 0:
		c.Port = *hc.Port
	default:
		idx := 0
		if hc.PortIndex != nil {
			idx = *hc.PortIndex
		}
		if idx < 0 || idx >= len(hostPorts) {
			return Check{}, fmt.Errorf("health check portIndex %d out of range: task has %d ports", idx, len(hostPorts))
		}
		c.Port = hostPorts[idx]
	}
	if c.Port <= 0 || c.Port > 65535 {
		return Check{}, fmt.Errorf("health check port %d out of range", c.Port)
	}
	return c, nil
}

// Changed reports whether new differs from old in what the scheduler acts
// on: the number of results, or any result's alive flag or consecutive
// failure count. Timestamps alone do not count.
func Changed(old, new []marathon.HealthCheckResult) bool {
	if len(old) != len(new) {
		return true
	}
	for i := range old {
		if old[i].Alive != new[i].Alive || old[i].ConsecutiveFailures != new[i].ConsecutiveFailures {
			return true
		}
	}
	return false
}
