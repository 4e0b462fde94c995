package haproxy

import (
	"context"
	"os"
	"strings"
	"time"
)

// Restart backoff: the first restart after a master that ran for at least
// restartStableAfter is immediate; each further one in a row waits twice as
// long as the previous, from restartMinDelay up to restartMaxDelay.
const (
	restartMinDelay    = 100 * time.Millisecond
	restartMaxDelay    = 10 * time.Second
	restartStableAfter = 10 * time.Second
)

// nextRestartDelay is the wait before the next restart attempt after one
// that waited d.
func nextRestartDelay(d time.Duration) time.Duration {
	return min(max(2*d, restartMinDelay), restartMaxDelay)
}

// supervise watches the current master m and starts a new one from the
// configuration file whenever it exits on its own, with backoff, until
// Stop. It closes p.done when done.
func (p *Process) supervise(m *master) {
	defer close(p.done)
	var delay time.Duration
	var loaded []byte
	for {
		select {
		case <-m.exited:
		case <-p.stopping:
			<-m.exited // Stop makes it exit
		}
		if p.isStopping() {
			return
		}
		ran := time.Since(m.started)
		if ran >= restartStableAfter {
			delay = 0
		}
		p.log.Error("haproxy master exited on its own; restarting it from the configuration file",
			"pid", m.pid, "err", m.err, "ran_for", ran.Round(time.Millisecond), "restart_in", delay,
			"last_lines", strings.Join(lastLines(p.out.since(0), 5), " | "))
		for {
			if !p.pause(delay) {
				return
			}
			delay = nextRestartDelay(delay)
			// What the new master loads; HAProxy reads the file right
			// after (a write in between is possible but harmless: the
			// caller's runtime changes then fail and it reloads).
			loaded, _ = os.ReadFile(p.cfg.ConfigPath)
			nm, err := p.relaunch()
			if err == nil {
				m = nm
				break
			}
			if p.isStopping() {
				return
			}
			p.log.Error("cannot restart haproxy; trying again", "err", err, "retry_in", delay)
		}
		p.setCurrent(m)
		p.log.Warn("haproxy restarted", "master_pid", m.pid)
		if p.cfg.OnRestart != nil {
			p.cfg.OnRestart(loaded)
		}
	}
}

// relaunch starts a new master, giving up when Stop is called.
func (p *Process) relaunch() (*master, error) {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultStartTimeout)
	defer cancel()
	go func() {
		select {
		case <-p.stopping:
			cancel()
		case <-ctx.Done():
		}
	}()
	return p.launch(ctx)
}

// pause waits d, and reports false when Stop is called meanwhile.
func (p *Process) pause(d time.Duration) bool {
	if d <= 0 {
		return !p.isStopping()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.stopping:
		return false
	case <-t.C:
		return true
	}
}

// lastLines returns the last n of lines.
func lastLines(lines []string, n int) []string {
	if len(lines) > n {
		return lines[len(lines)-n:]
	}
	return lines
}
