// Package deploy is the pure deployment planner. Plan turns a set of app
// changes into ordered Marathon deployment steps, Classify says what kind of
// change an update is, and Step computes, from an app's target and its
// current tasks, which tasks to launch and kill next and whether the
// current action is done. Step is level-triggered: it re-derives progress
// from the tasks every time, so a scheduler restart or a lost event never
// confuses it. Nothing here performs I/O or keeps state.
package deploy

import (
	"encoding/json"
	"math"
	"sort"
	"time"

	"github.com/switchyard/switchyard/marathon"
)

// Deployment actions, as Marathon names them.
const (
	ActionStart   = "StartApplication"
	ActionStop    = "StopApplication"
	ActionScale   = "ScaleApplication"
	ActionRestart = "RestartApplication"
	// ActionSteady is not a Marathon action: it is the self-healing mode of
	// an app that no deployment touches (keep `instances` tasks running).
	ActionSteady = ""
)

// Kill selections.
const (
	YoungestFirst = "YOUNGEST_FIRST"
	OldestFirst   = "OLDEST_FIRST"
)

// Change is one app touched by an API call. Old is nil for a new app, New is
// nil for a removed app. Restart forces a RestartApplication even when the
// definitions are equal (POST /v2/apps/{id}/restart).
type Change struct {
	AppID   string
	Old     *marathon.App
	New     *marathon.App
	Restart bool
}

// Classify returns the action an update from old to new needs: ActionScale
// when only instances differ, ActionRestart when any configuration differs,
// and ActionSteady ("") when nothing does. Read-only and server-set fields
// (version, versionInfo, counts, tasks, deployments) are ignored.
func Classify(old, new *marathon.App) string {
	switch {
	case old == nil && new == nil:
		return ActionSteady
	case old == nil:
		return ActionStart
	case new == nil:
		return ActionStop
	}
	if configKey(old) != configKey(new) {
		return ActionRestart
	}
	if old.Instances != new.Instances {
		return ActionScale
	}
	return ActionSteady
}

func configKey(a *marathon.App) string {
	c := *a
	c.Instances = 0
	c.Version = ""
	c.VersionInfo = nil
	c.TasksStaged, c.TasksRunning, c.TasksHealthy, c.TasksUnhealthy = 0, 0, 0, 0
	c.Deployments = nil
	c.Tasks = nil
	c.LastTaskFailure = nil
	b, err := json.Marshal(c)
	if err != nil {
		return ""
	}
	return string(b)
}

// Plan orders the actions of a set of changes into steps, as Marathon does:
// stops first, then starts of new apps, then scale/restart actions grouped
// by dependency depth (dependencies first). Empty steps are dropped.
func Plan(changes []Change) []marathon.DeploymentStep {
	var stops, starts []marathon.DeploymentAction
	type later struct {
		action marathon.DeploymentAction
		depth  int
	}
	var rest []later
	inSet := map[string]*marathon.App{}
	for _, c := range changes {
		if c.New != nil {
			inSet[c.AppID] = c.New
		}
	}
	for _, c := range changes {
		kind := Classify(c.Old, c.New)
		if c.Restart && c.Old != nil && c.New != nil {
			kind = ActionRestart
		}
		switch kind {
		case ActionStop:
			stops = append(stops, marathon.DeploymentAction{Action: ActionStop, App: c.AppID})
		case ActionStart:
			starts = append(starts, marathon.DeploymentAction{Action: ActionStart, App: c.AppID})
			rest = append(rest, later{marathon.DeploymentAction{Action: ActionScale, App: c.AppID}, depth(c.AppID, inSet, map[string]bool{})})
		case ActionScale, ActionRestart:
			rest = append(rest, later{marathon.DeploymentAction{Action: kind, App: c.AppID}, depth(c.AppID, inSet, map[string]bool{})})
		}
	}
	var steps []marathon.DeploymentStep
	add := func(actions []marathon.DeploymentAction) {
		if len(actions) > 0 {
			sort.Slice(actions, func(i, j int) bool { return actions[i].App < actions[j].App })
			steps = append(steps, marathon.DeploymentStep{Actions: actions})
		}
	}
	add(stops)
	add(starts)
	byDepth := map[int][]marathon.DeploymentAction{}
	var depths []int
	for _, r := range rest {
		if _, ok := byDepth[r.depth]; !ok {
			depths = append(depths, r.depth)
		}
		byDepth[r.depth] = append(byDepth[r.depth], r.action)
	}
	sort.Ints(depths)
	for _, d := range depths {
		add(byDepth[d])
	}
	return steps
}

// depth is the longest dependency chain of id inside the change set.
func depth(id string, apps map[string]*marathon.App, seen map[string]bool) int {
	a, ok := apps[id]
	if !ok || seen[id] {
		return 0
	}
	seen[id] = true
	defer delete(seen, id)
	d := 0
	for _, dep := range a.Dependencies {
		if x := 1 + depth(marathon.CanonicalID(dep), apps, seen); x > d {
			d = x
		}
	}
	return d
}

// Task is what Step needs to know about one non-terminal task of an app.
type Task struct {
	ID string
	// Current is true when the task runs the app's target configuration.
	Current bool
	// Running is true in TASK_RUNNING.
	Running bool
	// Healthy is true when the task is running and every health check it
	// has is alive (running is enough without health checks).
	Healthy bool
	// Unready is true while a readiness check of a task launched by the
	// current deployment has not answered ready yet: such a task does not
	// count as healthy (spec §2.5).
	Unready bool
	// Killing is true once a kill was requested; the task still occupies
	// capacity until it is terminal.
	Killing bool
	// Unreachable is true while the task's agent does not answer.
	Unreachable bool
	// Inactive is true once an unreachable task passed inactiveAfterSeconds:
	// it no longer counts as an instance.
	Inactive bool
	// Sentenced marks tasks named by a scale=true kill: they die first.
	Sentenced bool
	// StagedAt orders tasks for killSelection.
	StagedAt time.Time
}

// up reports whether the task counts as healthy and ready.
func (t Task) up() bool { return t.Healthy && !t.Unready }

// Input is an app's target and current tasks.
type Input struct {
	Action        string
	Instances     int
	Strategy      marathon.UpgradeStrategy
	KillSelection string
	Tasks         []Task
}

// Output is what to do next: launch Launch new tasks of the target
// configuration and kill the tasks in Kill. Done reports whether the action
// reached its goal (always false for ActionSteady).
type Output struct {
	Launch int
	Kill   []string
	Done   bool
}

// Step computes the next moves for one app.
func Step(in Input) Output {
	switch in.Action {
	case ActionStop:
		return stop(in)
	case ActionRestart:
		return restart(in)
	case ActionStart:
		return Output{Done: true}
	default:
		return scale(in)
	}
}

func stop(in Input) Output {
	var out Output
	for _, t := range in.Tasks {
		if !t.Killing {
			out.Kill = append(out.Kill, t.ID)
		}
	}
	out.Done = len(in.Tasks) == 0
	return out
}

// counting returns the tasks that count as instances (not killed, not
// inactive).
func counting(tasks []Task) []Task {
	var out []Task
	for _, t := range tasks {
		if !t.Killing && !t.Inactive {
			out = append(out, t)
		}
	}
	return out
}

func scale(in Input) Output {
	var out Output
	active := counting(in.Tasks)
	n := max(in.Instances, 0)
	switch {
	case len(active) < n:
		out.Launch = n - len(active)
	case len(active) > n:
		out.Kill = pickVictims(active, len(active)-n, in.KillSelection)
	}
	if in.Action == ActionSteady {
		return out
	}
	out.Done = len(active) == n && out.Launch == 0
	for _, t := range in.Tasks {
		if t.Killing || (!t.Inactive && !t.up()) {
			out.Done = false
		}
	}
	return out
}

// condition orders victims: unreachable first, then not yet running, then
// running (Marathon's scale-down order).
func condition(t Task) int {
	switch {
	case t.Unreachable:
		return 0
	case !t.Running:
		return 1
	default:
		return 2
	}
}

// pickVictims returns n task ids to kill: sentenced ones first, then by
// condition, then by killSelection.
func pickVictims(tasks []Task, n int, selection string) []string {
	ts := append([]Task(nil), tasks...)
	sort.SliceStable(ts, func(i, j int) bool {
		a, b := ts[i], ts[j]
		if a.Sentenced != b.Sentenced {
			return a.Sentenced
		}
		if ca, cb := condition(a), condition(b); ca != cb {
			return ca < cb
		}
		if !a.StagedAt.Equal(b.StagedAt) {
			if selection == OldestFirst {
				return a.StagedAt.Before(b.StagedAt)
			}
			return a.StagedAt.After(b.StagedAt)
		}
		return a.ID < b.ID
	})
	ids := make([]string, 0, n)
	for _, t := range ts[:min(n, len(ts))] {
		ids = append(ids, t.ID)
	}
	return ids
}

// Capacity returns the rolling-upgrade bounds for n instances:
// minHealthy = ceil(n × minimumHealthCapacity) and maxCapacity =
// floor(n × (1 + maximumOverCapacity)), raised by one when it would not
// exceed minHealthy, so that a {1, 0} strategy can still make progress.
func Capacity(n int, s marathon.UpgradeStrategy) (minHealthy, maxCapacity int) {
	minHealthy = int(math.Ceil(float64(n)*s.MinimumHealthCapacity - 1e-9))
	maxCapacity = int(math.Floor(float64(n)*(1+s.MaximumOverCapacity) + 1e-9))
	if maxCapacity <= minHealthy {
		maxCapacity = minHealthy + 1
	}
	return minHealthy, maxCapacity
}

// restart rolls the app's tasks to the target configuration. Healthy old
// tasks are killed only while the healthy total stays at or above
// minHealthy; unhealthy old tasks die as soon as the healthy total reaches
// minHealthy; new tasks start while all tasks (old ones included until they
// are gone) stay under maxCapacity.
func restart(in Input) Output {
	var out Output
	n := max(in.Instances, 0)
	minHealthy, maxCap := Capacity(n, in.Strategy)
	var old, cur []Task
	alive := 0
	oldAlive := 0
	for _, t := range in.Tasks {
		if !t.Inactive {
			alive++
			if !t.Current {
				oldAlive++
			}
		}
		if t.Killing || t.Inactive {
			continue
		}
		if t.Current {
			cur = append(cur, t)
		} else {
			old = append(old, t)
		}
	}
	if len(cur) > n {
		out.Kill = append(out.Kill, pickVictims(cur, len(cur)-n, in.KillSelection)...)
		cur = survivors(cur, out.Kill)
	}
	healthy := 0
	for _, t := range cur {
		if t.up() {
			healthy++
		}
	}
	var oldHealthy, oldSick []Task
	for _, t := range old {
		if t.up() {
			oldHealthy = append(oldHealthy, t)
			healthy++
		} else {
			oldSick = append(oldSick, t)
		}
	}
	if healthy >= minHealthy {
		for _, t := range oldSick {
			out.Kill = append(out.Kill, t.ID)
		}
	}
	// Old tasks beyond n never need to survive.
	budget := max(healthy-minHealthy, len(oldHealthy)-n, 0)
	if budget > 0 {
		out.Kill = append(out.Kill, pickVictims(oldHealthy, budget, OldestFirst)...)
	}
	if room := maxCap - alive; room > 0 {
		out.Launch = min(n-len(cur), room)
		out.Launch = max(out.Launch, 0)
	}
	out.Done = oldAlive == 0 && len(cur) == n && healthy == n && out.Launch == 0 && len(out.Kill) == 0
	return out
}

func survivors(ts []Task, killed []string) []Task {
	dead := map[string]bool{}
	for _, id := range killed {
		dead[id] = true
	}
	var out []Task
	for _, t := range ts {
		if !dead[t.ID] {
			out = append(out, t)
		}
	}
	return out
}
