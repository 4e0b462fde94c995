package lb

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	lt "github.com/switchyard/switchyard/lb/lbtest"
	"github.com/switchyard/switchyard/marathon"
)

// TestDeploymentGroupStartedAtFormats checks that the old app of a
// blue/green pair is found whatever format HAPROXY_DEPLOYMENT_STARTED_AT
// has: marathon-lb's zdd.py writes Python's isoformat() (no zone), lb zdd
// writes RFC 3339, and marathon-lb parses both (dateutil). The old app's
// settings are served and its tasks drain as the new app's become healthy.
func TestDeploymentGroupStartedAtFormats(t *testing.T) {
	tests := []struct {
		name       string
		old, newer string
	}{
		{"zdd.py isoformat", "2016-01-13T18:27:54.313000", "2016-01-13T18:29:01.100000"},
		{"isoformat without fraction", "2016-01-13T18:27:54", "2016-01-13T18:27:55"},
		{"RFC 3339", "2016-01-13T18:27:54.313Z", "2016-01-13T19:28:54+01:00"},
		{"mixed", "2016-01-13T18:27:54.313000", "2016-01-13T18:30:00Z"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The new app's id sorts first, so only the dates can tell.
			blue := lt.App("web-blue", lt.Group("external"), lt.PortDefinitions(10000), lt.Instances(2),
				lt.Labels("HAPROXY_DEPLOYMENT_GROUP", "web", "HAPROXY_DEPLOYMENT_STARTED_AT", tc.newer,
					"HAPROXY_DEPLOYMENT_TARGET_INSTANCES", "2", "HAPROXY_0_BALANCE", "leastconn"),
				lt.Tasks(lt.Task("new", 1), lt.Task("new", 2)))
			green := lt.App("web-green", lt.Group("external"), lt.PortDefinitions(10001), lt.Instances(2),
				lt.Labels("HAPROXY_DEPLOYMENT_GROUP", "web", "HAPROXY_DEPLOYMENT_STARTED_AT", tc.old),
				lt.Tasks(lt.Task("old", 3), lt.Task("old", 4)))
			cfg, skipped := Build([]marathon.App{blue, green}, Options{})
			require.Empty(t, skipped)
			require.Len(t, cfg.Services, 1)
			s := cfg.Services[0]
			assert.Equal(t, "web_10001", s.Backend, "the old app's service port is served")
			assert.Equal(t, DefaultBalance, s.Balance, "the old app's labels are served")
			drained := map[string]bool{}
			for _, srv := range s.Servers {
				drained[srv.Host] = drained[srv.Host] || srv.Draining
				if srv.Host == "new" {
					assert.False(t, srv.Draining, "new task %s must not drain", srv.TaskID)
				}
			}
			assert.True(t, drained["old"], "old tasks drain once the new app is up")
		})
	}
}

func TestStartedAt(t *testing.T) {
	tests := []struct {
		in   string
		want string // RFC 3339 in UTC, "" for the zero time
	}{
		{"2016-01-13T18:27:54.313000", "2016-01-13T18:27:54.313Z"},
		{" 2016-01-13T18:27:54 ", "2016-01-13T18:27:54Z"},
		{"2016-01-13 18:27:54.5", "2016-01-13T18:27:54.5Z"},
		{"2016-01-13T18:27:54.313+02:00", "2016-01-13T16:27:54.313Z"},
		{"2016-01-13T18:27:54Z", "2016-01-13T18:27:54Z"},
		{"", ""},
		{"yesterday", ""},
	}
	for _, tc := range tests {
		app := lt.App("a", lt.Label(LabelDeploymentStartedAt, tc.in))
		got := startedAt(&app)
		if tc.want == "" {
			assert.True(t, got.IsZero(), "%q", tc.in)
			continue
		}
		assert.Equal(t, tc.want, got.UTC().Format("2006-01-02T15:04:05.999999999Z07:00"), "%q", tc.in)
	}
}
