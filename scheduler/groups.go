package scheduler

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/scheduler/deploy"
	"github.com/switchyard/switchyard/scheduler/state"
)

// Groups are not stored: the group tree is derived from app ids (every
// proper prefix of an app id is a group, spec §2.1). A group exists while
// it holds at least one app; the root group "/" always exists.

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
// final (spec §2.1: an app id cannot equal a group id and vice versa).
// path is the detail path of the error.
func checkIDClash(final map[string]bool, changed []string, path string) error {
	groups := map[string]bool{}
	for id := range final {
		for p := parentID(id); p != "/"; p = parentID(p) {
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
func (s *Scheduler) UpdateGroup(_ context.Context, id string, update func(current []marathon.App) ([]marathon.App, error), force, dryRun bool, clientIP, uri string) (marathon.DeploymentResult, []marathon.DeploymentStep, error) {
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

// updateGroup is UpdateGroup under s.mu.
func (s *Scheduler) updateGroup(id string, update func(current []marathon.App) ([]marathon.App, error), force, dryRun bool, clientIP, uri string) (marathon.DeploymentResult, []marathon.DeploymentStep, error) {
	prevs := map[string]*state.App{}
	var current []marathon.App
	for _, a := range s.store.Apps() {
		if inGroup(id, a.Def.ID) {
			prevs[a.Def.ID] = a
			current = append(current, cloneApp(a.Def))
		}
	}
	sort.Slice(current, func(i, j int) bool { return current[i].ID < current[j].ID })
	nexts, err := update(current)
	if err != nil {
		return marathon.DeploymentResult{}, nil, err
	}
	final := s.appIDSet()
	for aid := range prevs {
		delete(final, aid)
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
	if err := checkIDClash(final, changed, "/"); err != nil {
		return marathon.DeploymentResult{}, nil, err
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
		}
	}
	// Lock every app the change touches: removed, created and changed.
	var touched []string
	touched = append(touched, removed...)
	for i := range nexts {
		if p := prevs[nexts[i].ID]; p == nil || deploy.Classify(&p.Def, &compared[i]) != deploy.ActionSteady {
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
	d := s.startDeploymentFor(id, version, changes)
	return marathon.DeploymentResult{DeploymentID: d.ID, Version: version}, nil, nil
}
