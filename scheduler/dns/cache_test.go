package dns

import (
	"slices"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
)

// flat is a table as sorted strings, to compare tables built differently.
func flat(t *table) map[string][]string {
	out := map[string][]string{}
	for n, rs := range t.names {
		out[n] = append(addrs(rs), srvs(rs)...)
		sort.Strings(out[n])
	}
	for n := range t.ents {
		out[n] = []string{"(ent)"}
	}
	return out
}

// cloneApps copies apps deep enough to change tasks without touching
// what an earlier snapshot holds.
func cloneApps(apps []marathon.App) []marathon.App {
	out := slices.Clone(apps)
	for i := range out {
		out[i].Tasks = slices.Clone(out[i].Tasks)
	}
	return out
}

func TestCachedBuildMatchesFreshBuild(t *testing.T) {
	snap := testSnapshot()
	c := newTableCache()
	steps := []struct {
		name   string
		change func(s *Snapshot)
	}{
		{"unchanged", func(*Snapshot) {}},
		{"task killed", func(s *Snapshot) { s.Apps[0].Tasks[1].State = marathon.TaskKilled }},
		{"health fails", func(s *Snapshot) {
			s.Apps[2].Tasks[0].HealthCheckResults = []marathon.HealthCheckResult{{Alive: false}}
		}},
		{"task moves port", func(s *Snapshot) { s.Apps[1].Tasks[0].Ports = []int{32000} }},
		{"agent address changes", func(s *Snapshot) { s.Agents[0].IPs = ips("10.9.9.9") }},
		{"apps whose names collide with each other and with the cluster's", func(s *Snapshot) {
			s.Apps = append(s.Apps,
				marathon.App{ID: "/a-b", Tasks: []marathon.Task{running("a-b.1", "a1-S1", 31500)}},
				marathon.App{ID: "/b/a", Tasks: []marathon.Task{running("b_a.1", "a2-S2", 31501)}},
				marathon.App{ID: "/framework", Tasks: []marathon.Task{running("framework.1", "a2-S2", 31502)}},
				marathon.App{ID: "/leader", Tasks: []marathon.Task{running("leader.1", "a2-S2", 31503)}})
		}},
		{"app deleted", func(s *Snapshot) { s.Apps = slices.Delete(s.Apps, 0, 1) }},
		{"app redefined", func(s *Snapshot) {
			s.Apps[0].Version = "v2"
			s.Apps[0].PortDefinitions = []marathon.PortDefinition{{Name: "admin", Protocol: "udp"}}
		}},
	}
	for _, st := range steps {
		next := snap
		next.Agents = slices.Clone(snap.Agents)
		next.Apps = cloneApps(snap.Apps)
		st.change(&next)
		snap = next
		before := flat(buildCached(c, "mesos.", "marathon", snap, ips("10.0.0.53")))
		fresh := flat(build("mesos.", "marathon", snap, ips("10.0.0.53")))
		require.Equal(t, fresh, before, st.name)
		// A second cached build (everything reused) is the same again.
		require.Equal(t, fresh, flat(buildCached(c, "mesos.", "marathon", snap, ips("10.0.0.53"))), st.name)
		assert.Len(t, c.apps, len(snap.Apps), "deleted apps leave the cache: %s", st.name)
	}
	final := build("mesos.", "marathon", snap, nil)
	assert.Equal(t, []string{"10.0.0.2", "10.9.9.9", "2001:db8::2"}, addrs(final.names["a-b.marathon.mesos."]), "two apps, one name: both tasks")
	assert.Len(t, srvs(final.names["_framework._tcp.marathon.mesos."]), 2, "the scheduler's and the app's")
}

func TestMergeDoesNotChangeCachedRecords(t *testing.T) {
	c := newTableCache()
	snap := Snapshot{Apps: []marathon.App{
		{ID: "/a-b", Tasks: []marathon.Task{running("x.1", "a-S0", 1)}},
		{ID: "/b/a", Tasks: []marathon.Task{running("y.1", "b-S1", 2)}},
	}}
	snap.Apps[0].Tasks[0].Host = "10.0.0.1"
	snap.Apps[1].Tasks[0].Host = "10.0.0.2"
	t1 := buildCached(c, "mesos.", "marathon", snap, nil)
	require.Len(t, addrs(t1.names["a-b.marathon.mesos."]), 2)
	for id, e := range c.apps {
		assert.Len(t, addrs(e.names["a-b.marathon.mesos."]), 1, id)
	}
}

func BenchmarkTaskChange(b *testing.B) {
	snap := bigSnapshot()
	c := newTableCache()
	buildCached(c, "mesos.", "marathon", snap, nil)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		// One task of one app changes state each round.
		k := i % len(snap.Apps)
		app := snap.Apps[k]
		app.Tasks = slices.Clone(app.Tasks)
		if app.Tasks[0].State == marathon.TaskRunning {
			app.Tasks[0].State = marathon.TaskKilled
		} else {
			app.Tasks[0].State = marathon.TaskRunning
		}
		snap.Apps[k] = app
		buildCached(c, "mesos.", "marathon", snap, nil)
		i++
	}
}
