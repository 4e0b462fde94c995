package scheduler

import (
	"strings"

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/scheduler/deploy"
)

// defaultRole is the Mesos role of apps that name none and are not in a
// top-level group enforcing its role (Marathon's --mesos_role default).
const defaultRole = "*"

// groupRole returns the group role of app id, the name of its top-level
// group ("" for an app directly in "/"), and whether that group enforces
// it. Caller holds s.mu.
func (s *Scheduler) groupRole(id string) (role string, enforced bool) {
	rest := strings.TrimPrefix(id, "/")
	top, _, ok := strings.Cut(rest, "/")
	if !ok {
		return "", false
	}
	g, _ := s.store.Group("/" + top)
	return top, g.EnforceRole
}

// applyRole gives next the role Marathon 1.10 gives an app without one
// (multi-role): its top-level group's role when that group has
// enforceRole, else the default role "*". A role given is kept as it is:
// Marathon limits it to the default role, the group role or the app's
// current role (422 otherwise), but roles do not affect placement here,
// so any role is accepted and stored (see the README's differences).
// Caller holds s.mu.
func (s *Scheduler) applyRole(next *marathon.App) {
	if next.Role != "" {
		return
	}
	next.Role = defaultRole
	if group, enforced := s.groupRole(next.ID); enforced {
		next.Role = group
	}
}

// classify is deploy.Classify for a stored definition prev and its
// successor next, where a definition stored before apps had roles has
// the default role.
func classify(prev, next *marathon.App) string {
	if prev != nil && prev.Role == "" && next != nil && next.Role == defaultRole {
		legacy := *prev
		legacy.Role = defaultRole
		prev = &legacy
	}
	return deploy.Classify(prev, next)
}
