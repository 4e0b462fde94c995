package docker

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-connections/nat"

	"github.com/switchyard/switchyard/scheduler/agent/driver"
)

// Container labels the driver sets on every container it creates. The
// agent finds and adopts (or cleans up) its containers by them after a
// restart.
const (
	// LabelTaskID holds the task id.
	LabelTaskID = "switchyard.task-id"
	// LabelAppID holds the app id (with its leading slash).
	LabelAppID = "switchyard.app-id"
	// LabelOwner holds the owning agent (Config.Owner), so that several
	// agents can share one Docker engine without adopting each other's
	// containers.
	LabelOwner = "switchyard.agent"
	// LabelMesosTaskID is the label Marathon on Mesos puts on every Docker
	// task; tools written for Marathon look for it.
	LabelMesosTaskID = "MESOS_TASK_ID"
)

// maxNameLen keeps container names well under Docker's limits.
const maxNameLen = 200

// buildOptions are the agent-wide settings that shape a container.
type buildOptions struct {
	owner         string
	namePrefix    string
	bridgeNetwork string
	portBindIP    string
	sandboxMount  string // container path of the task's sandbox; "" none
}

// containerName derives a valid, unique Docker container name from a task
// id: characters Docker refuses become '-', and a short hash of the
// original id is appended whenever the id had to be changed or shortened,
// so two different task ids never map to the same name.
func containerName(prefix, taskID string) string {
	var b strings.Builder
	for _, r := range taskID {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '.', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	name := b.String()
	if name != taskID || len(name) > maxNameLen || name == "" {
		sum := sha256.Sum256([]byte(taskID))
		name = name[:min(len(name), maxNameLen)] + "-" + hex.EncodeToString(sum[:4])
	}
	return prefix + name
}

// buildCreate turns a task spec into the Engine API's create request. It
// is pure so that every mapping is unit-tested without a Docker engine.
func buildCreate(spec driver.TaskSpec, o buildOptions) (*container.Config, *container.HostConfig, error) {
	if spec.TaskID == "" {
		return nil, nil, errors.New("task id is empty")
	}
	if spec.Image == "" {
		return nil, nil, errors.New("docker task has no image")
	}
	cfg := &container.Config{
		Image:  spec.Image,
		Labels: map[string]string{},
	}
	host := &container.HostConfig{Privileged: spec.Privileged}

	// The sandbox, mounted as Mesos does; the app's own MESOS_SANDBOX
	// wins.
	env := spec.Env
	if o.sandboxMount != "" && spec.SandboxDir != "" {
		dir, err := filepath.Abs(spec.SandboxDir)
		if err != nil {
			return nil, nil, fmt.Errorf("sandbox: %w", err)
		}
		host.Binds = append(host.Binds, dir+":"+o.sandboxMount)
		if _, set := env["MESOS_SANDBOX"]; !set {
			env = maps.Clone(env)
			if env == nil {
				env = map[string]string{}
			}
			env["MESOS_SANDBOX"] = o.sandboxMount
		}
	}

	// Env, sorted so the request is deterministic.
	for _, k := range slices.Sorted(maps.Keys(env)) {
		if k == "" || strings.Contains(k, "=") {
			return nil, nil, fmt.Errorf("invalid environment variable name %q", k)
		}
		cfg.Env = append(cfg.Env, k+"="+env[k])
	}

	// Command: like Mesos' Docker containerizer, a shell command replaces
	// the entrypoint with /bin/sh -c; args are handed to the image's
	// entrypoint.
	switch {
	case spec.Cmd != "":
		cfg.Entrypoint = []string{"/bin/sh", "-c"}
		cfg.Cmd = []string{spec.Cmd}
	case len(spec.Args) > 0:
		cfg.Cmd = slices.Clone(spec.Args)
	}

	switch strings.ToUpper(spec.Network) {
	case "HOST":
		host.NetworkMode = "host"
	case "", "BRIDGE":
		host.NetworkMode = container.NetworkMode(o.bridgeNetwork)
		if host.NetworkMode == "" {
			host.NetworkMode = "bridge"
		}
		if err := addPortBindings(cfg, host, spec.PortBindings, o.portBindIP); err != nil {
			return nil, nil, err
		}
	case "NONE":
		host.NetworkMode = "none"
	case "USER":
		// The network name comes from a "network" parameter, applied below.
	default:
		return nil, nil, fmt.Errorf("unknown docker network %q (want HOST, BRIDGE, USER or NONE)", spec.Network)
	}

	for _, v := range spec.Volumes {
		bind, err := bindString(v)
		if err != nil {
			return nil, nil, err
		}
		host.Binds = append(host.Binds, bind)
	}

	maps.Copy(cfg.Labels, spec.Labels)
	if err := applyParameters(spec.Parameters, createRequest{cfg: cfg, host: host}); err != nil {
		return nil, nil, err
	}
	if host.NetworkMode == "" {
		return nil, nil, errors.New("USER network needs a \"network\" parameter naming the docker network")
	}
	// Ownership labels always win over user labels.
	cfg.Labels[LabelTaskID] = spec.TaskID
	cfg.Labels[LabelMesosTaskID] = spec.TaskID
	if spec.AppID != "" {
		cfg.Labels[LabelAppID] = spec.AppID
	}
	if o.owner != "" {
		cfg.Labels[LabelOwner] = o.owner
	}
	if spec.KillGracePeriod > 0 && cfg.StopTimeout == nil {
		s := int((spec.KillGracePeriod + 999_999_999) / 1_000_000_000)
		cfg.StopTimeout = &s
	}
	return cfg, host, nil
}

// addPortBindings publishes container ports on host ports. A protocol of
// "udp,tcp" publishes both; a container port of 0 means "same as the host
// port", as in Marathon.
func addPortBindings(cfg *container.Config, host *container.HostConfig, pbs []driver.PortBinding, bindIP string) error {
	if len(pbs) == 0 {
		return nil
	}
	cfg.ExposedPorts = nat.PortSet{}
	host.PortBindings = nat.PortMap{}
	for _, pb := range pbs {
		if pb.HostPort < 0 || pb.HostPort > 65535 || pb.ContainerPort < 0 || pb.ContainerPort > 65535 {
			return fmt.Errorf("port mapping %d->%d out of range", pb.HostPort, pb.ContainerPort)
		}
		cport := pb.ContainerPort
		if cport == 0 {
			cport = pb.HostPort
		}
		if cport == 0 {
			return errors.New("port mapping has neither a container port nor a host port")
		}
		protos := pb.Protocol
		if protos == "" {
			protos = "tcp"
		}
		for proto := range strings.SplitSeq(protos, ",") {
			proto = strings.ToLower(strings.TrimSpace(proto))
			if proto != "tcp" && proto != "udp" {
				return fmt.Errorf("port mapping protocol %q (want tcp, udp or udp,tcp)", pb.Protocol)
			}
			p, err := nat.NewPort(proto, strconv.Itoa(cport))
			if err != nil {
				return fmt.Errorf("port mapping %d/%s: %v", cport, proto, err)
			}
			cfg.ExposedPorts[p] = struct{}{}
			hp := ""
			if pb.HostPort != 0 {
				hp = strconv.Itoa(pb.HostPort)
			}
			host.PortBindings[p] = append(host.PortBindings[p], nat.PortBinding{HostIP: bindIP, HostPort: hp})
		}
	}
	return nil
}

// bindString renders a volume as docker's "host:container[:ro]" bind,
// which (unlike a bind mount) creates a missing host directory, as
// `docker run -v` does for Marathon.
func bindString(v driver.Volume) (string, error) {
	if !strings.HasPrefix(v.HostPath, "/") || !strings.HasPrefix(v.ContainerPath, "/") {
		return "", fmt.Errorf("volume %q -> %q: host and container paths must be absolute", v.HostPath, v.ContainerPath)
	}
	if strings.Contains(v.HostPath, ":") || strings.Contains(v.ContainerPath, ":") {
		return "", fmt.Errorf("volume %q -> %q: paths must not contain ':'", v.HostPath, v.ContainerPath)
	}
	mode := "rw"
	if v.ReadOnly {
		mode = "ro"
	}
	return v.HostPath + ":" + v.ContainerPath + ":" + mode, nil
}
