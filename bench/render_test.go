// Package bench holds cross-package benchmarks.
package bench

import (
	"fmt"
	"testing"

	"github.com/switchyard/switchyard/lb"
	lt "github.com/switchyard/switchyard/lb/lbtest"
	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/templates"
)

// benchApps returns n apps with 3 tasks each: a mix of BRIDGE apps with a
// vhost and an HTTP health check, and host-networking TCP apps.
func benchApps(n int) []marathon.App {
	apps := make([]marathon.App, 0, n)
	for i := range n {
		id := fmt.Sprintf("/team%d/app%d", i%50, i)
		sp := 10000 + i
		tasks := lt.Tasks(
			lt.Task(fmt.Sprintf("10.0.%d.%d", i%250, 1), 31000+i%1000),
			lt.Task(fmt.Sprintf("10.0.%d.%d", i%250, 2), 31000+i%1000),
			lt.Task(fmt.Sprintf("10.0.%d.%d", i%250, 3), 31000+i%1000),
		)
		if i%2 == 0 {
			apps = append(apps, lt.App(id, lt.Group("external"), lt.Bridge(80, sp),
				lt.Label("HAPROXY_0_VHOST", fmt.Sprintf("app%d.example.com", i)),
				lt.HealthCheck("HTTP", "/health", 0, 10, 5, 3), tasks))
		} else {
			apps = append(apps, lt.App(id, lt.Group("external"), lt.PortDefinitions(sp), tasks))
		}
	}
	return apps
}

// BenchmarkBuildRender measures lb.Build plus templates.Render, the work
// done on every Marathon change. Target: under 100 ms and 100 MB for
// 10,000 apps x 3 tasks.
func BenchmarkBuildRender(b *testing.B) {
	set := templates.Default()
	for _, n := range []int{100, 1000, 10000} {
		apps := benchApps(n)
		b.Run(fmt.Sprintf("apps=%d", n), func(b *testing.B) {
			cfg, skipped := lb.Build(apps, lb.Options{})
			if len(skipped) != 0 || len(cfg.Services) != n {
				b.Fatalf("setup: %d services, %d skipped", len(cfg.Services), len(skipped))
			}
			b.ReportAllocs()
			var size int
			for b.Loop() {
				cfg, _ := lb.Build(apps, lb.Options{})
				out, err := set.Render(cfg)
				if err != nil {
					b.Fatal(err)
				}
				size = len(out.Config)
			}
			b.ReportMetric(float64(size), "cfg-bytes")
		})
	}
}
