package controller

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/switchyard/switchyard/haproxy"
)

// process is the HAProxy master lb owns; *haproxy.Process satisfies it.
// PIDs must be safe to call from another goroutine.
type process interface {
	Start(ctx context.Context) error
	Reload(ctx context.Context, reason string) error
	Apply(ctx context.Context, change haproxy.Change) error
	PIDs(ctx context.Context) ([]int, error)
	Stop(ctx context.Context) error
	Done() <-chan struct{}
}

// haproxyApplier puts configurations into effect: validate, write
// atomically, then a runtime API update when only servers changed, else a
// reload (of the HAProxy master lb owns, or through --command). It is used
// by the loop goroutine only, except pids.
type haproxyApplier struct {
	log *slog.Logger
	m   *metrics

	proc process // nil with --command or --dry
	// newProc makes a fresh HAProxy process for another start after a
	// failed one (a process starts once); nil keeps proc.
	newProc func() process
	started bool       // start has been called
	procMu  sync.Mutex // guards proc's changes (by start) against pids
	check   func(ctx context.Context, cfg []byte) error
	// preload, when set (lb runs HAProxy itself), replaces check before a
	// reload: HAProxy's own reload, which keeps the old worker when the
	// configuration fails to load, stands in for haproxy -c, and check
	// runs only after a failed reload (see reload). preload is the quick
	// in-process part of validation (the config-parser pass).
	// It is given the configuration in effect (prev) as well, so that it
	// reads only what changed.
	preload func(ctx context.Context, prev, cfg []byte) error
	diff    func(old, new []byte) (haproxy.Change, error)
	command string

	configPath     string
	mapDir         string
	skipValidation bool
	dry            bool
	dryOut         io.Writer // where --dry prints configs; nil: the log
	minInterval    time.Duration

	cur        rendered          // in effect in HAProxy
	written    rendered          // at the config path (validated)
	unflushed  bool              // cur came from runtime updates and is not written yet
	gen        uint64            // bumped when written changes by a reload
	failed     [sha256.Size]byte // hash of the last config that failed validation
	failedErr  error             // why it failed (HAProxy's messages)
	lastReload time.Time
}

// validate runs haproxy -c on cfg (unless --skip-validation); see verdict.
func (a *haproxyApplier) validate(ctx context.Context, r rendered) error {
	if a.skipValidation {
		return nil
	}
	return a.verdict(ctx, r, a.check(ctx, r.Config))
}

// verdict interprets the result of checking r. A config HAProxy rejects
// (haproxy.ErrInvalidConfig) gives an ErrValidation error, is counted and
// remembered so the same config is not tried again; other errors (binary
// missing, ...) are not a verdict and are retried.
func (a *haproxyApplier) verdict(ctx context.Context, r rendered, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if !errors.Is(err, haproxy.ErrInvalidConfig) {
		return fmt.Errorf("validate: %w", err)
	}
	a.failed, a.failedErr = hashRendered(r), err
	a.m.validationFailures.Inc()
	a.log.Error("new configuration failed validation and is not applied", "err", err)
	return fmt.Errorf("%w: %w", ErrValidation, err)
}

func hashRendered(r rendered) [sha256.Size]byte {
	h := sha256.New()
	h.Write(r.Config)
	for _, k := range sortedKeys(r.Maps) {
		h.Write([]byte{0})
		h.Write([]byte(k))
		h.Write([]byte{0})
		h.Write(r.Maps[k])
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

func sortedKeys(m map[string][]byte) []string {
	return slices.Sorted(maps.Keys(m))
}

// write puts the config (and map files) in place atomically.
func (a *haproxyApplier) write(r rendered) error {
	for _, name := range sortedKeys(r.Maps) {
		p := filepath.Join(a.mapDir, name)
		if err := haproxy.WriteFileAtomic(p, r.Maps[name], 0o644); err != nil {
			return fmt.Errorf("write map %s: %w", p, err)
		}
	}
	if err := haproxy.WriteFileAtomic(a.configPath, r.Config, 0o644); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}

// writeMaps writes the map files. They are written before validation
// because haproxy -c reads them, while the running HAProxy reads them only
// on reload; after a failed validation the previous ones are put back.
func (a *haproxyApplier) writeMaps(m map[string][]byte) error {
	for _, name := range sortedKeys(m) {
		p := filepath.Join(a.mapDir, name)
		if err := haproxy.WriteFileAtomic(p, m[name], 0o644); err != nil {
			return fmt.Errorf("write map %s: %w", p, err)
		}
	}
	return nil
}

// probe validates r as reload would (its map files written first, the
// previous ones put back after) without applying it. It never counts nor
// logs a failure: the caller is looking for the app ports to blame.
func (a *haproxyApplier) probe(ctx context.Context, r rendered) error {
	if a.skipValidation || a.dry {
		return nil
	}
	if len(r.Maps) > 0 {
		if err := a.writeMaps(r.Maps); err != nil {
			return err
		}
		defer func() {
			if err := a.writeMaps(a.written.Maps); err != nil {
				a.log.Error("cannot restore previous map files", "err", err)
			}
		}()
	}
	return a.check(ctx, r.Config)
}

// printDry shows a configuration rendered with --dry.
func (a *haproxyApplier) printDry(r rendered) {
	a.log.Info("dry run: configuration rendered, HAProxy untouched", "bytes", len(r.Config))
	if a.dryOut == nil {
		a.log.Info("dry run configuration", "config", string(r.Config))
		return
	}
	if _, err := a.dryOut.Write(r.Config); err != nil {
		a.log.Warn("dry run: cannot print configuration", "err", err)
	}
}

func (a *haproxyApplier) start(ctx context.Context, r rendered) error {
	if a.dry {
		a.printDry(r)
		a.cur = r
		return nil
	}
	if err := a.writeMaps(r.Maps); err != nil {
		return err
	}
	if err := a.validate(ctx, r); err != nil {
		return fmt.Errorf("initial configuration: %w", err)
	}
	if err := a.write(r); err != nil {
		return err
	}
	if a.started && a.proc != nil && a.newProc != nil {
		p := a.newProc() // the last start failed: its process is done
		a.procMu.Lock()
		a.proc = p
		a.procMu.Unlock()
	}
	a.started = true
	if a.proc == nil {
		if err := a.runCommand(ctx); err != nil {
			return err
		}
	} else if err := a.proc.Start(ctx); err != nil {
		if loadFailure(err) != nil {
			a.m.loadFailures.Inc()
		}
		return fmt.Errorf("start haproxy: %w", err)
	}
	a.m.reloads.WithLabelValues(reloadInitial).Inc()
	a.lastReload = time.Now()
	a.cur, a.written = r, r
	a.gen++
	a.log.Info("HAProxy started", "config", a.configPath)
	return nil
}

func (a *haproxyApplier) apply(ctx context.Context, r rendered, force string) (applyResult, error) {
	same := bytes.Equal(r.Config, a.cur.Config) && maps.EqualFunc(r.Maps, a.cur.Maps, bytes.Equal)
	if same && force == "" {
		return applyResult{action: actionNone}, nil
	}
	if a.dry {
		a.printDry(r)
		a.cur = r
		return applyResult{action: actionDry}, nil
	}
	if force == "" && hashRendered(r) == a.failed {
		if a.failedErr != nil {
			// Keep HAProxy's messages, so the controller can still blame
			// the app ports responsible (after a template reload, say).
			return applyResult{}, fmt.Errorf("%w: unchanged since the last failure: %w", ErrValidation, a.failedErr)
		}
		return applyResult{}, fmt.Errorf("%w: unchanged since the last failure", ErrValidation)
	}
	mapsSame := maps.EqualFunc(r.Maps, a.cur.Maps, bytes.Equal)

	kind, reason := reloadStructural, force
	switch {
	case force != "":
		kind = reloadSignal
		if force == forceCerts {
			kind = reloadCerts
		}
	case a.proc == nil:
		reason = "configuration changed (reload command)"
	case !mapsSame:
		reason = "map files changed"
	default:
		if why := sectionsChanged(a.cur.Config, r.Config); why != "" {
			// A section added or removed means a reload: no need for
			// the full comparison (about 0.1 s at 5,000 apps).
			reason = why
			break
		}
		ch, err := a.diff(a.cur.Config, r.Config)
		switch {
		case err != nil:
			reason = fmt.Sprintf("cannot compare configurations: %v", err)
		case ch.Reload:
			reason = ch.Reason
		default:
			res, err := a.runtime(ctx, r, ch)
			if err == nil {
				return res, nil
			}
			kind = reloadRuntimeError
			reason = fmt.Sprintf("runtime API update failed: %v", err)
			a.log.Warn("runtime API update failed; reloading instead", "err", err)
		}
	}
	return a.reload(ctx, r, kind, reason)
}

// runtime applies a servers-only change through the runtime API. The new
// file is written later, by flush, once the loop is idle, without
// haproxy -c: it differs from the file last loaded only in server lines,
// each of which config-parser read (haproxy.Diff) and HAProxy itself
// accepted ("add server", "set server"), so no validation is needed and an
// invalid configuration is still never written nor loaded. A runtime
// update HAProxy refuses makes apply reload instead, and a reload of a
// configuration HAProxy rejects leaves the old worker serving.
func (a *haproxyApplier) runtime(ctx context.Context, r rendered, ch haproxy.Change) (applyResult, error) {
	if ch.IsZero() {
		// Only comments or spacing differ: nothing to tell HAProxy, but
		// the file is still rewritten by the next flush.
		a.cur, a.unflushed = r, true
		return applyResult{action: actionNone}, nil
	}
	if err := a.proc.Apply(ctx, ch); err != nil {
		return applyResult{}, err
	}
	a.m.runtimeUpdates.Inc()
	a.cur = r
	a.unflushed = true
	return applyResult{action: actionRuntime,
		reason: fmt.Sprintf("servers: %d added, %d removed, %d updated", len(ch.Add), len(ch.Remove), len(ch.Update))}, nil
}

// applyChange makes r the running configuration when the caller already
// knows that it differs from the running one only by the server
// operations ch (the controller's incremental path, which compares one
// app's sections instead of the whole configuration). It reloads when the
// runtime API refuses ch. handled is false, and nothing done, with --dry
// and --command: the caller then goes the full way.
func (a *haproxyApplier) applyChange(ctx context.Context, r rendered, ch haproxy.Change) (res applyResult, handled bool, err error) {
	if a.dry || a.proc == nil || a.cur.Config == nil {
		// --dry prints every configuration; --command reloads for any
		// change: both take the full path.
		return applyResult{}, false, nil
	}
	res, err = a.runtime(ctx, r, ch)
	if err == nil {
		return res, true, nil
	}
	a.log.Warn("runtime API update failed; reloading instead", "err", err)
	res, err = a.reload(ctx, r, reloadRuntimeError, fmt.Sprintf("runtime API update failed: %v", err))
	return res, true, err
}

// pendingFlush reports whether runtime changes are waiting for flush.
func (a *haproxyApplier) pendingFlush() bool { return a.unflushed }

// beginFlush starts writing the configuration made current by runtime
// updates. run (writing and syncing a temporary file next to the config
// path: milliseconds for a large configuration) is safe to call on another
// goroutine, so the loop keeps applying changes meanwhile; done must then
// be called on the loop goroutine with run's result: it renames the file
// into place unless a reload wrote a newer one meanwhile. Both are nil
// when nothing waits for a flush.
func (a *haproxyApplier) beginFlush() (run func(context.Context) error, done func(context.Context, error) error) {
	if !a.unflushed {
		return nil, nil
	}
	snap, gen, path := a.cur, a.gen, a.configPath
	var tmp string
	run = func(ctx context.Context) error {
		var err error
		tmp, err = writeTemp(path, snap.Config, 0o644)
		return err
	}
	done = func(ctx context.Context, err error) error {
		defer func() {
			if tmp != "" {
				_ = os.Remove(tmp)
			}
		}()
		if gen != a.gen {
			return nil // a reload has written a newer file meanwhile
		}
		if err != nil {
			return err // retried at the next flush
		}
		if !maps.EqualFunc(snap.Maps, a.written.Maps, bytes.Equal) {
			if err := a.writeMaps(snap.Maps); err != nil {
				return err
			}
		}
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("write config: %w", err)
		}
		tmp = ""
		a.written = snap
		if bytes.Equal(a.cur.Config, snap.Config) {
			a.unflushed = false
		}
		return nil
	}
	return run, done
}

// flush is beginFlush and its completion, synchronously.
func (a *haproxyApplier) flush(ctx context.Context) error {
	run, done := a.beginFlush()
	if run == nil {
		return nil
	}
	return done(ctx, run(ctx))
}

// reload validates, writes and reloads.
func (a *haproxyApplier) reload(ctx context.Context, r rendered, kind, reason string) (applyResult, error) {
	if a.minInterval > 0 {
		if wait := a.minInterval - time.Since(a.lastReload); wait > 0 {
			return applyResult{}, &tooSoonError{wait: wait}
		}
	}
	if a.proc != nil {
		if alerts := busyBinds(ctx, r.Config, a.cur.Config); len(alerts) > 0 {
			return applyResult{}, &bindBusyError{alerts: alerts}
		}
	}
	if a.proc != nil && a.preload != nil && !a.skipValidation {
		if err := a.reloadUnchecked(ctx, r, reason); err != nil {
			return applyResult{}, err
		}
	} else {
		old := a.written.Maps
		if err := a.writeMaps(r.Maps); err != nil {
			return applyResult{}, err
		}
		if err := a.validate(ctx, r); err != nil {
			if rerr := a.writeMaps(old); rerr != nil {
				a.log.Error("cannot restore previous map files", "err", rerr)
			}
			return applyResult{}, err
		}
		if err := a.write(r); err != nil {
			return applyResult{}, err
		}
		a.log.Info("reloading HAProxy", "reason", reason)
		if a.proc == nil {
			if err := a.runCommand(ctx); err != nil {
				return applyResult{}, err
			}
		} else if err := a.proc.Reload(ctx, reason); err != nil {
			if loadFailure(err) != nil {
				a.m.loadFailures.Inc()
				a.loadFailed()
			}
			return applyResult{}, fmt.Errorf("reload haproxy: %w", err)
		}
	}
	a.m.reloads.WithLabelValues(kind).Inc()
	a.lastReload = time.Now()
	a.cur, a.written, a.unflushed = r, r, false
	a.gen++
	return applyResult{action: actionReload, reason: reason}, nil
}

// reloadUnchecked reloads the HAProxy lb owns with r without running
// haproxy -c first: HAProxy's reload stands in for it, since a
// configuration that fails to load is never loaded (the old worker keeps
// serving; TestFailedReloadKeepsOldWorker). Only the in-process
// config-parser pass (preload) runs before. The files are written without
// waiting for the disk, and made durable while HAProxy reloads. When the
// reload fails, haproxy -c tells a configuration HAProxy rejects
// (ErrValidation, remembered as for a failed validation) from one it
// cannot load (a busy port: a load failure).
func (a *haproxyApplier) reloadUnchecked(ctx context.Context, r rendered, reason string) error {
	if err := a.verdict(ctx, r, a.preload(ctx, a.cur.Config, r.Config)); err != nil {
		return err
	}
	paths, err := a.writeVisible(r)
	if err != nil {
		if a.written.Config != nil {
			if werr := a.write(a.written); werr != nil {
				a.log.Error("cannot restore the previous configuration file", "err", werr)
			}
		}
		return err
	}
	synced := make(chan error, 1)
	go func() { synced <- syncFiles(paths) }()
	a.log.Info("reloading HAProxy", "reason", reason)
	err = a.proc.Reload(ctx, reason)
	if serr := <-synced; serr != nil {
		a.log.Warn("configuration written but not synced to disk", "err", serr)
	}
	if err == nil {
		return nil
	}
	err = fmt.Errorf("reload haproxy: %w", err)
	if loadFailure(err) == nil {
		return err // no verdict (a timeout, ...): retried by the loop
	}
	if verr := a.validate(ctx, r); errors.Is(verr, ErrValidation) {
		err = verr
	}
	if !errors.Is(err, ErrValidation) {
		a.m.loadFailures.Inc()
	}
	a.loadFailed()
	return err
}

// loadFailed is told that HAProxy refused the configuration at the config
// path, so the old worker keeps serving the previous one: it puts that one
// back, so that nothing loads the failed one later (a restart of HAProxy,
// the undo of runtime updates).
func (a *haproxyApplier) loadFailed() {
	if werr := a.write(a.written); werr != nil {
		a.log.Error("cannot restore the previous configuration file", "err", werr)
	}
}

// runCommand runs --command with sh -c.
func (a *haproxyApplier) runCommand(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "/bin/sh", "-c", a.command).CombinedOutput()
	if err != nil {
		return fmt.Errorf("reload command %q: %w: %s", a.command, err, bytes.TrimSpace(out))
	}
	a.log.Debug("reload command done", "output", string(bytes.TrimSpace(out)))
	return nil
}

func (a *haproxyApplier) running() rendered { return a.cur }

// restarted records that HAProxy was started again with the configuration
// loaded (nil: unknown), so that the next apply brings it from there to
// the current configuration: through the runtime API when only servers
// differ (runtime updates not flushed to the file yet), else by a reload.
func (a *haproxyApplier) restarted(loaded []byte) {
	cur := a.written
	cur.Config = loaded
	a.cur = cur
}

func (a *haproxyApplier) pids(ctx context.Context) ([]int, error) {
	a.procMu.Lock()
	p := a.proc
	a.procMu.Unlock()
	if p == nil {
		return nil, errors.New("HAProxy is not run by lb (--command or --dry)")
	}
	return p.PIDs(ctx)
}

func (a *haproxyApplier) done() <-chan struct{} {
	if a.proc == nil {
		return nil
	}
	return a.proc.Done()
}

func (a *haproxyApplier) stop(ctx context.Context) error {
	if a.proc == nil {
		return nil
	}
	return a.proc.Stop(ctx)
}
