package controller

import (
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard/switchyard/lb"
)

// Config configures a Controller. Zero values mean marathon-lb's defaults
// where there is one.
type Config struct {
	// Marathon is the source of apps and events (required);
	// *marathon.Client satisfies it.
	Marathon Source
	// Poll selects poll mode (lb poll): no event stream, the apps are
	// re-read every PollInterval (default 60 s).
	Poll         bool
	PollInterval time.Duration
	// ResyncInterval is how often sse mode re-reads all apps even without
	// events (default 300 s, as marathon-lb), a safety net for an event
	// lost on the way.
	ResyncInterval time.Duration
	// HostCacheSize bounds the cache of agent host names resolved to IPv4
	// addresses (--lru-cache-capacity, default 1000).
	HostCacheSize int
	// Resolver looks up agent host names (default net.DefaultResolver).
	Resolver HostLookup

	// Options shape the generated configuration (groups, -H, strict
	// mode, certificates, stats port, ...). AdminAddr is filled in by
	// Run with the admin server's address.
	Options lb.Options

	// TemplatesDir, when set, holds template files overriding the
	// defaults by name. It is watched: an edit re-renders without a
	// restart.
	TemplatesDir string
	// WatchFiles are files whose change triggers a reload (the
	// --ssl-certs PEMs). Their directories are watched.
	WatchFiles []string

	// ConfigPath is where haproxy.cfg is written (--haproxy-config).
	ConfigPath string
	// HAProxyBinary is the haproxy executable (default "haproxy" from
	// PATH).
	HAProxyBinary string
	// ReloadCommand, when set (--command), is run with sh -c after every
	// config write instead of lb starting and reloading HAProxy itself.
	// There is no runtime API in that mode.
	ReloadCommand string
	// SkipValidation skips haproxy -c (--skip-validation).
	SkipValidation bool
	// Dry renders and logs the configuration but never writes it nor
	// touches HAProxy (--dry). DryOutput, when set, receives each
	// rendered configuration (lb prints them on stdout, as marathon-lb
	// does); otherwise they are logged.
	Dry       bool
	DryOutput io.Writer
	// ReloadInterval is the wait between retries of a failed reload
	// (--reload-interval, as in marathon-lb; default 100 ms when zero).
	ReloadInterval time.Duration
	// MaxReloadRetries is how many times a failed reload is retried
	// (--max-reload-retries); -1 retries forever, 0 never.
	MaxReloadRetries int
	// MinReloadInterval, when set, is the minimum time between two
	// reloads: a structural change arriving sooner is applied when it
	// ends (servers-only changes are never delayed). Zero: no limit.
	MinReloadInterval time.Duration

	// AdminAddr is where the admin HTTP server listens (default
	// 127.0.0.1 on a free port). HAProxy's stats listener forwards
	// /_haproxy_getconfig, /_haproxy_getpids, /_haproxy_getvhostmap,
	// /_haproxy_getappmap, /_mlb_signal/* and /metrics to it.
	AdminAddr string

	// Registry receives the controller's metrics and is served at
	// /metrics (default: a new registry).
	Registry *prometheus.Registry
	// Logger receives the controller's logs (default: discard).
	Logger *slog.Logger

	// Debounce is the quiet time after an event before a sync (default
	// 5 ms); MaxDelay caps how long a stream of events can postpone it
	// (default 100 ms). MaxBackoff caps the retry delay while Marathon
	// is unreachable (default 15 s).
	Debounce   time.Duration
	MaxDelay   time.Duration
	MaxBackoff time.Duration
}
