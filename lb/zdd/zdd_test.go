package zdd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/lb/zdd"
	"github.com/switchyard/switchyard/marathon"
)

// fakeMarathon is a synchronous in-memory Marathon: tasks start (and
// stop) at once; healthy decides whether new tasks are running.
type fakeMarathon struct {
	mu      sync.Mutex
	apps    map[string]*marathon.App
	seq     int
	calls   []string
	healthy func(appID string) bool
	// failures are errors the next calls of a kind ("app", "scale",
	// "kill") return, one per call.
	failures map[string][]error
}

// fail pops the next injected failure of kind. Caller holds mu.
func (f *fakeMarathon) fail(kind string) error {
	if len(f.failures[kind]) == 0 {
		return nil
	}
	err := f.failures[kind][0]
	f.failures[kind] = f.failures[kind][1:]
	return err
}

func newFake(apps ...marathon.App) *fakeMarathon {
	f := &fakeMarathon{apps: map[string]*marathon.App{}}
	for _, a := range apps {
		a := a
		f.apps[a.ID] = &a
		f.resize(&a)
		f.apps[a.ID] = &a
	}
	return f
}

// resize adds or removes tasks to match instances. Caller holds mu.
func (f *fakeMarathon) resize(a *marathon.App) {
	for len(a.Tasks) > a.Instances {
		a.Tasks = a.Tasks[:len(a.Tasks)-1]
	}
	for len(a.Tasks) < a.Instances {
		f.seq++
		state := marathon.TaskRunning
		if f.healthy != nil && !f.healthy(a.ID) {
			state = marathon.TaskStaging
		}
		a.Tasks = append(a.Tasks, marathon.Task{ID: fmt.Sprintf("%s.%03d", marathon.SafeID(a.ID), f.seq), AppID: a.ID,
			Host: "10.0.0.1", Ports: []int{31000 + f.seq}, State: state})
	}
}

func (f *fakeMarathon) log(format string, args ...any) {
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *fakeMarathon) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeMarathon) Apps(context.Context) ([]marathon.App, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []marathon.App
	for _, a := range f.apps {
		out = append(out, *a)
	}
	return out, nil
}

func (f *fakeMarathon) App(_ context.Context, id string) (marathon.App, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail("app"); err != nil {
		return marathon.App{}, err
	}
	a, ok := f.apps[id]
	if !ok {
		return marathon.App{}, &marathon.StatusError{Code: 404, Message: "App '" + id + "' does not exist"}
	}
	c := *a
	c.Tasks = slices.Clone(a.Tasks)
	return c, nil
}

func (f *fakeMarathon) CreateApp(_ context.Context, def any) (marathon.App, error) {
	b, err := json.Marshal(def)
	if err != nil {
		return marathon.App{}, err
	}
	var a marathon.App
	if err := json.Unmarshal(b, &a); err != nil {
		return marathon.App{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.apps[a.ID]; ok {
		return marathon.App{}, &marathon.StatusError{Code: 409, Message: "exists"}
	}
	f.log("create %s %d", a.ID, a.Instances)
	f.resize(&a)
	f.apps[a.ID] = &a
	return a, nil
}

func (f *fakeMarathon) ScaleApp(_ context.Context, id string, n int, force bool) (marathon.DeploymentResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail("scale"); err != nil {
		return marathon.DeploymentResult{}, err
	}
	a, ok := f.apps[id]
	if !ok {
		return marathon.DeploymentResult{}, &marathon.StatusError{Code: 404}
	}
	f.log("scale %s %d", id, n)
	a.Instances = n
	f.resize(a)
	return marathon.DeploymentResult{DeploymentID: "d"}, nil
}

func (f *fakeMarathon) KillTasks(_ context.Context, ids []string, scale bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail("kill"); err != nil {
		return err
	}
	f.log("kill %s scale=%t", strings.Join(ids, ","), scale)
	for _, a := range f.apps {
		kept := a.Tasks[:0]
		for _, t := range a.Tasks {
			if slices.Contains(ids, t.ID) {
				a.Instances--
				continue
			}
			kept = append(kept, t)
		}
		a.Tasks = kept
	}
	return nil
}

func (f *fakeMarathon) DeleteApp(_ context.Context, id string, force bool) (marathon.DeploymentResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.apps[id]; !ok {
		return marathon.DeploymentResult{}, &marathon.StatusError{Code: 404}
	}
	f.log("delete %s", id)
	delete(f.apps, id)
	return marathon.DeploymentResult{DeploymentID: "d"}, nil
}

const def = `{"id":"/web","cmd":"serve","instances":2,"portDefinitions":[{"port":10000}],
 "labels":{"HAPROXY_GROUP":"external","HAPROXY_DEPLOYMENT_GROUP":"web","HAPROXY_DEPLOYMENT_ALT_PORT":"10001"}}`

func blueApp(instances int) marathon.App {
	return marathon.App{ID: "/web-blue", Instances: instances, PortDefinitions: []marathon.PortDefinition{{Port: 10000}},
		Labels: map[string]string{"HAPROXY_DEPLOYMENT_GROUP": "web", "HAPROXY_DEPLOYMENT_ALT_PORT": "10001",
			"HAPROXY_DEPLOYMENT_COLOUR": "blue", "HAPROXY_0_PORT": "10000", "HAPROXY_DEPLOYMENT_STARTED_AT": "2026-11-01T00:00:00Z"}}
}

func baseConfig(t *testing.T, m zdd.Marathon) (zdd.Config, *bytes.Buffer) {
	var logs bytes.Buffer
	return zdd.Config{
		Marathon:   m,
		Definition: []byte(def),
		StepDelay:  time.Millisecond,
		MaxWait:    200 * time.Millisecond,
		Logger:     slog.New(slog.NewTextHandler(&logs, nil)),
	}, &logs
}

func run(t *testing.T, cfg zdd.Config) (zdd.Result, error) {
	t.Helper()
	d, err := zdd.New(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return d.Run(ctx)
}

func TestSwapWithoutLB(t *testing.T) {
	f := newFake(blueApp(3))
	cfg, logs := baseConfig(t, f)
	res, err := run(t, cfg)
	require.NoError(t, err)
	assert.Equal(t, zdd.Result{NewID: "/web-green", OldID: "/web-blue", Colour: "green", ServicePort: 10001, Target: 3}, res)
	assert.Equal(t, []string{
		"create /web-green 1",
		"kill web-blue.001 scale=true",
		"scale /web-green 3",
		"kill web-blue.002,web-blue.003 scale=true",
		"delete /web-blue",
	}, f.Calls())
	apps, _ := f.Apps(context.Background())
	require.Len(t, apps, 1)
	assert.Equal(t, 3, apps[0].Instances)
	assert.Equal(t, "3", apps[0].Labels["HAPROXY_DEPLOYMENT_TARGET_INSTANCES"])
	for _, want := range []string{"created new app", "scaling old app down", "scaling new app up", "deleting old app", "deployment complete"} {
		assert.Contains(t, logs.String(), want)
	}
}

func TestFirstDeployment(t *testing.T) {
	f := newFake()
	cfg, _ := baseConfig(t, f)
	res, err := run(t, cfg)
	require.NoError(t, err)
	assert.Equal(t, zdd.Result{NewID: "/web-blue", Colour: "blue", ServicePort: 10000, Target: 2}, res)
	assert.Equal(t, []string{"create /web-blue 2"}, f.Calls())
}

func TestRollbackWhenNewAppNeverHealthy(t *testing.T) {
	tests := []struct {
		name       string
		noRollback bool
		wantCalls  []string
	}{
		{name: "rollback", wantCalls: []string{"create /web-green 1", "scale /web-blue 2", "delete /web-green"}},
		{name: "no rollback", noRollback: true, wantCalls: []string{"create /web-green 1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(blueApp(2))
			f.healthy = func(id string) bool { return id != "/web-green" }
			cfg, logs := baseConfig(t, f)
			cfg.NoRollback = tc.noRollback
			_, err := run(t, cfg)
			require.ErrorContains(t, err, "0/1 tasks of /web-green healthy")
			assert.Equal(t, tc.wantCalls, f.Calls())
			if !tc.noRollback {
				assert.Contains(t, err.Error(), "rolled back")
				assert.Contains(t, logs.String(), "rolling back")
			}
		})
	}
}

func TestDryChangesNothing(t *testing.T) {
	f := newFake(blueApp(4))
	cfg, _ := baseConfig(t, f)
	var out bytes.Buffer
	cfg.Dry, cfg.Out = true, &out
	_, err := run(t, cfg)
	require.NoError(t, err)
	assert.Empty(t, f.Calls())
	assert.Contains(t, out.String(), `"id": "/web-green"`)
	assert.Contains(t, out.String(), "plan: step 1: /web-green=2 /web-blue=3")
	assert.Contains(t, out.String(), "plan: delete /web-blue")
}

func TestConfirmDeclined(t *testing.T) {
	f := newFake(blueApp(2))
	cfg, _ := baseConfig(t, f)
	var asked []string
	cfg.Confirm = func(q string) bool {
		asked = append(asked, q)
		return !strings.HasPrefix(q, "Kill")
	}
	_, err := run(t, cfg)
	require.ErrorIs(t, err, zdd.ErrAborted)
	assert.Equal(t, []string{"create /web-green 1"}, f.Calls(), "an operator's no leaves things as they are")
	assert.Equal(t, "Create /web-green with 1 instance(s)?", asked[0])
}

func TestPreKillHook(t *testing.T) {
	dir := t.TempDir()
	argsFile := filepath.Join(dir, "args")
	ok := filepath.Join(dir, "ok.sh")
	require.NoError(t, os.WriteFile(ok, []byte("#!/bin/sh\nprintf '%s\\n' \"$#\" \"$2\" >> "+argsFile+"\n"), 0o755))
	bad := filepath.Join(dir, "bad.sh")
	require.NoError(t, os.WriteFile(bad, []byte("#!/bin/sh\necho refusing; exit 3\n"), 0o755))

	f := newFake(blueApp(1))
	cfg, _ := baseConfig(t, f)
	cfg.PreKillHook = ok
	_, err := run(t, cfg)
	require.NoError(t, err)
	got, err := os.ReadFile(argsFile)
	require.NoError(t, err)
	assert.Equal(t, "3\n[\"web-blue.001\"]\n", string(got))

	f = newFake(blueApp(1))
	cfg, logs := baseConfig(t, f)
	cfg.PreKillHook = bad
	_, err = run(t, cfg)
	require.ErrorContains(t, err, "pre-kill hook")
	assert.Contains(t, logs.String(), "refusing")
	assert.Equal(t, []string{"create /web-green 1", "scale /web-blue 1", "delete /web-green"}, f.Calls())
}

// statsServer serves HAProxy CSV stats derived from the fake's tasks:
// new tasks UP, old tasks as oldStatus.
func statsServer(t *testing.T, f *fakeMarathon, oldStatus string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawQuery != "stats;csv" {
			http.NotFound(w, r)
			return
		}
		var b strings.Builder
		b.WriteString("# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status\n")
		for _, id := range []string{"/web-blue", "/web-green"} {
			a, err := f.App(r.Context(), id)
			if err != nil {
				continue
			}
			status := "UP"
			if id == "/web-blue" {
				status = oldStatus
			}
			for _, tk := range a.Tasks {
				fmt.Fprintf(&b, "web_10000,10_0_0_1_%d,0,0,0,0,,0,0,0,,0,,0,0,0,0,%s\n", tk.Ports[0], status)
			}
		}
		_, _ = w.Write([]byte(b.String()))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestSwapWithLB(t *testing.T) {
	tests := []struct {
		name      string
		oldStatus string
		wantErr   string
	}{
		{name: "old servers drained", oldStatus: "MAINT"},
		{name: "old servers never drained", oldStatus: "UP", wantErr: "drain"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(blueApp(2))
			cfg, _ := baseConfig(t, f)
			cfg.LBs = []string{statsServer(t, f, tc.oldStatus).URL, statsServer(t, f, tc.oldStatus).URL + "/"}
			_, err := run(t, cfg)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				assert.Equal(t, []string{"create /web-green 1", "scale /web-green 2", "scale /web-blue 2", "delete /web-green"}, f.Calls())
				return
			}
			require.NoError(t, err)
			assert.Equal(t, []string{"create /web-green 1", "kill web-blue.001 scale=true", "scale /web-green 2",
				"kill web-blue.002 scale=true", "delete /web-blue"}, f.Calls())
		})
	}
}

func TestCompleteModes(t *testing.T) {
	green := blueApp(1)
	green.ID = "/web-green"
	green.PortDefinitions[0].Port = 10001
	green.Labels = map[string]string{"HAPROXY_DEPLOYMENT_GROUP": "web", "HAPROXY_DEPLOYMENT_COLOUR": "green",
		"HAPROXY_DEPLOYMENT_STARTED_AT": "2026-11-02T00:00:00Z", "HAPROXY_DEPLOYMENT_TARGET_INSTANCES": "3"}
	tests := []struct {
		name       string
		prev       bool
		wantRemain string
	}{
		{name: "complete current", wantRemain: "/web-green"},
		{name: "complete previous", prev: true, wantRemain: "/web-blue"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(blueApp(2), green)
			cfg, _ := baseConfig(t, f)
			cfg.CompleteCur, cfg.CompletePrev = !tc.prev, tc.prev
			res, err := run(t, cfg)
			require.NoError(t, err)
			assert.Equal(t, tc.wantRemain, res.NewID)
			apps, _ := f.Apps(context.Background())
			require.Len(t, apps, 1)
			assert.Equal(t, tc.wantRemain, apps[0].ID)
			assert.Equal(t, 3, apps[0].Instances)
		})
	}
	// Without the flags a two-app group is refused.
	f := newFake(blueApp(2), green)
	cfg, _ := baseConfig(t, f)
	_, err := run(t, cfg)
	require.ErrorContains(t, err, "--complete-cur")
	assert.Empty(t, f.Calls())
}

func TestNewRejectsBadConfig(t *testing.T) {
	f := newFake()
	_, err := zdd.New(zdd.Config{Definition: []byte(def)})
	require.Error(t, err)
	_, err = zdd.New(zdd.Config{Marathon: f, Definition: []byte(`{"id":"/x"}`)})
	require.ErrorContains(t, err, "HAPROXY_DEPLOYMENT_GROUP")
	_, err = zdd.New(zdd.Config{Marathon: f, Definition: []byte(def), CompleteCur: true, CompletePrev: true})
	require.ErrorContains(t, err, "exclude")
}

func TestTransientErrorsAreRetried(t *testing.T) {
	tests := []struct {
		name      string
		failures  map[string][]error
		wantErr   string
		wantCalls []string
	}{
		{name: "marathon unavailable for a moment",
			failures:  map[string][]error{"app": {&marathon.StatusError{Code: 503}, errors.New("connection refused")}},
			wantCalls: []string{"create /web-green 1", "kill web-blue.001 scale=true", "scale /web-green 2", "kill web-blue.002 scale=true", "delete /web-blue"}},
		{name: "locked apps",
			failures:  map[string][]error{"kill": {&marathon.StatusError{Code: 409}}, "scale": {&marathon.StatusError{Code: 409}}},
			wantCalls: []string{"create /web-green 1", "kill web-blue.001 scale=true", "scale /web-green 2", "kill web-blue.002 scale=true", "delete /web-blue"}},
		{name: "a rejected scale is fatal",
			failures:  map[string][]error{"scale": {&marathon.StatusError{Code: 422, Message: "invalid"}}},
			wantErr:   "invalid",
			wantCalls: []string{"create /web-green 1", "kill web-blue.001 scale=true", "delete /web-green"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(blueApp(2))
			f.failures = tc.failures
			cfg, _ := baseConfig(t, f)
			_, err := run(t, cfg)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
			} else {
				require.NoError(t, err)
			}
			calls := f.Calls()
			if tc.wantErr != "" {
				// The rollback scales blue back first.
				assert.Contains(t, calls, "scale /web-blue 2")
				calls = slices.DeleteFunc(calls, func(c string) bool { return c == "scale /web-blue 2" })
			}
			assert.Equal(t, tc.wantCalls, calls)
		})
	}
}

func TestHybridThenComplete(t *testing.T) {
	tests := []struct {
		name       string
		prev       bool
		wantRemain string
	}{
		{name: "complete current", wantRemain: "/web-green"},
		{name: "complete previous", prev: true, wantRemain: "/web-blue"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(blueApp(4))
			cfg, logs := baseConfig(t, f)
			cfg.NewInstances = 1
			_, err := run(t, cfg)
			require.NoError(t, err)
			assert.Equal(t, []string{"create /web-green 1", "kill web-blue.001 scale=true"}, f.Calls())
			assert.Contains(t, logs.String(), "hybrid deployment in place")
			green, err := f.App(context.Background(), "/web-green")
			require.NoError(t, err)
			assert.Equal(t, "1", green.Labels["HAPROXY_DEPLOYMENT_NEW_INSTANCES"])
			blue, err := f.App(context.Background(), "/web-blue")
			require.NoError(t, err)
			assert.Equal(t, 3, blue.Instances)

			cfg, _ = baseConfig(t, f)
			cfg.CompleteCur, cfg.CompletePrev = !tc.prev, tc.prev
			_, err = run(t, cfg)
			require.NoError(t, err)
			apps, _ := f.Apps(context.Background())
			require.Len(t, apps, 1)
			assert.Equal(t, tc.wantRemain, apps[0].ID)
			assert.Equal(t, 4, apps[0].Instances)
		})
	}
}
