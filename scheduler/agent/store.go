package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/switchyard/switchyard/scheduler/agent/driver"
	"github.com/switchyard/switchyard/scheduler/agentapi"
)

// taskRecord is what the agent persists per task, as one JSON file, so a
// restarted agent can re-adopt the task (Handle) and keep its ports,
// environment and health checks (Assignment). A record with Terminal set
// is a task that ended but whose final status the scheduler has not
// accepted yet.
type taskRecord struct {
	Assignment agentapi.Assignment  `json:"assignment"`
	Driver     string               `json:"driver"`
	Handle     *driver.TaskHandle   `json:"handle,omitempty"`
	StartedAt  string               `json:"startedAt,omitempty"`
	Terminal   *agentapi.TaskStatus `json:"terminal,omitempty"`
}

// store keeps the agent id and task records under a data directory:
//
//	DIR/                         0711
//	DIR/agent-id                 0600
//	DIR/agent-token              0600 (the token bound to the agent id)
//	DIR/tasks/<task id>.json     0700 dir, 0600 files (assignments with env)
//	DIR/sandbox/                 0711: tasks reach their own sandbox only
//	DIR/sandbox/<task id>/       0700, the task's user (see prepareSandbox)
//
// Writes are atomic (temp file, created 0600, and rename). It is not safe for
// concurrent writes of the same task; the agent writes each task's record
// from that task's runner only.
type store struct {
	dir string
}

func newStore(dir string) (*store, error) {
	dirs := []struct {
		path string
		mode os.FileMode
	}{{dir, 0o711}, {filepath.Join(dir, "tasks"), 0o700}, {filepath.Join(dir, "sandbox"), 0o711}}
	for _, d := range dirs {
		if err := os.MkdirAll(d.path, d.mode); err != nil {
			return nil, fmt.Errorf("data dir: %w", err)
		}
		// Also tighten a directory an older version created 0755.
		if err := os.Chmod(d.path, d.mode); err != nil {
			return nil, fmt.Errorf("data dir: %w", err)
		}
	}
	return &store{dir: dir}, nil
}

func (s *store) sandboxRoot() string { return filepath.Join(s.dir, "sandbox") }

func (s *store) agentID() (string, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, "agent-id"))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read agent id: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func (s *store) setAgentID(id string) error {
	return writeAtomic(filepath.Join(s.dir, "agent-id"), []byte(id+"\n"))
}

// agentToken is the token the scheduler bound to the agent id ("" when
// there is none yet).
func (s *store) agentToken() (string, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, "agent-token"))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read agent token: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func (s *store) setAgentToken(tok string) error {
	return writeAtomic(filepath.Join(s.dir, "agent-token"), []byte(tok+"\n"))
}

func (s *store) taskPath(id string) string { return filepath.Join(s.dir, "tasks", id+".json") }

func (s *store) putTask(r taskRecord) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode task %s: %w", r.Assignment.TaskID, err)
	}
	return writeAtomic(s.taskPath(r.Assignment.TaskID), b)
}

func (s *store) hasTask(id string) bool {
	_, err := os.Stat(s.taskPath(id))
	return err == nil
}

func (s *store) deleteTask(id string) error {
	err := os.Remove(s.taskPath(id))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete task %s: %w", id, err)
	}
	return nil
}

// loadTasks returns every readable task record, sorted by task id, and
// one error per file it had to skip.
func (s *store) loadTasks() ([]taskRecord, []error) {
	ents, err := os.ReadDir(filepath.Join(s.dir, "tasks"))
	if err != nil {
		return nil, []error{fmt.Errorf("list tasks: %w", err)}
	}
	var out []taskRecord
	var errs []error
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		p := filepath.Join(s.dir, "tasks", e.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("read %s: %w", p, err))
			continue
		}
		var r taskRecord
		if err := json.Unmarshal(b, &r); err != nil || r.Assignment.TaskID == "" {
			if err == nil {
				err = errors.New("no task id")
			}
			errs = append(errs, fmt.Errorf("decode %s: %w", p, err))
			continue
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Assignment.TaskID < out[j].Assignment.TaskID })
	return out, errs
}

func writeAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
