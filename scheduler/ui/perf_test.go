package ui_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAppsListThousandApps loads 1,000 apps into the list in the browser
// and logs how long the page takes to show them. It reports the numbers
// (docs/ui.md); it does not time-assert them.
func TestAppsListThousandApps(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: 1,000 apps in a browser")
	}
	c := startCluster(t)
	b := newBrowser(t)

	const n = 1000
	apps := make([]map[string]any, 0, n)
	for i := range n {
		apps = append(apps, map[string]any{
			"id": fmt.Sprintf("/perf/g%02d/app-%04d", i%20, i), "cmd": "sleep 1000", "instances": 0, "cpus": 0.1, "mem": 32,
			"labels": map[string]string{"HAPROXY_GROUP": []string{"external", "internal"}[i%2], "HAPROXY_0_VHOST": fmt.Sprintf("app-%d.example.com", i)},
		})
	}
	code, body := c.call("PUT", "/v2/apps", apps)
	require.Equal(t, http.StatusOK, code, string(body))

	// Load: from navigation start to the first list rendered from the
	// API (fetching and decoding the 1,000 apps included).
	b.run("load", chromedp.Navigate(c.url+"/ui/#/apps"))
	b.waitJS("folder row", `document.querySelector('tr.group-row[data-group="/perf"]') !== null`)
	// Measure on a quiet page: the creation's events are handled.
	b.waitJS("quiet", `document.querySelector('#dep-count').hidden`)
	var load float64
	b.eval(`window.__switchyard.firstListMs`, &load)

	// Render: type into the search box (all 1,000 apps match) and wait
	// for the layout of the new table, two animation frames later.
	var ms struct {
		Total  float64 `json:"total"`
		Render float64 `json:"render"`
		Rows   int     `json:"rows"`
		Sort   float64 `json:"sort"`
	}
	b.eval(`new Promise(resolve => {
		const t0 = performance.now();
		const q = document.querySelector('#f-q');
		q.value = 'perf';
		q.dispatchEvent(new Event('input'));
		const render = window.__switchyard.lastRenderMs;
		requestAnimationFrame(() => requestAnimationFrame(() => {
			const total = performance.now() - t0;
			const rows = document.querySelectorAll('#apps-table tr.app-row').length;
			const t1 = performance.now();
			document.querySelector('th[data-sort="vhosts"]').click();
			requestAnimationFrame(() => requestAnimationFrame(() => resolve({total, render, rows, sort: performance.now() - t1})));
		}));
	})`, &ms)
	assert.Equal(t, n, ms.Rows)
	t.Logf("1,000 apps: navigation start to the list rendered %.0f ms; search over all apps: render %.1f ms, to painted %.1f ms; sort by vhost to painted %.1f ms",
		load, ms.Render, ms.Total, ms.Sort)
	b.screenshot("apps-1000")
}
