package scheduler

import (
	"maps"
	"slices"

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/scheduler/state"
)

// Health check events (spec §3.2), kept as Marathon's health check
// manager reconciles them: the health checks of an app version are active
// while the version is the app's current one or a task of the app runs
// it. A version whose checks become active announces each of them
// (add_health_check_event with appId, version and the check); a version
// whose checks stop (its last task is gone and it is no longer current,
// or the app was removed) announces each removal
// (remove_health_check_event, appId only). Agents run the checks; this is
// the scheduler's account of them. It lives in memory, so a restarted
// scheduler announces every active check again, as Marathon does when it
// is elected.

// addHealthCheckEvent is add_health_check_event.
type addHealthCheckEvent struct {
	marathon.EventHeader
	AppID       string               `json:"appId"`
	Version     string               `json:"version"`
	HealthCheck marathon.HealthCheck `json:"healthCheck"`
}

func (e *addHealthCheckEvent) setHeader(h marathon.EventHeader) { e.EventHeader = h }

// removeHealthCheckEvent is remove_health_check_event.
type removeHealthCheckEvent struct {
	marathon.EventHeader
	AppID string `json:"appId"`
}

func (e *removeHealthCheckEvent) setHeader(h marathon.EventHeader) { e.EventHeader = h }

// reconcileHealthChecks publishes the health check events for the
// versions whose checks started or stopped since the last call. byApp is
// the current task index. Caller holds s.mu.
func (s *Scheduler) reconcileHealthChecks(byApp map[string][]*state.Task) {
	active := map[string]map[string]*marathon.App{} // app -> version -> definition
	for _, a := range s.store.Apps() {
		versions := map[string]*marathon.App{}
		if len(a.Def.HealthChecks) > 0 {
			versions[a.Def.Version] = &a.Def
		}
		for _, t := range byApp[a.Def.ID] {
			if _, ok := versions[t.Version]; ok {
				continue
			}
			// A version no longer stored (pruned) is skipped, as in
			// Marathon: its checks cannot be named.
			if def, ok := s.store.AppVersion(t.AppID, t.Version); ok && len(def.HealthChecks) > 0 {
				versions[t.Version] = def
			}
		}
		if len(versions) > 0 {
			active[a.Def.ID] = versions
		}
	}
	for _, appID := range slices.Sorted(maps.Keys(s.checks)) {
		for _, version := range slices.Sorted(maps.Keys(s.checks[appID])) {
			if active[appID][version] != nil {
				continue
			}
			for range s.checks[appID][version] {
				s.bus.publish(marathon.EventRemoveHealthCheck, &removeHealthCheckEvent{AppID: appID})
			}
			delete(s.checks[appID], version)
		}
		if len(s.checks[appID]) == 0 {
			delete(s.checks, appID)
		}
	}
	for _, appID := range slices.Sorted(maps.Keys(active)) {
		for _, version := range slices.Sorted(maps.Keys(active[appID])) {
			if _, ok := s.checks[appID][version]; ok {
				continue
			}
			def := active[appID][version]
			for _, hc := range def.HealthChecks {
				s.bus.publish(marathon.EventAddHealthCheck, &addHealthCheckEvent{AppID: appID, Version: version, HealthCheck: hc})
			}
			if s.checks[appID] == nil {
				s.checks[appID] = map[string]int{}
			}
			s.checks[appID][version] = len(def.HealthChecks)
		}
	}
}
