package lb

import (
	"testing"

	"github.com/stretchr/testify/assert"

	lt "github.com/switchyard/switchyard/lb/lbtest"
	"github.com/switchyard/switchyard/marathon"
)

// TestBuildPortClashKeepsHolder checks that an app claiming a service port
// another app already serves does not take it over because its id sorts
// first: the backend that held the port in the previous model
// (Options.PreviousBackends) keeps it, and the newcomer is skipped with a
// reason naming the holder.
func TestBuildPortClashKeepsHolder(t *testing.T) {
	holder := lt.App("web", lt.Group("external"), lt.PortDefinitions(10000), lt.Tasks(lt.Task("h", 1)))
	newcomer := lt.App("api", lt.Group("external"), lt.PortDefinitions(10000), lt.Tasks(lt.Task("h", 2)))
	other := lt.App("db", lt.Group("external"), lt.PortDefinitions(10001), lt.Tasks(lt.Task("h", 3)))

	first, _ := Build([]marathon.App{holder, other}, Options{})
	assert.Equal(t, []string{"db_10001", "web_10000"}, backends(first))
	prev := first.Backends()
	assert.Equal(t, map[string]bool{"db_10001": true, "web_10000": true}, prev)

	tests := []struct {
		name        string
		prev        map[string]bool
		want        []string
		wantSkipped []Skipped
	}{
		{"no memory: id order", nil, []string{"api_10000", "db_10001"},
			[]Skipped{{AppID: "/web", PortIndex: 0, Reason: "service port 10000 is already bound by api_10000"}}},
		{"the holder keeps its port", prev, []string{"db_10001", "web_10000"},
			[]Skipped{{AppID: "/api", PortIndex: 0, Reason: "service port 10000 is already bound by web_10000, which held it before"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for range 2 { // deterministic, whatever the input order
				cfg, skipped := Build([]marathon.App{newcomer, holder, other}, Options{PreviousBackends: tc.prev})
				assert.Equal(t, tc.want, backends(cfg))
				assert.Equal(t, tc.wantSkipped, skipped)
				cfg, skipped = Build([]marathon.App{other, holder, newcomer}, Options{PreviousBackends: tc.prev})
				assert.Equal(t, tc.want, backends(cfg))
				assert.Equal(t, tc.wantSkipped, skipped)
			}
		})
	}

	// Once the holder is gone, the newcomer gets the port.
	cfg, skipped := Build([]marathon.App{newcomer, other}, Options{PreviousBackends: prev})
	assert.Equal(t, []string{"api_10000", "db_10001"}, backends(cfg))
	assert.Empty(t, skipped)
}
