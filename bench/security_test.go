package bench

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/switchyard/switchyard/marathon/httpapi"
	"github.com/switchyard/switchyard/marathon/marathontest/tlstest"
	"github.com/switchyard/switchyard/scheduler"
	"github.com/switchyard/switchyard/scheduler/agentapi"
	"github.com/switchyard/switchyard/scheduler/schedulertest"
	"github.com/switchyard/switchyard/scheduler/server"
)

// BenchmarkSchedulerListAppsTLSAuth measures what HTTPS and basic auth
// cost on GET /v2/apps?embed=apps.tasks with 1,000 apps and 2,000 running
// tasks: the same scheduler served plain without users ("plain"), and
// over HTTPS with basic auth, on a kept-alive connection ("tls+auth") and
// on a new connection per request, handshake included
// ("tls+auth-new-conn"). Each reports p50 and p99 latency.
func BenchmarkSchedulerListAppsTLSAuth(b *testing.B) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	secure, sched, err := server.New(server.Config{
		Scheduler: scheduler.Config{ReconcileInterval: 50 * time.Millisecond, AgentTimeout: time.Minute, Leader: "127.0.0.1:8080"},
		Logger:    logger,
		Auth:      httpapi.AuthConfig{Users: []httpapi.Credential{{User: "admin", Password: "s3cret"}, {User: "ops", Password: "other"}}},
	})
	if err != nil {
		b.Fatal(err)
	}
	plain := httpapi.New(httpapi.Config{Apps: sched, Tasks: sched, Deployments: sched, Events: sched, Cluster: sched, Logger: logger})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sched.Run(ctx) }()
	srv := httptest.NewUnstartedServer(plain)
	srv.Config.BaseContext = func(net.Listener) context.Context { return ctx }
	srv.Start()
	var wg sync.WaitGroup
	for i := range 10 {
		a := schedulertest.NewFakeAgent(sched, fmt.Sprintf("agent%02d", i))
		a.Resources = agentapi.Resources{CPUs: 1000, Mem: 1 << 20, Disk: 1 << 20, Ports: []agentapi.PortRange{{Begin: 20000, End: 40000}}}
		a.Wait = time.Second
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = a.Run(ctx)
		}()
	}
	c := &schedCluster{srv: srv, sched: sched}
	defer func() {
		cancel()
		wg.Wait()
		srv.Close()
		if err := <-done; err != nil {
			b.Error(err)
		}
	}()
	c.deployApps(b, 1000)

	cert := tlstest.SelfSigned(b, b.TempDir(), "bench")
	tlsCfg, err := server.TLSConfig(cert.CertFile, cert.KeyFile, logger)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- server.ServeWith(ctx, ln, secure, server.ServeOptions{TLS: tlsCfg, Logger: logger}) }()
	defer func() { cancel(); <-served }()
	httpsURL := "https://" + ln.Addr().String()

	run := func(b *testing.B, client *http.Client, url string, auth bool) {
		var lat []time.Duration
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			start := time.Now()
			req, _ := http.NewRequest("GET", url+"/v2/apps?embed=apps.tasks", nil)
			if auth {
				req.SetBasicAuth("ops", "other")
			}
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("GET /v2/apps: %d", resp.StatusCode)
			}
			lat = append(lat, time.Since(start))
		}
		b.ReportMetric(float64(percentile(lat, 0.5).Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
	}
	b.Run("plain", func(b *testing.B) { run(b, srv.Client(), srv.URL, false) })
	b.Run("tls+auth", func(b *testing.B) {
		run(b, &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: cert.Pool}}}, httpsURL, true)
	})
	b.Run("tls+auth-new-conn", func(b *testing.B) {
		run(b, &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: cert.Pool}, DisableKeepAlives: true}}, httpsURL, true)
	})
}
