package agent

import (
	"context"
	"sync"
	"time"

	"github.com/switchyard/switchyard/scheduler/agentapi"
)

// reporter queues task status changes and delivers them in order, in
// batches, retrying until the scheduler accepts them (at-least-once, like
// Mesos status updates).
type reporter struct {
	mu      sync.Mutex
	pending []agentapi.TaskStatus // guarded by mu
	wake    chan struct{}         // capacity 1: "pending grew"
}

func newReporter() *reporter {
	return &reporter{wake: make(chan struct{}, 1)}
}

// maxPending is the queue length beyond which queued statuses are
// compacted to the latest per task (the protocol is level-triggered, so
// the latest status of a task carries all the scheduler needs).
const maxPending = 1000

// push queues one status.
func (r *reporter) push(st agentapi.TaskStatus) {
	r.mu.Lock()
	r.pending = append(r.pending, st)
	if len(r.pending) > maxPending {
		r.pending = compact(r.pending)
	}
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// compact keeps the last status of each task, in the order of those last
// statuses.
func compact(in []agentapi.TaskStatus) []agentapi.TaskStatus {
	last := make(map[string]int, len(in))
	for i, st := range in {
		last[st.TaskID] = i
	}
	out := make([]agentapi.TaskStatus, 0, len(last))
	for i, st := range in {
		if last[st.TaskID] == i {
			out = append(out, st)
		}
	}
	return out
}

// peek returns the queued statuses without removing them.
func (r *reporter) peek() []agentapi.TaskStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]agentapi.TaskStatus(nil), r.pending...)
}

// drop removes the first n statuses (they were accepted).
func (r *reporter) drop(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending = append(r.pending[:0:0], r.pending[n:]...)
}

// run delivers statuses until ctx ends. send delivers one batch;
// accepted is called with each batch the scheduler accepted.
func (r *reporter) run(ctx context.Context, bo backoff, send func(context.Context, []agentapi.TaskStatus) error, accepted func([]agentapi.TaskStatus)) {
	failures := 0
	for {
		batch := r.peek()
		if len(batch) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-r.wake:
				continue
			}
		}
		if err := send(ctx, batch); err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			t := time.NewTimer(bo.delay(failures))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		failures = 0
		r.drop(len(batch))
		accepted(batch)
	}
}

// backoff computes retry delays: Min doubling up to Max.
type backoff struct {
	Min, Max time.Duration
}

func (b backoff) delay(attempt int) time.Duration {
	d := b.Min
	for i := 1; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}
