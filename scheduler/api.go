package scheduler

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/scheduler/deploy"
	"github.com/switchyard/switchyard/scheduler/state"
)

// ListApps returns every app as AppInfo (tasks, counts, deployments and
// last task failure filled in).
func (s *Scheduler) ListApps(context.Context) ([]marathon.App, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	byApp := s.tasksByApp()
	deps := s.deploymentIndex()
	apps := s.store.Apps()
	out := make([]marathon.App, 0, len(apps))
	for _, a := range apps {
		out = append(out, s.appInfo(a, byApp[a.Def.ID], deps[a.Def.ID]))
	}
	return out, nil
}

// GetApp returns one app as AppInfo.
func (s *Scheduler) GetApp(_ context.Context, id string) (marathon.App, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id = marathon.CanonicalID(id)
	a, ok := s.store.App(id)
	if !ok {
		return marathon.App{}, appNotFound(id)
	}
	return s.appInfo(a, s.tasksByApp()[id], s.deploymentIndex()[id]), nil
}

func (s *Scheduler) deploymentIndex() map[string][]marathon.DeploymentRef {
	m := map[string][]marathon.DeploymentRef{}
	for _, d := range s.store.Deployments() {
		for _, a := range d.AffectedApps {
			m[a] = append(m[a], marathon.DeploymentRef{ID: d.ID})
		}
	}
	return m
}

func (s *Scheduler) appInfo(a *state.App, tasks []*state.Task, deps []marathon.DeploymentRef) marathon.App {
	info := a.Def
	if info.Role == "" {
		// Stored before apps had roles.
		info.Role = defaultRole
	}
	info.Tasks = make([]marathon.Task, 0, len(tasks))
	for _, t := range tasks {
		// Spec §2.3 counting rules: TASK_STARTING (and every other
		// state) counts in neither bucket.
		switch t.State {
		case marathon.TaskRunning:
			info.TasksRunning++
		case marathon.TaskStaging, "":
			info.TasksStaged++
		}
		// Only a running task is healthy or unhealthy: the last results
		// of an unreachable (or starting, or killing) task say nothing.
		if t.State == marathon.TaskRunning && len(t.Health) > 0 {
			alive := true
			for _, h := range t.Health {
				alive = alive && h.Alive
			}
			if alive {
				info.TasksHealthy++
			} else {
				info.TasksUnhealthy++
			}
		}
		info.Tasks = append(info.Tasks, toTask(t))
	}
	if deps == nil {
		deps = []marathon.DeploymentRef{}
	}
	info.Deployments = deps
	info.LastTaskFailure = a.LastTaskFailure
	return info
}

// toTask renders a task in Marathon's shape.
func toTask(t *state.Task) marathon.Task {
	mt := marathon.Task{
		ID: t.ID, AppID: t.AppID, Host: t.Host, SlaveID: t.AgentID, State: t.State,
		StagedAt: timestamp(t.StagedAt), Version: t.Version, Role: t.Role,
		Ports: hostPorts(t.HostPorts), ServicePorts: slices.Clone(t.ServicePorts),
		IPAddresses: t.IPAddresses,
	}
	if !t.StartedAt.IsZero() {
		mt.StartedAt = timestamp(t.StartedAt)
	}
	if mt.Role == "" {
		// Launched before tasks recorded their role.
		mt.Role = defaultRole
	}
	if mt.ServicePorts == nil {
		mt.ServicePorts = []int{}
	}
	for _, h := range t.Health {
		h.TaskID = t.ID
		h.InstanceID = instanceID(t.ID)
		mt.HealthCheckResults = append(mt.HealthCheckResults, h)
	}
	return mt
}

// AppVersions lists an app's stored versions.
func (s *Scheduler) AppVersions(_ context.Context, id string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id = marathon.CanonicalID(id)
	if _, ok := s.store.App(id); !ok {
		return nil, appNotFound(id)
	}
	vs := s.store.AppVersions(id)
	sort.Sort(sort.Reverse(sort.StringSlice(vs)))
	return vs, nil
}

// AppVersion returns one stored definition of an app.
func (s *Scheduler) AppVersion(_ context.Context, id, version string) (marathon.App, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id = marathon.CanonicalID(id)
	d, ok := s.store.AppVersion(id, version)
	if !ok {
		return marathon.App{}, &APIError{Status: http.StatusNotFound, Body: marathon.ErrorResponse{
			Message: fmt.Sprintf("App '%s' does not exist in version %s", id, version)}}
	}
	return *d, nil
}

// write runs apply under s.mu and stores what it changed before anyone
// sees it: the events apply publishes are held until the change is on
// disk, and a change the store cannot write is rolled back in memory and
// answered 503 (a 5xx always means "not applied").
func (s *Scheduler) write(apply func() error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.store.Begin()
	s.bus.hold()
	err := apply()
	if err == nil {
		err = s.flushLocked()
	}
	if errors.Is(err, errStore) {
		if rerr := s.store.Rollback(); rerr != nil {
			s.log.Error("cannot roll back a change the store refused", "err", rerr)
		}
		s.bus.release(false)
		s.log.Error("change not applied: state store failed", "err", err)
		s.kick()
		return &APIError{Status: http.StatusServiceUnavailable, Body: marathon.ErrorResponse{Message: err.Error()}}
	}
	s.store.Commit()
	s.bus.release(true)
	return err
}

// applyChange is write for a change of the apps under group groupID: a
// change that fails is announced with group_change_failed (changeFailed).
func (s *Scheduler) applyChange(groupID string, apply func() error) error {
	err := s.write(apply)
	if err != nil {
		s.changeFailed(groupID, err)
	}
	return err
}

// changeFailed publishes group_change_failed for a change of group
// groupID that could not be applied (spec §3.2): locked by a deployment
// or conflicting (409), invalid (422) or not stored (a store error). A
// request naming something that does not exist (404) or whose body does
// not decode (400, JSON errors found while merging a body) asked for no
// change and is not announced.
func (s *Scheduler) changeFailed(groupID string, err error) {
	var se interface{ HTTPStatus() int }
	if errors.As(err, &se) {
		switch se.HTTPStatus() {
		case http.StatusBadRequest, http.StatusNotFound:
			return
		}
	}
	s.bus.publish(marathon.EventGroupChangeFailed, &marathon.GroupChangeEvent{
		GroupID: groupID, Version: timestamp(time.Now()), Reason: failureReason(err)})
}

// failureReason is the reason of group_change_failed: the error, with
// the validation details of an APIError.
func failureReason(err error) string {
	var ae *APIError
	if !errors.As(err, &ae) || len(ae.Body.Details) == 0 {
		return err.Error()
	}
	parts := make([]string, 0, len(ae.Body.Details))
	for _, d := range ae.Body.Details {
		parts = append(parts, d.Path+": "+strings.Join(d.Errors, "; "))
	}
	return ae.Body.Message + ": " + strings.Join(parts, ", ")
}

// checkLock returns 409 locked unless force; with force it cancels the
// deployments affecting ids. Caller holds s.mu.
func (s *Scheduler) checkLock(ids []string, force bool) error {
	var conflicting []*state.Deployment
	for _, d := range s.store.Deployments() {
		for _, a := range d.AffectedApps {
			if slices.Contains(ids, a) {
				conflicting = append(conflicting, d)
				break
			}
		}
	}
	if len(conflicting) == 0 {
		return nil
	}
	if !force {
		dids := make([]string, 0, len(conflicting))
		for _, d := range conflicting {
			dids = append(dids, d.ID)
		}
		return locked(dids)
	}
	for _, d := range conflicting {
		s.cancel(d, "overridden by a forced change")
	}
	return nil
}

// cancel stops a deployment. The step it was running ends unsuccessfully
// (deployment_step_failure), then the deployment (deployment_failed).
// Caller holds s.mu.
func (s *Scheduler) cancel(d *state.Deployment, reason string) {
	s.store.DeleteDeployment(d.ID)
	s.metrics.deployments.WithLabelValues("failed").Inc()
	s.log.Info("deployment cancelled", "deployment", d.ID, "reason", reason)
	if d.CurrentStep > 0 && d.CurrentStep <= len(d.Steps) {
		s.publishDeployment(marathon.EventDeploymentStepFailure, d, &d.Steps[d.CurrentStep-1])
	}
	s.bus.publish(marathon.EventDeploymentFailed, &marathon.DeploymentEvent{ID: d.ID, Plan: plan(d), Reason: reason})
}

// assignServicePorts gives every service port 0 a number from
// [ServicePortMin, ServicePortMax]: the app's previous ports first, then
// the lowest free one. Caller holds s.mu.
func (s *Scheduler) assignServicePorts(next, prev *marathon.App) error {
	used := map[int]bool{}
	for _, a := range s.store.Apps() {
		if a.Def.ID == next.ID {
			continue
		}
		for _, p := range servicePorts(&a.Def) {
			used[p] = true
		}
	}
	named := map[int]bool{}
	for _, p := range servicePorts(next) {
		named[p] = true
	}
	var reuse []int
	if prev != nil {
		for _, p := range servicePorts(prev) {
			if p != 0 && !named[p] && !used[p] {
				reuse = append(reuse, p)
			}
		}
	}
	cursor := ServicePortMin
	pick := func() (int, error) {
		if len(reuse) > 0 {
			p := reuse[0]
			reuse = reuse[1:]
			named[p] = true
			return p, nil
		}
		for ; cursor <= ServicePortMax; cursor++ {
			if !used[cursor] && !named[cursor] {
				named[cursor] = true
				return cursor, nil
			}
		}
		return 0, invalid("/", fmt.Sprintf("no free service port left in [%d, %d]", ServicePortMin, ServicePortMax))
	}
	if networkMode(next) == "host" {
		for i := range next.PortDefinitions {
			if next.PortDefinitions[i].Port == 0 {
				p, err := pick()
				if err != nil {
					return err
				}
				next.PortDefinitions[i].Port = p
			}
		}
	} else if c := next.Container; c != nil {
		c.PortMappings = slices.Clone(c.PortMappings)
		for i := range c.PortMappings {
			if c.PortMappings[i].ServicePort == 0 {
				p, err := pick()
				if err != nil {
					return err
				}
				c.PortMappings[i].ServicePort = p
			}
		}
		if c.Docker != nil && c.Docker.PortMappings != nil {
			c.Docker.PortMappings = slices.Clone(c.PortMappings)
		}
	}
	sp := servicePorts(next)
	if len(sp) == 0 {
		next.Ports = nil
	} else {
		next.Ports = sp
	}
	return nil
}

// cloneApp deep-copies an app definition.
func cloneApp(a marathon.App) marathon.App {
	b, err := json.Marshal(a)
	if err != nil {
		return a
	}
	var c marathon.App
	if err := json.Unmarshal(b, &c); err != nil {
		return a
	}
	return c
}

// startDeployment stores a deployment for the changes and starts its
// first step. Caller holds s.mu.
func (s *Scheduler) startDeployment(version string, changes []deploy.Change) *state.Deployment {
	return s.startDeploymentFor("/", version, changes)
}

// startDeploymentFor is startDeployment for a change of group groupID
// (the groupId of group_change_success). Caller holds s.mu.
func (s *Scheduler) startDeploymentFor(groupID, version string, changes []deploy.Change) *state.Deployment {
	d := &state.Deployment{
		ID: newUUID(), Version: version, Steps: deploy.Plan(changes),
		Original: map[string]*marathon.App{}, Target: map[string]*marathon.App{}, Created: time.Now(),
	}
	for _, c := range changes {
		d.AffectedApps = append(d.AffectedApps, c.AppID)
		d.Original[c.AppID] = c.Old
		d.Target[c.AppID] = c.New
	}
	sort.Strings(d.AffectedApps)
	if d.Steps == nil {
		d.Steps = []marathon.DeploymentStep{}
	}
	s.store.PutDeployment(d)
	s.snapshotGroups(version)
	s.bus.publish(marathon.EventGroupChangeSuccess, &marathon.GroupChangeEvent{GroupID: groupID, Version: version})
	p := &pass{now: time.Now(), byApp: s.tasksByApp()}
	s.advance(d, p)
	s.kick()
	return d
}

func (s *Scheduler) postEvent(app *marathon.App, clientIP, uri string) {
	s.bus.publish(marathon.EventAPIPost, &apiPostEvent{ClientIP: clientIP, URI: uri, AppDefinition: plainApp{App: *app}})
}

// store applies a new definition for an app: service ports, version and
// versionInfo by change kind. It returns the change. Caller holds s.mu.
func (s *Scheduler) storeApp(next marathon.App, prev *state.App, now time.Time, restart bool) (deploy.Change, error) {
	var prevDef *marathon.App
	if prev != nil {
		prevDef = &prev.Def
	}
	// Stored definitions are shared (versions, deployments, assignments
	// being encoded): never modify one in place.
	next = cloneApp(next)
	if err := s.assignServicePorts(&next, prevDef); err != nil {
		return deploy.Change{}, err
	}
	s.applyRole(&next)
	ts := timestamp(s.versionTime(now))
	kind := classify(prevDef, &next)
	if restart {
		kind = deploy.ActionRestart
	}
	rec := &state.App{Def: next}
	switch {
	case prev == nil:
		rec.Def.Version = ts
		rec.Def.VersionInfo = &marathon.VersionInfo{LastScalingAt: ts, LastConfigChangeAt: ts}
	case kind == deploy.ActionRestart:
		rec.Def.Version = ts
		rec.Def.VersionInfo = &marathon.VersionInfo{LastScalingAt: ts, LastConfigChangeAt: ts}
	case kind == deploy.ActionScale:
		rec.Def.Version = ts
		vi := *prevDef.VersionInfo
		vi.LastScalingAt = ts
		rec.Def.VersionInfo = &vi
		rec.Backoff, rec.BackoffUntil, rec.LastFailureAt = prev.Backoff, prev.BackoffUntil, prev.LastFailureAt
	default:
		rec.Def.Version = prevDef.Version
		rec.Def.VersionInfo = prevDef.VersionInfo
		rec.Backoff, rec.BackoffUntil, rec.LastFailureAt = prev.Backoff, prev.BackoffUntil, prev.LastFailureAt
	}
	if prev != nil {
		rec.LastTaskFailure = prev.LastTaskFailure
	}
	s.store.PutApp(rec)
	c := deploy.Change{AppID: next.ID, Old: prevDef, New: &rec.Def, Restart: restart}
	return c, nil
}

// CreateApp stores a new app and starts its deployment.
func (s *Scheduler) CreateApp(_ context.Context, app marathon.App, force bool, clientIP, uri string) (marathon.App, error) {
	var info marathon.App
	err := s.applyChange("/", func() (err error) {
		info, err = s.createApp(app, force, clientIP, uri)
		return err
	})
	return info, err
}

// createApp is CreateApp under s.mu.
func (s *Scheduler) createApp(app marathon.App, force bool, clientIP, uri string) (marathon.App, error) {
	app.ID = marathon.CanonicalID(app.ID)
	if _, ok := s.store.App(app.ID); ok {
		return marathon.App{}, duplicateApp(app.ID)
	}
	final := s.appIDSet()
	final[app.ID] = true
	if err := checkIDClash(final, s.storedGroupSet(), []string{app.ID}, "/id"); err != nil {
		return marathon.App{}, err
	}
	if err := s.checkLock([]string{app.ID}, force); err != nil {
		return marathon.App{}, err
	}
	now := time.Now()
	c, err := s.storeApp(app, nil, now, false)
	if err != nil {
		return marathon.App{}, err
	}
	s.postEvent(c.New, clientIP, uri)
	d := s.startDeployment(c.New.Version, []deploy.Change{c})
	a, _ := s.store.App(app.ID)
	return s.appInfo(a, nil, []marathon.DeploymentRef{{ID: d.ID}}), nil
}

// UpdateApp replaces app id with update(current), creating it when absent.
func (s *Scheduler) UpdateApp(_ context.Context, id string, update func(*marathon.App) (marathon.App, error), force bool, clientIP, uri string) (marathon.DeploymentResult, bool, error) {
	id = marathon.CanonicalID(id)
	return s.updateApps(map[string]func(*marathon.App) (marathon.App, error){id: update}, force, clientIP, uri)
}

// UpdateApps applies several updates atomically with one deployment
// (PUT/PATCH /v2/apps).
func (s *Scheduler) UpdateApps(_ context.Context, updates map[string]func(*marathon.App) (marathon.App, error), force bool, clientIP, uri string) (marathon.DeploymentResult, error) {
	res, _, err := s.updateApps(updates, force, clientIP, uri)
	return res, err
}

// updateApps reports created when exactly one app was given and it did not
// exist before.
func (s *Scheduler) updateApps(updates map[string]func(*marathon.App) (marathon.App, error), force bool, clientIP, uri string) (marathon.DeploymentResult, bool, error) {
	var res marathon.DeploymentResult
	var created bool
	err := s.applyChange("/", func() (err error) {
		res, created, err = s.updateAppsLocked(updates, force, clientIP, uri)
		return err
	})
	return res, created, err
}

// updateAppsLocked is updateApps under s.mu.
func (s *Scheduler) updateAppsLocked(updates map[string]func(*marathon.App) (marathon.App, error), force bool, clientIP, uri string) (marathon.DeploymentResult, bool, error) {
	ids := make([]string, 0, len(updates))
	canon := map[string]func(*marathon.App) (marathon.App, error){}
	for id, u := range updates {
		id = marathon.CanonicalID(id)
		ids = append(ids, id)
		canon[id] = u
	}
	sort.Strings(ids)
	nexts := make([]marathon.App, len(ids))
	prevs := make([]*state.App, len(ids))
	for i, id := range ids {
		prev, exists := s.store.App(id)
		var cur *marathon.App
		if exists {
			c := prev.Def
			cur = &c
			prevs[i] = prev
		}
		next, err := canon[id](cur)
		if err != nil {
			return marathon.DeploymentResult{}, false, err
		}
		next.ID = id
		nexts[i] = next
	}
	final := s.appIDSet()
	for _, id := range ids {
		final[id] = true
	}
	if err := checkIDClash(final, s.storedGroupSet(), ids, "/id"); err != nil {
		return marathon.DeploymentResult{}, false, err
	}
	if err := s.checkLock(ids, force); err != nil {
		return marathon.DeploymentResult{}, false, err
	}
	now := time.Now()
	changes := make([]deploy.Change, 0, len(ids))
	version := ""
	for i := range ids {
		c, err := s.storeApp(nexts[i], prevs[i], now, false)
		if err != nil {
			return marathon.DeploymentResult{}, false, err
		}
		if prevs[i] != nil && c.New.VersionInfo.LastConfigChangeAt != prevs[i].Def.VersionInfo.LastConfigChangeAt {
			s.resetBackoff(c.AppID)
		}
		s.postEvent(c.New, clientIP, uri)
		changes = append(changes, c)
		version = max(version, c.New.Version)
	}
	d := s.startDeployment(version, changes)
	res := marathon.DeploymentResult{DeploymentID: d.ID, Version: version}
	return res, len(ids) == 1 && prevs[0] == nil, nil
}

// versionTime returns a version time after every one handed out before
// (versions have millisecond resolution and must differ). Caller holds s.mu.
func (s *Scheduler) versionTime(now time.Time) time.Time {
	now = now.UTC().Truncate(time.Millisecond)
	if !now.After(s.lastVersion) {
		now = s.lastVersion.Add(time.Millisecond)
	}
	s.lastVersion = now
	return now
}

func (s *Scheduler) resetBackoff(id string) {
	if a, ok := s.store.App(id); ok && (a.Backoff != 0 || !a.BackoffUntil.IsZero()) {
		a.Backoff, a.BackoffUntil = 0, time.Time{}
		s.store.PutApp(a)
	}
}

// unlockedApp returns the stored app id (canonical) for a change: an
// error when it does not exist or a deployment holds it (unless force).
// Caller holds s.mu.
func (s *Scheduler) unlockedApp(id string, force bool) (*state.App, error) {
	prev, ok := s.store.App(id)
	if !ok {
		return nil, appNotFound(id)
	}
	if err := s.checkLock([]string{id}, force); err != nil {
		return nil, err
	}
	return prev, nil
}

// DeleteApp removes an app; a StopApplication deployment kills its tasks
// and then publishes app_terminated_event.
func (s *Scheduler) DeleteApp(_ context.Context, id string, force bool) (marathon.DeploymentResult, error) {
	var res marathon.DeploymentResult
	err := s.applyChange("/", func() error {
		id = marathon.CanonicalID(id)
		prev, err := s.unlockedApp(id, force)
		if err != nil {
			return err
		}
		def := prev.Def
		s.store.DeleteApp(id)
		delete(s.noFit, id)
		delete(s.noFitLogged, id)
		ts := timestamp(s.versionTime(time.Now()))
		d := s.startDeployment(ts, []deploy.Change{{AppID: id, Old: &def}})
		res = marathon.DeploymentResult{DeploymentID: d.ID, Version: ts}
		return nil
	})
	return res, err
}

// RestartApp gives the app a new config version and rolls its tasks.
func (s *Scheduler) RestartApp(_ context.Context, id string, force bool) (marathon.DeploymentResult, error) {
	var res marathon.DeploymentResult
	err := s.applyChange("/", func() error {
		id = marathon.CanonicalID(id)
		prev, err := s.unlockedApp(id, force)
		if err != nil {
			return err
		}
		c, err := s.storeApp(prev.Def, prev, time.Now(), true)
		if err != nil {
			return err
		}
		s.resetBackoff(id)
		d := s.startDeployment(c.New.Version, []deploy.Change{c})
		res = marathon.DeploymentResult{DeploymentID: d.ID, Version: c.New.Version}
		return nil
	})
	return res, err
}

// ListTasks returns the tasks of one app (404 when unknown) or of all.
func (s *Scheduler) ListTasks(_ context.Context, appID string) ([]marathon.Task, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if appID != "" {
		appID = marathon.CanonicalID(appID)
		if _, ok := s.store.App(appID); !ok {
			return nil, appNotFound(appID)
		}
	}
	out := []marathon.Task{}
	for _, t := range s.store.Tasks() {
		if appID == "" || t.AppID == appID {
			out = append(out, toTask(t))
		}
	}
	return out, nil
}

// KillTasks kills tasks; with scale the apps shrink accordingly (a change
// of the apps, announced like any other).
func (s *Scheduler) KillTasks(_ context.Context, appID string, taskIDs []string, host string, scale, force bool) ([]marathon.Task, *marathon.DeploymentResult, error) {
	var killed []marathon.Task
	var res *marathon.DeploymentResult
	kill := func() (err error) {
		killed, res, err = s.killTasks(appID, taskIDs, host, scale, force)
		return err
	}
	var err error
	if scale {
		err = s.applyChange("/", kill)
	} else {
		err = s.write(kill)
	}
	return killed, res, err
}

// killTasks is KillTasks under s.mu.
func (s *Scheduler) killTasks(appID string, taskIDs []string, host string, scale, force bool) ([]marathon.Task, *marathon.DeploymentResult, error) {
	now := time.Now()
	var victims []*state.Task
	if appID != "" {
		appID = marathon.CanonicalID(appID)
		if _, ok := s.store.App(appID); !ok {
			return nil, nil, appNotFound(appID)
		}
	}
	switch {
	case appID != "" && taskIDs == nil:
		for _, t := range s.store.Tasks() {
			if t.AppID == appID && (host == "" || host == "*" || t.Host == host) && !t.KillRequested {
				victims = append(victims, t)
			}
		}
	default:
		for _, id := range taskIDs {
			t, ok := s.store.Task(id)
			if !ok || (appID != "" && t.AppID != appID) {
				if appID != "" && len(taskIDs) == 1 {
					return nil, nil, taskNotFound(id)
				}
				continue
			}
			victims = append(victims, t)
		}
	}
	killed := make([]marathon.Task, 0, len(victims))
	for _, t := range victims {
		killed = append(killed, toTask(t))
	}
	if !scale {
		for _, t := range victims {
			s.killTask(t, killAPI, now)
		}
		return killed, nil, nil
	}
	perApp := map[string]int{}
	var ids []string
	for _, t := range victims {
		if _, ok := s.store.App(t.AppID); !ok {
			continue
		}
		if perApp[t.AppID] == 0 {
			ids = append(ids, t.AppID)
		}
		perApp[t.AppID]++
	}
	sort.Strings(ids)
	if err := s.checkLock(ids, force); err != nil {
		return nil, nil, err
	}
	var changes []deploy.Change
	for _, id := range ids {
		prev, _ := s.store.App(id)
		next := prev.Def
		next.Instances = max(0, next.Instances-perApp[id])
		c, err := s.storeApp(next, prev, now, false)
		if err != nil {
			return nil, nil, err
		}
		changes = append(changes, c)
	}
	for _, t := range victims {
		t.Sentenced = true
		s.killTask(t, killScale, now)
	}
	ts := timestamp(s.versionTime(now))
	d := s.startDeployment(ts, changes)
	return killed, &marathon.DeploymentResult{DeploymentID: d.ID, Version: ts}, nil
}

// ListDeployments returns the running deployments.
func (s *Scheduler) ListDeployments(context.Context) ([]marathon.Deployment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []marathon.Deployment{}
	for _, d := range s.store.Deployments() {
		md := marathon.Deployment{
			ID: d.ID, Version: d.Version, AffectedApps: d.AffectedApps, AffectedPods: []string{},
			Steps: d.Steps, CurrentActions: []marathon.DeploymentAction{}, CurrentStep: d.CurrentStep, TotalSteps: len(d.Steps),
		}
		if d.CurrentStep > 0 && d.CurrentStep <= len(d.Steps) {
			for _, act := range d.Steps[d.CurrentStep-1].Actions {
				results := []marathon.ReadinessCheckResult{}
				if act.Action != deploy.ActionStop {
					results = s.readinessResults(act.App)
				}
				md.CurrentActions = append(md.CurrentActions, marathon.DeploymentAction{
					Action: act.Action, App: act.App, ReadinessCheckResults: &results})
			}
		}
		out = append(out, md)
	}
	return out, nil
}

// CancelDeployment stops a deployment; without force it deploys the
// original definitions back (a change of the apps, announced like any
// other).
func (s *Scheduler) CancelDeployment(_ context.Context, id string, force bool) (*marathon.DeploymentResult, error) {
	var res *marathon.DeploymentResult
	cancel := func() (err error) {
		res, err = s.cancelDeployment(id, force)
		return err
	}
	if force {
		return nil, s.write(cancel)
	}
	err := s.applyChange("/", cancel)
	return res, err
}

// cancelDeployment is CancelDeployment under s.mu.
func (s *Scheduler) cancelDeployment(id string, force bool) (*marathon.DeploymentResult, error) {
	d, ok := s.store.Deployment(id)
	if !ok {
		return nil, &APIError{Status: http.StatusNotFound, Body: marathon.ErrorResponse{Message: fmt.Sprintf("DeploymentPlan %s does not exist", id)}}
	}
	s.cancel(d, "cancelled")
	if force {
		return nil, nil
	}
	now := time.Now()
	var changes []deploy.Change
	for _, appID := range d.AffectedApps {
		orig := d.Original[appID]
		cur, exists := s.store.App(appID)
		switch {
		case orig == nil && exists:
			def := cur.Def
			s.store.DeleteApp(appID)
			changes = append(changes, deploy.Change{AppID: appID, Old: &def})
		case orig != nil:
			var prev *state.App
			if exists {
				prev = cur
			}
			c, err := s.storeApp(*orig, prev, now, false)
			if err != nil {
				return nil, err
			}
			changes = append(changes, c)
		}
	}
	ts := timestamp(s.versionTime(now))
	nd := s.startDeployment(ts, changes)
	return &marathon.DeploymentResult{DeploymentID: nd.ID, Version: ts}, nil
}

// Subscribe registers an event stream subscriber (see httpapi.EventSource).
func (s *Scheduler) Subscribe(remoteAddr string) (<-chan marathon.Event, func()) {
	return s.bus.subscribe(remoteAddr)
}

// Info is the /v2/info body.
func (s *Scheduler) Info(context.Context) (any, error) {
	host, port, _ := strings.Cut(s.cfg.Leader, ":")
	httpPort := 8080
	_, _ = fmt.Sscanf(port, "%d", &httpPort)
	zk := "bbolt://memory"
	if s.cfg.DataDir != "" {
		zk = "bbolt://" + s.cfg.DataDir
	}
	leader := s.cfg.Leader
	if leader == "" {
		leader = "localhost:8080"
	}
	launchTimeout := s.cfg.TaskLaunchTimeout
	if launchTimeout <= 0 {
		launchTimeout = 5 * time.Minute
	}
	// Every member of Marathon's info example, with our values where we
	// have them and Marathon's defaults (or a neutral value) otherwise.
	return map[string]any{
		"name": "marathon", "version": Version, "buildref": "switchyard", "elected": true,
		"leader": s.cfg.Leader, "frameworkId": "switchyard",
		"marathon_config": map[string]any{
			"master": "switchyard", "framework_name": "marathon", "hostname": host, "ha": false,
			"access_control_allow_origin": []string{},
			"checkpoint":                  true, "executor": "//cmd", "failover_timeout": 604800,
			"decline_offer_duration": 120000, "default_network_name": "",
			"launch_token": 100, "launch_token_refresh_interval": 30000,
			"local_port_min": ServicePortMin, "local_port_max": ServicePortMax,
			"leader_proxy_connection_timeout_ms": 5000, "leader_proxy_read_timeout_ms": 10000,
			"mesos_bridge_name": "mesos-bridge", "mesos_heartbeat_failure_threshold": 5, "mesos_heartbeat_interval": 15000,
			"mesos_role": defaultRole, "mesos_user": "root", "mesos_leader_ui_url": "", "webui_url": "http://" + leader,
			"min_revive_offers_interval": 5000, "offer_matching_timeout": 3000, "on_elected_prepare_timeout": 180000,
			"reconciliation_initial_delay": 15000, "reconciliation_interval": 600000,
			"scale_apps_initial_delay": 15000, "scale_apps_interval": 300000, "store_cache": true,
			"task_launch_confirm_timeout": 300000, "task_launch_timeout": launchTimeout.Milliseconds(),
			"task_lost_expunge_initial_delay": 300000, "task_lost_expunge_interval": 30000,
			"task_reservation_timeout": 20000,
			"features":                 []string{"secrets"}, "env_vars_prefix": "", "max_instances_per_offer": 5,
		},
		"zookeeper_config": map[string]any{
			"zk": zk, "zk_timeout": 10000, "zk_session_timeout": 10000, "zk_connection_timeout": 10000,
			"zk_compression": true, "zk_compression_threshold": 65536, "zk_max_node_size": 1024000,
			"zk_max_versions": cmp.Or(max(s.cfg.MaxVersions, 0), state.MaxVersions),
		},
		"http_config": map[string]any{"http_port": httpPort, "https_port": 8443},
	}, nil
}

// Leader returns this node's address: a single scheduler is always leader.
func (s *Scheduler) Leader(context.Context) (string, error) { return s.cfg.Leader, nil }

// Abdicate calls Config.OnAbdicate when set.
func (s *Scheduler) Abdicate(context.Context) error {
	if s.cfg.OnAbdicate != nil {
		s.cfg.OnAbdicate()
	}
	return nil
}

// Queue is the /v2/queue body: apps with instances still to launch.
// since is when the app entered the queue (trackQueue).
func (s *Scheduler) Queue(context.Context) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	counts := s.queued(s.tasksByApp())
	s.trackQueue(now, counts)
	queue := []map[string]any{}
	for _, a := range s.store.Apps() {
		missing := counts[a.Def.ID]
		if missing <= 0 {
			continue
		}
		left := max(0, int(a.BackoffUntil.Sub(now).Seconds()+0.999))
		queue = append(queue, map[string]any{
			"app": a.Def, "count": missing, "role": "*", "since": timestamp(s.queuedSince[a.Def.ID]),
			"delay":                  map[string]any{"timeLeftSeconds": left, "overdue": left == 0},
			"processedOffersSummary": offersSummary(s.noFit[a.Def.ID]),
		})
	}
	return map[string]any{"queue": queue}, nil
}

// queued returns how many instances each app still has to launch (its
// instances minus its tasks neither being killed nor unreachable); apps
// with none are left out. Caller holds s.mu.
func (s *Scheduler) queued(byApp map[string][]*state.Task) map[string]int {
	out := map[string]int{}
	for _, a := range s.store.Apps() {
		active := 0
		for _, t := range byApp[a.Def.ID] {
			if !t.KillRequested && t.UnreachableSince.IsZero() {
				active++
			}
		}
		if missing := a.Def.Instances - active; missing > 0 {
			out[a.Def.ID] = missing
		}
	}
	return out
}

// trackQueue records when each app of queued entered the launch queue and
// forgets the apps that left it. It runs after every reconcile pass (and
// when the queue is read), so an entry time is at most one pass late.
// Caller holds s.mu.
func (s *Scheduler) trackQueue(now time.Time, queued map[string]int) {
	for id := range queued {
		if _, ok := s.queuedSince[id]; !ok {
			s.queuedSince[id] = now
		}
	}
	for id := range s.queuedSince {
		if _, ok := queued[id]; !ok {
			delete(s.queuedSince, id)
		}
	}
}

// ResetDelay clears the launch backoff of an app in the launch queue; 404
// for an app that is not queued (spec §1.7).
func (s *Scheduler) ResetDelay(_ context.Context, appID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	appID = marathon.CanonicalID(appID)
	if s.queued(s.tasksByApp())[appID] == 0 {
		return &APIError{Status: http.StatusNotFound, Body: marathon.ErrorResponse{Message: fmt.Sprintf("Application %s not found in tasks queue.", appID)}}
	}
	s.resetBackoff(appID)
	s.kick()
	return nil
}
