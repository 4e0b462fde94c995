package controller

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/switchyard/switchyard/lb"
	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/templates"
)

// triggerEvents are the event types after which the configuration is
// brought up to date. Task events (status_update_event,
// health_status_changed_event) are applied from their payload when that
// can be done exactly (incremental.go); every other event, and a task
// event in doubt, makes the whole snapshot be re-read, so a lost or
// repeated event cannot corrupt the state for long (the periodic resync
// re-reads too).
var triggerEvents = []string{
	marathon.EventAPIPost,
	marathon.EventStatusUpdate,
	marathon.EventHealthStatusChanged,
	marathon.EventInstanceHealthChanged,
	marathon.EventAppTerminated,
	marathon.EventDeploymentInfo,
	marathon.EventDeploymentSuccess,
	marathon.EventDeploymentFailed,
	marathon.EventDeploymentStepSuccess,
	marathon.EventDeploymentStepFailure,
	marathon.EventGroupChangeSuccess,
}

// isTrigger reports whether an event of type t makes the state dirty.
func isTrigger(t string) bool {
	if t == marathon.EventStreamAttached {
		return true // (re)connected: anything may have changed meanwhile
	}
	for _, e := range triggerEvents {
		if e == t {
			return true
		}
	}
	return false
}

// eventLabel bounds the "type" label of events_total to known types.
func eventLabel(t string) string {
	switch t {
	case marathon.EventStreamAttached, marathon.EventStreamDetached,
		marathon.EventInstanceChanged, marathon.EventFailedHealthCheck,
		marathon.EventUnhealthyInstanceKill, marathon.EventAddHealthCheck,
		marathon.EventRemoveHealthCheck, marathon.EventGroupChangeFailed:
		return t
	}
	if isTrigger(t) {
		return t
	}
	return "other"
}

// Signal is an operator request, sent by SIGHUP/SIGUSR1 or the
// /_mlb_signal/* endpoints.
type Signal int

const (
	// SignalHUP re-reads Marathon and reloads HAProxy (marathon-lb's SIGHUP).
	SignalHUP Signal = iota + 1
	// SignalUSR1 reloads HAProxy with the current configuration
	// (marathon-lb's SIGUSR1).
	SignalUSR1
)

// Reasons for forced reloads, logged and passed to the applier.
const (
	forceHUP   = "signal hup"
	forceUSR1  = "signal usr1"
	forceCerts = "certificates changed"
)

// restartAware is an applier told that HAProxy was started again with
// the configuration loaded (the file at the config path, which may lack
// runtime updates not flushed yet); its next apply starts from there.
type restartAware interface {
	restarted(loaded []byte)
}

// loopState is owned by the loop goroutine.
type loopState struct {
	apps       []marathon.App
	haveApps   bool
	appIndex   map[string]int  // canonical app id -> index in apps
	model      *model          // the model of the configuration in effect
	dirty      map[string]bool // apps patched from events since the last sync
	pending    bool            // a sync is scheduled
	needFetch  bool            // the next sync must re-read Marathon
	fetchedAt  time.Time       // when the last successful read of Marathon began
	fullRender bool            // the next sync must render every app
	force      string          // reload reason forced on the next sync
	firstDirty time.Time       // when the pending sync was first asked for
	notBefore  time.Time       // backoff: no sync before this
	backoff    time.Duration
	retries    int // failed reloads in a row
	skipped    map[skippedPort]bool
	timer      *time.Timer
	flushTimer *time.Timer // armed while runtime updates wait for flush
	flushArmed bool
	flushFirst time.Time   // first runtime update not flushed yet
	flushing   bool        // a flush check runs on its own goroutine
	screen     *screen     // leaves out the app ports HAProxy rejects; see screener
	retryTimer *time.Timer // armed while a port blamed at load time waits to be tried again
}

// flushResult is the outcome of a flush check run off the loop goroutine.
type flushResult struct {
	done func(context.Context, error) error
	err  error
}

// Runtime updates are validated and written (flushed) once the loop has
// been idle for flushDelay, and at the latest maxFlushDelay after the
// first of them, so that a burst of changes is validated once.
const (
	flushDelay    = 50 * time.Millisecond
	maxFlushDelay = time.Second
)

// markDirty schedules a sync: after Debounce of quiet, but no later than
// MaxDelay after the first request, and never before the backoff ends.
func (c *Controller) markDirty(st *loopState, fetch bool) {
	if fetch {
		st.needFetch = true
	}
	st.fullRender = true
	c.schedule(st)
}

// markApp schedules a sync for a change of one app, patched into st.apps
// from an event: the next sync may take the incremental path.
func (c *Controller) markApp(st *loopState, appID string) {
	st.dirty[appID] = true
	c.schedule(st)
}

// schedule arms the sync timer (see markDirty).
func (c *Controller) schedule(st *loopState) {
	now := time.Now()
	if !st.pending {
		st.pending = true
		st.firstDirty = now
	}
	at := now.Add(c.debounce)
	if limit := st.firstDirty.Add(c.maxDelay); at.After(limit) {
		at = limit
	}
	if at.Before(st.notBefore) {
		at = st.notBefore
	}
	st.timer.Reset(max(time.Until(at), 0))
}

// loop is the single goroutine that owns the state: it takes the initial
// snapshot, starts HAProxy, then turns events, polls, signals and file
// changes into syncs until ctx ends or HAProxy is gone for good.
func (c *Controller) loop(ctx context.Context) error {
	var events <-chan marathon.Event
	if !c.poll {
		events = c.src.Events(ctx, append([]string{marathon.EventStreamAttached}, triggerEvents...))
	}
	st := newLoopState()
	defer st.stop()

	var early []marathon.Event
	if events != nil && c.attachWait > 0 {
		early = c.awaitAttach(ctx, events)
	}
	if err := c.initial(ctx, st); err != nil {
		return err
	}
	for _, ev := range early {
		c.metrics.events.WithLabelValues(eventLabel(ev.Type)).Inc()
		if ev.Type == marathon.EventStreamAttached && st.haveApps {
			continue // received before the read began: the read covers it
		}
		c.onEvent(st, ev)
	}
	c.armRetry(st)

	flushed := make(chan flushResult, 1) // at most one flush in flight
	// Poll mode re-reads every pollInterval; sse mode re-reads every
	// resyncInterval too, in case an event was lost.
	interval := c.resyncInterval
	if c.poll {
		interval = c.pollInterval
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	poll := ticker.C
	for {
		select {
		case <-ctx.Done():
			if c.applier.pendingFlush() {
				// Leave a current file behind for the next start.
				fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				if err := c.applier.flush(fctx); err != nil {
					c.log.Warn("runtime updates not written at shutdown", "err", err)
				}
				cancel()
			}
			return nil
		case <-c.applier.done():
			return ErrHAProxyExited
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			c.metrics.events.WithLabelValues(eventLabel(ev.Type)).Inc()
			c.onEvent(st, ev)
		case <-poll:
			c.markDirty(st, true)
		case <-c.hup:
			c.log.Info("signal: re-reading Marathon and reloading", "signal", "hup")
			st.force = forceHUP
			c.markDirty(st, true)
		case <-c.usr1:
			c.log.Info("signal: reloading", "signal", "usr1")
			st.force = forceUSR1
			c.markDirty(st, false)
		case <-c.templatesChanged:
			if err := c.reloadTemplates(); err != nil {
				c.log.Error("templates directory changed but cannot be loaded; keeping the previous templates", "err", err)
				c.metrics.syncErrors.Inc()
				continue
			}
			c.log.Info("templates changed; re-rendering")
			c.markDirty(st, false)
		case loaded := <-c.haproxyRestarted:
			c.log.Warn("HAProxy was restarted from the configuration file; bringing it up to date")
			if ra, ok := c.applier.(restartAware); ok {
				ra.restarted(loaded)
			}
			if !st.needFetch {
				// An apply that failed while HAProxy was down does not
				// make this one wait for its retry delay.
				st.notBefore = time.Time{}
			}
			c.markDirty(st, false)
		case <-c.certsChanged:
			c.log.Info("certificates changed; reloading")
			st.force = forceCerts
			c.markDirty(st, false)
		case <-st.retryTimer.C:
			c.markDirty(st, false)
		case <-st.timer.C:
			c.sync(ctx, st)
			c.armRetry(st)
			if c.applier.pendingFlush() {
				now := time.Now()
				if !st.flushArmed {
					st.flushArmed, st.flushFirst = true, now
				}
				st.flushTimer.Reset(min(flushDelay, max(st.flushFirst.Add(maxFlushDelay).Sub(now), 0)))
			}
		case <-st.flushTimer.C:
			if st.pending || st.flushing {
				st.flushTimer.Reset(flushDelay / 5) // a sync comes first
				continue
			}
			st.flushArmed = false
			run, done := c.applier.beginFlush()
			if run == nil {
				continue
			}
			st.flushing = true
			go func() { flushed <- flushResult{done: done, err: run(ctx)} }()
		case fr := <-flushed:
			st.flushing = false
			if err := fr.done(ctx, fr.err); err != nil && ctx.Err() == nil {
				c.metrics.syncErrors.Inc()
				c.log.Error("runtime updates not written", "err", err)
			}
			if c.applier.pendingFlush() && !st.flushArmed {
				st.flushArmed, st.flushFirst = true, time.Now()
				st.flushTimer.Reset(flushDelay)
			}
		}
	}
}

// onEvent schedules the sync an event asks for: the incremental path for a
// task event patched into the snapshot, a re-read of Marathon for any other
// trigger.
func (c *Controller) onEvent(st *loopState, ev marathon.Event) {
	if !isTrigger(ev.Type) {
		return
	}
	c.log.Debug("event", "type", ev.Type)
	if ev.Type == marathon.EventStreamAttached && st.haveApps && attachedBefore(ev, st.fetchedAt) {
		// The snapshot was read after the stream attached, so every
		// change since is in the stream: no second read (this spares one
		// at start, where both begin together).
		return
	}
	if id, ok := st.patchEvent(ev); ok {
		c.markApp(st, id)
		return
	}
	c.markDirty(st, true)
}

// awaitAttach waits, at most c.attachWait, for the event stream to attach
// before the first read of Marathon, so that the read covers everything
// the stream does not (otherwise the attach, coming after the read began,
// asks for a second read at once: seconds of CPU at 5,000 apps). It
// returns the events received meanwhile, the attach included, for the loop
// to handle after the read.
func (c *Controller) awaitAttach(ctx context.Context, events <-chan marathon.Event) []marathon.Event {
	timeout := time.NewTimer(c.attachWait)
	defer timeout.Stop()
	var got []marathon.Event
	for {
		select {
		case <-ctx.Done():
			return got
		case <-timeout.C:
			return got
		case ev, ok := <-events:
			if !ok {
				return got
			}
			got = append(got, ev)
			if ev.Type == marathon.EventStreamAttached {
				return got
			}
		}
	}
}

// attachedBefore reports whether the stream attach ev (its timestamp is
// the local time of the connection, to the millisecond) happened before t.
func attachedBefore(ev marathon.Event, t time.Time) bool {
	at, err := time.Parse("2006-01-02T15:04:05.000Z", ev.Timestamp)
	return err == nil && !t.IsZero() && !at.Add(time.Millisecond).After(t)
}

// newLoopState returns a state with its timers stopped.
func newLoopState() *loopState {
	st := &loopState{timer: time.NewTimer(time.Hour), flushTimer: time.NewTimer(time.Hour),
		retryTimer: time.NewTimer(time.Hour), skipped: map[skippedPort]bool{}, dirty: map[string]bool{}}
	st.stop()
	return st
}

func (st *loopState) stop() {
	st.timer.Stop()
	st.flushTimer.Stop()
	st.retryTimer.Stop()
}

// armRetry schedules a sync for when the next app port left out for a load
// failure is due to be tried again.
func (c *Controller) armRetry(st *loopState) {
	if st.screen == nil {
		return
	}
	if next := st.screen.nextRetry(); !next.IsZero() {
		st.retryTimer.Reset(max(time.Until(next), 0))
	}
}

// initial reads the first snapshot and starts HAProxy with it. When
// Marathon cannot be read, HAProxy starts with the configuration already
// at the config path if it is valid (so a restart of lb while Marathon is
// down keeps the routes), else with no apps; the read is retried.
//
// When the first configuration cannot be rendered, or HAProxy rejects it
// or fails to start with it, and no app port can be blamed, HAProxy starts
// with the last good configuration (the one at the config path) or with
// no apps, so that the stats and health endpoints answer; the error is
// reported (log, config_failing, /_switchyard/skipped) and the apps'
// configuration is tried again with the next change, as marathon-lb does.
// Only when even that fails (HAProxy cannot run at all: its stats port is
// taken, the binary is missing, ...) does initial return an error.
func (c *Controller) initial(ctx context.Context, st *loopState) error {
	last, haveLast := c.previousConfig(ctx) // read before anything overwrites it
	fetchStart := time.Now()
	apps, err := c.src.Apps(ctx)
	if err != nil {
		c.metrics.syncErrors.Inc()
		c.log.Warn("cannot read apps from Marathon; will retry", "err", err)
		st.backoff = c.minBackoff
		st.notBefore = time.Now().Add(st.backoff)
		c.markDirty(st, true)
		if prev, ok := c.previousConfig(ctx); ok {
			c.log.Info("starting HAProxy with the existing configuration until Marathon answers", "path", c.configPath)
			c.publish(prev) // before start: HAProxy forwards the admin paths as soon as it listens
			err := c.applier.start(ctx, prev)
			if err == nil {
				return nil
			}
			if !errors.Is(err, ErrValidation) {
				return err // HAProxy itself failed: an empty config would not do better
			}
			c.log.Warn("the existing configuration is invalid; starting with no apps", "err", err)
		}
	} else {
		st.apps, st.haveApps, st.fetchedAt = apps, true, fetchStart
		st.indexApps()
	}
	start := time.Now()
	r, cfg, err := c.renderApps(st)
	if err != nil {
		return c.fallback(ctx, fmt.Errorf("render initial configuration: %w", err), last, haveLast, rendered{})
	}
	c.noteSkipped(st, r.Skipped)
	r, err = c.blame(ctx, st, r, func(r rendered) error {
		c.publish(r) // before start: HAProxy forwards the admin paths as soon as it listens
		return c.applier.start(ctx, r)
	})
	c.noteSkipped(st, r.Skipped)
	if err != nil {
		if ctx.Err() != nil || (!errors.Is(err, ErrValidation) && loadFailure(err) == nil) {
			return err // HAProxy cannot run (binary missing, ...)
		}
		return c.fallback(ctx, err, last, haveLast, r)
	}
	c.setFailing(nil)
	c.setModel(st, cfg, r)
	c.metrics.lastApplyDuration.Set(time.Since(start).Seconds())
	c.metrics.syncs.Inc()
	return nil
}

// fallback starts HAProxy with the last good configuration (last, read
// from the config path) or with no apps, after the first configuration
// (failed) could not be applied (cause). It returns an error only when
// HAProxy cannot start with any of them.
func (c *Controller) fallback(ctx context.Context, cause error, last rendered, haveLast bool, failed rendered) error {
	c.metrics.syncErrors.Inc()
	type choice struct {
		what string
		r    rendered
	}
	var choices []choice
	if haveLast && !bytes.Equal(last.Config, failed.Config) {
		choices = append(choices, choice{"the last good configuration (the one at the config path)", last})
	}
	if r, err := c.rend.render(nil); err == nil {
		choices = append(choices, choice{"no apps", r})
	}
	if m, ok := c.rend.(*modelRenderer); ok {
		d := &modelRenderer{opts: m.opts, set: templates.Default()}
		if r, err := d.render(nil); err == nil {
			choices = append(choices, choice{"no apps and the default templates", r})
		}
	}
	err := cause
	for _, ch := range choices {
		c.publish(ch.r)
		err = c.applier.start(ctx, ch.r)
		if err == nil {
			c.log.Error("the first configuration cannot be applied and no app port can be blamed; "+
				"HAProxy serves a fallback until a change makes a configuration it accepts",
				"err", cause, "serving", ch.what)
			c.setFailing(cause)
			return nil
		}
		if ctx.Err() != nil || (!errors.Is(err, ErrValidation) && loadFailure(err) == nil) {
			break
		}
		c.log.Warn("fallback configuration failed too", "fallback", ch.what, "err", err)
	}
	c.log.Error("HAProxy cannot start with the first configuration nor with a fallback", "err", cause)
	return err
}

// setFailing reports whether the configuration of Marathon's current state
// is in effect (err nil) or not, and why.
func (c *Controller) setFailing(err error) {
	if err == nil {
		c.metrics.configFailing.Set(0)
		c.configErr.Store(nil)
		return
	}
	c.metrics.configFailing.Set(1)
	msg := err.Error()
	c.configErr.Store(&msg)
}

// sync re-reads Marathon when needed, renders, and applies.
func (c *Controller) sync(ctx context.Context, st *loopState) {
	first := st.firstDirty
	st.pending = false
	start := time.Now()
	c.metrics.syncs.Inc()
	if !st.needFetch && !st.fullRender && st.force == "" && len(st.dirty) > 0 && c.incremental(ctx, st) {
		return
	}
	st.fullRender = false
	clear(st.dirty)
	if st.needFetch {
		fetchStart := time.Now()
		apps, err := c.src.Apps(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.metrics.syncErrors.Inc()
			st.backoff = min(max(st.backoff*2, c.minBackoff), c.maxBackoff)
			st.notBefore = time.Now().Add(st.backoff)
			c.log.Warn("cannot read apps from Marathon; the last configuration keeps serving",
				"err", err, "retry_in", st.backoff)
			c.markDirty(st, true)
			return
		}
		st.apps, st.haveApps, st.needFetch, st.fetchedAt = apps, true, false, fetchStart
		st.indexApps()
		st.backoff, st.notBefore = 0, time.Time{}
	}
	r, cfg, err := c.renderApps(st)
	if err != nil {
		c.metrics.syncErrors.Inc()
		c.log.Error("cannot render configuration; the last configuration keeps serving", "err", err)
		return
	}
	c.noteSkipped(st, r.Skipped)
	force := st.force
	var res applyResult
	r, err = c.blame(ctx, st, r, func(r rendered) error {
		var err error
		res, err = c.applier.apply(ctx, r, force)
		return err
	})
	c.noteSkipped(st, r.Skipped)
	var soon *tooSoonError
	switch {
	case errors.As(err, &soon):
		c.log.Debug("reload deferred", "retry_in", soon.wait)
		st.notBefore = time.Now().Add(soon.wait)
		c.markDirty(st, false)
		return
	case errors.Is(err, ErrValidation):
		// Counted and logged by the applier; not retried until the
		// rendered config changes (the applier remembers it).
		st.force = ""
		c.metrics.syncErrors.Inc()
		c.setFailing(err)
		return
	case err != nil:
		if ctx.Err() != nil {
			return
		}
		c.metrics.syncErrors.Inc()
		c.setFailing(err)
		st.retries++
		if c.maxReloadRetries >= 0 && st.retries > c.maxReloadRetries {
			c.log.Error("applying the configuration failed; giving up until the next change", "err", err, "retries", st.retries-1)
			st.retries = 0
			st.force = ""
			return
		}
		wait := max(c.reloadInterval, c.minBackoff)
		c.log.Error("applying the configuration failed; will retry", "err", err, "retry_in", wait, "attempt", st.retries)
		st.notBefore = time.Now().Add(wait)
		c.markDirty(st, false)
		return
	}
	st.retries = 0
	st.force = ""
	c.setFailing(nil)
	c.setModel(st, cfg, r)
	took := time.Since(start)
	c.metrics.lastApplyDuration.Set(took.Seconds())
	c.publish(c.applier.running())
	if res.action != actionNone {
		c.log.Info("configuration applied", "action", res.action, "reason", res.reason,
			"duration", took, "since_event", time.Since(first))
	} else {
		c.log.Debug("configuration unchanged", "duration", took)
	}
}

// screener returns the screen for the current renderer, or nil when bad
// app ports cannot be isolated: --skip-validation, --dry, or a renderer or
// applier without the abilities (test fakes).
func (c *Controller) screener(st *loopState) *screen {
	if c.cfg.SkipValidation || c.cfg.Dry {
		return nil
	}
	m, ok := c.rend.(*modelRenderer)
	if !ok {
		return nil
	}
	p, ok := c.applier.(prober)
	if !ok {
		return nil
	}
	if st.screen == nil || st.screen.m != m {
		st.screen = newScreen(m, p) // new templates: blame afresh
	}
	return st.screen
}

// renderApps renders st.apps, leaving out the app ports HAProxy is known
// to reject. It also returns the model rendered, when the renderer has one
// and no screen keeps it (the screen's model follows the ports it leaves
// out; see setModel).
func (c *Controller) renderApps(st *loopState) (rendered, *lb.Config, error) {
	if s := c.screener(st); s != nil {
		r, err := s.render(st.apps)
		return r, nil, err
	}
	if m, ok := c.rend.(*modelRenderer); ok {
		return m.renderWithModel(st.apps)
	}
	r, err := c.rend.render(st.apps)
	return r, nil, err
}

// setModel records the model of r, the configuration now in effect, for
// the incremental path: cfg, or the screen's model when a screen is in use.
func (c *Controller) setModel(st *loopState, cfg *lb.Config, r rendered) {
	if st.screen != nil && c.screener(st) == st.screen {
		cfg = st.screen.cfg
	}
	st.model = newModel(cfg, r.Skipped)
}

// blame runs do (start or apply) with r. While HAProxy rejects the
// configuration, it leaves out the app ports it can blame and runs do
// again, so that one bad app does not hold back the others. It returns the
// configuration last given to do and do's error.
//
// It does the same when HAProxy fails to load a configuration it accepted
// (start or reload: a service port another process holds, ...), blaming
// the lines HAProxy names; such ports are tried again later (isolate.go).
func (c *Controller) blame(ctx context.Context, st *loopState, r rendered, do func(rendered) error) (rendered, error) {
	err := do(r)
	s := c.screener(st)
	for s != nil && err != nil {
		start, checks := time.Now(), s.checks
		var iso isolation
		var ierr error
		if ce := rejected(err); ce != nil && errors.Is(err, ErrValidation) {
			iso, ierr = s.isolate(ctx, r, ce)
		} else if alerts := loadFailure(err); alerts != nil {
			iso, ierr = s.isolateLoad(ctx, r, alerts, probedOnly(err))
		} else {
			break
		}
		if ierr != nil {
			if ctx.Err() == nil {
				c.log.Error("cannot look for the app ports HAProxy rejects", "err", ierr)
			}
			break
		}
		if len(iso.blamed) == 0 {
			if iso.why == "" {
				break // searched before: already said
			}
			c.log.Warn("no app port to blame for the failed configuration; the previous configuration keeps serving",
				"reason", iso.why, "checks", s.checks-checks, "err", err)
			break
		}
		c.log.Info("leaving out the app ports HAProxy rejects", "ports", len(iso.blamed), "found_by", iso.how,
			"checks", s.checks-checks, "duration", time.Since(start))
		r = iso.next
		err = do(r)
	}
	if err == nil && s != nil {
		s.loaded()
	}
	return r, err
}

// noteSkipped exports the number of app ports skipped because of bad input
// and logs each skipped port once, when it first appears (bad input at
// Warn, policy at Debug).
func (c *Controller) noteSkipped(st *loopState, skipped []skippedPort) {
	bad, rejectedPorts := 0, 0
	now := make(map[skippedPort]bool, len(skipped))
	for _, s := range skipped {
		now[s] = true
		if !s.Filtered {
			bad++
		}
		if s.Rejected {
			rejectedPorts++
		}
		if st.skipped[s] {
			continue
		}
		if s.Filtered {
			c.log.Debug("app port not exposed", "app_id", s.AppID, "port_index", s.PortIndex, "reason", s.Reason)
		} else {
			c.log.Warn("app port skipped", "app_id", s.AppID, "port_index", s.PortIndex, "reason", s.Reason)
		}
	}
	c.metrics.skippedApps.Set(float64(bad))
	c.metrics.invalidApps.Set(float64(rejectedPorts))
	st.skipped = now
	list := slices.Clone(skipped)
	c.skipped.Store(&list)
}

// publish makes r visible to the admin endpoints.
func (c *Controller) publish(r rendered) {
	c.status.Store(&r)
}

// logger returns l, or a logger that discards everything when l is nil.
func logger(l *slog.Logger) *slog.Logger {
	if l != nil {
		return l
	}
	return slog.New(slog.DiscardHandler)
}
