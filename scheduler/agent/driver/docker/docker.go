// Package docker runs agent tasks as Docker containers through the Docker
// Engine API (github.com/docker/docker/client). It implements
// driver.Driver, driver.Lister and the agent's optional Execer ability
// (ExecTask: "docker exec", so COMMAND health checks run in the
// container, as under Mesos).
//
// When a task has a SandboxDir, the container's stdout and stderr are
// copied into SandboxDir/stdout and SandboxDir/stderr (the process
// driver's file names) for as long as the container runs; a task's exit
// is reported only once that copy has caught up, so the agent can quote
// the end of stderr in a failure message.
//
// Every container carries ownership labels (LabelTaskID, LabelAppID,
// LabelOwner, and Marathon's MESOS_TASK_ID) and a name derived from the
// task id, so an agent that restarts can list its containers (ListTasks),
// re-attach to them (RecoverTask) or remove them.
//
// Mapping from a Marathon app, as Mesos' Docker containerizer does it:
// BRIDGE publishes each port mapping (host port -> container port, tcp
// and/or udp) on the configured bridge network; HOST shares the agent's
// network; volumes become binds ("-v host:container:ro|rw"); a cmd runs as
// the container's "/bin/sh -c" entrypoint, args go to the image's own
// entrypoint; parameters are docker-run long options (see
// applyParameter for the list; any other key fails StartTask with
// ErrUnsupportedParameter). TaskSpec.User is ignored, as Mesos does for
// Docker tasks: use the "user" parameter.
//
// forcePullImage pulls before every start; when the pull fails (no
// registry answers) but the image is present, the driver logs it and
// starts the local image. A missing image that cannot be pulled fails
// the task with a message that says so.
package docker

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"github.com/switchyard/switchyard/scheduler/agent/driver"
)

// Name is the driver's name, as stored in task handles.
const Name = "docker"

// Environment variables New reads for Config fields left empty, so that
// an agent can be pointed at a network or address without new flags (the
// Docker end-to-end test runs agents this way; see docs/docker.md).
const (
	EnvOwner         = "SWITCHYARD_DOCKER_OWNER"
	EnvBridgeNetwork = "SWITCHYARD_DOCKER_NETWORK"
	EnvPortBindIP    = "SWITCHYARD_DOCKER_BIND_IP"
)

// Config configures a Driver. The zero value talks to the engine named by
// DOCKER_HOST (or the default socket) and owns containers as the host name.
// Owner, BridgeNetwork and PortBindIP fall back to the environment
// variables EnvOwner, EnvBridgeNetwork and EnvPortBindIP when empty.
type Config struct {
	// Host is the engine address ("unix:///var/run/docker.sock",
	// "tcp://host:2375"). Empty means DOCKER_HOST or the default socket.
	Host string
	// Owner is written to LabelOwner; ListTasks returns only containers
	// with this owner. Agents sharing an engine must use distinct owners.
	// Default: the host name.
	Owner string
	// BridgeNetwork is the Docker network BRIDGE tasks join. Default
	// "bridge" (docker0).
	BridgeNetwork string
	// PortBindIP is the host address BRIDGE port mappings are published
	// on. Default: every address.
	PortBindIP string
	// SandboxMount is where a task's sandbox (its fetched artifacts and
	// output files) is mounted in its container, also exported as
	// MESOS_SANDBOX, like Mesos' /mnt/mesos/sandbox. Empty: not mounted.
	// The sandbox must be a path the engine can see: an agent that runs
	// in a container needs its data dir bind-mounted at the same path.
	SandboxMount string
	// NamePrefix starts every container name. Default "switchyard-".
	NamePrefix string
	// PullTimeout bounds one image pull. Default 2 minutes.
	PullTimeout time.Duration
	// Logger receives the driver's logs. Default: slog.Default().
	Logger *slog.Logger
}

// Driver runs tasks as Docker containers. It is safe for concurrent use.
// Each started or recovered task has one watcher goroutine, which ends
// when the container exits, when the task is destroyed, or on Close.
type Driver struct {
	api    *client.Client
	logger *slog.Logger
	opts   buildOptions
	pullTO time.Duration

	// mu guards the fields below.
	mu     sync.Mutex
	tasks  map[string]*task
	closed bool
}

var (
	_ driver.Driver = (*Driver)(nil)
	_ driver.Lister = (*Driver)(nil)
	// The agent's optional Execer ability (scheduler/agent.Execer, not
	// imported: this package may only depend on the driver contract).
	_ interface {
		ExecTask(ctx context.Context, taskID string, argv []string) (int, error)
	} = (*Driver)(nil)
)

// handleState is the driver-specific part of a persisted TaskHandle.
type handleState struct {
	ContainerID string `json:"containerId"`
	Name        string `json:"name"`
	// SandboxDir is where the container's output is copied, if anywhere.
	SandboxDir string `json:"sandboxDir,omitempty"`
}

// New connects to the Docker engine (lazily: the first call negotiates
// the API version). Call Ping to check that the engine answers.
func New(cfg Config) (*Driver, error) {
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if cfg.Host != "" {
		opts = append(opts, client.WithHost(cfg.Host))
	}
	api, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	cfg.Owner = cmp.Or(cfg.Owner, os.Getenv(EnvOwner))
	cfg.BridgeNetwork = cmp.Or(cfg.BridgeNetwork, os.Getenv(EnvBridgeNetwork))
	cfg.PortBindIP = cmp.Or(cfg.PortBindIP, os.Getenv(EnvPortBindIP))
	if cfg.Owner == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("docker driver owner: %w", err)
		}
		cfg.Owner = h
	}
	if cfg.NamePrefix == "" {
		cfg.NamePrefix = "switchyard-"
	}
	if cfg.PullTimeout <= 0 {
		cfg.PullTimeout = 2 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Driver{
		api:    api,
		logger: cfg.Logger.With("driver", Name),
		opts: buildOptions{
			owner:         cfg.Owner,
			namePrefix:    cfg.NamePrefix,
			bridgeNetwork: cfg.BridgeNetwork,
			portBindIP:    cfg.PortBindIP,
			sandboxMount:  cfg.SandboxMount,
		},
		pullTO: cfg.PullTimeout,
		tasks:  map[string]*task{},
	}, nil
}

// Name returns "docker".
func (d *Driver) Name() string { return Name }

// Ping checks that the Docker engine answers.
func (d *Driver) Ping(ctx context.Context) error {
	if _, err := d.api.Ping(ctx); err != nil {
		return fmt.Errorf("docker engine: %w", err)
	}
	return nil
}

// Close stops the watcher goroutines and closes the engine connection.
// Containers keep running: an agent that shuts down leaves its tasks
// alone and recovers them when it comes back.
func (d *Driver) Close() error {
	d.mu.Lock()
	d.closed = true
	tasks := make([]*task, 0, len(d.tasks))
	for _, t := range d.tasks {
		t.cancel()
		tasks = append(tasks, t)
	}
	d.mu.Unlock()
	// Let the log copies stop and save their position, so that the next
	// driver resumes exactly where they left off.
	deadline := time.Now().Add(closeLogsTimeout)
	for _, t := range tasks {
		t.waitLogs(time.Until(deadline))
	}
	return d.api.Close()
}

// StartTask pulls the image if needed, then creates and starts the
// container. A container left over from an earlier attempt at the same
// task id is replaced.
func (d *Driver) StartTask(ctx context.Context, spec driver.TaskSpec) (*driver.TaskHandle, error) {
	d.mu.Lock()
	closed := d.closed
	d.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("docker task %s: driver is closed", spec.TaskID)
	}
	cfg, host, err := buildCreate(spec, d.opts)
	if err != nil {
		return nil, fmt.Errorf("docker task %s: %w", spec.TaskID, err)
	}
	if d.opts.sandboxMount != "" && spec.SandboxDir != "" {
		if err := os.MkdirAll(spec.SandboxDir, 0o755); err != nil {
			return nil, fmt.Errorf("docker task %s: sandbox: %w", spec.TaskID, err)
		}
	}
	log := d.logger.With("task_id", spec.TaskID, "app_id", spec.AppID, "image", spec.Image)
	if err := d.ensureImage(ctx, log, spec.Image, spec.ForcePullImage); err != nil {
		return nil, fmt.Errorf("docker task %s: %w", spec.TaskID, err)
	}
	name := containerName(d.opts.namePrefix, spec.TaskID)
	if err := d.removeStale(ctx, name, spec.TaskID); err != nil {
		return nil, fmt.Errorf("docker task %s: %w", spec.TaskID, err)
	}
	created, err := d.api.ContainerCreate(ctx, cfg, host, nil, nil, name)
	if err != nil {
		return nil, fmt.Errorf("docker task %s: create container: %w", spec.TaskID, err)
	}
	for _, w := range created.Warnings {
		log.Warn("docker create warning", "reason", w)
	}
	if err := d.api.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		rmErr := d.api.ContainerRemove(context.WithoutCancel(ctx), created.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
		if rmErr != nil && !errdefs.IsNotFound(rmErr) {
			log.Warn("remove container that failed to start", "err", rmErr)
		}
		return nil, fmt.Errorf("docker task %s: start container: %w", spec.TaskID, err)
	}
	if err := d.track(spec.TaskID, created.ID, name, spec.SandboxDir, false); err != nil {
		return nil, fmt.Errorf("docker task %s: %w", spec.TaskID, err)
	}
	log.Info("container started", "container", created.ID[:12], "name", name)
	return newHandle(spec.TaskID, created.ID, name, spec.SandboxDir), nil
}

func newHandle(taskID, containerID, name, sandbox string) *driver.TaskHandle {
	st, _ := json.Marshal(handleState{ContainerID: containerID, Name: name, SandboxDir: sandbox}) // cannot fail: strings
	return &driver.TaskHandle{TaskID: taskID, Driver: Name, State: st}
}

// removeStale removes a container already holding name if it belongs to
// the same task (an earlier start that failed half-way); anything else
// with that name is an error, never touched.
func (d *Driver) removeStale(ctx context.Context, name, taskID string) error {
	old, err := d.api.ContainerInspect(ctx, name)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("inspect container %s: %w", name, err)
	}
	if old.Config == nil || old.Config.Labels[LabelTaskID] != taskID {
		return fmt.Errorf("container name %s is taken by a container that is not this task's", name)
	}
	d.logger.Info("removing stale container of the same task", "task_id", taskID, "container", old.ID)
	if err := d.api.ContainerRemove(ctx, old.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("remove stale container %s: %w", name, err)
	}
	d.mu.Lock()
	if t, ok := d.tasks[taskID]; ok {
		t.cancel()
		delete(d.tasks, taskID)
	}
	d.mu.Unlock()
	return nil
}

// ensureImage makes sure ref is present, pulling it when missing or when
// force is set. A failed forced pull of an image that is present is only
// logged: on an agent with no registry the local image is what runs.
func (d *Driver) ensureImage(ctx context.Context, log *slog.Logger, ref string, force bool) error {
	_, err := d.api.ImageInspect(ctx, ref)
	local := err == nil
	if err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("inspect image %s: %w", ref, err)
	}
	if local && !force {
		return nil
	}
	pullErr := d.pull(ctx, ref)
	switch {
	case pullErr == nil:
		log.Info("image pulled")
		return nil
	case local:
		log.Warn("forcePullImage: pull failed, starting the local image instead", "err", pullErr)
		return nil
	default:
		return fmt.Errorf("image %s is not present on this agent and could not be pulled: %w", ref, pullErr)
	}
}

// pull pulls ref and reads the progress stream to its end, returning the
// first error the stream reports.
func (d *Driver) pull(ctx context.Context, ref string) error {
	ctx, cancel := context.WithTimeout(ctx, d.pullTO)
	defer cancel()
	rc, err := d.api.ImagePull(ctx, ref, image.PullOptions{})
	if err != nil {
		return fmt.Errorf("pull %s: %w", ref, err)
	}
	defer rc.Close()
	dec := json.NewDecoder(rc)
	for {
		var msg struct {
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&msg); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("pull %s: read progress: %w", ref, err)
		}
		if msg.Error != "" {
			return fmt.Errorf("pull %s: %s", ref, msg.Error)
		}
	}
}

// track registers a task and starts its watcher and, when sandbox is set,
// the copy of its output into sandbox (resume: after an agent restart).
func (d *Driver) track(taskID, containerID, name, sandbox string, resume bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("driver is closed")
	}
	if old, ok := d.tasks[taskID]; ok {
		if old.containerID == containerID {
			return nil
		}
		old.cancel()
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := newTask(taskID, containerID, name, cancel)
	d.tasks[taskID] = t
	if sandbox != "" {
		t.logsDone = make(chan struct{})
		go d.followLogs(ctx, t, sandbox, resume)
	}
	go d.watch(ctx, t)
	return nil
}

// watch waits for the container to stop and records how it ended. If the
// connection to the engine breaks (engine restart), it retries; the
// "not-running" condition returns at once for a container that already
// stopped, so no exit is missed.
func (d *Driver) watch(ctx context.Context, t *task) {
	backoff := 250 * time.Millisecond
	for {
		respC, errC := d.api.ContainerWait(ctx, t.containerID, container.WaitConditionNotRunning)
		select {
		case r := <-respC:
			res := driver.ExitResult{ExitCode: int(r.StatusCode)}
			if r.Error != nil && r.Error.Message != "" {
				res.Err = fmt.Errorf("docker: %s", r.Error.Message)
			}
			d.logExit(t, res)
			// The agent reads the sandbox stderr once the exit is
			// reported: let the copy catch up first.
			t.waitLogs(logDrainTimeout)
			t.finish(res)
			return
		case err := <-errC:
			if ctx.Err() != nil {
				return // Close or DestroyTask: leave the container alone.
			}
			if errdefs.IsNotFound(err) {
				res := driver.ExitResult{ExitCode: -1, Err: fmt.Errorf("container %s disappeared", t.name)}
				d.logExit(t, res)
				t.finish(res)
				return
			}
			d.logger.Warn("waiting for container failed, retrying", "task_id", t.id, "err", err, "duration", backoff)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

func (d *Driver) logExit(t *task, res driver.ExitResult) {
	// A best-effort look at why it ended, for the operator.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	attrs := []any{"task_id", t.id, "container", t.name, "exit_code", res.ExitCode}
	if res.Err != nil {
		attrs = append(attrs, "err", res.Err)
	}
	if info, err := d.api.ContainerInspect(ctx, t.containerID); err == nil && info.ContainerJSONBase != nil && info.State != nil {
		if info.State.OOMKilled {
			attrs = append(attrs, "reason", "out of memory")
		} else if info.State.Error != "" {
			attrs = append(attrs, "reason", info.State.Error)
		}
	}
	d.logger.Info("container exited", attrs...)
}

// lookup returns the tracked task, or nil.
func (d *Driver) lookup(taskID string) *task {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.tasks[taskID]
}

// ref is how the engine is asked about a task: its container id when
// tracked, else the name derived from the task id.
func (d *Driver) ref(taskID string) string {
	if t := d.lookup(taskID); t != nil {
		return t.containerID
	}
	return containerName(d.opts.namePrefix, taskID)
}

// WaitTask returns a channel that receives the task's exit result once and
// is then closed. If ctx ends first the channel is closed without a value.
func (d *Driver) WaitTask(ctx context.Context, taskID string) (<-chan driver.ExitResult, error) {
	t := d.lookup(taskID)
	if t == nil {
		return nil, fmt.Errorf("wait %s: %w", taskID, driver.ErrTaskNotFound)
	}
	ch := make(chan driver.ExitResult, 1)
	go func() {
		defer close(ch)
		select {
		case <-t.done:
			ch <- t.exitResult()
		case <-ctx.Done():
		}
	}()
	return ch, nil
}

// StopTask sends the container its stop signal (SIGTERM unless the image
// or a "stop-signal" parameter says otherwise), waits up to grace (rounded
// up to whole seconds, Docker's unit), then kills it. Stopping a task that
// already ended is not an error.
func (d *Driver) StopTask(ctx context.Context, taskID string, grace time.Duration) error {
	t := d.lookup(taskID)
	if t == nil {
		return fmt.Errorf("stop %s: %w", taskID, driver.ErrTaskNotFound)
	}
	t.markKilled()
	secs := int(math.Ceil(max(grace, 0).Seconds()))
	err := d.api.ContainerStop(ctx, t.containerID, container.StopOptions{Timeout: &secs})
	if err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("stop %s: %w", taskID, err)
	}
	// Let the watcher record the exit so WaitTask answers right away.
	select {
	case <-t.done:
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
	}
	return nil
}

// DestroyTask removes the container (and its anonymous volumes). Without
// force a running task is an error; with force it is killed first.
func (d *Driver) DestroyTask(ctx context.Context, taskID string, force bool) error {
	t := d.lookup(taskID)
	ref := d.ref(taskID)
	if !force {
		info, err := d.api.ContainerInspect(ctx, ref)
		switch {
		case errdefs.IsNotFound(err):
			if t == nil {
				return fmt.Errorf("destroy %s: %w", taskID, driver.ErrTaskNotFound)
			}
		case err != nil:
			return fmt.Errorf("destroy %s: inspect: %w", taskID, err)
		case info.State != nil && info.State.Running:
			return fmt.Errorf("destroy %s: task is still running", taskID)
		}
	}
	if t != nil && force {
		t.markKilled()
	}
	err := d.api.ContainerRemove(ctx, ref, container.RemoveOptions{Force: force, RemoveVolumes: true})
	if errdefs.IsNotFound(err) && t == nil {
		return fmt.Errorf("destroy %s: %w", taskID, driver.ErrTaskNotFound)
	}
	if err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("destroy %s: %w", taskID, err)
	}
	if t != nil {
		select {
		case <-t.done:
		case <-time.After(2 * time.Second):
			t.finish(driver.ExitResult{ExitCode: -1, Err: errors.New("container removed")})
		}
		t.cancel()
		t.waitLogs(2 * time.Second) // sandbox files closed on return
		d.mu.Lock()
		if d.tasks[taskID] == t {
			delete(d.tasks, taskID)
		}
		d.mu.Unlock()
	}
	return nil
}

// InspectTask describes the task's container, including its IP address on
// its network (empty with HOST networking).
func (d *Driver) InspectTask(ctx context.Context, taskID string) (*driver.TaskInfo, error) {
	info, err := d.api.ContainerInspect(ctx, d.ref(taskID))
	if errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("inspect %s: %w", taskID, driver.ErrTaskNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", taskID, err)
	}
	ti := &driver.TaskInfo{TaskID: taskID}
	if info.ContainerJSONBase != nil && info.State != nil {
		ti.Running = info.State.Running
		if ts, err := time.Parse(time.RFC3339Nano, info.State.StartedAt); err == nil && !ts.IsZero() && ts.Year() > 1 {
			ti.StartedAt = ts
		}
	}
	ti.IPAddress = containerIP(info)
	return ti, nil
}

// containerIP is the container's address on the network it was started
// on, or on its first network with an address.
func containerIP(info container.InspectResponse) string {
	if info.NetworkSettings == nil {
		return ""
	}
	nets := info.NetworkSettings.Networks
	if info.ContainerJSONBase != nil && info.HostConfig != nil {
		mode := string(info.HostConfig.NetworkMode)
		if mode == "default" {
			mode = "bridge"
		}
		if ep, ok := nets[mode]; ok && ep != nil && ep.IPAddress != "" {
			return ep.IPAddress
		}
	}
	for _, name := range slices.Sorted(maps.Keys(nets)) {
		if ep := nets[name]; ep != nil && ep.IPAddress != "" {
			return ep.IPAddress
		}
	}
	return ""
}

// RecoverTask re-attaches to the container a handle names (after an agent
// restart) and resumes watching it. It returns driver.ErrTaskNotFound when
// the container is gone. A container that stopped while the agent was
// down is adopted too: WaitTask then reports its exit at once.
func (d *Driver) RecoverTask(ctx context.Context, h *driver.TaskHandle) error {
	if h == nil {
		return errors.New("recover: nil handle")
	}
	if h.Driver != Name {
		return fmt.Errorf("recover %s: handle belongs to driver %q", h.TaskID, h.Driver)
	}
	var st handleState
	if len(h.State) > 0 {
		if err := json.Unmarshal(h.State, &st); err != nil {
			return fmt.Errorf("recover %s: decode handle: %w", h.TaskID, err)
		}
	}
	if t := d.lookup(h.TaskID); t != nil {
		return nil
	}
	ref := st.ContainerID
	if ref == "" {
		ref = containerName(d.opts.namePrefix, h.TaskID)
	}
	info, err := d.api.ContainerInspect(ctx, ref)
	if errdefs.IsNotFound(err) {
		return fmt.Errorf("recover %s: %w", h.TaskID, driver.ErrTaskNotFound)
	}
	if err != nil {
		return fmt.Errorf("recover %s: %w", h.TaskID, err)
	}
	if info.Config == nil || info.Config.Labels[LabelTaskID] != h.TaskID {
		return fmt.Errorf("recover %s: container %s belongs to another task: %w", h.TaskID, ref, driver.ErrTaskNotFound)
	}
	name := st.Name
	if name == "" && info.ContainerJSONBase != nil {
		name = trimSlash(info.Name)
	}
	if err := d.track(h.TaskID, info.ID, name, st.SandboxDir, true); err != nil {
		return fmt.Errorf("recover %s: %w", h.TaskID, err)
	}
	d.logger.Info("container recovered", "task_id", h.TaskID, "container", name)
	return nil
}

// ListTasks lists every container this driver's owner created, running or
// not, as handles that RecoverTask accepts. Listed handles carry no
// sandbox: a task recovered from one is watched but its output is not
// copied (the agent's persisted handles carry it).
func (d *Driver) ListTasks(ctx context.Context) ([]driver.TaskHandle, error) {
	f := filters.NewArgs(
		filters.Arg("label", LabelTaskID),
		filters.Arg("label", LabelOwner+"="+d.opts.owner),
	)
	list, err := d.api.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	out := make([]driver.TaskHandle, 0, len(list))
	for _, c := range list {
		name := ""
		if len(c.Names) > 0 {
			name = trimSlash(c.Names[0])
		}
		out = append(out, *newHandle(c.Labels[LabelTaskID], c.ID, name, ""))
	}
	slices.SortFunc(out, func(a, b driver.TaskHandle) int { return cmp.Compare(a.TaskID, b.TaskID) })
	return out, nil
}

func trimSlash(s string) string {
	if len(s) > 0 && s[0] == '/' {
		return s[1:]
	}
	return s
}
