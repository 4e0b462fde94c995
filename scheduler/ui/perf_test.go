package ui_test

import (
	"fmt"
	"net/http"
	"slices"
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

	// Render: search for what all 1,000 apps match, then sort by a column,
	// each time waiting for the layout of the new table (two animation
	// frames later). Five rounds; the median is logged, as the machine
	// may be busy with other work.
	var ms struct {
		Render []float64 `json:"render"`
		Search []float64 `json:"search"`
		Sort   []float64 `json:"sort"`
		Rows   int       `json:"rows"`
	}
	b.eval(`(async () => {
		const sy = window.__switchyard;
		const frames = () => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
		const out = {render: [], search: [], sort: [], rows: 0};
		for (let i = 0; i < 5; i++) {
			sy.filters.q = ''; sy.sort = {key: 'id', dir: 1}; sy.render(); await frames();
			let t0 = performance.now();
			sy.filters.q = 'perf'; // what typing sets; the page renders once the keys pause
			sy.render();
			out.render.push(sy.lastRenderMs);
			await frames();
			out.search.push(performance.now() - t0);
			out.rows = document.querySelectorAll('#apps-table tr.app-row').length;
			t0 = performance.now();
			document.querySelector('th[data-sort="vhosts"]').click();
			await frames();
			out.sort.push(performance.now() - t0);
		}
		return out;
	})()`, &ms)
	assert.Equal(t, n, ms.Rows)
	t.Logf("1,000 apps: navigation start to the list rendered %.0f ms; search matching all: script %.1f ms, painted after %.1f ms; sort by vhost painted after %.1f ms (medians of 5)",
		load, median(ms.Render), median(ms.Search), median(ms.Sort))
	b.screenshot("apps-1000")
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
