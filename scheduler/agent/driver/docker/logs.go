package docker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
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

// closeLogsTimeout bounds how long Close waits for the log copies to stop.
const closeLogsTimeout = 2 * time.Second

// logDrainTimeout bounds how long the watcher waits, after the container
// exits, for the log copy to catch up before reporting the exit.
const logDrainTimeout = 5 * time.Second

// sinceFile, in the sandbox, holds the engine's timestamp of the last
// log line copied, so that a driver re-attaching after an agent restart
// fetches only newer output. (The log files' mtime cannot serve: file
// times come from the kernel's coarse clock, which can lag the engine's
// line timestamps by a tick, so the last line would be copied twice.)
const sinceFile = ".logs-since"

// sincePersistEvery bounds how often sinceFile is rewritten while output
// flows; it is always written when the copy stops. After an agent crash
// (no clean stop) up to this much output can be copied twice.
const sincePersistEvery = 250 * time.Millisecond

// followLogs copies the container's stdout and stderr into the sandbox
// files (appending, as the process driver does) until the container
// stops or ctx ends, then closes t.logsDone. resume means the driver is
// re-attaching after an agent restart: only output newer than the last
// line copied is fetched. A broken engine connection is retried from the
// last line copied.
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
	defer func() {
		if err := w.close(); err != nil {
			log.Warn("container log position not saved; output may be copied twice after a restart", "err", err)
		}
	}()
	if !resume {
		w.reset()
	}
	backoff := 250 * time.Millisecond
	for {
		err := d.copyLogs(ctx, t.containerID, w.since(), w)
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
	}
}

// copyLogs streams the container's logs (newer than since, when set) into
// w until the stream ends. Lines come with the engine's timestamps, which
// w strips and remembers.
func (d *Driver) copyLogs(ctx context.Context, containerID string, since time.Time, w *sandboxLogs) error {
	opts := container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: true, Timestamps: true}
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

// sandboxLogs is a task's pair of sandbox log files and the timestamp of
// the last line written to them. The sandbox is mounted read-write in the
// container, so the container can plant symbolic links there: every file
// is opened through an os.Root, which refuses links leading out of the
// sandbox (the agent would otherwise write host files as root).
type sandboxLogs struct {
	root           *os.Root
	stdout, stderr *stampedFile

	mu        sync.Mutex
	last      time.Time // engine timestamp of the last line; guarded by mu
	persisted time.Time // when sinceFile was last written; guarded by mu
}

func openSandboxLogs(dir string) (*sandboxLogs, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open sandbox: %w", err)
	}
	w := &sandboxLogs{root: root}
	var files [2]*os.File
	for i, name := range []string{StdoutFile, StderrFile} {
		// Non-blocking, and only a regular file: not a FIFO or device
		// the container put there.
		f, err := root.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_APPEND|syscall.O_NONBLOCK, 0o644)
		if err == nil {
			if fi, serr := f.Stat(); serr != nil || !fi.Mode().IsRegular() {
				_ = f.Close()
				err = fmt.Errorf("not a regular file")
			}
		}
		if err != nil {
			if files[0] != nil {
				_ = files[0].Close()
			}
			_ = root.Close()
			return nil, fmt.Errorf("open %s: %w", filepath.Join(dir, name), err)
		}
		files[i] = f
	}
	if b, err := root.ReadFile(sinceFile); err == nil {
		if ts, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(b))); err == nil {
			w.last = ts
		}
	}
	w.stdout = &stampedFile{f: files[0], owner: w}
	w.stderr = &stampedFile{f: files[1], owner: w}
	return w, nil
}

// reset forgets the saved position: a new container's output is copied
// from its start.
func (w *sandboxLogs) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.last = time.Time{}
}

// since is the time to resume the engine's log stream from: just after
// the last line copied (the engine's "since" includes equal timestamps),
// or zero for everything.
func (w *sandboxLogs) since() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.last.IsZero() {
		return time.Time{}
	}
	return w.last.Add(time.Nanosecond)
}

// stamp records the timestamp of a line just written, saving it to
// sinceFile at most every sincePersistEvery.
func (w *sandboxLogs) stamp(ts time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if ts.After(w.last) {
		w.last = ts
	}
	if now := time.Now(); now.Sub(w.persisted) >= sincePersistEvery {
		w.persisted = now
		_ = w.persistLocked()
	}
}

func (w *sandboxLogs) persistLocked() error {
	if w.last.IsZero() {
		return nil
	}
	if err := w.root.WriteFile(sinceFile, []byte(w.last.Format(time.RFC3339Nano)+"\n"), 0o644); err != nil {
		return fmt.Errorf("save log position: %w", err)
	}
	return nil
}

// close saves the position and closes the files.
func (w *sandboxLogs) close() error {
	w.mu.Lock()
	err := w.persistLocked()
	w.mu.Unlock()
	_ = w.stdout.f.Close()
	_ = w.stderr.f.Close()
	_ = w.root.Close()
	return err
}

// stampedFile is one log file. Each Write is one log line as the engine
// sent it (stdcopy writes a frame at a time), prefixed with the engine's
// RFC 3339 timestamp and a space: the prefix is stripped and recorded.
type stampedFile struct {
	f     *os.File
	owner *sandboxLogs
}

func (s *stampedFile) Write(p []byte) (int, error) {
	line := p
	var ts time.Time
	if i := bytes.IndexByte(p, ' '); i > 0 && i <= len(time.RFC3339Nano)+6 {
		if t, err := time.Parse(time.RFC3339Nano, string(p[:i])); err == nil {
			ts, line = t, p[i+1:]
		}
	}
	if _, err := s.f.Write(line); err != nil {
		return 0, err
	}
	if !ts.IsZero() {
		s.owner.stamp(ts)
	}
	return len(p), nil
}
