package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
)

// Names of the files a task's output is copied to in its sandbox, the
// same names the process driver writes (and the agent reads).
const (
	StdoutFile = "stdout"
	StderrFile = "stderr"
)

// logDrainTimeout bounds how long the watcher waits, after the container
// exits, for the log copy to catch up before reporting the exit.
const logDrainTimeout = 5 * time.Second

// followLogs copies the container's stdout and stderr into the sandbox
// files (appending, as the process driver does) until the container
// stops or ctx ends, then closes t.logsDone. resume means the driver is
// re-attaching after an agent restart: only output newer than the files'
// last write is fetched. A broken engine connection is retried from the
// last write.
func (d *Driver) followLogs(ctx context.Context, t *task, dir string, resume bool) {
	defer close(t.logsDone)
	log := d.logger.With("task_id", t.id, "container", t.name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		log.Warn("container logs not copied to the sandbox", "err", err)
		return
	}
	w, err := openSandboxLogs(dir)
	if err != nil {
		log.Warn("container logs not copied to the sandbox", "err", err)
		return
	}
	defer w.close()
	since := time.Time{}
	if resume {
		since = w.lastWrite()
	}
	backoff := 250 * time.Millisecond
	for {
		err := d.copyLogs(ctx, t.containerID, since, w)
		if err == nil || ctx.Err() != nil {
			return // the container stopped (end of stream), or destroy/Close
		}
		if errdefs.IsNotFound(err) {
			return // removed
		}
		if errdefs.IsNotImplemented(err) || errdefs.IsInvalidArgument(err) {
			// A log driver the engine cannot read back (log-driver none).
			log.Warn("container logs not copied to the sandbox", "err", err)
			return
		}
		log.Warn("following container logs failed, retrying", "err", err, "duration", backoff)
		select {
		case <-ctx.Done():
			return
		case <-t.done:
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
		since = w.lastWrite()
	}
}

// copyLogs streams the container's logs (since the given time, when set)
// into w until the stream ends.
func (d *Driver) copyLogs(ctx context.Context, containerID string, since time.Time, w *sandboxLogs) error {
	opts := container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: true}
	if !since.IsZero() {
		opts.Since = strconv.FormatInt(since.Unix(), 10) + "." + fmt.Sprintf("%09d", since.Nanosecond())
	}
	rc, err := d.api.ContainerLogs(ctx, containerID, opts)
	if err != nil {
		return fmt.Errorf("container logs: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = rc.Close() }) // unblocks the read
	defer stop()
	defer rc.Close()
	// Tty is never set on task containers (the "tty" parameter is
	// rejected), so the stream is always multiplexed.
	if _, err := stdcopy.StdCopy(w.stdout, w.stderr, rc); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("copy container logs: %w", err)
	}
	return nil
}

// sandboxLogs is a task's pair of sandbox log files, remembering when
// they were last written.
type sandboxLogs struct {
	stdout, stderr *stampedFile

	mu   sync.Mutex
	last time.Time // guarded by mu
}

func openSandboxLogs(dir string) (*sandboxLogs, error) {
	w := &sandboxLogs{}
	var files [2]*os.File
	for i, name := range []string{StdoutFile, StderrFile} {
		path := filepath.Join(dir, name)
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			if files[0] != nil {
				_ = files[0].Close()
			}
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
		files[i] = f
		if fi, err := f.Stat(); err == nil && fi.Size() > 0 && fi.ModTime().After(w.last) {
			w.last = fi.ModTime()
		}
	}
	w.stdout = &stampedFile{f: files[0], owner: w}
	w.stderr = &stampedFile{f: files[1], owner: w}
	return w, nil
}

func (w *sandboxLogs) lastWrite() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

func (w *sandboxLogs) close() {
	_ = w.stdout.f.Close()
	_ = w.stderr.f.Close()
}

// stampedFile is one log file; each write updates its owner's last
// write time.
type stampedFile struct {
	f     *os.File
	owner *sandboxLogs
}

func (s *stampedFile) Write(p []byte) (int, error) {
	n, err := s.f.Write(p)
	s.owner.mu.Lock()
	s.owner.last = time.Now()
	s.owner.mu.Unlock()
	return n, err
}
