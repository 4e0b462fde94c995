package haproxy

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/switchyard/switchyard/haproxy/runtimeapi"
)

// Time limits applied when the caller's context has no deadline.
const (
	DefaultStartTimeout  = 30 * time.Second
	DefaultReloadTimeout = 30 * time.Second
	DefaultStopTimeout   = 10 * time.Second
)

// Stop's handling of a reload in flight: how long it waits for the reload
// to finish before signalling anyway, and how often it repeats the soft-stop
// signal until the master exits.
const (
	stopOpWait      = 3 * time.Second
	stopResendEvery = 500 * time.Millisecond
	stopOpPollEvery = 5 * time.Millisecond
)

func withDefaultTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}

// ProcessConfig configures a [Process]. Zero values mean the documented
// defaults.
type ProcessConfig struct {
	// Binary is the haproxy executable. Default: "haproxy" from PATH.
	Binary string
	// ConfigPath is the configuration file given with -f. Required.
	ConfigPath string
	// MasterSocket is the unix socket of the master CLI (-S). Default:
	// "haproxy-master.sock" next to ConfigPath.
	MasterSocket string
	// PIDFile is given with -p. Default: "haproxy.pid" next to ConfigPath.
	PIDFile string
	// Logger receives HAProxy's output lines and reload/apply events.
	// Default: a logger that discards everything.
	Logger *slog.Logger
	// ExtraArgs are appended to the command line.
	ExtraArgs []string
	// RetryInterval is how often servers removed while they still had
	// connections are tried again. Default: 1s.
	RetryInterval time.Duration
	// OnRestart, when set, is called after the master exited on its own
	// (killed, crashed, its worker killed) and was started again from the
	// file at ConfigPath, with that file's content as read just before the
	// start (nil if it could not be read). Runtime changes made since the
	// file was written are lost: the caller should bring HAProxy from that
	// configuration to its current one. It is called from a background
	// goroutine and must not block.
	OnRestart func(config []byte)
}

func (c *ProcessConfig) setDefaults() {
	if c.Binary == "" {
		c.Binary = "haproxy"
	}
	dir := filepath.Dir(c.ConfigPath)
	if c.MasterSocket == "" {
		c.MasterSocket = defaultMasterSocket(dir)
	}
	if c.PIDFile == "" {
		c.PIDFile = filepath.Join(dir, "haproxy.pid")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = time.Second
	}
}

// maxSocketPath is the longest unix socket path HAProxy accepts for -S
// (sun_path is 108 bytes and HAProxy reserves room for a suffix).
const maxSocketPath = 97

// defaultMasterSocket is haproxy-master.sock next to the configuration, or,
// when that path is too long for a unix socket, a short path in the
// system's temporary directory derived from the configuration directory (so
// two lb instances with different configs never share a socket).
func defaultMasterSocket(dir string) string {
	p := filepath.Join(dir, "haproxy-master.sock")
	if len(p) <= maxSocketPath {
		return p
	}
	sum := sha256.Sum256([]byte(dir))
	return filepath.Join(os.TempDir(), fmt.Sprintf("haproxy-master-%x.sock", sum[:8]))
}

// Process runs and supervises one HAProxy in master-worker mode. Its methods
// are safe for concurrent use; runtime operations and reloads are
// serialised.
//
// HAProxy always runs in the foreground (-db), whatever the configuration
// says: a "daemon" line would otherwise detach the master from lb. The
// master keeps running if lb dies without calling Stop (kill -9, crash), so
// the routes keep serving; the next Start for the same configuration takes
// it over instead of starting a second one (see Start). While it runs,
// Process restarts the master whenever it exits on its own (see
// ProcessConfig.OnRestart).
type Process struct {
	cfg    ProcessConfig
	log    *slog.Logger
	client *runtimeapi.Client
	out    *outputLog
	done   chan struct{} // closed when supervision is over: after Stop, or a failed Start

	stopOnce sync.Once
	stopping chan struct{} // closed when Stop is first called

	mu      sync.Mutex // guards the fields below
	cur     *master    // the current (or last) master; nil before Start succeeds
	started bool

	opMu sync.Mutex // serialises Reload and Apply; guards pending
	// pending are servers removed from the configuration that still had
	// connections: they are in maintenance and deleted once idle (or
	// forgotten at the next reload, whose configuration no longer has them).
	pending map[string]Server // key backend/name
}

// master is one HAProxy master process: one this Process started, or one a
// previous lb left running and this Process adopted.
type master struct {
	pid int
	// adopted: not our child, so its output is not ours to read and its
	// exit is seen through a pidfd.
	adopted bool
	started time.Time
	exited  chan struct{} // closed once it has exited and its process group is killed
	err     error         // how it ended; set before exited is closed
}

func (m *master) alive() bool {
	select {
	case <-m.exited:
		return false
	default:
		return true
	}
}

// NewProcess returns a Process for cfg. It starts nothing.
func NewProcess(cfg ProcessConfig) *Process {
	cfg.setDefaults()
	return &Process{
		cfg:      cfg,
		log:      cfg.Logger,
		client:   runtimeapi.New(cfg.MasterSocket),
		out:      newOutputLog(500),
		done:     make(chan struct{}),
		stopping: make(chan struct{}),
		pending:  map[string]Server{},
	}
}

// Runtime returns a client bound to the master CLI socket. Use
// Runtime().On("@1") to address the current worker.
func (p *Process) Runtime() *runtimeapi.Client { return p.client }

// Done returns a channel closed when HAProxy has exited for good: after
// Stop, or a failed Start. A master that exits on its own meanwhile is
// restarted, and Done stays open.
func (p *Process) Done() <-chan struct{} { return p.done }

// args is HAProxy's command line, without the program name.
func (p *Process) args() []string {
	a := []string{"-W", "-db", "-S", p.cfg.MasterSocket + ",level,admin", "-f", p.cfg.ConfigPath, "-p", p.cfg.PIDFile}
	return append(a, p.cfg.ExtraArgs...)
}

// Start runs HAProxy on the configuration file and returns once the master
// CLI answers and a worker runs.
//
// When the pid file names a master that an earlier Process (a previous lb,
// killed without Stop) started with the same command line, and its master
// CLI answers, Start adopts it and reloads it seamlessly with the current
// file: no second HAProxy, no connection refused. A master started for the
// same configuration with another command line (an older lb, other
// ExtraArgs) is replaced instead: the new one starts on the same ports
// (SO_REUSEPORT), then the old one is asked to finish (SIGUSR1).
//
// Otherwise it launches `haproxy -W -db -S <socket>,level,admin -f <config>
// -p <pidfile>` in its own process group. If HAProxy exits meanwhile, the
// error is a *StartError carrying HAProxy's messages (for example "Cannot
// raise FD limit to 20000039, limit is 20000." when maxconn needs more files
// than allowed). If ctx ends first (DefaultStartTimeout without a
// deadline), the process is killed. HAProxy keeps running after Start
// returns until Stop; its output lines go to the logger, and background
// goroutines restart it if it exits and retry pending server deletions.
func (p *Process) Start(ctx context.Context) error {
	ctx, cancel := withDefaultTimeout(ctx, DefaultStartTimeout)
	defer cancel()
	if p.cfg.ConfigPath == "" {
		return errors.New("start haproxy: no config path")
	}
	p.mu.Lock()
	if p.started {
		p.mu.Unlock()
		return errors.New("start haproxy: already started")
	}
	p.started = true
	p.mu.Unlock()

	prev := p.findPrevious(ctx)
	if prev != nil && prev.adopt != nil {
		m := prev.adopt
		p.setCurrent(m)
		go p.supervise(m)
		go p.retryLoop()
		p.log.Info("taking over the haproxy a previous lb started", "master_pid", m.pid)
		if err := p.Reload(ctx, "take over the running haproxy with the current configuration"); err != nil {
			return fmt.Errorf("start haproxy: %w", err)
		}
		return nil
	}

	m, err := p.launch(ctx)
	if err != nil {
		close(p.done)
		return err
	}
	p.setCurrent(m)
	go p.supervise(m)
	go p.retryLoop()
	if prev != nil {
		p.log.Warn("asking the haproxy a previous lb started to finish (soft stop)", "pid", prev.pid)
		_ = syscall.Kill(prev.pid, syscall.SIGUSR1)
	}
	return nil
}

// launch starts a master and waits until it runs a worker. On failure
// nothing is left running.
func (p *Process) launch(ctx context.Context) (*master, error) {
	args := p.args()
	cmd := exec.Command(p.cfg.Binary, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start haproxy: %w", err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	seq := p.out.seq()
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return nil, &StartError{Err: err}
	}
	pw.Close()
	m := &master{pid: cmd.Process.Pid, started: time.Now(), exited: make(chan struct{})}
	p.log.Info("haproxy started", "pid", m.pid, "args", strings.Join(args, " "))

	outDone := make(chan struct{})
	go func() {
		defer close(outDone)
		p.readOutput(pr)
	}()
	go func() {
		err := cmd.Wait()
		// Leave no worker behind (a worker whose master was killed would
		// otherwise hold the ports until it notices).
		_ = syscall.Kill(-m.pid, syscall.SIGKILL)
		// Give the reader a moment to collect the last lines.
		select {
		case <-outDone:
		case <-time.After(200 * time.Millisecond):
		}
		m.err = err
		close(m.exited)
	}()

	if err := p.waitReady(ctx, m); err != nil {
		_ = syscall.Kill(-m.pid, syscall.SIGKILL)
		<-m.exited
		if m.err != nil && ctx.Err() == nil {
			err = m.err
		}
		return nil, &StartError{Err: err, Lines: alertLines(strings.Join(p.out.since(seq), "\n"))}
	}
	return m, nil
}

// errMasterExited is waitReady's error for a master that exited first.
var errMasterExited = errors.New("haproxy master exited")

// waitReady waits until the master CLI answers for m and shows a worker.
func (p *Process) waitReady(ctx context.Context, m *master) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		pl, err := p.client.ShowProc(ctx)
		if err == nil && pl.Master.PID == m.pid && len(pl.Workers) > 0 {
			p.log.Info("haproxy running", "master_pid", pl.Master.PID, "worker_pid", pl.Workers[0].PID)
			return nil
		}
		select {
		case <-m.exited:
			return errMasterExited
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func (p *Process) setCurrent(m *master) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cur = m
}

func (p *Process) current() *master {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur
}

func (p *Process) isStopping() bool {
	select {
	case <-p.stopping:
		return true
	default:
		return false
	}
}

// readOutput logs HAProxy's output lines and keeps the recent ones.
func (p *Process) readOutput(r io.ReadCloser) {
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var dedup outputDedup
	for sc.Scan() {
		line := cleanLine(sc.Text())
		if line == "" || dedup.repeated(line) {
			continue
		}
		p.out.add(line)
		level := slog.LevelInfo
		switch {
		case strings.HasPrefix(line, "[ALERT]"):
			level = slog.LevelError
		case proxyStopped(line):
			// An old worker says this for every proxy it stops: thousands
			// of lines per reload at scale, none of them news.
			level = slog.LevelDebug
		case strings.HasPrefix(line, "[WARNING]"):
			level = slog.LevelWarn
		}
		p.log.Log(context.Background(), level, "haproxy output", "line", line)
	}
}

// proxyStopped reports HAProxy's per-proxy lines of a stopping worker:
// "Proxy X stopped (cumulated conns: ...)" and "Stopping backend X in 0 ms."
// (with or without the [WARNING] prefix).
func proxyStopped(line string) bool {
	l := strings.TrimSpace(strings.TrimPrefix(line, "[WARNING]"))
	if i := strings.Index(l, ") : "); i >= 0 && strings.HasPrefix(l, "(") {
		l = l[i+4:] // "(pid) : Proxy X stopped" in older formats
	}
	switch {
	case strings.HasPrefix(l, "Proxy ") && strings.Contains(l, " stopped"):
		return true
	case strings.HasPrefix(l, "Stopping frontend "), strings.HasPrefix(l, "Stopping backend "), strings.HasPrefix(l, "Stopping proxy "):
		return true
	}
	return false
}

// masterFor returns the master for a reload or a runtime change, or
// ErrNotRunning when it has exited (a restart may be under way) or Stop has
// been called.
func (p *Process) masterFor() (*master, error) {
	if p.isStopping() {
		return nil, fmt.Errorf("%w: stopping", ErrNotRunning)
	}
	return p.running()
}

// running returns the current master, or ErrNotRunning when there is none
// alive.
func (p *Process) running() (*master, error) {
	m := p.current()
	if m == nil || !m.alive() {
		return nil, ErrNotRunning
	}
	return m, nil
}

// PIDs returns the pids of the master, the current workers and the old
// workers still draining connections, master first. When the master CLI does
// not answer it returns the master pid alone with the error.
func (p *Process) PIDs(ctx context.Context) ([]int, error) {
	m, err := p.running()
	if err != nil {
		return nil, err
	}
	pl, err := p.client.ShowProc(ctx)
	if err != nil {
		return []int{m.pid}, fmt.Errorf("haproxy pids: %w", err)
	}
	pids := []int{pl.Master.PID}
	for _, w := range pl.Workers {
		pids = append(pids, w.PID)
	}
	for _, w := range pl.OldWorkers {
		pids = append(pids, w.PID)
	}
	return pids, nil
}

// Stop asks HAProxy to finish (SIGUSR1: soft stop, established connections
// complete) and waits for the master to exit, repeating the signal until it
// does; no restart follows. A reload or runtime change in flight is given a
// moment (at most 3 s) to finish first: a master that is re-executing
// itself forgets a stop signal received meanwhile. Reload and Apply called
// after Stop fail with ErrNotRunning (in a *ReloadError's Err for Reload).
// When ctx ends first (DefaultStopTimeout without a deadline), it
// terminates the whole process group (SIGTERM, then SIGKILL). It returns
// nil when the process was never started or has already exited.
func (p *Process) Stop(ctx context.Context) error {
	if p.current() == nil {
		return nil // never started, or Start failed
	}
	p.stopOnce.Do(func() { close(p.stopping) })
	select {
	case <-p.done:
		return nil
	default:
	}
	ctx, cancel := withDefaultTimeout(ctx, DefaultStopTimeout)
	defer cancel()
	if p.lockOps(ctx, stopOpWait) {
		// Held until the master is gone: no reload nor runtime change
		// starts meanwhile (they fail with ErrNotRunning afterwards).
		defer p.opMu.Unlock()
	}
	select {
	case <-p.done:
		return nil // exited meanwhile (another Stop, a crash)
	default:
	}
	// The current master may change once more if a restart was under way.
	signal := func(sig syscall.Signal, group bool) {
		if m := p.current(); m != nil && m.alive() {
			pid := m.pid
			if group {
				pid = -pid
			}
			_ = syscall.Kill(pid, sig)
		}
	}
	p.log.Info("stopping haproxy", "pid", p.current().pid)
	signal(syscall.SIGUSR1, false)
	resend := time.NewTicker(stopResendEvery)
	defer resend.Stop()
	for graceful := true; graceful; {
		select {
		case <-p.done:
			return nil
		case <-resend.C:
			// In case the signal arrived while the master was busy (an
			// external reload, say): a soft stop already under way
			// ignores it.
			signal(syscall.SIGUSR1, false)
		case <-ctx.Done():
			graceful = false
		}
	}
	signal(syscall.SIGTERM, true)
	select {
	case <-p.done:
	case <-time.After(time.Second):
		signal(syscall.SIGKILL, true)
		<-p.done
	}
	return fmt.Errorf("stop haproxy: graceful stop interrupted: %w", ctx.Err())
}

// lockOps takes opMu, waiting at most max (and until ctx ends or the master
// exits) for a reload or runtime change in flight. It reports whether it
// holds the lock.
func (p *Process) lockOps(ctx context.Context, max time.Duration) bool {
	if p.opMu.TryLock() {
		return true
	}
	give := time.NewTimer(max)
	defer give.Stop()
	tick := time.NewTicker(stopOpPollEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-p.done:
			return false
		case <-give.C:
			p.log.Warn("stopping haproxy while a reload or runtime change is still in flight")
			return false
		case <-tick.C:
			if p.opMu.TryLock() {
				return true
			}
		}
	}
}

// retryLoop retries pending deletions until the master exits.
func (p *Process) retryLoop() {
	t := time.NewTicker(p.cfg.RetryInterval)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-t.C:
		}
		p.opMu.Lock()
		select {
		case <-p.done:
			p.opMu.Unlock()
			return // stopped while we waited for the lock
		default:
		}
		if len(p.pending) > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := p.retryPending(ctx); err != nil {
				p.log.Debug("retry pending server deletions", "err", err)
			}
			cancel()
		}
		p.opMu.Unlock()
	}
}

// outputLog keeps the last lines of HAProxy's output, numbered, in a ring
// (adding a line costs the same however many are kept), and remembers the
// number of the last line carrying each of the master's load markers, so
// that a reload's outcome is known even after thousands of later lines
// (an old worker says "Proxy X stopped" for every proxy) pushed it out.
type outputLog struct {
	mu    sync.Mutex // guards the fields below
	max   int
	next  int      // sequence number the next line gets
	ring  []string // line n is at ring[n%max] while n >= next-len(ring)
	marks map[string]int
}

// outputMarkers are the lines whose last occurrence outputLog remembers.
var outputMarkers = []string{loadingSuccess, loadingFailure}

func newOutputLog(max int) *outputLog {
	return &outputLog{max: max, marks: map[string]int{}}
}

func (o *outputLog) add(line string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, m := range outputMarkers {
		if strings.Contains(line, m) {
			o.marks[m] = o.next
		}
	}
	if len(o.ring) < o.max {
		o.ring = append(o.ring, line)
	} else {
		o.ring[o.next%o.max] = line
	}
	o.next++
}

// seq returns the sequence number the next line will get.
func (o *outputLog) seq() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.next
}

// sawSince reports whether a line containing marker (one of
// outputMarkers) arrived with a sequence number seq or later, kept or not.
func (o *outputLog) sawSince(marker string, seq int) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	n, ok := o.marks[marker]
	return ok && n >= seq
}

// since returns the kept lines numbered seq or later.
func (o *outputLog) since(seq int) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	first := o.next - len(o.ring)
	seq = max(seq, first)
	out := make([]string, 0, o.next-seq)
	for n := seq; n < o.next; n++ {
		out = append(out, o.ring[n%o.max])
	}
	return out
}
