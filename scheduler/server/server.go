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

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/marathon/httpapi"
	"github.com/switchyard/switchyard/scheduler"
	"github.com/switchyard/switchyard/scheduler/agentapi"
	"github.com/switchyard/switchyard/scheduler/dns"
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
	// Auth configures HTTP basic authentication of the Marathon API (no
	// users: none). It never applies to /agentapi/, which authenticates
	// agents itself (Agents).
	Auth httpapi.AuthConfig
	// MaxBodyBytes and MaxEventStreams are httpapi.Config's limits (zero:
	// its defaults).
	MaxBodyBytes    int64
	MaxEventStreams int
	// LeaderScheme is httpapi.Config.LeaderScheme ("https" when only
	// HTTPS is served).
	LeaderScheme string
	// DNS, when set, serves the tasks' names (docs/dns.md): New mounts
	// its Mesos-DNS HTTP API (/v1/, behind Auth like the Marathon API);
	// Run serves it and has it follow every term's scheduler. A caller of
	// New runs it itself: DNS.Run(ctx, DNSSource(sched)).
	DNS *dns.Server
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
		Loggers: cfg.Loggers, MaxBodyBytes: cfg.MaxBodyBytes, MaxEventStreams: cfg.MaxEventStreams,
		LeaderScheme: cfg.LeaderScheme,
	})
	auth := cfg.Auth
	if auth.Logger == nil {
		auth.Logger = cfg.Logger
	}
	if auth.Registry == nil {
		auth.Registry = cfg.Registry
	}
	mux := http.NewServeMux()
	if cfg.Agents.Logger == nil {
		cfg.Agents.Logger = cfg.Logger
	}
	// The agent API is routed before the users' basic auth: agents
	// authenticate with Agents (cluster secret), never with a user's
	// password.
	mux.Handle("/agentapi/", agentapi.NewHandler(sched, cfg.Agents))
	if cfg.DNS != nil {
		// Mesos-DNS's HTTP API, behind the same users.
		mux.Handle("/v1/", httpapi.Authenticate(auth, cfg.DNS))
	}
	// The web UI and the API share one set of users: the UI's page and
	// /ui/api/agents (agent addresses) ask for them too. Browsers asking
	// for "/" go to the UI; API clients keep the API's 404.
	users := http.NewServeMux()
	users.Handle(ui.Prefix, ui.New(ui.Config{
		Agents: func(ctx context.Context) (any, error) { return sched.Agents(ctx) },
		Logger: cfg.Logger,
	}))
	users.Handle("/", ui.RedirectBrowsers(api))
	mux.Handle("/", httpapi.Authenticate(auth, users))
	return mux, sched, nil
}

// DNSSource is the scheduler as scheduler/dns reads it: apps with tasks,
// events, the leader and the reachable agents' addresses.
func DNSSource(s *scheduler.Scheduler) dns.Source { return dnsSource{s} }

type dnsSource struct{ s *scheduler.Scheduler }

func (d dnsSource) ListApps(ctx context.Context) ([]marathon.App, error) { return d.s.ListApps(ctx) }
func (d dnsSource) Leader(ctx context.Context) (string, error)           { return d.s.Leader(ctx) }
func (d dnsSource) Subscribe(remote string) (<-chan marathon.Event, func()) {
	return d.s.Subscribe(remote)
}

func (d dnsSource) Agents(ctx context.Context) []dns.AgentAddr {
	list, err := d.s.Agents(ctx)
	if err != nil {
		return nil
	}
	out := make([]dns.AgentAddr, 0, len(list))
	for _, a := range list {
		if a.Reachable {
			out = append(out, dns.AgentAddr{ID: a.ID, Hostname: a.Hostname, Address: a.Address})
		}
	}
	return out
}
