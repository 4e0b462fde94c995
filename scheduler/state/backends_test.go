package state_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/scheduler/state"
	"github.com/switchyard/switchyard/scheduler/state/zkstore"
	"github.com/switchyard/switchyard/scheduler/zk"
	"github.com/switchyard/switchyard/scheduler/zk/zktest"
)

// backend opens a fresh store location; each call of open opens a new
// Store on the same location (a scheduler restart).
type backend struct {
	name string
	open func(t *testing.T) func() *state.Store
}

// backends are the state backends every persistence test runs against:
// bbolt, and ZooKeeper (a real single-node server; small chunks and
// batches so chunking and batch splitting are exercised).
func backends(t *testing.T) []backend {
	var ens *zktest.Ensemble
	n := 0
	return []backend{
		{"bolt", func(t *testing.T) func() *state.Store {
			path := filepath.Join(t.TempDir(), "state.db")
			return func() *state.Store {
				s, err := state.Open(path)
				require.NoError(t, err)
				return s
			}
		}},
		{"zk", func(t *testing.T) func() *state.Store {
			if ens == nil {
				ens = zktest.Start(t, 1)
			}
			n++
			root := fmt.Sprintf("/sy%d", n)
			u, err := zk.ParseURL(ens.URL(root))
			require.NoError(t, err)
			conn, _, err := zk.Connect(u, 4*time.Second, nil, nil)
			require.NoError(t, err)
			t.Cleanup(conn.Close)
			return func() *state.Store {
				b, err := zkstore.Open(zkstore.Config{Conn: conn, Root: root, ChunkSize: 300, MaxBatch: 2000})
				require.NoError(t, err)
				s, err := state.OpenBackend(b)
				require.NoError(t, err)
				return s
			}
		}},
	}
}

func TestBackendsPersist(t *testing.T) {
	for _, be := range backends(t) {
		t.Run(be.name, func(t *testing.T) {
			open := be.open(t)
			s := open()
			now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
			app := &state.App{Def: marathon.App{ID: "/web", Cmd: "sleep 1", Instances: 2, Version: "v1", Labels: map[string]string{}}}
			s.PutApp(app)
			app2 := *app
			app2.Def.Version = "v2"
			app2.Def.Cmd = strings.Repeat("x", 1000) // chunked on zk
			s.PutApp(&app2)
			task := &state.Task{ID: "web.1", AppID: "/web", AgentID: "a1", State: marathon.TaskRunning, StagedAt: now, HostPorts: []int{31000},
				Health: []marathon.HealthCheckResult{{Alive: true}}}
			s.PutTask(task)
			s.PutTask(&state.Task{ID: "web.2", AppID: "/web"})
			require.NoError(t, s.Flush())
			s.DeleteTask("web.2")
			s.PutDeployment(&state.Deployment{ID: "d1", Version: "v2", AffectedApps: []string{"/web"}, Created: now})
			s.PutAgent(&state.Agent{ID: "a1", Hostname: "h1", CPUs: 2, Ports: []state.PortRange{{Begin: 31000, End: 32000}}})
			s.PutCallback("http://h:1/event")
			s.PutCallback("http://h:2/event")
			s.DeleteCallback("http://h:2/event")
			s.PutGroup(marathon.GroupMeta{ID: "/tools", EnforceRole: true, Version: "v1"})
			s.PutGroup(marathon.GroupMeta{ID: "/gone"})
			s.DeleteGroup("/gone")
			a := marathon.App{ID: "/tools/a", Version: "2024-01-01T00:00:00.000Z", Cmd: "x"}
			s.AddGroupVersion(state.GroupVersion{Version: a.Version, Groups: s.Groups(), Apps: map[string]string{a.ID: a.Version}}, []marathon.App{a})
			require.NoError(t, s.Close())

			s = open()
			t.Cleanup(func() { _ = s.Close() })
			got, ok := s.App("/web")
			require.True(t, ok)
			assert.Equal(t, app2.Def, got.Def)
			assert.Equal(t, []string{"v1", "v2"}, s.AppVersions("/web"))
			v1, ok := s.AppVersion("/web", "v1")
			require.True(t, ok)
			assert.Equal(t, "sleep 1", v1.Cmd)
			tasks := s.Tasks()
			require.Len(t, tasks, 1)
			want := *task
			want.Health = nil
			assert.Equal(t, &want, tasks[0], "health is not persisted")
			require.Len(t, s.Deployments(), 1)
			ag, ok := s.Agent("a1")
			require.True(t, ok)
			assert.Equal(t, "h1", ag.Hostname)
			assert.Equal(t, []string{"http://h:1/event"}, s.Callbacks())
			assert.Equal(t, []marathon.GroupMeta{{ID: "/tools", EnforceRole: true, Version: "v1"}}, s.Groups())
			_, apps, ok := s.GroupVersion(a.Version)
			require.True(t, ok)
			assert.Equal(t, []marathon.App{a}, apps)

			// Overwrite a chunked record with a small one and back, then
			// delete it: what is read back is always the last write.
			small := app2
			small.Def.Cmd = "small"
			s.PutApp(&small)
			require.NoError(t, s.Flush())
			big := app2
			big.Def.Cmd = strings.Repeat("y", 2500)
			s.PutApp(&big)
			require.NoError(t, s.Flush())
			s.PutTask(&state.Task{ID: "web.3", AppID: "/web"})
			s.DeleteApp("/tools/none")
			require.NoError(t, s.Close())
			s = open()
			got, ok = s.App("/web")
			require.True(t, ok)
			assert.Equal(t, big.Def.Cmd, got.Def.Cmd)
			s.DeleteApp("/web")
			require.NoError(t, s.Close())
			s = open()
			_, ok = s.App("/web")
			assert.False(t, ok)
			assert.Empty(t, s.AppVersions("/web"))
			assert.Len(t, s.Tasks(), 2)
		})
	}
}

func TestBackendsManyRecords(t *testing.T) {
	for _, be := range backends(t) {
		t.Run(be.name, func(t *testing.T) {
			open := be.open(t)
			s := open()
			for i := range 300 {
				s.PutApp(&state.App{Def: marathon.App{ID: fmt.Sprintf("/app/%03d", i), Version: "v1", Cmd: strings.Repeat("c", i)}})
			}
			// One flush, many multis on zk (MaxBatch 2000 bytes).
			require.NoError(t, s.Flush())
			require.NoError(t, s.Close())
			s = open()
			t.Cleanup(func() { _ = s.Close() })
			apps := s.Apps()
			require.Len(t, apps, 300)
			assert.Equal(t, strings.Repeat("c", 299), apps[299].Def.Cmd)
		})
	}
}
