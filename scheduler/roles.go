package scheduler

import (
	"fmt"
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

// applyRole gives next the role Marathon 1.10 gives it (multi-role): an
// app without role gets its top-level group's role when that group has
// enforceRole, else the default role "*". A role must be the default
// role, the group role or the role the app has now (prev, nil for a new
// app); with enforceRole the default role is not allowed for new apps.
// Caller holds s.mu.
func (s *Scheduler) applyRole(next *marathon.App, prev *marathon.App) error {
	group, enforced := s.groupRole(next.ID)
	if next.Role == "" {
		next.Role = defaultRole
		if enforced {
			next.Role = group
		}
		return nil
	}
	switch {
	case prev != nil && (next.Role == prev.Role || prev.Role == "" && next.Role == defaultRole):
	case next.Role == group && group != "":
	case next.Role == defaultRole && !enforced:
	default:
		valid := []string{}
		if !enforced {
			valid = append(valid, defaultRole)
		}
		if group != "" {
			valid = append(valid, group)
		}
		if prev != nil && prev.Role != "" && prev.Role != group && prev.Role != defaultRole {
			valid = append(valid, prev.Role)
		}
		return invalid("/role", fmt.Sprintf("got %s, expected one of: [%s]", next.Role, strings.Join(valid, ", ")))
	}
	return nil
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
