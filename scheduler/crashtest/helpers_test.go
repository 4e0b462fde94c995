package crashtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/scheduler/agent/driver/process"
)

// role is a re-executed test binary playing the agent or the scheduler.
type role struct {
	t   *testing.T
	cmd *exec.Cmd
	log string
}

// startRole starts this test binary in a role with env (key=value).
func startRole(t *testing.T, name string, env ...string) *role {
	t.Helper()
	dir := os.Getenv("CRASHTEST_LOGS") // keep the logs there
	if dir == "" {
		dir = t.TempDir()
	}
	logf0, err := os.CreateTemp(dir, name+"-*.log")
	require.NoError(t, err)
	logPath := logf0.Name()
	require.NoError(t, logf0.Close())
	logf, err := os.Create(logPath)
	require.NoError(t, err)
	defer logf.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{envRole + "=" + name}, env...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	r := &role{t: t, cmd: cmd, log: logPath}
	t.Cleanup(func() {
		r.kill9()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 400000 {
				b = b[len(b)-400000:]
			}
			t.Logf("%s log tail:\n%s", name, b)
		}
	})
	return r
}

// kill9 kills the process with SIGKILL and reaps it.
func (r *role) kill9() {
	if r.cmd.ProcessState != nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGKILL)
	_ = r.cmd.Wait()
}

// markedProcs counts, per task id, the live processes marked with owner
// (process driver marks, read from /proc/PID/environ) and returns the
// process group of each.
func markedProcs(owner string) (count map[string]int, pgids map[int]bool) {
	count, pgids = map[string]int{}, map[int]bool{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) < 3 || f[0] == "Z" {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil {
			continue
		}
		var o, id string
		for _, kv := range bytes.Split(env, []byte{0}) {
			k, v, _ := strings.Cut(string(kv), "=")
			switch k {
			case process.EnvOwner:
				o = v
			case process.EnvTaskID:
				id = v
			}
		}
		if o != owner {
			continue
		}
		count[id]++
		if pg, err := strconv.Atoi(f[2]); err == nil {
			pgids[pg] = true
		}
		_ = pid
	}
	return count, pgids
}

// killMarked kills every process group marked with owner.
func killMarked(owner string) {
	_, pgids := markedProcs(owner)
	for pg := range pgids {
		_ = syscall.Kill(-pg, syscall.SIGKILL)
	}
}

// api is a small Marathon API client.
type api struct {
	base   string
	client *http.Client
}

func newAPI(base string) *api {
	return &api{base: base, client: &http.Client{Timeout: 10 * time.Second}}
}

// do sends a request and decodes a JSON answer into out (when not nil).
func (a *api) do(method, path string, body, out any) (int, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, a.base+path, r)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode %s %s: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}
