package controller

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/lb"
	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/marathon/marathontest"
)

func TestModelRenderer(t *testing.T) {
	apps := []marathon.App{
		marathontest.App("/web", marathontest.WithLabels(map[string]string{
			"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "b.example.com,a.example.com",
		}), marathontest.WithServicePorts(10000), marathontest.WithTask("10.0.0.1", 31000)),
		marathontest.App("/db", marathontest.WithLabel("HAPROXY_GROUP", "external"),
			marathontest.WithServicePorts(10001), marathontest.WithTask("10.0.0.2", 31001)),
		marathontest.App("/broken", marathontest.WithLabels(map[string]string{
			"HAPROXY_GROUP": "external", "HAPROXY_0_PORT": "not-a-port",
		}), marathontest.WithServicePorts(10002), marathontest.WithTask("10.0.0.3", 31002)),
		marathontest.App("/other", marathontest.WithLabel("HAPROXY_GROUP", "internal"),
			marathontest.WithServicePorts(10003), marathontest.WithTask("10.0.0.4", 31003)),
	}
	tests := []struct {
		name     string
		opts     lb.Options
		wantMaps []string
	}{
		{name: "acl routing", opts: lb.Options{Groups: []string{"external"}}},
		{name: "haproxy-map", opts: lb.Options{Groups: []string{"external"}, HAProxyMap: true, MapDir: "/etc/haproxy"},
			wantMaps: []string{"app2backend.map", "domain2backend.map"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := loadRenderer(tc.opts, "")
			require.NoError(t, err)
			out, err := r.render(apps)
			require.NoError(t, err)
			assert.Contains(t, string(out.Config), "backend web_10000")
			assert.Contains(t, string(out.Config), "backend db_10001")
			assert.NotContains(t, string(out.Config), "broken_10002")
			assert.ElementsMatch(t, []string{"a.example.com web_10000", "b.example.com web_10000"},
				strings.Split(strings.TrimSpace(string(out.VhostMap)), "\n"))
			assert.Contains(t, string(out.AppMap), "/web web_10000\n")
			var keys []string
			for k := range out.Maps {
				keys = append(keys, k)
			}
			assert.ElementsMatch(t, tc.wantMaps, keys)
			var bad []string
			for _, s := range out.Skipped {
				if !s.Filtered {
					bad = append(bad, s.AppID)
				}
			}
			assert.Equal(t, []string{"/broken"}, bad, "skipped for bad input")
			assert.NotContains(t, string(out.Config), "other_10003", "other group left out")
		})
	}
}

func TestLoadRendererBadDir(t *testing.T) {
	_, err := loadRenderer(lb.Options{}, "/nonexistent/templates")
	require.Error(t, err)
}

// TestModelRendererPortHolderKeepsPort checks that the renderer remembers
// which backends it served: an app deployed later on a service port
// already in use is left out even though its id sorts first.
func TestModelRendererPortHolderKeepsPort(t *testing.T) {
	web := marathontest.App("/web", marathontest.WithLabel("HAPROXY_GROUP", "external"),
		marathontest.WithServicePorts(10000), marathontest.WithTask("10.0.0.1", 31000))
	api := marathontest.App("/api", marathontest.WithLabel("HAPROXY_GROUP", "external"),
		marathontest.WithServicePorts(10000), marathontest.WithTask("10.0.0.2", 31001))
	r, err := loadRenderer(lb.Options{}, "")
	require.NoError(t, err)
	_, err = r.render([]marathon.App{web})
	require.NoError(t, err)
	out, err := r.render([]marathon.App{api, web})
	require.NoError(t, err)
	assert.Contains(t, string(out.Config), "backend web_10000")
	assert.NotContains(t, string(out.Config), "api_10000")
	require.Len(t, out.Skipped, 1)
	assert.Equal(t, "/api", out.Skipped[0].AppID)
	assert.Equal(t, "service port 10000 is already bound by web_10000, which held it before", out.Skipped[0].Reason)

	// A renderer made for new templates takes the memory over.
	r2, err := loadRenderer(lb.Options{}, "")
	require.NoError(t, err)
	r2.inherit(r)
	out, err = r2.render([]marathon.App{api, web})
	require.NoError(t, err)
	assert.Contains(t, string(out.Config), "backend web_10000")
	assert.NotContains(t, string(out.Config), "api_10000")
}
