package agent

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/scheduler/agentapi"
)

func st(id, state string) agentapi.TaskStatus { return agentapi.TaskStatus{TaskID: id, State: state} }

func TestReporterRetriesInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newReporter()
		var got []agentapi.TaskStatus
		var attempts []time.Duration
		start := time.Now()
		fails := 2
		send := func(_ context.Context, b []agentapi.TaskStatus) error {
			attempts = append(attempts, time.Since(start))
			if fails > 0 {
				fails--
				return errors.New("scheduler down")
			}
			got = append(got, b...)
			return nil
		}
		var accepted int
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			r.run(ctx, backoff{Min: time.Second, Max: 4 * time.Second}, send, func(b []agentapi.TaskStatus) { accepted += len(b) })
		}()
		r.push(st("a", "TASK_STAGING"))
		r.push(st("a", "TASK_RUNNING"))
		r.push(st("b", "TASK_FAILED"))
		time.Sleep(time.Minute)
		synctest.Wait()
		cancel()
		<-done
		assert.Equal(t, []agentapi.TaskStatus{st("a", "TASK_STAGING"), st("a", "TASK_RUNNING"), st("b", "TASK_FAILED")}, got)
		assert.Equal(t, []time.Duration{0, time.Second, 3 * time.Second}, attempts, "retries back off 1s then 2s")
		assert.Equal(t, 3, accepted)
		assert.Empty(t, r.peek())
	})
}

func TestReporterCompacts(t *testing.T) {
	r := newReporter()
	for i := range maxPending + 1 {
		r.push(st("t"+strconv.Itoa(i%3), "S"+strconv.Itoa(i)))
	}
	p := r.peek()
	require.Len(t, p, 3)
	assert.Equal(t, "S"+strconv.Itoa(maxPending), p[2].State)
}

func TestBackoff(t *testing.T) {
	b := backoff{Min: 100 * time.Millisecond, Max: time.Second}
	assert.Equal(t, []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second},
		[]time.Duration{b.delay(1), b.delay(2), b.delay(3), b.delay(4), b.delay(5), b.delay(50)})
}
