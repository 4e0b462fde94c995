package agent

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/scheduler/agent/driver"
	"github.com/switchyard/switchyard/scheduler/agent/fetch"
	"github.com/switchyard/switchyard/scheduler/agentapi"
)

// Driver names TaskSpecFor chooses between.
const (
	DriverProcess = "process"
	DriverDocker  = "docker"
)

// Docker labels put on every container task, so a restarted agent (or an
// operator) can tell which task and app a container belongs to. Marathon
// itself labels containers with MESOS_TASK_ID.
const (
	LabelTaskID      = "switchyard.task-id"
	LabelAppID       = "switchyard.app-id"
	LabelMesosTaskID = "MESOS_TASK_ID"
)

// DefaultKillGracePeriod is the SIGTERM to SIGKILL delay when an
// assignment has none (the Mesos command executor's default).
const DefaultKillGracePeriod = 3 * time.Second

// Limits on label-derived environment variables (Marathon's).
const (
	maxLabelKeyLen   = 493 // 512 minus len("MARATHON_APP_LABEL_")
	maxLabelValueLen = 512
)

// TaskSpecFor converts an assignment into the spec a driver starts, and
// names the driver: "docker" when the assignment has a Docker image,
// "process" otherwise. host is the agent hostname given to the task as
// HOST; the task's sandbox is sandboxRoot/<task id>. It is pure: no I/O.
//
// The environment follows Marathon (spec §4.4): PORT0..n, PORT, PORTS,
// PORT_<NAME>, PORT_<requested port>, HOST, MESOS_TASK_ID,
// MARATHON_APP_ID, MARATHON_APP_VERSION, MARATHON_APP_DOCKER_IMAGE,
// MARATHON_APP_RESOURCE_*, MARATHON_APP_LABELS and
// MARATHON_APP_LABEL_<NAME>, MESOS_SANDBOX (command tasks); the app's
// own env is applied last and wins.
func TaskSpecFor(a agentapi.Assignment, host, sandboxRoot string) (driver.TaskSpec, string, error) {
	if err := validTaskID(a.TaskID); err != nil {
		return driver.TaskSpec{}, "", err
	}
	spec := driver.TaskSpec{
		TaskID:          a.TaskID,
		AppID:           marathon.CanonicalID(a.AppID),
		Cmd:             a.Cmd,
		Args:            append([]string(nil), a.Args...),
		User:            a.User,
		SandboxDir:      filepath.Join(sandboxRoot, a.TaskID),
		KillGracePeriod: time.Duration(a.KillGracePeriod),
	}
	if spec.KillGracePeriod <= 0 {
		spec.KillGracePeriod = DefaultKillGracePeriod
	}

	dock := dockerOf(a)
	name := DriverProcess
	var requested []int // requested port per port index (PORT_<n>), 0 = none
	if dock != nil {
		name = DriverDocker
		if dock.Image == "" {
			return driver.TaskSpec{}, "", fmt.Errorf("task %s: docker container without image", a.TaskID)
		}
		network, err := networkMode(a, dock)
		if err != nil {
			return driver.TaskSpec{}, "", fmt.Errorf("task %s: %w", a.TaskID, err)
		}
		spec.Image = dock.Image
		spec.Network = network
		spec.Privileged = dock.Privileged
		spec.ForcePullImage = dock.ForcePullImage
		for _, p := range dock.Parameters {
			if p.Key == "" {
				return driver.TaskSpec{}, "", fmt.Errorf("task %s: docker parameter with empty key", a.TaskID)
			}
			spec.Parameters = append(spec.Parameters, [2]string{p.Key, p.Value})
		}
		vols, err := volumesOf(a.Container.Volumes)
		if err != nil {
			return driver.TaskSpec{}, "", fmt.Errorf("task %s: %w", a.TaskID, err)
		}
		spec.Volumes = vols
		spec.Labels = map[string]string{LabelTaskID: a.TaskID, LabelAppID: spec.AppID, LabelMesosTaskID: a.TaskID}
		if network == "BRIDGE" {
			maps := portMappingsOf(a.Container)
			if len(maps) != len(a.HostPorts) {
				return driver.TaskSpec{}, "", fmt.Errorf("task %s: %d port mappings but %d host ports assigned", a.TaskID, len(maps), len(a.HostPorts))
			}
			requested = make([]int, len(maps))
			for i, m := range maps {
				cp := m.ContainerPort
				if cp == 0 {
					cp = a.HostPorts[i]
				} else {
					requested[i] = m.ContainerPort
				}
				proto := m.Protocol
				if proto == "" {
					proto = "tcp"
				}
				spec.PortBindings = append(spec.PortBindings, driver.PortBinding{HostPort: a.HostPorts[i], ContainerPort: cp, Protocol: proto})
			}
		}
	} else if a.Cmd == "" && len(a.Args) == 0 {
		return driver.TaskSpec{}, "", fmt.Errorf("task %s: neither cmd, args nor docker image", a.TaskID)
	}
	if requested == nil {
		// Host networking: the declared ports are the service ports.
		requested = make([]int, len(a.HostPorts))
		for i := range requested {
			if i < len(a.ServicePorts) {
				requested[i] = a.ServicePorts[i]
			}
		}
	}
	for _, p := range a.HostPorts {
		if p <= 0 || p > 65535 {
			return driver.TaskSpec{}, "", fmt.Errorf("task %s: host port %d out of range", a.TaskID, p)
		}
	}

	env := map[string]string{}
	ports := make([]string, len(a.HostPorts))
	for i, p := range a.HostPorts {
		s := strconv.Itoa(p)
		ports[i] = s
		env["PORT"+strconv.Itoa(i)] = s
		if i < len(a.PortNames) && a.PortNames[i] != "" {
			env["PORT_"+strings.ToUpper(a.PortNames[i])] = s
		}
		if requested[i] > 0 {
			env["PORT_"+strconv.Itoa(requested[i])] = s
		}
	}
	if len(ports) > 0 {
		env["PORT"] = ports[0]
		env["PORTS"] = strings.Join(ports, ",")
	}
	env["HOST"] = host
	env["MESOS_TASK_ID"] = a.TaskID
	env["MARATHON_APP_ID"] = spec.AppID
	env["MARATHON_APP_VERSION"] = a.Version
	env["MARATHON_APP_RESOURCE_CPUS"] = javaDouble(a.CPUs)
	env["MARATHON_APP_RESOURCE_MEM"] = javaDouble(a.Mem)
	env["MARATHON_APP_RESOURCE_DISK"] = javaDouble(a.Disk)
	env["MARATHON_APP_RESOURCE_GPUS"] = "0"
	if dock != nil {
		env["MARATHON_APP_DOCKER_IMAGE"] = dock.Image
	} else {
		env["MESOS_SANDBOX"] = spec.SandboxDir
	}
	keys := make([]string, 0, len(a.Labels))
	for k := range a.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var names []string
	for _, k := range keys {
		v := a.Labels[k]
		if len(k) >= maxLabelKeyLen || len(v) >= maxLabelValueLen {
			continue
		}
		n := sanitizeLabel(k)
		names = append(names, n)
		env["MARATHON_APP_LABEL_"+n] = v
	}
	if len(names) > 0 {
		env["MARATHON_APP_LABELS"] = strings.Join(names, " ")
	}
	for k, v := range a.Env {
		env[k] = v
	}
	spec.Env = env
	return spec, name, nil
}

// artifactsOf lists what the fetcher puts in a task's sandbox before it
// starts: the app's fetch entries, then its legacy uris, which Marathon
// turns into fetch entries with extract on.
func artifactsOf(a agentapi.Assignment) []fetch.Artifact {
	var out []fetch.Artifact
	for _, f := range a.Fetch {
		out = append(out, fetch.Artifact{URI: f.URI, Extract: f.Extract, Executable: f.Executable, Cache: f.Cache, DestPath: f.DestPath})
	}
	for _, u := range a.URIs {
		out = append(out, fetch.Artifact{URI: u, Extract: true})
	}
	return out
}

// validTaskID rejects ids that cannot name a sandbox directory safely.
func validTaskID(id string) error {
	switch {
	case id == "":
		return errors.New("empty task id")
	case id == "." || id == "..", strings.ContainsAny(id, "/\\\x00"):
		return fmt.Errorf("task id %q cannot name a directory", id)
	}
	return nil
}

// sandboxPath is a task's sandbox directory under root.
func sandboxPath(root, id string) (string, error) {
	if err := validTaskID(id); err != nil {
		return "", err
	}
	return filepath.Join(root, id), nil
}

// dockerOf returns the assignment's Docker definition, if it runs in a
// Docker container.
func dockerOf(a agentapi.Assignment) *marathon.Docker {
	if a.Container == nil || a.Container.Docker == nil {
		return nil
	}
	if t := strings.ToUpper(a.Container.Type); t != "" && t != "DOCKER" {
		return nil
	}
	return a.Container.Docker
}

// networkMode gives "HOST" or "BRIDGE" from the ≤1.4 docker.network or
// the 1.5+ networks list (default BRIDGE).
func networkMode(a agentapi.Assignment, d *marathon.Docker) (string, error) {
	switch strings.ToUpper(d.Network) {
	case "HOST":
		return "HOST", nil
	case "BRIDGE":
		return "BRIDGE", nil
	case "":
	default:
		return "", fmt.Errorf("docker network %q not supported (HOST or BRIDGE)", d.Network)
	}
	for _, n := range a.Networks {
		switch n.Mode {
		case "host":
			return "HOST", nil
		case "container/bridge", "":
			return "BRIDGE", nil
		default:
			return "", fmt.Errorf("network mode %q not supported (host or container/bridge)", n.Mode)
		}
	}
	return "BRIDGE", nil
}

// portMappingsOf returns container.portMappings, or the ≤1.4
// container.docker.portMappings when the former is empty.
func portMappingsOf(c *marathon.Container) []marathon.PortMapping {
	if len(c.PortMappings) > 0 || c.Docker == nil {
		return c.PortMappings
	}
	return c.Docker.PortMappings
}

func volumesOf(in []marathon.Volume) ([]driver.Volume, error) {
	var out []driver.Volume
	for i, v := range in {
		if v.ContainerPath == "" {
			return nil, fmt.Errorf("volume %d: no containerPath", i)
		}
		if v.HostPath == "" {
			return nil, fmt.Errorf("volume %d (%s): only host path volumes are supported", i, v.ContainerPath)
		}
		var ro bool
		switch strings.ToUpper(v.Mode) {
		case "RO":
			ro = true
		case "", "RW":
		default:
			return nil, fmt.Errorf("volume %d (%s): mode %q is not RO or RW", i, v.ContainerPath, v.Mode)
		}
		out = append(out, driver.Volume{HostPath: v.HostPath, ContainerPath: v.ContainerPath, ReadOnly: ro})
	}
	return out, nil
}

// sanitizeLabel turns a label key into an environment variable suffix:
// runs of characters outside [A-Za-z0-9_] become "_", then upper case.
func sanitizeLabel(k string) string {
	var b strings.Builder
	inRun := false
	for _, r := range k {
		ok := r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
		if ok {
			b.WriteRune(r)
			inRun = false
			continue
		}
		if !inRun {
			b.WriteByte('_')
			inRun = true
		}
	}
	return strings.ToUpper(b.String())
}

// javaDouble formats like Java's Double.toString for ordinary values:
// always with a fraction ("128.0", "0.1").
func javaDouble(f float64) string {
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsAny(s, ".eEnN") {
		s += ".0"
	}
	return s
}
