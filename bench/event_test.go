package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/switchyard/switchyard/haproxy/haproxytest"
	"github.com/switchyard/switchyard/lb"
	"github.com/switchyard/switchyard/lb/controller"
	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/marathon/marathontest"
)

// BenchmarkEventToRouting measures, against a real HAProxy, the time from
// a status_update_event (a task added: a servers-only change, applied
// through the runtime API) to the new task answering through HAProxy.
// One op = one event followed to routing.
//
//	go test ./bench -run '^$' -bench EventToRouting -benchtime 50x
func BenchmarkEventToRouting(b *testing.B) {
	bin := haproxytest.Binary(b)
	fake := marathontest.NewServer()
	b.Cleanup(fake.Close)

	base := benchBackend(b)
	extra := [2]int{benchBackend(b), benchBackend(b)}
	svcPort, statsPort := haproxytest.FreePort(b), haproxytest.FreePort(b)
	app := func(tasks ...int) marathon.App {
		opts := []marathontest.AppOption{marathontest.WithLabel("HAPROXY_GROUP", "bench"), marathontest.WithServicePorts(svcPort)}
		for _, p := range tasks {
			opts = append(opts, marathontest.WithTask("127.0.0.1", p))
		}
		return marathontest.App("/bench", opts...)
	}
	fake.SetApps([]marathon.App{app(base)})

	client, err := marathon.NewClient(marathon.ClientConfig{URLs: []string{fake.URL}})
	if err != nil {
		b.Fatal(err)
	}
	// Outside a network namespace: no :80, and the app-id frontend (always
	// on :9091 by default) moved to a free port through --templates-dir.
	tdir := b.TempDir()
	appid := fmt.Sprintf("\nfrontend marathon_http_appid_in\n  bind 127.0.0.1:%d\n  mode http\n", haproxytest.FreePort(b))
	if err := os.WriteFile(filepath.Join(tdir, "HAPROXY_HTTP_FRONTEND_APPID_HEAD"), []byte(appid), 0o644); err != nil {
		b.Fatal(err)
	}
	ctrl, err := controller.New(controller.Config{
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
	if err := waitRouted(svcPort, base, 20*time.Second); err != nil {
		b.Fatal(err)
	}

	var took []time.Duration
	i := 0
	for b.Loop() {
		p := extra[i%2]
		i++
		start := time.Now()
		fake.SetApps([]marathon.App{app(base, p)})
		fake.Publish(marathon.EventStatusUpdate, marathon.StatusUpdateEvent{AppID: "/bench", TaskStatus: marathon.TaskRunning})
		if err := waitRouted(svcPort, p, 5*time.Second); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(start))
		b.StopTimer()
		fake.SetApps([]marathon.App{app(base)})
		fake.Publish(marathon.EventStatusUpdate, marathon.StatusUpdateEvent{AppID: "/bench", TaskStatus: marathon.TaskKilled})
		if err := waitGone(svcPort, p, 5*time.Second); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(took[(len(took)-1)*99/100].Microseconds())/1000, "p99-ms")
}

var noKeepAlive = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// benchBackend starts an HTTP server answering its own port.
func benchBackend(b *testing.B) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, strconv.Itoa(port))
	}), ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Close() })
	return port
}

// answer returns the port of the backend that served one request.
func answer(port int) (int, error) {
	resp, err := noKeepAlive.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(string(body))
}

// waitRouted waits until a request through HAProxy reaches backend want.
func waitRouted(port, want int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if got, err := answer(port); err == nil && got == want {
			return nil
		}
	}
	return fmt.Errorf("backend %d not routed through :%d after %s", want, port, timeout)
}

// waitGone waits until several requests in a row miss backend gone.
func waitGone(port, gone int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		miss := 0
		for range 4 {
			if got, err := answer(port); err == nil && got != gone {
				miss++
			}
		}
		if miss == 4 {
			return nil
		}
	}
	return errors.New("removed backend still routed")
}

// benchLogger logs to stderr with BENCH_LOG=1, else nowhere.
func benchLogger() *slog.Logger {
	if os.Getenv("BENCH_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, nil))
}
