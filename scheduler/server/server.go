// Package server composes the scheduler daemon: the scheduler core, the
// Marathon v2 API (marathon/httpapi) and the agent API
// (scheduler/agentapi) on one http.Handler. cmd/scheduler and the
// all-in-one cmd/switchyard both use it.
package server

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/switchyard/switchyard/marathon/httpapi"
	"github.com/switchyard/switchyard/scheduler"
	"github.com/switchyard/switchyard/scheduler/agentapi"
	"github.com/switchyard/switchyard/scheduler/ui"
)

// Config configures the composed server.
type Config struct {
	// Scheduler is passed to scheduler.New (its Registry and Logger are
	// filled from the fields below when unset).
	Scheduler scheduler.Config
	// EventKeepalive is the ": ping" interval of /v2/events (default 10s).
	EventKeepalive time.Duration
	// Registry serves /metrics; nil means a fresh registry with the Go
	// and process collectors.
	Registry *prometheus.Registry
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Loggers serves /logging (run-time log levels); nil shows none.
	Loggers httpapi.LoggerService
	// Agents says which agents the agent API admits (cluster secret, or
	// loopback peers only, or anyone); its Logger defaults to Logger.
	Agents agentapi.HandlerConfig
}

// New builds the scheduler and the handler serving /v2/*, /ping, /metrics,
// /agentapi/ and the web UI at /ui/. The caller runs the scheduler (sched.Run(ctx)), which
// also closes its store when ctx ends.
func New(cfg Config) (http.Handler, *scheduler.Scheduler, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
		cfg.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	sc := cfg.Scheduler
	if sc.Registry == nil {
		sc.Registry = cfg.Registry
	}
	if sc.Logger == nil {
		sc.Logger = cfg.Logger
	}
	sched, err := scheduler.New(sc)
	if err != nil {
		return nil, nil, err
	}
	api := httpapi.New(httpapi.Config{
		Apps: sched, Tasks: sched, Deployments: sched, Events: sched, Cluster: sched,
		Registry: cfg.Registry, Keepalive: cfg.EventKeepalive, Logger: cfg.Logger,
		Loggers: cfg.Loggers,
	})
	mux := http.NewServeMux()
	if cfg.Agents.Logger == nil {
		cfg.Agents.Logger = cfg.Logger
	}
	mux.Handle("/agentapi/", agentapi.NewHandler(sched, cfg.Agents))
	mux.Handle(ui.Prefix, ui.New(ui.Config{
		Agents: func(ctx context.Context) (any, error) { return sched.Agents(ctx) },
		Logger: cfg.Logger,
	}))
	// Browsers asking for "/" go to the UI; API clients keep the API's 404.
	mux.Handle("/", ui.RedirectBrowsers(api))
	return mux, sched, nil
}
