package state

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
)

func TestStorePersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path)
	require.NoError(t, err)
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	app := &App{Def: marathon.App{ID: "/web", Cmd: "sleep 1", Instances: 2, Version: "v1", Labels: map[string]string{}}}
	s.PutApp(app)
	app2 := *app
	app2.Def.Version = "v2"
	s.PutApp(&app2)
	task := &Task{ID: "web.1", AppID: "/web", AgentID: "a1", State: marathon.TaskRunning, StagedAt: now, HostPorts: []int{31000},
		Health: []marathon.HealthCheckResult{{Alive: true}}}
	s.PutTask(task)
	s.PutTask(&Task{ID: "web.2", AppID: "/web"})
	s.DeleteTask("web.2")
	s.PutDeployment(&Deployment{ID: "d1", Version: "v2", AffectedApps: []string{"/web"}, Created: now})
	s.PutAgent(&Agent{ID: "a1", Hostname: "h1", CPUs: 2, Ports: []PortRange{{31000, 32000}}})
	s.PutCallback("http://h:1/event")
	s.PutCallback("http://h:2/event")
	s.DeleteCallback("http://h:2/event")
	require.NoError(t, s.Close())

	s, err = Open(path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	got, ok := s.App("/web")
	require.True(t, ok)
	assert.Equal(t, app2.Def, got.Def)
	assert.Equal(t, []string{"v1", "v2"}, s.AppVersions("/web"))
	v1, ok := s.AppVersion("/web", "v1")
	require.True(t, ok)
	assert.Equal(t, "v1", v1.Version)
	tasks := s.Tasks()
	require.Len(t, tasks, 1)
	want := *task
	want.Health = nil
	assert.Equal(t, &want, tasks[0], "health is not persisted")
	require.Len(t, s.Deployments(), 1)
	a, ok := s.Agent("a1")
	require.True(t, ok)
	assert.Equal(t, "h1", a.Hostname)
	assert.Equal(t, []string{"http://h:1/event"}, s.Callbacks())
}

func TestStoreVersionLimit(t *testing.T) {
	s, err := Open("")
	require.NoError(t, err)
	for i := range MaxVersions + 5 {
		s.PutApp(&App{Def: marathon.App{ID: "/a", Version: fmt.Sprintf("v%03d", i)}})
	}
	vs := s.AppVersions("/a")
	assert.Len(t, vs, MaxVersions)
	assert.Equal(t, "v005", vs[0])
	s.DeleteApp("/a")
	assert.Empty(t, s.AppVersions("/a"))
	_, ok := s.App("/a")
	assert.False(t, ok)
}

func TestStoreSetMaxVersions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s, err := Open(path)
	require.NoError(t, err)
	for i := range 10 {
		s.PutApp(&App{Def: marathon.App{ID: "/a", Version: fmt.Sprintf("v%03d", i)}})
	}
	s.SetMaxVersions(3)
	assert.Equal(t, []string{"v007", "v008", "v009"}, s.AppVersions("/a"), "the newest are kept")
	s.PutApp(&App{Def: marathon.App{ID: "/a", Version: "v010"}})
	assert.Equal(t, []string{"v008", "v009", "v010"}, s.AppVersions("/a"))
	require.NoError(t, s.Flush())
	require.NoError(t, s.Close())

	s, err = Open(path)
	require.NoError(t, err)
	defer s.Close()
	assert.Equal(t, []string{"v008", "v009", "v010"}, s.AppVersions("/a"), "dropped versions are gone from disk")

	// The group tree's versions follow the same limit.
	s.SetMaxVersions(2)
	for i := range 4 {
		s.AddGroupVersion(GroupVersion{Version: fmt.Sprintf("g%03d", i), Apps: map[string]string{}}, nil)
	}
	assert.Len(t, s.GroupVersions(), 2)
	_, _, ok := s.GroupVersion("g003")
	assert.True(t, ok, "the newest is kept")
}

func TestTaskHealthy(t *testing.T) {
	tests := []struct {
		name string
		task Task
		want bool
	}{
		{"running no checks", Task{State: marathon.TaskRunning}, true},
		{"staging", Task{State: marathon.TaskStaging}, false},
		{"no results yet", Task{State: marathon.TaskRunning, HealthChecks: 1}, false},
		{"alive", Task{State: marathon.TaskRunning, HealthChecks: 1, Health: []marathon.HealthCheckResult{{Alive: true}}}, true},
		{"one dead", Task{State: marathon.TaskRunning, HealthChecks: 2, Health: []marathon.HealthCheckResult{{Alive: true}, {}}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.task.Healthy())
		})
	}
}
