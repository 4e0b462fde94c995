package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard/switchyard/haproxy/haproxytest"
	"github.com/switchyard/switchyard/lb"
	"github.com/switchyard/switchyard/lb/controller"
	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/marathon/marathontest"
)

// BenchmarkNewAppToRouting measures, against a real HAProxy, the time from
// an api_post_event for a new app (a structural change: validation and a
// reload) to its service port answering through HAProxy, with a few other
// apps exposed. One op = one new app followed to routing (its removal is
// not timed).
//
//	go test ./bench -run '^$' -bench NewAppToRouting -benchtime 30x
func BenchmarkNewAppToRouting(b *testing.B) {
	bin := haproxytest.Binary(b)
	fake := marathontest.NewServer()
	b.Cleanup(fake.Close)

	be := benchBackend(b)
	statsPort := haproxytest.FreePort(b)
	app := func(id string, port int) marathon.App {
		return marathontest.App(id, marathontest.WithLabel("HAPROXY_GROUP", "bench"),
			marathontest.WithServicePorts(port), marathontest.WithTask("127.0.0.1", be))
	}
	var base []marathon.App
	for i := range 4 {
		base = append(base, app(fmt.Sprintf("/base-%d", i), haproxytest.FreePort(b)))
	}
	fake.SetApps(base)

	client, err := marathon.NewClient(marathon.ClientConfig{URLs: []string{fake.URL}})
	if err != nil {
		b.Fatal(err)
	}
	tdir := b.TempDir()
	appid := fmt.Sprintf("\nfrontend marathon_http_appid_in\n  bind 127.0.0.1:%d\n  mode http\n", haproxytest.FreePort(b))
	if err := os.WriteFile(filepath.Join(tdir, "HAPROXY_HTTP_FRONTEND_APPID_HEAD"), []byte(appid), 0o644); err != nil {
		b.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	ctrl, err := controller.New(controller.Config{
		Registry:      reg,
		Marathon:      client,
		Options:       lb.Options{Groups: []string{"bench"}, DontBindHTTPHTTPS: true, StatsPort: statsPort},
		TemplatesDir:  tdir,
		ConfigPath:    filepath.Join(b.TempDir(), "haproxy.cfg"),
		HAProxyBinary: bin,
		Logger:        benchLogger(),
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ctrl.Run(ctx) }()
	b.Cleanup(func() {
		cancel()
		<-done
	})
	for _, a := range base {
		if err := waitRouted(a.PortDefinitions[0].Port, be, 20*time.Second); err != nil {
			b.Fatal(err)
		}
	}

	reloads := 1.0 // the initial start
	if err := waitMetric(reg, "switchyard_lb_reloads_total", reloads, 5*time.Second); err != nil {
		b.Fatal(err)
	}
	var took []time.Duration
	for b.Loop() {
		port := haproxytest.FreePort(b)
		a := app("/new", port)
		start := time.Now()
		fake.SetApps(append(slices.Clone(base), a))
		fake.Publish(marathon.EventAPIPost, marathon.APIPostEvent{URI: "/v2/apps/new", AppDefinition: a})
		if err := waitRouted(port, be, 5*time.Second); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(start))
		b.StopTimer()
		fake.SetApps(base)
		fake.Publish(marathon.EventAppTerminated, marathon.AppTerminatedEvent{AppID: "/new"})
		if err := waitClosed(port, 5*time.Second); err != nil {
			b.Fatal(err)
		}
		// Let lb finish the removal's reload, so it is idle when the
		// next app arrives.
		reloads += 2
		if err := waitMetric(reg, "switchyard_lb_reloads_total", reloads, 5*time.Second); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(took[(len(took)-1)*99/100].Microseconds())/1000, "p99-ms")
}

// waitClosed waits until nothing answers on port.
func waitClosed(port int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if _, err := answer(port); err != nil {
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("port %d still answers after %s", port, timeout)
}

// waitMetric waits until the sum of the series of a counter reaches want.
func waitMetric(reg *prometheus.Registry, name string, want float64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		mfs, err := reg.Gather()
		if err != nil {
			return err
		}
		var sum float64
		for _, mf := range mfs {
			if mf.GetName() == name {
				for _, m := range mf.GetMetric() {
					sum += m.GetCounter().GetValue()
				}
			}
		}
		if sum >= want {
			return nil
		}
		time.Sleep(2 * time.Millisecond)
	}
	return fmt.Errorf("%s below %v after %s", name, want, timeout)
}
