package scheduler

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/scheduler/deploy"
	"github.com/switchyard/switchyard/scheduler/state"
)

// The group tree is mostly derived from app ids (every proper prefix of
// an app id is a group, spec §2.1): such a group exists while it holds an
// app. Groups created by the groups API, or given settings (enforceRole),
// are also stored (state.Store.Groups) and exist until deleted, even
// empty. The root group "/" always exists. Every deployment records the
// tree as a group version (snapshotGroups).

// msgSameID is Marathon's validation message for an app id that equals a
// group id (grep-able, kept verbatim).
const msgSameID = "Groups and Applications may not have the same identifier."

// inGroup reports whether app id lies under group gid (at any depth).
func inGroup(gid, id string) bool {
	if gid == "/" {
		return true
	}
	return strings.HasPrefix(id, gid+"/")
}

// parentID returns the group that directly holds id ("/" for top level).
func parentID(id string) string {
	i := strings.LastIndex(id, "/")
	if i <= 0 {
		return "/"
	}
	return id[:i]
}

// checkIDClash returns a 422 when one of the apps in changed would have
// the id of a group, or would sit under an app, in the final app set
// final and the stored groups stored (spec §2.1: an app id cannot equal a
// group id and vice versa). path is the detail path of the error.
func checkIDClash(final map[string]bool, stored map[string]bool, changed []string, path string) error {
	groups := map[string]bool{}
	for id := range final {
		for p := parentID(id); p != "/"; p = parentID(p) {
			groups[p] = true
		}
	}
	for id := range stored {
		for p := id; p != "/"; p = parentID(p) {
			groups[p] = true
		}
	}
	for _, id := range changed {
		if groups[id] {
			return invalid(path, fmt.Sprintf("%s '%s' is a group.", msgSameID, id))
		}
		for p := parentID(id); p != "/"; p = parentID(p) {
			if final[p] {
				return invalid(path, fmt.Sprintf("%s '%s' is an app, so '%s' cannot be in it.", msgSameID, p, id))
			}
		}
	}
	return nil
}

// storedGroupSet returns the ids of the stored groups. Caller holds s.mu.
func (s *Scheduler) storedGroupSet() map[string]bool {
	ids := map[string]bool{}
	for _, g := range s.store.Groups() {
		ids[g.ID] = true
	}
	return ids
}

// appIDSet returns the ids of the stored apps. Caller holds s.mu.
func (s *Scheduler) appIDSet() map[string]bool {
	ids := map[string]bool{}
	for _, a := range s.store.Apps() {
		ids[a.Def.ID] = true
	}
	return ids
}

func groupNotFound(id string) error {
	return &APIError{Status: http.StatusNotFound, Body: marathon.ErrorResponse{Message: fmt.Sprintf("Group '%s' does not exist", id)}}
}

// UpdateGroup atomically replaces the apps under group id (every app
// whose id starts with id+"/"; every app for "/") with update(current),
// where current holds those apps sorted by id (an empty list when the
// group does not exist). Apps missing from the result are removed, new
// ones created, changed ones updated, all in one deployment, whose result
// is returned. An error from update aborts the call and is returned
// unchanged. With dryRun nothing changes and only the planned steps are
// returned. clientIP and uri describe the request for api_post_event.
// Stored groups are left as they are.
func (s *Scheduler) UpdateGroup(ctx context.Context, id string, update func(current []marathon.App) ([]marathon.App, error), force, dryRun bool, clientIP, uri string) (marathon.DeploymentResult, []marathon.DeploymentStep, error) {
	return s.UpdateGroupTree(ctx, id, func(apps []marathon.App, groups []marathon.GroupMeta) ([]marathon.App, []marathon.GroupMeta, error) {
		next, err := update(apps)
		return next, groups, err
	}, force, dryRun, clientIP, uri)
}

// UpdateGroupTree is UpdateGroup that also replaces the stored groups
// under id (id itself included): update gets them sorted by id with the
// apps and returns the groups to keep or create; the others are removed.
func (s *Scheduler) UpdateGroupTree(_ context.Context, id string, update func(apps []marathon.App, groups []marathon.GroupMeta) ([]marathon.App, []marathon.GroupMeta, error), force, dryRun bool, clientIP, uri string) (marathon.DeploymentResult, []marathon.DeploymentStep, error) {
	id = marathon.CanonicalID(id)
	if dryRun {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.updateGroup(id, update, force, true, clientIP, uri)
	}
	var res marathon.DeploymentResult
	err := s.applyChange(id, func() (err error) {
		res, _, err = s.updateGroup(id, update, force, false, clientIP, uri)
		return err
	})
	return res, nil, err
}

// underOrAt reports whether group or app id is gid or lies under it.
func underOrAt(gid, id string) bool { return id == gid || inGroup(gid, id) }

// updateGroup is UpdateGroupTree under s.mu.
func (s *Scheduler) updateGroup(id string, update func([]marathon.App, []marathon.GroupMeta) ([]marathon.App, []marathon.GroupMeta, error), force, dryRun bool, clientIP, uri string) (marathon.DeploymentResult, []marathon.DeploymentStep, error) {
	prevs := map[string]*state.App{}
	var current []marathon.App
	for _, a := range s.store.Apps() {
		if inGroup(id, a.Def.ID) {
			prevs[a.Def.ID] = a
			current = append(current, cloneApp(a.Def))
		}
	}
	sort.Slice(current, func(i, j int) bool { return current[i].ID < current[j].ID })
	prevGroups := map[string]marathon.GroupMeta{}
	var currentGroups []marathon.GroupMeta
	for _, g := range s.store.Groups() {
		if underOrAt(id, g.ID) {
			prevGroups[g.ID] = g
			currentGroups = append(currentGroups, g)
		}
	}
	nexts, nextGroups, err := update(current, currentGroups)
	if err != nil {
		return marathon.DeploymentResult{}, nil, err
	}
	final := s.appIDSet()
	for aid := range prevs {
		delete(final, aid)
	}
	groupSet := map[string]bool{}
	for _, g := range s.store.Groups() {
		if !underOrAt(id, g.ID) {
			groupSet[g.ID] = true
		}
	}
	wantedGroups := map[string]bool{}
	for i := range nextGroups {
		g := &nextGroups[i]
		g.ID = marathon.CanonicalID(g.ID)
		if g.ID == "/" || !underOrAt(id, g.ID) {
			return marathon.DeploymentResult{}, nil, invalid("/", fmt.Sprintf("Group '%s' is not in group '%s'.", g.ID, id))
		}
		wantedGroups[g.ID] = true
		groupSet[g.ID] = true
	}
	wanted := map[string]bool{}
	var changed []string
	for i := range nexts {
		n := &nexts[i]
		n.ID = marathon.CanonicalID(n.ID)
		if !inGroup(id, n.ID) {
			return marathon.DeploymentResult{}, nil, invalid("/", fmt.Sprintf("App '%s' is not in group '%s'.", n.ID, id))
		}
		if wanted[n.ID] {
			return marathon.DeploymentResult{}, nil, invalid("/", fmt.Sprintf("App '%s' is defined more than once.", n.ID))
		}
		wanted[n.ID] = true
		final[n.ID] = true
		changed = append(changed, n.ID)
	}
	if err := checkIDClash(final, groupSet, changed, "/"); err != nil {
		return marathon.DeploymentResult{}, nil, err
	}
	for g := range groupSet {
		for p := g; p != "/"; p = parentID(p) {
			if final[p] {
				return marathon.DeploymentResult{}, nil, invalid("/", fmt.Sprintf("%s '%s' is an app.", msgSameID, p))
			}
		}
	}
	var removed []string
	for aid := range prevs {
		if !wanted[aid] {
			removed = append(removed, aid)
		}
	}
	sort.Strings(removed)
	// Compare with service ports filled in as storing would (a service
	// port 0 keeps the app's port), so a resubmitted definition is no
	// change.
	compared := make([]marathon.App, len(nexts))
	for i := range nexts {
		compared[i] = cloneApp(nexts[i])
		if p := prevs[nexts[i].ID]; p != nil {
			if err := s.assignServicePorts(&compared[i], &p.Def); err != nil {
				return marathon.DeploymentResult{}, nil, err
			}
			s.applyRole(&compared[i])
		}
	}
	// Lock every app the change touches: removed, created and changed.
	var touched []string
	touched = append(touched, removed...)
	for i := range nexts {
		if p := prevs[nexts[i].ID]; p == nil || classify(&p.Def, &compared[i]) != deploy.ActionSteady {
			touched = append(touched, nexts[i].ID)
		}
	}
	if dryRun {
		changes := make([]deploy.Change, 0, len(removed)+len(nexts))
		for _, aid := range removed {
			def := prevs[aid].Def
			changes = append(changes, deploy.Change{AppID: aid, Old: &def})
		}
		for i := range nexts {
			c := deploy.Change{AppID: nexts[i].ID, New: &compared[i]}
			if p := prevs[nexts[i].ID]; p != nil {
				def := p.Def
				c.Old = &def
			}
			changes = append(changes, c)
		}
		steps := deploy.Plan(changes)
		if steps == nil {
			steps = []marathon.DeploymentStep{}
		}
		return marathon.DeploymentResult{}, steps, nil
	}
	if err := s.checkLock(touched, force); err != nil {
		return marathon.DeploymentResult{}, nil, err
	}
	now := time.Now()
	// Groups first: the role of new apps depends on their top-level
	// group's enforceRole.
	for gid := range prevGroups {
		if !wantedGroups[gid] {
			s.store.DeleteGroup(gid)
		}
	}
	var touchedGroups []marathon.GroupMeta
	for _, g := range nextGroups {
		if p, ok := prevGroups[g.ID]; ok && p.EnforceRole == g.EnforceRole {
			continue
		}
		touchedGroups = append(touchedGroups, g)
		s.store.PutGroup(g)
	}
	changes := make([]deploy.Change, 0, len(removed)+len(nexts))
	for _, aid := range removed {
		def := prevs[aid].Def
		s.store.DeleteApp(aid)
		delete(s.noFit, aid)
		delete(s.noFitLogged, aid)
		changes = append(changes, deploy.Change{AppID: aid, Old: &def})
	}
	version := ""
	for i := range nexts {
		prev := prevs[nexts[i].ID]
		c, err := s.storeApp(nexts[i], prev, now, false)
		if err != nil {
			return marathon.DeploymentResult{}, nil, err
		}
		if prev != nil && c.New.VersionInfo.LastConfigChangeAt != prev.Def.VersionInfo.LastConfigChangeAt {
			s.resetBackoff(c.AppID)
		}
		if prev == nil || c.New.Version != prev.Def.Version {
			s.postEvent(c.New, clientIP, uri)
		}
		changes = append(changes, c)
		version = max(version, c.New.Version)
	}
	if version == "" {
		version = timestamp(s.versionTime(now))
	}
	for _, g := range touchedGroups {
		g.Version = version
		s.store.PutGroup(g)
	}
	d := s.startDeploymentFor(id, version, changes)
	return marathon.DeploymentResult{DeploymentID: d.ID, Version: version}, nil, nil
}

// snapshotGroups records the current group tree as group version
// version. Caller holds s.mu.
func (s *Scheduler) snapshotGroups(version string) {
	apps := s.store.Apps()
	gv := state.GroupVersion{Version: version, Groups: s.store.Groups(), Apps: make(map[string]string, len(apps))}
	defs := make([]marathon.App, 0, len(apps))
	for _, a := range apps {
		gv.Apps[a.Def.ID] = a.Def.Version
		defs = append(defs, a.Def)
	}
	s.store.AddGroupVersion(gv, defs)
}

// groupExists reports whether group id exists in a tree of stored groups
// and app ids.
func groupExists(id string, groups []marathon.GroupMeta, appIDs func(yield func(string) bool)) bool {
	if id == "/" {
		return true
	}
	for _, g := range groups {
		if underOrAt(id, g.ID) {
			return true
		}
	}
	for aid := range appIDs {
		if inGroup(id, aid) {
			return true
		}
	}
	return false
}

// hasGroup reports whether group id exists now. Caller holds s.mu.
func (s *Scheduler) hasGroup(id string) bool {
	return groupExists(id, s.store.Groups(), func(yield func(string) bool) {
		for _, a := range s.store.Apps() {
			if !yield(a.Def.ID) {
				return
			}
		}
	})
}

// ListGroups returns the stored groups (those created by the groups API
// or with settings); groups implied by app ids are not listed.
func (s *Scheduler) ListGroups(context.Context) ([]marathon.GroupMeta, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.store.Groups(), nil
}

// GroupVersions lists, newest first, the group versions in which group
// id existed; 404 when it does not exist now.
func (s *Scheduler) GroupVersions(_ context.Context, id string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id = marathon.CanonicalID(id)
	if !s.hasGroup(id) {
		return nil, groupNotFound(id)
	}
	vs := s.store.GroupVersions()
	out := make([]string, 0, len(vs))
	for i := len(vs) - 1; i >= 0; i-- {
		gv, _, _ := s.store.GroupVersion(vs[i])
		if groupExists(id, gv.Groups, maps.Keys(gv.Apps)) {
			out = append(out, vs[i])
		}
	}
	return out, nil
}

// GroupVersion returns group id as it was at version: its apps and its
// stored groups (id itself included); 404 when the version is unknown or
// the group did not exist then.
func (s *Scheduler) GroupVersion(_ context.Context, id, version string) ([]marathon.App, []marathon.GroupMeta, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id = marathon.CanonicalID(id)
	gv, defs, ok := s.store.GroupVersion(version)
	if !ok || !groupExists(id, gv.Groups, maps.Keys(gv.Apps)) {
		return nil, nil, &APIError{Status: http.StatusNotFound, Body: marathon.ErrorResponse{
			Message: fmt.Sprintf("Group '%s' does not exist in version %s", id, version)}}
	}
	var apps []marathon.App
	for _, a := range defs {
		if inGroup(id, a.ID) {
			apps = append(apps, cloneApp(a))
		}
	}
	var groups []marathon.GroupMeta
	for _, g := range gv.Groups {
		if underOrAt(id, g.ID) {
			groups = append(groups, g)
		}
	}
	return apps, groups, nil
}

// PatchGroup sets enforceRole of top-level group id (PATCH
// /v2/groups/{id}, Marathon 1.10): 404 when the group does not exist,
// 422 when it is not a top-level group. It records a new group version
// and changes no app.
func (s *Scheduler) PatchGroup(_ context.Context, id string, enforceRole bool) error {
	id = marathon.CanonicalID(id)
	if id == "/" || parentID(id) != "/" {
		return invalid("/id", "Path needs to be top-level")
	}
	return s.applyChange(id, func() error {
		if !s.hasGroup(id) {
			return groupNotFound(id)
		}
		g, ok := s.store.Group(id)
		if ok && g.EnforceRole == enforceRole {
			return nil
		}
		version := timestamp(s.versionTime(time.Now()))
		s.store.PutGroup(marathon.GroupMeta{ID: id, EnforceRole: enforceRole, Version: version})
		s.snapshotGroups(version)
		s.bus.publish(marathon.EventGroupChangeSuccess, &marathon.GroupChangeEvent{GroupID: id, Version: version})
		return nil
	})
}
