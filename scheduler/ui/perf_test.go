package ui_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// BenchmarkAppsListThousandApps measures the applications list with 1,000
// apps (20 folders, labels, vhosts) in headless Chromium. Each iteration
// searches for what every app matches and then sorts by a column, waiting
// each time for the new table's layout (two animation frames). It reports,
// in milliseconds of the page's clock:
//
//	load-ms    navigation start to the first list rendered from the API
//	render-ms  building and inserting the 1,000-row table (script only)
//	search-ms  the search until the table is laid out and painted
//	sort-ms    a column header click until the table is painted
func BenchmarkAppsListThousandApps(b *testing.B) {
	c := startCluster(b)
	br := newBrowser(b)

	const n = 1000
	apps := make([]map[string]any, 0, n)
	for i := range n {
		apps = append(apps, map[string]any{
			"id": fmt.Sprintf("/perf/g%02d/app-%04d", i%20, i), "cmd": "sleep 1000", "instances": 0, "cpus": 0.1, "mem": 32,
			"labels": map[string]string{"HAPROXY_GROUP": []string{"external", "internal"}[i%2], "HAPROXY_0_VHOST": fmt.Sprintf("app-%d.example.com", i)},
		})
	}
	code, body := c.call("PUT", "/v2/apps", apps)
	require.Equal(b, http.StatusOK, code, string(body))

	br.run("load", chromedp.Navigate(c.url+"/ui/#/apps"))
	br.waitJS("folder row", `document.querySelector('tr.group-row[data-group="/perf"]') !== null`)
	// Measure on a quiet page: the creation's events are handled.
	br.waitJS("quiet", `document.querySelector('#dep-count').hidden`)
	var load float64
	br.eval(`window.__switchyard.firstListMs`, &load)

	var render, search, sort float64
	for b.Loop() {
		var ms struct {
			Render float64 `json:"render"`
			Search float64 `json:"search"`
			Sort   float64 `json:"sort"`
			Rows   int     `json:"rows"`
		}
		br.eval(`(async () => {
			const sy = window.__switchyard;
			const frames = () => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
			sy.filters.q = ''; sy.sort = {key: 'id', dir: 1}; sy.render(); await frames();
			let t0 = performance.now();
			sy.filters.q = 'perf'; // what typing sets; the page renders once the keys pause
			sy.render();
			const render = sy.lastRenderMs;
			await frames();
			const search = performance.now() - t0;
			const rows = document.querySelectorAll('#apps-table tr.app-row').length;
			t0 = performance.now();
			document.querySelector('th[data-sort="vhosts"]').click();
			await frames();
			return {render, search, sort: performance.now() - t0, rows};
		})()`, &ms)
		require.Equal(b, n, ms.Rows)
		render += ms.Render
		search += ms.Search
		sort += ms.Sort
	}
	b.ReportMetric(load, "load-ms")
	b.ReportMetric(render/float64(b.N), "render-ms")
	b.ReportMetric(search/float64(b.N), "search-ms")
	b.ReportMetric(sort/float64(b.N), "sort-ms")
	br.screenshot("apps-1000")
}
