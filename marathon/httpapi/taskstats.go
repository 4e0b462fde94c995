package httpapi

import (
	"sort"
	"time"

	"github.com/switchyard/switchyard/marathon"
)

// TaskStatsByVersion is the taskStats member of AppInfo (embed
// apps.taskStats, app.taskStats, group.apps.taskStats): task statistics
// over all tasks and over the tasks launched with a recent enough
// definition. A bucket without tasks is left out, as Marathon does; an app
// without tasks has {}.
type TaskStatsByVersion struct {
	StartedAfterLastScaling *TaskStatsWrap `json:"startedAfterLastScaling,omitempty"`
	WithLatestConfig        *TaskStatsWrap `json:"withLatestConfig,omitempty"`
	WithOutdatedConfig      *TaskStatsWrap `json:"withOutdatedConfig,omitempty"`
	TotalSummary            *TaskStatsWrap `json:"totalSummary,omitempty"`
}

// TaskStatsWrap is Marathon's {"stats": ...} wrapper of one bucket.
type TaskStatsWrap struct {
	Stats TaskStats `json:"stats"`
}

// TaskStats are the counts and life times of the tasks of one bucket.
type TaskStats struct {
	Counts   TaskStatsCounts `json:"counts"`
	LifeTime *TaskLifeTime   `json:"lifeTime,omitempty"`
}

// TaskStatsCounts counts the tasks of a bucket by state and health, with
// the rules of the tasksStaged/tasksRunning/... AppInfo counts.
type TaskStatsCounts struct {
	Staged    int `json:"staged"`
	Running   int `json:"running"`
	Healthy   int `json:"healthy"`
	Unhealthy int `json:"unhealthy"`
}

// TaskLifeTime is how long the started tasks of a bucket have been
// running; it is left out when no task of the bucket has started.
type TaskLifeTime struct {
	AverageSeconds float64 `json:"averageSeconds"`
	MedianSeconds  float64 `json:"medianSeconds"`
}

// taskStat is what the statistics need of one task.
type taskStat struct {
	version   time.Time
	hasVer    bool
	staged    bool
	running   bool
	healthy   bool
	unhealthy bool
	lifeTime  *float64
}

// parseTS parses a Marathon timestamp.
func parseTS(s string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, s)
	return t, err == nil
}

func newTaskStat(now time.Time, t marathon.Task) taskStat {
	st := taskStat{
		running: t.State == "TASK_RUNNING",
		staged:  t.State == "" || t.State == "TASK_STAGING",
	}
	st.version, st.hasVer = parseTS(t.Version)
	if len(t.HealthCheckResults) > 0 {
		st.healthy = true
		for _, h := range t.HealthCheckResults {
			if !h.Alive {
				st.healthy, st.unhealthy = false, true
			}
		}
	}
	if started, ok := parseTS(t.StartedAt); ok {
		// Whole milliseconds, as Marathon's timestamps are.
		secs := float64(now.Sub(started).Milliseconds()) / 1000
		st.lifeTime = &secs
	}
	return st
}

// taskStatsFor computes the bucket of tasks; nil when there are none.
func taskStatsFor(tasks []taskStat) *TaskStatsWrap {
	if len(tasks) == 0 {
		return nil
	}
	var out TaskStatsWrap
	c := &out.Stats.Counts
	var lifeTimes []float64
	for _, t := range tasks {
		if t.staged {
			c.Staged++
		}
		if t.running {
			c.Running++
		}
		if t.healthy {
			c.Healthy++
		}
		if t.unhealthy {
			c.Unhealthy++
		}
		if t.lifeTime != nil {
			lifeTimes = append(lifeTimes, *t.lifeTime)
		}
	}
	if len(lifeTimes) > 0 {
		sort.Float64s(lifeTimes)
		var sum float64
		for _, l := range lifeTimes {
			sum += l
		}
		out.Stats.LifeTime = &TaskLifeTime{
			AverageSeconds: sum / float64(len(lifeTimes)),
			// The upper median, as Marathon picks it.
			MedianSeconds: lifeTimes[len(lifeTimes)/2],
		}
	}
	return &out
}

// computeTaskStats returns the taskStats of an app's tasks at now. The
// by-version buckets compare the definition version each task was
// launched with against versionInfo; an app without versionInfo has only
// totalSummary.
func computeTaskStats(now time.Time, vi *marathon.VersionInfo, tasks []marathon.Task) TaskStatsByVersion {
	all := make([]taskStat, 0, len(tasks))
	for _, t := range tasks {
		all = append(all, newTaskStat(now, t))
	}
	out := TaskStatsByVersion{TotalSummary: taskStatsFor(all)}
	if vi == nil {
		return out
	}
	scaled, okScaled := parseTS(vi.LastScalingAt)
	changed, okChanged := parseTS(vi.LastConfigChangeAt)
	if !okScaled || !okChanged {
		return out
	}
	var afterScaling, latest, outdated []taskStat
	for _, t := range all {
		if t.hasVer && !t.version.Before(scaled) {
			afterScaling = append(afterScaling, t)
		}
		if t.hasVer && !t.version.Before(changed) {
			latest = append(latest, t)
		} else {
			outdated = append(outdated, t)
		}
	}
	out.StartedAfterLastScaling = taskStatsFor(afterScaling)
	out.WithLatestConfig = taskStatsFor(latest)
	out.WithOutdatedConfig = taskStatsFor(outdated)
	return out
}
