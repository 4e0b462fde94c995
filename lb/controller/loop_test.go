package controller

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
)

// runLoop runs h's loop in the current synctest bubble and returns a
// function that stops it and returns its error.
func runLoop(t *testing.T, h *harness) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- h.c.loop(ctx) }()
	synctest.Wait()
	return func() error {
		cancel()
		return <-errc
	}
}

func TestLoopInitialSnapshotStartsHAProxy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{}, app("/web", "10.0.0.1:31000"))
		stop := runLoop(t, h)
		cur, applied, _, _ := h.app.snapshot()
		assert.Equal(t, "backend /web\n  server 10.0.0.1:[31000]\n", cur)
		assert.Empty(t, applied, "start is not an apply")
		assert.Equal(t, string(h.c.status.Load().Config), cur, "admin endpoints see the running config")
		require.NoError(t, stop())
	})
}

func TestLoopCoalescesBursts(t *testing.T) {
	tests := []struct {
		name    string
		events  int
		spacing time.Duration
		maxRead int // reads of /v2/apps after the initial one
		minRead int
	}{
		// All at once: one sync.
		{name: "1000 at once", events: 1000, spacing: 0, minRead: 1, maxRead: 1},
		// 1,000 events over one second: bounded by MaxDelay (100 ms), so
		// about ten syncs, never a thousand.
		{name: "1000 over 1s", events: 1000, spacing: time.Millisecond, minRead: 5, maxRead: 12},
		// Events further apart than the debounce are each applied.
		{name: "3 spaced 50ms", events: 3, spacing: 50 * time.Millisecond, minRead: 3, maxRead: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, Config{}, app("/web", "10.0.0.1:31000"))
				stop := runLoop(t, h)
				before := h.src.readCount()
				for i := range tc.events {
					h.src.set(app("/web", fmt.Sprintf("10.0.0.1:%d", 31001+i)))
					h.src.publish(marathon.EventStatusUpdate)
					if tc.spacing > 0 {
						time.Sleep(tc.spacing)
					}
				}
				time.Sleep(time.Second)
				synctest.Wait()
				reads := h.src.readCount() - before
				assert.GreaterOrEqual(t, reads, tc.minRead, "reads of /v2/apps")
				assert.LessOrEqual(t, reads, tc.maxRead, "reads of /v2/apps")
				cur, _, _, _ := h.app.snapshot()
				assert.Equal(t, fmt.Sprintf("backend /web\n  server 10.0.0.1:[%d]\n", 31000+tc.events), cur,
					"the newest state wins")
				assert.Equal(t, float64(tc.events), h.metric(t, h.c.metrics.events.WithLabelValues(marathon.EventStatusUpdate)))
				require.NoError(t, stop())
			})
		})
	}
}

func TestLoopLoneEventAppliedAfterDebounce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{}, app("/web", "10.0.0.1:31000"))
		stop := runLoop(t, h)
		h.src.set(app("/web", "10.0.0.1:31001"))
		start := time.Now()
		h.src.publish(marathon.EventStatusUpdate)
		for {
			synctest.Wait()
			if cur, _, _, _ := h.app.snapshot(); cur == "backend /web\n  server 10.0.0.1:[31001]\n" {
				break
			}
			time.Sleep(time.Millisecond)
		}
		assert.Equal(t, DefaultDebounce, time.Since(start), "applied right after the debounce")
		require.NoError(t, stop())
	})
}

func TestLoopIgnoresNonTriggerEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{}, app("/web", "10.0.0.1:31000"))
		stop := runLoop(t, h)
		before := h.src.readCount()
		h.src.publish(marathon.EventFailedHealthCheck)
		h.src.publish("some_garbage_event")
		time.Sleep(time.Second)
		synctest.Wait()
		assert.Equal(t, before, h.src.readCount(), "no re-read")
		assert.Equal(t, 1.0, h.metric(t, h.c.metrics.events.WithLabelValues("other")))
		require.NoError(t, stop())
	})
}

func TestLoopMarathonDownKeepsConfig(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{}, app("/web", "10.0.0.1:31000"))
		stop := runLoop(t, h)
		h.src.fail(errDown)
		h.src.publish(marathon.EventStatusUpdate)
		time.Sleep(3 * time.Second)
		synctest.Wait()
		cur, applied, _, _ := h.app.snapshot()
		assert.Equal(t, "backend /web\n  server 10.0.0.1:[31000]\n", cur, "last config keeps serving")
		assert.Empty(t, applied)
		errs := h.metric(t, h.c.metrics.syncErrors)
		assert.GreaterOrEqual(t, errs, 3.0, "retried with backoff")
		assert.LessOrEqual(t, errs, 8.0, "backoff grows: 0.1+0.2+0.4+0.8+1.6 s")

		// Marathon is back: the retry picks up the new state without any event.
		h.src.set(app("/web", "10.0.0.2:31000"))
		h.src.fail(nil)
		time.Sleep(20 * time.Second)
		synctest.Wait()
		cur, _, _, _ = h.app.snapshot()
		assert.Equal(t, "backend /web\n  server 10.0.0.2:[31000]\n", cur)
		require.NoError(t, stop())
	})
}

func TestLoopMarathonDownAtStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{})
		h.src.fail(errDown)
		stop := runLoop(t, h)
		cur, _, _, _ := h.app.snapshot()
		assert.True(t, h.app.started, "HAProxy starts with no apps so the stats endpoint answers")
		assert.Empty(t, cur)
		h.src.set(app("/web", "10.0.0.1:31000"))
		h.src.fail(nil)
		time.Sleep(time.Second)
		synctest.Wait()
		cur, _, _, _ = h.app.snapshot()
		assert.Equal(t, "backend /web\n  server 10.0.0.1:[31000]\n", cur)
		require.NoError(t, stop())
	})
}

func TestLoopResyncOnStreamAttached(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{}, app("/web", "10.0.0.1:31000"))
		stop := runLoop(t, h)
		// Apps change while the stream is down: no event arrives ...
		h.src.set(app("/web", "10.0.0.1:31000"), app("/api", "10.0.0.3:31500"))
		time.Sleep(time.Second)
		synctest.Wait()
		cur, _, _, _ := h.app.snapshot()
		require.NotContains(t, cur, "/api")
		// ... until the stream reattaches.
		h.src.publish(marathon.EventStreamAttached)
		time.Sleep(time.Second)
		synctest.Wait()
		cur, _, _, _ = h.app.snapshot()
		assert.Contains(t, cur, "backend /api")
		require.NoError(t, stop())
	})
}

func TestLoopValidationFailureNotRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{}, app("/web", "10.0.0.1:31000"))
		stop := runLoop(t, h)
		h.app.errs = []error{fmt.Errorf("check: %w", ErrValidation)}
		h.src.set(app("/web", "10.0.0.1:31001"))
		h.src.publish(marathon.EventStatusUpdate)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		_, applied, _, calls := h.app.snapshot()
		assert.Equal(t, 1, calls, "a config that failed validation is not retried by itself")
		assert.Empty(t, applied)
		assert.Equal(t, 1.0, h.metric(t, h.c.metrics.syncErrors))
		require.NoError(t, stop())
	})
}

func TestLoopApplyErrorRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{MaxReloadRetries: 2, ReloadInterval: time.Second}, app("/web", "10.0.0.1:31000"))
		stop := runLoop(t, h)
		boom := fmt.Errorf("reload failed")
		h.app.errs = []error{boom, boom, boom, boom}
		h.src.set(app("/web", "10.0.0.1:31001"))
		h.src.publish(marathon.EventStatusUpdate)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		_, applied, _, calls := h.app.snapshot()
		assert.Equal(t, 3, calls, "first attempt plus --max-reload-retries=2")
		assert.Empty(t, applied)
		// The next change is tried again: one more error, then success.
		h.src.set(app("/web", "10.0.0.1:31002"))
		h.src.publish(marathon.EventStatusUpdate)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		cur, applied, _, calls := h.app.snapshot()
		assert.Equal(t, "backend /web\n  server 10.0.0.1:[31002]\n", cur)
		assert.Len(t, applied, 1)
		assert.Equal(t, 5, calls)
		assert.Equal(t, 4.0, h.metric(t, h.c.metrics.syncErrors))
		require.NoError(t, stop())
	})
}

func TestLoopReloadTooSoonDeferred(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{}, app("/web", "10.0.0.1:31000"))
		stop := runLoop(t, h)
		h.app.errs = []error{&tooSoonError{wait: 2 * time.Second}}
		h.src.set(app("/web", "10.0.0.1:31001"))
		h.src.publish(marathon.EventStatusUpdate)
		start := time.Now()
		for {
			time.Sleep(100 * time.Millisecond)
			synctest.Wait()
			if _, applied, _, _ := h.app.snapshot(); len(applied) == 1 {
				break
			}
		}
		took := time.Since(start)
		assert.GreaterOrEqual(t, took, 2*time.Second)
		assert.Less(t, took, 3*time.Second)
		require.NoError(t, stop())
	})
}

func TestLoopSignals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{}, app("/web", "10.0.0.1:31000"))
		stop := runLoop(t, h)
		before := h.src.readCount()
		h.c.Signal(SignalUSR1)
		time.Sleep(time.Second)
		synctest.Wait()
		_, _, forces, _ := h.app.snapshot()
		assert.Equal(t, []string{"signal usr1"}, forces)
		assert.Equal(t, before, h.src.readCount(), "usr1 does not re-read Marathon")

		h.c.Signal(SignalHUP)
		time.Sleep(time.Second)
		synctest.Wait()
		_, _, forces, _ = h.app.snapshot()
		assert.Equal(t, []string{"signal usr1", "signal hup"}, forces)
		assert.Equal(t, before+1, h.src.readCount(), "hup re-reads Marathon")
		require.NoError(t, stop())
	})
}

func TestLoopPollMode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{Poll: true, PollInterval: 10 * time.Second}, app("/web", "10.0.0.1:31000"))
		stop := runLoop(t, h)
		h.src.set(app("/web", "10.0.0.9:31000"))
		h.src.publish(marathon.EventStatusUpdate) // ignored: no stream in poll mode
		time.Sleep(5 * time.Second)
		synctest.Wait()
		cur, _, _, _ := h.app.snapshot()
		assert.Contains(t, cur, "10.0.0.1", "not yet polled")
		time.Sleep(6 * time.Second)
		synctest.Wait()
		cur, _, _, _ = h.app.snapshot()
		assert.Contains(t, cur, "10.0.0.9", "polled after --poll-interval")
		require.NoError(t, stop())
	})
}

func TestLoopResyncInSSEMode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{}, app("/web", "10.0.0.1:31000"))
		stop := runLoop(t, h)
		// A change whose event was lost on the way.
		h.src.set(app("/web", "10.0.0.9:31000"))
		time.Sleep(DefaultResyncInterval - time.Minute)
		synctest.Wait()
		cur, _, _, _ := h.app.snapshot()
		assert.Contains(t, cur, "10.0.0.1", "no event, not yet re-read")
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		cur, _, _, _ = h.app.snapshot()
		assert.Contains(t, cur, "10.0.0.9", "re-read every 300 s, as marathon-lb")
		require.NoError(t, stop())
	})
}

func TestLoopSkippedApps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{}, app("/web", "10.0.0.1:31000"), app("/bad-one"), app("/bad-two"))
		stop := runLoop(t, h)
		assert.Equal(t, 2.0, h.metric(t, h.c.metrics.skippedApps))
		cur, _, _, _ := h.app.snapshot()
		assert.Equal(t, "backend /web\n  server 10.0.0.1:[31000]\n", cur, "good apps still served")
		require.NoError(t, stop())
	})
}

func TestLoopHAProxyExit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		errc := make(chan error, 1)
		go func() { errc <- h.c.loop(ctx) }()
		synctest.Wait()
		close(h.app.exited)
		assert.ErrorIs(t, <-errc, ErrHAProxyExited)
	})
}

func TestLoopTemplatesChanged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{}, app("/web", "10.0.0.1:31000"))
		stop := runLoop(t, h)
		before := h.src.readCount()
		calls := h.rnd.calls
		notify(h.c.templatesChanged)
		time.Sleep(time.Second)
		synctest.Wait()
		assert.Equal(t, calls+1, h.rnd.calls, "re-rendered")
		assert.Equal(t, before, h.src.readCount(), "from the cached snapshot")
		require.NoError(t, stop())
	})
}

func TestLoopFlushesRuntimeUpdatesWhenIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{}, app("/web", "10.0.0.1:31000"))
		h.app.runtime = true
		stop := runLoop(t, h)
		// Changes 20 ms apart for 200 ms: each applied, none flushed
		// while they keep coming.
		for i := range 10 {
			h.src.set(app("/web", fmt.Sprintf("10.0.0.1:%d", 31001+i)))
			h.src.publish(marathon.EventStatusUpdate)
			time.Sleep(20 * time.Millisecond)
		}
		_, applied, _, _ := h.app.snapshot()
		assert.Len(t, applied, 10)
		time.Sleep(time.Second)
		synctest.Wait()
		assert.Equal(t, 1, h.app.flushes, "one validation and write for the burst")
		assert.False(t, h.app.pendingFlush())
		require.NoError(t, stop())
	})
}

func TestLoopMarathonDownAtStartKeepsPreviousConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	require.NoError(t, os.WriteFile(path, []byte("backend /from-last-run\n"), 0o644))
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{ConfigPath: path})
		h.src.fail(errDown)
		stop := runLoop(t, h)
		cur, _, _, _ := h.app.snapshot()
		assert.Equal(t, "backend /from-last-run\n", cur, "routes of the last run kept while Marathon is down")
		h.src.set(app("/web", "10.0.0.1:31000"))
		h.src.fail(nil)
		time.Sleep(time.Second)
		synctest.Wait()
		cur, _, _, _ = h.app.snapshot()
		assert.Equal(t, "backend /web\n  server 10.0.0.1:[31000]\n", cur)
		require.NoError(t, stop())
	})
}

func TestLoopWaitsForTheStreamBeforeTheFirstRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{}, app("/web", "10.0.0.1:31000"))
		h.c.attachWait = time.Second
		h.src.publish(marathon.EventStreamAttached)
		stop := runLoop(t, h)
		time.Sleep(time.Second) // fake time: any sync would have run
		synctest.Wait()
		assert.Equal(t, 1, h.src.readCount(), "the first read covers the attach")
		assert.Equal(t, 1.0, h.metric(t, h.c.metrics.events.WithLabelValues(marathon.EventStreamAttached)))
		require.NoError(t, stop())
	})
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{}, app("/web", "10.0.0.1:31000"))
		h.c.attachWait = time.Second
		stop := runLoop(t, h) // no attach: the read happens after attachWait
		assert.Equal(t, 0, h.src.readCount())
		time.Sleep(time.Second)
		synctest.Wait()
		assert.Equal(t, 1, h.src.readCount())
		h.src.publish(marathon.EventStreamAttached) // late: read again
		time.Sleep(time.Second)
		synctest.Wait()
		assert.Equal(t, 2, h.src.readCount())
		require.NoError(t, stop())
	})
}
