package httpapi

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
)

func TestComputeTaskStats(t *testing.T) {
	now := time.Date(2024, 1, 1, 1, 0, 0, 0, time.UTC)
	ago := func(s int) string { return now.Add(-time.Duration(s) * time.Second).Format("2006-01-02T15:04:05.000Z") }
	alive := marathon.HealthCheckResult{Alive: true}
	dead := marathon.HealthCheckResult{Alive: false}
	// v0 < lastConfigChangeAt (v1) < lastScalingAt (v2).
	v0, v1, v2 := "2024-01-01T00:00:00.000Z", "2024-01-01T00:10:00.000Z", "2024-01-01T00:20:00.000Z"
	vi := &marathon.VersionInfo{LastConfigChangeAt: v1, LastScalingAt: v2}
	old := marathon.Task{ID: "old", State: marathon.TaskRunning, Version: v0, StartedAt: ago(100), HealthCheckResults: []marathon.HealthCheckResult{alive, dead}}
	cur := marathon.Task{ID: "cur", State: marathon.TaskRunning, Version: v1, StartedAt: ago(30), HealthCheckResults: []marathon.HealthCheckResult{alive}}
	scaled := marathon.Task{ID: "scaled", State: marathon.TaskRunning, Version: v2, StartedAt: ago(20)}
	staged := marathon.Task{ID: "staged", State: "TASK_STAGING", Version: v2}
	fresh := marathon.Task{ID: "fresh", Version: v2}

	tests := []struct {
		name  string
		vi    *marathon.VersionInfo
		tasks []marathon.Task
		want  string
	}{
		{"no tasks", vi, nil, `{}`},
		{"no versionInfo: only the total", nil, []marathon.Task{cur},
			`{"totalSummary":{"stats":{"counts":{"staged":0,"running":1,"healthy":1,"unhealthy":0},"lifeTime":{"averageSeconds":30,"medianSeconds":30}}}}`},
		{"all buckets", vi, []marathon.Task{old, cur, scaled, staged, fresh}, `{
			"startedAfterLastScaling":{"stats":{"counts":{"staged":2,"running":1,"healthy":0,"unhealthy":0},"lifeTime":{"averageSeconds":20,"medianSeconds":20}}},
			"withLatestConfig":{"stats":{"counts":{"staged":2,"running":2,"healthy":1,"unhealthy":0},"lifeTime":{"averageSeconds":25,"medianSeconds":30}}},
			"withOutdatedConfig":{"stats":{"counts":{"staged":0,"running":1,"healthy":0,"unhealthy":1},"lifeTime":{"averageSeconds":100,"medianSeconds":100}}},
			"totalSummary":{"stats":{"counts":{"staged":2,"running":3,"healthy":1,"unhealthy":1},"lifeTime":{"averageSeconds":50,"medianSeconds":30}}}}`},
		{"only outdated tasks: no latest or after-scaling bucket", vi, []marathon.Task{old},
			`{"withOutdatedConfig":{"stats":{"counts":{"staged":0,"running":1,"healthy":0,"unhealthy":1},"lifeTime":{"averageSeconds":100,"medianSeconds":100}}},
			"totalSummary":{"stats":{"counts":{"staged":0,"running":1,"healthy":0,"unhealthy":1},"lifeTime":{"averageSeconds":100,"medianSeconds":100}}}}`},
		{"no started task: no lifeTime", vi, []marathon.Task{staged},
			`{"startedAfterLastScaling":{"stats":{"counts":{"staged":1,"running":0,"healthy":0,"unhealthy":0}}},
			"withLatestConfig":{"stats":{"counts":{"staged":1,"running":0,"healthy":0,"unhealthy":0}}},
			"totalSummary":{"stats":{"counts":{"staged":1,"running":0,"healthy":0,"unhealthy":0}}}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := json.Marshal(computeTaskStats(now, tc.vi, tc.tasks))
			require.NoError(t, err)
			assert.JSONEq(t, tc.want, string(got))
		})
	}
}

func TestTaskStatsEmbed(t *testing.T) {
	app := marathon.App{ID: "/g/web", Instances: 1, Version: "2024-01-01T00:00:00.000Z",
		VersionInfo: &marathon.VersionInfo{LastScalingAt: "2024-01-01T00:00:00.000Z", LastConfigChangeAt: "2024-01-01T00:00:00.000Z"},
		Tasks:       []marathon.Task{{ID: "web.1", AppID: "/g/web", Host: "h", State: "TASK_STAGING", Version: "2024-01-01T00:00:00.000Z"}},
	}
	srv := newTestServer(t, &fakeBackend{apps: []marathon.App{app}})
	pickList := func(b string) map[string]json.RawMessage {
		var r struct{ Apps []map[string]json.RawMessage }
		require.NoError(t, json.Unmarshal([]byte(b), &r), b)
		require.Len(t, r.Apps, 1)
		return r.Apps[0]
	}
	pickGroup := func(b string) map[string]json.RawMessage {
		var g struct {
			Groups []struct{ Apps []map[string]json.RawMessage }
		}
		require.NoError(t, json.Unmarshal([]byte(b), &g), b)
		require.Len(t, g.Groups, 1)
		require.Len(t, g.Groups[0].Apps, 1)
		return g.Groups[0].Apps[0]
	}
	const stats = `{"stats":{"counts":{"staged":1,"running":0,"healthy":0,"unhealthy":0}}}`
	want := `{"startedAfterLastScaling":` + stats + `,"withLatestConfig":` + stats + `,"totalSummary":` + stats + `}`
	tests := []struct {
		path  string
		pick  func(string) map[string]json.RawMessage
		embed bool
	}{
		{"/v2/apps?embed=apps.taskStats", pickList, true},
		{"/v2/apps", pickList, false},
		{"/v2/apps/g/web?embed=app.taskStats", func(b string) map[string]json.RawMessage { return decodeObject(t, string(decodeObject(t, b)["app"])) }, true},
		{"/v2/apps/g/web", func(b string) map[string]json.RawMessage { return decodeObject(t, string(decodeObject(t, b)["app"])) }, false},
		{"/v2/groups?embed=group.groups&embed=group.apps&embed=group.apps.taskStats", pickGroup, true},
		{"/v2/groups", pickGroup, false},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			code, body := call(t, srv, "GET", tc.path, "")
			require.Equal(t, http.StatusOK, code, body)
			m := tc.pick(body)
			if !tc.embed {
				assert.NotContains(t, m, "taskStats")
				assert.NotContains(t, m, "tasksStats")
				return
			}
			require.Contains(t, m, "taskStats")
			assert.JSONEq(t, want, string(m["taskStats"]))
			assert.JSONEq(t, want, string(m["tasksStats"]))
		})
	}
}
