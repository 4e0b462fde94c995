package docker

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-connections/nat"
	units "github.com/docker/go-units"
)

// ErrUnsupportedParameter is returned (wrapped) by StartTask when an app's
// container.docker.parameters names a docker-run option this driver does
// not map onto the Engine API.
var ErrUnsupportedParameter = errors.New("unsupported docker parameter")

// createRequest is the part of a container create call that parameters can
// change.
type createRequest struct {
	cfg  *container.Config
	host *container.HostConfig
}

// applyParameters applies Marathon's container.docker.parameters, which are
// docker-run long options ("--key=value" with the dashes left out), in
// order. It stops at the first bad one, naming it.
func applyParameters(params [][2]string, r createRequest) error {
	for _, p := range params {
		if err := applyParameter(p[0], p[1], r); err != nil {
			return fmt.Errorf("parameter %q=%q: %w", p[0], p[1], err)
		}
	}
	return nil
}

// applyParameter applies one docker-run long option.
func applyParameter(key, value string, r createRequest) error {
	cfg, host := r.cfg, r.host
	switch strings.TrimLeft(key, "-") {
	case "label", "l":
		k, v, _ := strings.Cut(value, "=")
		if k == "" {
			return errors.New("label needs KEY[=VALUE]")
		}
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		cfg.Labels[k] = v
	case "env", "e":
		k, _, ok := strings.Cut(value, "=")
		if !ok || k == "" {
			return errors.New("env needs NAME=VALUE")
		}
		cfg.Env = setEnv(cfg.Env, value)
	case "volume", "v":
		if err := validBind(value); err != nil {
			return err
		}
		host.Binds = append(host.Binds, value)
	case "volumes-from":
		host.VolumesFrom = append(host.VolumesFrom, value)
	case "volume-driver":
		host.VolumeDriver = value
	case "add-host":
		name, ip, ok := strings.Cut(value, ":")
		if !ok || name == "" || ip == "" {
			return errors.New("add-host needs HOST:IP")
		}
		host.ExtraHosts = append(host.ExtraHosts, value)
	case "cap-add":
		host.CapAdd = append(host.CapAdd, value)
	case "cap-drop":
		host.CapDrop = append(host.CapDrop, value)
	case "memory", "m":
		return parseBytes(value, &host.Memory)
	case "memory-reservation":
		return parseBytes(value, &host.MemoryReservation)
	case "memory-swap":
		if value == "-1" {
			host.MemorySwap = -1
			return nil
		}
		return parseBytes(value, &host.MemorySwap)
	case "shm-size":
		return parseBytes(value, &host.ShmSize)
	case "cpus":
		f, err := strconv.ParseFloat(value, 64)
		if err != nil || f < 0 || f > 1e6 {
			return errors.New("cpus needs a non-negative number")
		}
		host.NanoCPUs = int64(f * 1e9)
	case "cpu-shares", "c":
		return parseInt(value, &host.CPUShares)
	case "pids-limit":
		var n int64
		if err := parseInt(value, &n); err != nil {
			return err
		}
		host.PidsLimit = &n
	case "oom-score-adj":
		var n int64
		if err := parseInt(value, &n); err != nil {
			return err
		}
		host.OomScoreAdj = int(n)
	case "ulimit":
		u, err := units.ParseUlimit(value)
		if err != nil {
			return fmt.Errorf("ulimit: %v", err)
		}
		host.Ulimits = append(host.Ulimits, u)
	case "user", "u":
		cfg.User = value
	case "workdir", "w":
		cfg.WorkingDir = value
	case "hostname", "h":
		cfg.Hostname = value
	case "domainname":
		cfg.Domainname = value
	case "entrypoint":
		if value == "" {
			cfg.Entrypoint = nil
		} else {
			cfg.Entrypoint = []string{value}
		}
	case "dns":
		host.DNS = append(host.DNS, value)
	case "dns-search":
		host.DNSSearch = append(host.DNSSearch, value)
	case "dns-option", "dns-opt":
		host.DNSOptions = append(host.DNSOptions, value)
	case "log-driver":
		host.LogConfig.Type = value
	case "log-opt":
		k, v, ok := strings.Cut(value, "=")
		if !ok || k == "" {
			return errors.New("log-opt needs KEY=VALUE")
		}
		if host.LogConfig.Config == nil {
			host.LogConfig.Config = map[string]string{}
		}
		host.LogConfig.Config[k] = v
	case "net", "network":
		if value == "" {
			return errors.New("network needs a name")
		}
		host.NetworkMode = container.NetworkMode(value)
	case "security-opt":
		host.SecurityOpt = append(host.SecurityOpt, value)
	case "sysctl":
		k, v, ok := strings.Cut(value, "=")
		if !ok || k == "" {
			return errors.New("sysctl needs KEY=VALUE")
		}
		if host.Sysctls == nil {
			host.Sysctls = map[string]string{}
		}
		host.Sysctls[k] = v
	case "tmpfs":
		path, opts, _ := strings.Cut(value, ":")
		if !strings.HasPrefix(path, "/") {
			return errors.New("tmpfs needs an absolute PATH[:OPTIONS]")
		}
		if host.Tmpfs == nil {
			host.Tmpfs = map[string]string{}
		}
		host.Tmpfs[path] = opts
	case "device":
		d, err := parseDevice(value)
		if err != nil {
			return err
		}
		host.Devices = append(host.Devices, d)
	case "group-add":
		host.GroupAdd = append(host.GroupAdd, value)
	case "ipc":
		host.IpcMode = container.IpcMode(value)
	case "pid":
		host.PidMode = container.PidMode(value)
	case "uts":
		host.UTSMode = container.UTSMode(value)
	case "stop-signal":
		cfg.StopSignal = value
	case "stop-timeout":
		var n int64
		if err := parseInt(value, &n); err != nil {
			return err
		}
		s := int(n)
		cfg.StopTimeout = &s
	case "expose":
		proto, port := nat.SplitProtoPort(value)
		p, err := nat.NewPort(proto, port)
		if err != nil || port == "" {
			return errors.New("expose needs PORT[/PROTO]")
		}
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = nat.PortSet{}
		}
		cfg.ExposedPorts[p] = struct{}{}
	case "read-only":
		return parseBool(value, &host.ReadonlyRootfs)
	case "privileged":
		return parseBool(value, &host.Privileged)
	case "init":
		var b bool
		if err := parseBool(value, &b); err != nil {
			return err
		}
		host.Init = &b
	case "name", "restart", "rm", "detach", "d", "publish", "p", "publish-all", "P", "env-file", "label-file", "interactive", "i", "tty", "t":
		return fmt.Errorf("%w: the agent manages this option itself", ErrUnsupportedParameter)
	default:
		return ErrUnsupportedParameter
	}
	return nil
}

// setEnv sets kv ("NAME=VALUE") in env, replacing an existing NAME.
func setEnv(env []string, kv string) []string {
	name, _, _ := strings.Cut(kv, "=")
	for i, e := range env {
		if n, _, _ := strings.Cut(e, "="); n == name {
			env[i] = kv
			return env
		}
	}
	return append(env, kv)
}

// validBind checks the docker -v syntax SRC:DST[:OPTS] (or a bare
// anonymous-volume DST).
func validBind(v string) error {
	parts := strings.Split(v, ":")
	switch len(parts) {
	case 1:
		if strings.HasPrefix(parts[0], "/") {
			return nil
		}
	case 2, 3:
		if parts[0] != "" && strings.HasPrefix(parts[1], "/") {
			return nil
		}
	}
	return errors.New("volume needs SRC:DST[:OPTIONS] with an absolute DST")
}

func parseDevice(v string) (container.DeviceMapping, error) {
	parts := strings.Split(v, ":")
	if len(parts) > 3 || !strings.HasPrefix(parts[0], "/") {
		return container.DeviceMapping{}, errors.New("device needs HOST[:CONTAINER[:PERMISSIONS]]")
	}
	d := container.DeviceMapping{PathOnHost: parts[0], PathInContainer: parts[0], CgroupPermissions: "rwm"}
	if len(parts) > 1 && parts[1] != "" {
		d.PathInContainer = parts[1]
	}
	if len(parts) > 2 && parts[2] != "" {
		d.CgroupPermissions = parts[2]
	}
	return d, nil
}

func parseBytes(v string, dst *int64) error {
	n, err := units.RAMInBytes(v)
	if err != nil || n < 0 {
		return fmt.Errorf("needs a size such as 512m: %q", v)
	}
	*dst = n
	return nil
}

func parseInt(v string, dst *int64) error {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return fmt.Errorf("needs an integer: %q", v)
	}
	*dst = n
	return nil
}

func parseBool(v string, dst *bool) error {
	if v == "" {
		*dst = true
		return nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return fmt.Errorf("needs true or false: %q", v)
	}
	*dst = b
	return nil
}
