package docker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/switchyard/switchyard/scheduler/agent/driver"
)

// execOutputTail is how much of an exec's combined output is kept for the
// debug log of a failed command.
const execOutputTail = 1024

// ExecTask runs argv inside the task's container (as "docker exec" does)
// and returns its exit code. The agent uses it for COMMAND health checks
// with argv ["/bin/sh", "-c", command], so those run in the container as
// they do under Marathon and Mesos. The command's output is read and
// dropped (the end of it is logged at debug level when it fails).
//
// When ctx ends first ExecTask returns ctx's error at once; the Engine API
// cannot stop an exec, so such a command keeps running in the container
// until it ends by itself or the container stops. A task the engine does
// not know gives driver.ErrTaskNotFound; a stopped container is an error.
func (d *Driver) ExecTask(ctx context.Context, taskID string, argv []string) (int, error) {
	if len(argv) == 0 {
		return -1, fmt.Errorf("exec in %s: empty command", taskID)
	}
	created, err := d.api.ContainerExecCreate(ctx, d.ref(taskID), container.ExecOptions{
		Cmd: argv, AttachStdout: true, AttachStderr: true,
	})
	switch {
	case errdefs.IsNotFound(err):
		return -1, fmt.Errorf("exec in %s: %w", taskID, driver.ErrTaskNotFound)
	case errdefs.IsConflict(err):
		return -1, fmt.Errorf("exec in %s: task is not running: %w", taskID, err)
	case err != nil:
		return -1, fmt.Errorf("exec in %s: create: %w", taskID, err)
	}
	// Attaching starts the command; the stream ends when it exits.
	resp, err := d.api.ContainerExecAttach(ctx, created.ID, container.ExecAttachOptions{})
	if err != nil {
		return -1, fmt.Errorf("exec in %s: start: %w", taskID, err)
	}
	stop := context.AfterFunc(ctx, resp.Close) // unblocks the read below
	out := &tailBuffer{max: execOutputTail}
	_, copyErr := stdcopy.StdCopy(out, out, resp.Reader)
	stop()
	resp.Close()
	if ctx.Err() != nil {
		return -1, fmt.Errorf("exec in %s: %w", taskID, ctx.Err())
	}
	if copyErr != nil {
		return -1, fmt.Errorf("exec in %s: read output: %w", taskID, copyErr)
	}
	code, err := d.execExitCode(ctx, created.ID)
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", taskID, err)
	}
	if code != 0 {
		d.logger.Debug("exec in task failed", "task_id", taskID, "argv", argv, "exit_code", code, "output", out.String())
	}
	return code, nil
}

// execExitCode waits for the engine to record the exit of an exec whose
// output stream has ended (it may lag the stream by a moment).
func (d *Driver) execExitCode(ctx context.Context, execID string) (int, error) {
	delay := 5 * time.Millisecond
	for {
		ins, err := d.api.ContainerExecInspect(ctx, execID)
		if err != nil {
			if ctx.Err() != nil {
				return -1, ctx.Err()
			}
			return -1, fmt.Errorf("inspect exec: %w", err)
		}
		if !ins.Running {
			return ins.ExitCode, nil
		}
		select {
		case <-ctx.Done():
			return -1, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, 200*time.Millisecond)
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	if b.max <= 0 {
		return 0, errors.New("tailBuffer: no capacity")
	}
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string { return string(b.buf) }
