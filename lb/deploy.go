package lb

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard/switchyard/marathon"
)

// mergeDeploymentGroups implements marathon-lb's blue/green support: apps
// labelled with the same HAPROXY_DEPLOYMENT_GROUP are served as one app
// whose id is the group ("/" + group). The older app (earlier
// HAPROXY_DEPLOYMENT_STARTED_AT) keeps its settings; the tasks of both are
// merged, and as many old tasks as the new app has healthy instances (within
// HAPROXY_DEPLOYMENT_TARGET_INSTANCES) are marked draining. The input is not
// modified; the returned map holds the ids of draining tasks.
func mergeDeploymentGroups(apps []marathon.App) ([]*marathon.App, map[string]bool) {
	out := make([]*marathon.App, 0, len(apps))
	groups := make(map[string][]*marathon.App)
	var order []string
	for i := range apps {
		app := &apps[i]
		g := strings.TrimSpace(app.Labels[LabelDeploymentGroup])
		if g == "" || checkLine(LabelDeploymentGroup, g) != nil {
			out = append(out, app)
			continue
		}
		if !strings.HasPrefix(g, "/") {
			g = "/" + g
		}
		if _, ok := groups[g]; !ok {
			order = append(order, g)
		}
		groups[g] = append(groups[g], app)
	}
	var draining map[string]bool
	// Groups follow the other apps, in order of first appearance, as in
	// marathon-lb (this order only matters to IP-per-task port assignment).
	for _, g := range order {
		members := groups[g]
		slices.SortStableFunc(members, func(x, y *marathon.App) int {
			if c := startedAt(x).Compare(startedAt(y)); c != 0 {
				return c
			}
			return cmp.Compare(x.ID, y.ID)
		})
		merged := *members[0] // oldest: its settings are served
		merged.ID = g
		merged.Tasks = append([]marathon.Task(nil), members[0].Tasks...)
		for _, newer := range members[1:] {
			old := merged.Tasks
			slices.SortFunc(old, func(x, y marathon.Task) int { return cmp.Compare(x.ID, y.ID) })
			target := 1
			if v, err := strconv.Atoi(strings.TrimSpace(newer.Labels[LabelDeploymentTargetInstances])); err == nil && v > 0 {
				target = v
			}
			healthyNew := newer.Instances
			if len(newer.HealthChecks) > 0 {
				healthyNew = 0
				for _, t := range newer.Tasks {
					for _, r := range t.HealthCheckResults {
						if r.Alive {
							healthyNew++
							break
						}
					}
				}
			}
			n := min(len(old), healthyNew, max(0, healthyNew+merged.Instances-target))
			for i := range n {
				if draining == nil {
					draining = make(map[string]bool)
				}
				draining[old[i].ID] = true
			}
			merged.Tasks = append(old, newer.Tasks...)
		}
		out = append(out, &merged)
	}
	return out, draining
}

// startedAt parses HAPROXY_DEPLOYMENT_STARTED_AT: RFC 3339 (lb zdd) or
// Python's isoformat() without a zone (marathon-lb's zdd.py writes
// 2016-01-13T18:27:54.313000; read as UTC), with a T or a space. Missing or
// bad values sort first (treated as the oldest), as marathon-lb does.
func startedAt(app *marathon.App) time.Time {
	layouts := [...]string{
		time.RFC3339Nano,
		"2006-01-02T15:04:05.999999999",
		"2006-01-02 15:04:05.999999999Z07:00",
		"2006-01-02 15:04:05.999999999",
	}
	v := strings.TrimSpace(app.Labels[LabelDeploymentStartedAt])
	for _, layout := range layouts {
		if t, err := time.Parse(layout, v); err == nil {
			return t
		}
	}
	return time.Time{}
}
