package docker

import (
	"context"
	"sync"
	"time"

	"github.com/switchyard/switchyard/scheduler/agent/driver"
)

// task is one container the driver watches. The watcher goroutine owns
// the exit: it calls finish once, which closes done.
type task struct {
	id          string
	containerID string
	name        string
	// cancel stops the watcher goroutine (driver Close or DestroyTask).
	cancel context.CancelFunc
	done   chan struct{}
	// logsDone is closed when the copy of the container's output into the
	// sandbox ends; nil when the task has no sandbox.
	logsDone chan struct{}

	once sync.Once
	// mu guards the fields below.
	mu     sync.Mutex
	killed bool
	result driver.ExitResult
}

func newTask(id, containerID, name string, cancel context.CancelFunc) *task {
	return &task{id: id, containerID: containerID, name: name, cancel: cancel, done: make(chan struct{})}
}

// markKilled records that the task is ending because the agent asked.
func (t *task) markKilled() {
	t.mu.Lock()
	t.killed = true
	t.mu.Unlock()
}

// finish records the exit result, once, and wakes every waiter.
func (t *task) finish(r driver.ExitResult) {
	t.once.Do(func() {
		t.mu.Lock()
		r.Killed = r.Killed || t.killed
		t.result = r
		t.mu.Unlock()
		close(t.done)
	})
}

// exitResult returns the result; valid once done is closed.
func (t *task) exitResult() driver.ExitResult {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.result
}

// waitLogs waits up to limit for the log copy to end (nil logsDone: at
// once).
func (t *task) waitLogs(limit time.Duration) {
	if t.logsDone == nil {
		return
	}
	select {
	case <-t.logsDone:
	case <-time.After(limit):
	}
}

// exited reports whether the task has finished.
func (t *task) exited() bool {
	select {
	case <-t.done:
		return true
	default:
		return false
	}
}
