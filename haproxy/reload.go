package haproxy

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"time"
)

// loadingSuccess and loadingFailure are the master's messages at the end of
// a (re)load.
const (
	loadingSuccess = "Loading success"
	loadingFailure = "Loading failure"
)

// Reload performs a seamless reload: the master re-reads the configuration
// file and starts a new worker, which takes over the listening sockets from
// the old one (master-worker mode passes them over its internal socket pair,
// so no connection is refused), while the old worker finishes its
// connections. It asks through the master CLI ("reload") and falls back to
// SIGUSR2, then waits until "show proc" shows a new worker (at most until
// ctx ends, DefaultReloadTimeout without a deadline). When the new
// configuration fails to load, the old worker keeps serving and the error is
// a *ReloadError with HAProxy's [ALERT] lines. reason is logged.
func (p *Process) Reload(ctx context.Context, reason string) error {
	ctx, cancel := withDefaultTimeout(ctx, DefaultReloadTimeout)
	defer cancel()
	p.opMu.Lock()
	defer p.opMu.Unlock()
	m, err := p.masterFor()
	if err != nil {
		return &ReloadError{Reason: reason, Err: err}
	}
	start := time.Now()
	before, err := p.client.ShowProc(ctx)
	if err != nil {
		return &ReloadError{Reason: reason, Err: err}
	}
	oldWorkers := make([]int, 0, len(before.Workers))
	for _, w := range before.Workers {
		oldWorkers = append(oldWorkers, w.PID)
	}
	seq := p.out.seq()
	p.log.Info("reloading haproxy", "reason", reason)
	if err := p.client.Reload(ctx); err != nil {
		p.log.Warn("reload through the master CLI failed, sending SIGUSR2", "err", err)
		if err := syscall.Kill(m.pid, syscall.SIGUSR2); err != nil {
			return &ReloadError{Reason: reason, Err: fmt.Errorf("signal master: %w", err)}
		}
	}

	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var sawWorkerAt time.Time
	for {
		select {
		case <-ctx.Done():
			return &ReloadError{Reason: reason, Err: ctx.Err(), Lines: alertLines(strings.Join(p.out.since(seq), "\n"))}
		case <-m.exited:
			return &ReloadError{Reason: reason, Err: ErrNotRunning, Lines: alertLines(strings.Join(p.out.since(seq), "\n"))}
		case <-tick.C:
		}
		pl, err := p.client.ShowProc(ctx)
		if err != nil || pl.Master.Reloads <= before.Master.Reloads {
			continue // the master is still re-executing
		}
		if pl.FailedReloads > 0 {
			lines := p.waitLine(ctx, seq, loadingFailure)
			return &ReloadError{Reason: reason, Lines: alertLines(strings.Join(lines, "\n"))}
		}
		newWorker := 0
		for _, w := range pl.Workers {
			if !slices.Contains(oldWorkers, w.PID) {
				newWorker = w.PID
			}
		}
		if newWorker == 0 {
			continue
		}
		// The master reports "Loading success" once the new worker is
		// ready; accept its absence after a while (e.g. "quiet" mode), at
		// once for an adopted master, whose output we do not see.
		if sawWorkerAt.IsZero() {
			sawWorkerAt = time.Now()
		}
		if !m.adopted && !p.out.sawSince(loadingSuccess, seq) && time.Since(sawWorkerAt) < time.Second {
			continue
		}
		clear(p.pending)
		p.log.Info("haproxy reloaded", "reason", reason, "worker_pid", newWorker, "duration", time.Since(start))
		return nil
	}
}

// waitLine waits briefly for a line containing s to arrive from HAProxy's
// output and returns the lines since seq.
func (p *Process) waitLine(ctx context.Context, seq int, s string) []string {
	deadline := time.Now().Add(500 * time.Millisecond)
	for {
		if p.out.sawSince(s, seq) || time.Now().After(deadline) || ctx.Err() != nil {
			return p.out.since(seq)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
