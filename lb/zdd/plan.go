package zdd

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard/switchyard/marathon"
)

// This file is the pure part of zdd: which colour, port and instance
// counts a deployment uses, and, given what Marathon and the load
// balancers show, what the next step is. It does no I/O.

// Prepared is the plan for a new deployment.
type Prepared struct {
	// New is the definition to POST: coloured id, swapped service port,
	// deployment labels, initial instances.
	New *Definition
	// Old is the app being replaced; nil on the first deployment of the
	// group.
	Old *marathon.App
	// Colour and ServicePort are the new app's.
	Colour      string
	ServicePort int
	// Target is the instance count the new app ends with.
	Target int
	// Initial is the instance count the new app starts with.
	Initial int
	// NewInstances, when above 0, makes a hybrid deployment: the new app
	// stops at this many instances and the old one keeps Target minus
	// that (both serve; finish later with --complete-cur/--complete-prev).
	NewInstances int
}

// PrepareOptions are the operator's choices for a new deployment.
type PrepareOptions struct {
	// InitialInstances is the new app's first size (at least 1, at most
	// the target).
	InitialInstances int
	// NewInstances, when above 0, asks for a hybrid deployment (capped at
	// the target).
	NewInstances int
}

// groupMembers returns the apps of a deployment group, oldest first (by
// HAPROXY_DEPLOYMENT_STARTED_AT, then id).
func groupMembers(apps []marathon.App, group string) []marathon.App {
	want := strings.Trim(group, "/")
	var out []marathon.App
	for _, a := range apps {
		if g := strings.TrimSpace(a.Labels[LabelGroup]); g != "" && strings.Trim(g, "/") == want {
			out = append(out, a)
		}
	}
	slices.SortStableFunc(out, func(x, y marathon.App) int {
		if c := startedAt(x).Compare(startedAt(y)); c != 0 {
			return c
		}
		return cmp.Compare(x.ID, y.ID)
	})
	return out
}

// startedAt parses HAPROXY_DEPLOYMENT_STARTED_AT: RFC 3339, or Python's
// isoformat without a zone (marathon-lb's zdd writes that, read as UTC).
// Missing or bad values are the zero time (the oldest).
func startedAt(a marathon.App) time.Time {
	s := strings.TrimSpace(a.Labels[LabelStartedAt])
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t
	}
	if t, err := time.Parse("2006-01-02T15:04:05.999999999", s); err == nil {
		return t
	}
	return time.Time{}
}

// otherColour returns the colour a new deployment gets after an app of
// colour c: green after blue, blue after anything else (marathon-lb).
func otherColour(c string) string {
	if strings.EqualFold(strings.TrimSpace(c), Blue) {
		return Green
	}
	return Blue
}

// baseID strips a colour suffix, so that a definition exported from a
// running colour does not become /web-blue-green.
func baseID(id string) string {
	for _, c := range []string{"-" + Blue, "-" + Green} {
		if strings.HasSuffix(id, c) && len(id) > len(c)+1 {
			return strings.TrimSuffix(id, c)
		}
	}
	return id
}

// Prepare plans a new deployment of def given the apps Marathon runs now.
// The group must have at most one app (more means a deployment is in
// progress or was interrupted: see Resume). now stamps
// HAPROXY_DEPLOYMENT_STARTED_AT.
func Prepare(def *Definition, apps []marathon.App, opts PrepareOptions, now time.Time) (Prepared, error) {
	initial := opts.InitialInstances
	members := groupMembers(apps, def.Group())
	if len(members) > 1 {
		ids := make([]string, len(members))
		for i, m := range members {
			ids[i] = m.ID
		}
		return Prepared{}, fmt.Errorf("deployment group %s has %d apps (%s): a deployment is in progress or was interrupted; finish it with --complete-cur or roll it back with --complete-prev",
			def.Group(), len(members), strings.Join(ids, ", "))
	}
	mainPort, err := def.ServicePort()
	if err != nil {
		return Prepared{}, err
	}
	p := Prepared{New: def.clone()}
	base := baseID(def.ID())
	if len(members) == 0 {
		p.Colour = Blue
		p.ServicePort = mainPort
		p.Target = def.Instances()
		p.Initial = p.Target
	} else {
		old := members[0]
		p.Old = &old
		p.Colour = otherColour(old.Labels[LabelColour])
		p.ServicePort = def.AltPort()
		if servicePortOf(old) == def.AltPort() {
			// The old app runs on the alternate port: go back to the main
			// one (the port both colours are served on).
			p.ServicePort = mainPort
			if v, err := strconv.Atoi(strings.TrimSpace(old.Labels[LabelPort0])); err == nil && v > 0 {
				p.ServicePort = v
			}
		}
		p.Target = old.Instances
		if p.Target == 0 {
			p.Target = def.Instances()
		}
		if opts.NewInstances > 0 && opts.NewInstances < p.Target {
			p.NewInstances = opts.NewInstances
		}
		p.Initial = min(max(initial, 1), p.Target)
		if p.NewInstances > 0 {
			p.Initial = min(p.Initial, p.NewInstances)
		}
		if v, err := strconv.Atoi(strings.TrimSpace(old.Labels[LabelPort0])); err == nil && v > 0 {
			mainPort = v
		}
	}
	if p.Target == 0 {
		p.Initial = 0
	}
	n := p.New
	n.SetLabel(LabelAppID, base)
	n.SetID(base + "-" + p.Colour)
	n.SetLabel(LabelPort0, strconv.Itoa(mainPort))
	n.SetServicePort(p.ServicePort)
	n.SetLabel(LabelColour, p.Colour)
	n.SetLabel(LabelStartedAt, now.UTC().Format(time.RFC3339Nano))
	n.SetLabel(LabelTargetInstances, strconv.Itoa(p.Target))
	n.SetLabel(LabelNewInstances, strconv.Itoa(p.NewInstances))
	n.SetInstances(p.Initial)
	return p, nil
}

// Resume picks the two apps of an interrupted or hybrid deployment: with
// prev false it completes the newest app (--complete-cur), with prev true
// it returns to the one before (--complete-prev). newApp is the app that
// ends with all instances; target is the newest app's
// HAPROXY_DEPLOYMENT_TARGET_INSTANCES, or both apps' instances summed.
func Resume(apps []marathon.App, group string, prev bool) (newApp, oldApp marathon.App, target int, err error) {
	members := groupMembers(apps, group)
	if len(members) < 2 {
		return marathon.App{}, marathon.App{}, 0, fmt.Errorf("deployment group %s has %d app(s): nothing to complete (--complete-cur/--complete-prev apply only while both colours run)", group, len(members))
	}
	newest, before := members[len(members)-1], members[len(members)-2]
	target = newest.Instances + before.Instances
	if v, err := strconv.Atoi(strings.TrimSpace(newest.Labels[LabelTargetInstances])); err == nil && v > 0 {
		target = v
	}
	if prev {
		return before, newest, target, nil
	}
	return newest, before, target, nil
}

// NextInstances is the new app's next size: it grows by half (rounded
// up) each step, and jumps to the target once it would match the old
// app's remaining instances.
func NextInstances(cur, old, target int) int {
	next := cur + (cur+1)/2
	if next >= old {
		next = target
	}
	return max(min(next, target), min(cur+1, target))
}

// Observation is what one round saw.
type Observation struct {
	New, Old marathon.App // as read from Marathon, with tasks
	Target   int
	// NewTarget, when between 1 and Target-1, stops the new app there
	// and keeps Target-NewTarget old instances (hybrid deployment).
	NewTarget int
	// LB is nil when no load balancer is checked.
	LB *LBView
	// DrainTimedOut is set once the round has waited --max-wait for old
	// servers to drain: servers still draining may then be killed.
	DrainTimedOut bool
}

// LBView is what the load balancers show for the group, summed over all
// of them (a server counts only when every LB agrees).
type LBView struct {
	// Up holds ids of new tasks whose server is UP on every LB.
	Up map[string]bool
	// Drained holds ids of old tasks whose server is in maintenance with
	// no session or queue on every LB (or gone from it).
	Drained map[string]bool
	// Draining holds ids of old tasks whose server is in maintenance on
	// every LB, with or without sessions.
	Draining map[string]bool
}

// StepKind says what a Step does.
type StepKind int

// Step kinds.
const (
	// StepWait: nothing to do until the next round (Reason says why).
	StepWait StepKind = iota
	// StepAct: kill Kill (scaling the old app down) and/or scale the new
	// app to ScaleNewTo.
	StepAct
	// StepDeleteOld: the new app has its target and the old none: delete
	// the old app, then the deployment is done.
	StepDeleteOld
	// StepHybridDone: a hybrid deployment reached its split; both apps
	// stay.
	StepHybridDone
)

// Step is the next thing to do.
type Step struct {
	Kind   StepKind
	Reason string
	// WaitingForDrain marks a wait on the load balancers' drain, which
	// --max-wait ends by killing draining servers instead of failing.
	WaitingForDrain bool
	// Kill lists old task ids to kill with scale=true.
	Kill []string
	// ScaleNewTo is the new app's next instance count; 0 means unchanged.
	ScaleNewTo int
}

// live reports whether a task still counts (not terminal).
func live(t marathon.Task) bool { return !marathon.IsTerminal(t.State) }

// Healthy reports whether a task serves: running and, when the app has
// health checks, with a result for each and all alive.
func Healthy(app marathon.App, t marathon.Task) bool {
	if t.State != marathon.TaskRunning {
		return false
	}
	if len(app.HealthChecks) == 0 {
		return true
	}
	if len(t.HealthCheckResults) < len(app.HealthChecks) {
		return false
	}
	for _, r := range t.HealthCheckResults {
		if !r.Alive {
			return false
		}
	}
	return true
}

// healthyTasks returns the ids of an app's healthy tasks.
func healthyTasks(app marathon.App) []string {
	var ids []string
	for _, t := range app.Tasks {
		if Healthy(app, t) {
			ids = append(ids, t.ID)
		}
	}
	return ids
}

// Next decides the next step from one round's observation:
//  1. wait while either app has a Marathon deployment running;
//  2. wait until every new instance is healthy (and UP on the LBs);
//  3. when the old app has no instance left and the new one its target,
//     delete the old app;
//  4. otherwise kill as many old tasks as the healthy new ones replace
//     (those the LB drains first: lowest task ids, once drained) and grow
//     the new app by NextInstances.
func Next(o Observation) Step {
	healthy := healthyTasks(o.New)
	if len(o.New.Deployments) > 0 {
		return Step{Kind: StepWait, Reason: fmt.Sprintf("deployment of %s in progress (%d/%d tasks healthy)", o.New.ID, len(healthy), o.New.Instances)}
	}
	if len(o.Old.Deployments) > 0 {
		return Step{Kind: StepWait, Reason: fmt.Sprintf("deployment of %s in progress", o.Old.ID)}
	}
	if len(healthy) < o.New.Instances {
		return Step{Kind: StepWait, Reason: fmt.Sprintf("%d/%d tasks of %s healthy", len(healthy), o.New.Instances, o.New.ID)}
	}
	if o.LB != nil {
		up := 0
		for _, id := range healthy {
			if o.LB.Up[id] {
				up++
			}
		}
		if up < o.New.Instances {
			return Step{Kind: StepWait, Reason: fmt.Sprintf("%d/%d servers of %s UP on the load balancers", up, o.New.Instances, o.New.ID)}
		}
	}
	oldLive := 0
	var oldIDs []string
	for _, t := range o.Old.Tasks {
		if live(t) {
			oldLive++
			oldIDs = append(oldIDs, t.ID)
		}
	}
	newTarget := o.Target
	if o.NewTarget > 0 && o.NewTarget < o.Target {
		newTarget = o.NewTarget
	}
	if oldLive > o.Old.Instances {
		// Killed (scaled down) tasks still stopping.
		return Step{Kind: StepWait, Reason: fmt.Sprintf("%d tasks of %s stopping", oldLive-o.Old.Instances, o.Old.ID)}
	}
	if o.New.Instances >= newTarget && o.Old.Instances <= o.Target-newTarget {
		if newTarget < o.Target {
			return Step{Kind: StepHybridDone, Reason: fmt.Sprintf("%s has %d instances, %s %d", o.New.ID, o.New.Instances, o.Old.ID, o.Old.Instances)}
		}
		return Step{Kind: StepDeleteOld, Reason: fmt.Sprintf("%s has %d instances, %s none", o.New.ID, o.New.Instances, o.Old.ID)}
	}
	slices.Sort(oldIDs)
	n := min(o.Old.Instances, len(oldIDs), len(healthy)+o.Old.Instances-o.Target)
	step := Step{Kind: StepAct}
	if n > 0 {
		if o.LB == nil {
			step.Kill = oldIDs[:n]
		} else {
			// Any n old tasks the LBs drained (they pick which).
			for _, id := range oldIDs {
				if len(step.Kill) < n && (o.LB.Drained[id] || (o.DrainTimedOut && o.LB.Draining[id])) {
					step.Kill = append(step.Kill, id)
				}
			}
			if len(step.Kill) == 0 {
				step = Step{Kind: StepWait, WaitingForDrain: true,
					Reason: fmt.Sprintf("waiting for %d server(s) of %s to drain on the load balancers", n, o.Old.ID)}
			}
		}
	}
	oldAfter := o.Old.Instances - len(step.Kill)
	if o.New.Instances < newTarget {
		step.ScaleNewTo = min(NextInstances(o.New.Instances, oldAfter, o.Target), newTarget)
		if step.Kind == StepWait {
			step.Kind = StepAct // growing the new app is safe while old servers drain
		}
	}
	if step.Kind == StepAct && len(step.Kill) == 0 && step.ScaleNewTo == 0 {
		return Step{Kind: StepWait, Reason: fmt.Sprintf("nothing to do yet (%s: %d, %s: %d, target %d)", o.New.ID, o.New.Instances, o.Old.ID, o.Old.Instances, o.Target)}
	}
	return step
}

// Schedule simulates a deployment where every task is healthy at once
// and the LBs drain instantly: the (new, old) instance counts after each
// step, for --dry and tests. newTarget is the hybrid split (0: target).
func Schedule(initial, old, target, newTarget int) [][2]int {
	if newTarget <= 0 || newTarget > target {
		newTarget = target
	}
	var out [][2]int
	n := initial
	for range 1000 {
		kill := min(old, max(0, n+old-target))
		old -= kill
		if n < newTarget {
			n = min(NextInstances(n, old, target), newTarget)
		}
		out = append(out, [2]int{n, old})
		if n >= newTarget && old <= target-newTarget {
			return out
		}
	}
	return out
}
