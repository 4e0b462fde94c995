package health

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/switchyard/switchyard/marathon"
)

// Config describes the checks of one task.
type Config struct {
	// TaskID and InstanceID are copied into every result (Marathon emits
	// both).
	TaskID     string
	InstanceID string
	Checks     []Check
	// Started is when the task became RUNNING; the grace period counts
	// from it. Zero means when Run is called.
	Started time.Time
	// Env and Dir are the environment and working directory of COMMAND
	// checks (the task's own environment and sandbox).
	Env map[string]string
	Dir string
	// Exec, when set, runs COMMAND checks instead of a local shell (for
	// example inside the task's container); it returns nil when the
	// command exited 0 and must honour ctx (the check's timeout).
	Exec func(ctx context.Context, command string) error
	// OnChange is called, from the runner's goroutines but never
	// concurrently, with a copy of all results each time any of them
	// changes (including timestamps). Use Changed to keep only what the
	// scheduler acts on.
	OnChange func([]marathon.HealthCheckResult)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Runner probes one task's checks, each on its own timer. Create it with
// NewRunner and start it with Run.
type Runner struct {
	cfg    Config
	now    func() time.Time
	client *http.Client
	tlsCl  *http.Client

	mu      sync.Mutex // serialises result updates and OnChange calls
	results []marathon.HealthCheckResult
	passed  []bool // a check has had a success: its grace is over
	started time.Time
}

// NewRunner returns a runner for cfg. Results start with alive false and
// no timestamps.
func NewRunner(cfg Config) *Runner {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	r := &Runner{
		cfg:     cfg,
		now:     now,
		client:  &http.Client{Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}, CheckRedirect: noRedirect},
		tlsCl:   &http.Client{Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, CheckRedirect: noRedirect}, //nolint:gosec // Marathon's HTTPS checks do not verify certificates.
		results: make([]marathon.HealthCheckResult, len(cfg.Checks)),
		passed:  make([]bool, len(cfg.Checks)),
	}
	for i := range r.results {
		r.results[i] = marathon.HealthCheckResult{TaskID: cfg.TaskID, InstanceID: cfg.InstanceID}
	}
	return r
}

// noRedirect makes a 3xx answer the check's result (a success) instead of
// following it.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// Results returns a copy of the current results, one per check in order.
func (r *Runner) Results() []marathon.HealthCheckResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	return cloneResults(r.results)
}

// Run probes every check, the first time at once and then every
// Interval, until ctx ends. It returns when all probes have stopped.
func (r *Runner) Run(ctx context.Context) {
	r.mu.Lock()
	r.started = r.cfg.Started
	if r.started.IsZero() {
		r.started = r.now()
	}
	r.mu.Unlock()
	var wg sync.WaitGroup
	for i := range r.cfg.Checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.loop(ctx, i)
		}()
	}
	wg.Wait()
	r.client.CloseIdleConnections()
	r.tlsCl.CloseIdleConnections()
}

func (r *Runner) loop(ctx context.Context, i int) {
	c := r.cfg.Checks[i]
	interval := c.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		out := r.probe(ctx, c)
		if ctx.Err() != nil {
			return // a probe cut short by shutdown is not a failure
		}
		r.record(i, out)
		timer.Reset(interval)
	}
}

// outcome is the result of one probe.
type outcome struct {
	ok     bool
	ignore bool // leave the result unchanged (1xx with ignoreHttp1xx)
	cause  string
}

func (r *Runner) record(i int, o outcome) {
	if o.ignore {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	ts := now.UTC().Format(TimeFormat)
	res := &r.results[i]
	if o.ok {
		r.passed[i] = true
		if res.FirstSuccess == nil {
			res.FirstSuccess = ptr(ts)
		}
		res.LastSuccess = ptr(ts)
		res.ConsecutiveFailures = 0
		res.Alive = true
	} else {
		if !r.passed[i] && now.Before(r.started.Add(r.cfg.Checks[i].Grace)) {
			return // in the grace period: not counted, nothing changes
		}
		res.ConsecutiveFailures++
		res.LastFailure = ptr(ts)
		res.LastFailureCause = ptr(o.cause)
		res.Alive = false
	}
	if r.cfg.OnChange != nil {
		r.cfg.OnChange(cloneResults(r.results))
	}
}

func (r *Runner) probe(ctx context.Context, c Check) outcome {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch c.Kind {
	case KindHTTP:
		return r.probeHTTP(ctx, r.client, "http", c)
	case KindHTTPS:
		return r.probeHTTP(ctx, r.tlsCl, "https", c)
	case KindTCP:
		return probeTCP(ctx, c)
	case KindCommand:
		return r.probeCommand(ctx, c)
	}
	return outcome{cause: fmt.Sprintf("unknown check kind %d", c.Kind)}
}

func (r *Runner) probeHTTP(ctx context.Context, cl *http.Client, scheme string, c Check) outcome {
	u := scheme + "://" + net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) + c.Path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return outcome{cause: err.Error()}
	}
	resp, err := cl.Do(req)
	if err != nil {
		return outcome{cause: err.Error()}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode < 200 && c.IgnoreHTTP1xx:
		return outcome{ignore: true}
	case resp.StatusCode >= 200 && resp.StatusCode < 400:
		return outcome{ok: true}
	}
	return outcome{cause: fmt.Sprintf("HTTP status %d from %s", resp.StatusCode, u)}
}

func probeTCP(ctx context.Context, c Check) outcome {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(c.Host, strconv.Itoa(c.Port)))
	if err != nil {
		return outcome{cause: err.Error()}
	}
	conn.Close()
	return outcome{ok: true}
}

func (r *Runner) probeCommand(ctx context.Context, c Check) outcome {
	if r.cfg.Exec != nil {
		err := r.cfg.Exec(ctx, c.Command)
		switch {
		case err == nil:
			return outcome{ok: true}
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			return outcome{cause: fmt.Sprintf("command %q timed out after %s", c.Command, c.Timeout)}
		}
		return outcome{cause: fmt.Sprintf("command %q: %v", c.Command, err)}
	}
	cmd := exec.Command("/bin/sh", "-c", c.Command)
	cmd.Dir = r.cfg.Dir
	cmd.Env = os.Environ()
	keys := make([]string, 0, len(r.cfg.Env))
	for k := range r.cfg.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		cmd.Env = append(cmd.Env, k+"="+r.cfg.Env[k])
	}
	// Own group so a timeout kills the whole command, not just the shell.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return outcome{cause: fmt.Sprintf("start command: %v", err)}
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return outcome{cause: fmt.Sprintf("command %q: %v", c.Command, err)}
		}
		return outcome{ok: true}
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return outcome{cause: fmt.Sprintf("command %q timed out after %s", c.Command, c.Timeout)}
		}
		return outcome{cause: ctx.Err().Error()}
	}
}

func cloneResults(in []marathon.HealthCheckResult) []marathon.HealthCheckResult {
	if in == nil {
		return nil
	}
	out := make([]marathon.HealthCheckResult, len(in))
	copy(out, in) // the pointed-to strings are never mutated
	return out
}

func ptr(s string) *string { return &s }
