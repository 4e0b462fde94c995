package scheduler

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/scheduler/state"
)

// Readiness checks (spec §2.5) run here, in the scheduler: it probes
// http(s)://<agent address>:<host port><path> (or the task's IP and
// container port for a port without a host port) directly. That is enough
// for clusters where the scheduler reaches the agents' task ports, and it
// keeps the agent contract unchanged. A task launched by a running
// deployment is probed from TASK_RUNNING until every readiness check
// answered ready once; until then the deployment does not count it as
// healthy. Results live in memory and are dropped when the app's
// deployment ends or the task goes away.

// maxReadinessBody bounds the body kept for preserveLastResponse.
const maxReadinessBody = 64 << 10

// readiness is the probing state of one task.
type readiness struct {
	results []marathon.ReadinessCheckResult // one per check
	ready   bool
	cancel  context.CancelFunc
}

// newReadinessClient returns the probe client: no redirects (a 3xx is an
// answer that httpStatusCodesForReady may list) and, like Marathon, no
// certificate verification for HTTPS.
func newReadinessClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // readiness checks do not verify, as in Marathon
	tr.DisableKeepAlives = true
	return &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// taskReady reports whether t, a task of def launched by the running
// deployment, answered ready on every readiness check. A running task
// that is not probed yet starts being probed. Caller holds s.mu.
func (s *Scheduler) taskReady(t *state.Task, def *marathon.App) bool {
	if r := s.ready[t.ID]; r != nil {
		return r.ready
	}
	if t.State != marathon.TaskRunning || s.probeCtx == nil {
		return false
	}
	r := &readiness{results: make([]marathon.ReadinessCheckResult, len(def.ReadinessChecks))}
	ctx, cancel := context.WithCancel(s.probeCtx)
	r.cancel = cancel
	s.ready[t.ID] = r
	id := t.ID
	for i, rc := range def.ReadinessChecks {
		r.results[i] = marathon.ReadinessCheckResult{Name: rc.Name, TaskID: id}
		url, err := s.readinessURL(t, def, rc)
		if err != nil {
			s.log.Warn("readiness check cannot run", "app_id", t.AppID, "task_id", t.ID, "check", rc.Name, "err", err)
			continue
		}
		s.probes.Go(func() { s.probeLoop(ctx, id, i, rc, url) })
	}
	return false
}

// readinessURL is the address a readiness check probes. Caller holds s.mu.
func (s *Scheduler) readinessURL(t *state.Task, def *marathon.App, rc marathon.ReadinessCheck) (string, error) {
	idx := -1
	containerPort := 0
	if networkMode(def) == "host" {
		idx = slices.IndexFunc(def.PortDefinitions, func(p marathon.PortDefinition) bool { return p.Name == rc.PortName })
	} else if def.Container != nil {
		idx = slices.IndexFunc(def.Container.PortMappings, func(p marathon.PortMapping) bool { return p.Name == rc.PortName })
		if idx >= 0 {
			containerPort = def.Container.PortMappings[idx].ContainerPort
		}
	}
	if idx < 0 {
		return "", fmt.Errorf("no port named %q", rc.PortName)
	}
	var host string
	var port int
	switch {
	case idx < len(t.HostPorts) && t.HostPorts[idx] > 0:
		host, port = t.Host, t.HostPorts[idx]
		if a, ok := s.store.Agent(t.AgentID); ok && a.Address != "" {
			host = a.Address
		}
	case len(t.IPAddresses) > 0 && containerPort > 0:
		host, port = t.IPAddresses[0].IPAddress, containerPort
	default:
		return "", fmt.Errorf("port %q has no address yet", rc.PortName)
	}
	path := rc.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	return strings.ToLower(rc.Protocol) + "://" + net.JoinHostPort(host, strconv.Itoa(port)) + path, nil
}

// probeLoop probes one readiness check of one task every intervalSeconds
// (the first probe at once) until it answers ready or ctx ends.
func (s *Scheduler) probeLoop(ctx context.Context, taskID string, i int, rc marathon.ReadinessCheck, url string) {
	interval := time.Duration(rc.IntervalSeconds) * time.Second
	timeout := time.Duration(rc.TimeoutSeconds) * time.Second
	for {
		ready, resp, err := s.probeOnce(ctx, url, timeout, rc.HTTPStatusCodesForReady)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			s.log.Debug("readiness probe failed", "task_id", taskID, "check", rc.Name, "url", url, "err", err)
		}
		if s.recordReadiness(taskID, i, ready, resp, rc.PreserveLastResponse) || ready {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

// probeOnce sends one GET and says whether the status is one of the ready
// codes.
func (s *Scheduler) probeOnce(ctx context.Context, url string, timeout time.Duration, readyCodes []int) (bool, *marathon.ReadinessCheckResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, nil, fmt.Errorf("readiness request: %w", err)
	}
	res, err := s.probeClient.Do(req)
	if err != nil {
		return false, nil, fmt.Errorf("readiness probe: %w", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxReadinessBody))
	if err != nil && !errors.Is(err, io.EOF) {
		return false, nil, fmt.Errorf("readiness body: %w", err)
	}
	resp := &marathon.ReadinessCheckResponse{Status: res.StatusCode, ContentType: res.Header.Get("Content-Type"), Body: string(body)}
	return slices.Contains(readyCodes, res.StatusCode), resp, nil
}

// recordReadiness stores one probe result and reports whether probing
// should stop (the task is gone). A task whose checks are all ready wakes
// the reconcile loop.
func (s *Scheduler) recordReadiness(taskID string, i int, ready bool, resp *marathon.ReadinessCheckResponse, preserve bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.ready[taskID]
	if r == nil || i >= len(r.results) {
		return true
	}
	r.results[i].Ready = ready
	if preserve {
		r.results[i].LastResponse = resp
	}
	if !ready {
		return false
	}
	all := true
	for _, res := range r.results {
		all = all && res.Ready
	}
	if all && !r.ready {
		r.ready = true
		s.log.Info("task ready", "task_id", taskID)
		s.kick()
	}
	return false
}

// pruneReadiness drops the probing state of tasks that are gone or whose
// app no deployment touches any more. Caller holds s.mu.
func (s *Scheduler) pruneReadiness(deploying map[string]bool) {
	for id, r := range s.ready {
		t, ok := s.store.Task(id)
		if ok && deploying[t.AppID] && !t.KillRequested {
			continue
		}
		r.cancel()
		delete(s.ready, id)
	}
}

// ReadinessResults returns the readiness check results of the app's tasks
// that a running deployment is waiting for (embed=apps.readiness).
func (s *Scheduler) ReadinessResults(_ context.Context, appID string) ([]marathon.ReadinessCheckResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.readinessResults(marathon.CanonicalID(appID)), nil
}

// readinessResults lists the readiness check results of the app's tasks
// that are being probed, by task id; never nil. Caller holds s.mu.
func (s *Scheduler) readinessResults(appID string) []marathon.ReadinessCheckResult {
	var ids []string
	for id := range s.ready {
		if t, ok := s.store.Task(id); ok && t.AppID == appID {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	out := []marathon.ReadinessCheckResult{}
	for _, id := range ids {
		for _, r := range s.ready[id].results {
			if r.LastResponse != nil {
				lr := *r.LastResponse
				r.LastResponse = &lr
			}
			out = append(out, r)
		}
	}
	return out
}
