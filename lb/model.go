package lb

import "net/netip"

// Default values used when Options leave a field empty.
const (
	// DefaultGroup is the group served when Options.Groups is empty, as in
	// the marathon-lb Docker image ("--group external").
	DefaultGroup = "external"
	// DefaultMinServPortIPPerTask is the low end of the service ports given
	// to IP-per-task apps that have none.
	DefaultMinServPortIPPerTask = 10050
	// DefaultMaxServPortIPPerTask is the high end of that range.
	DefaultMaxServPortIPPerTask = 10100
	// DefaultStatsPort is the port of the stats/admin listener ($PORTS).
	DefaultStatsPort = 9090
	// DefaultBalance is the balance algorithm when HAPROXY_{n}_BALANCE is
	// not set.
	DefaultBalance = "roundrobin"
	// DefaultBindAddr is the bind address of per-app frontends.
	DefaultBindAddr = "*"
)

// Modes of a service (HAPROXY_{n}_MODE).
const (
	ModeHTTP = "http"
	ModeTCP  = "tcp"
)

// Options are the operator's choices that shape the generated configuration.
// The zero value is usable: Build applies the defaults documented on each
// field.
type Options struct {
	// Groups are the --group values; "*" means every group. Empty means
	// [DefaultGroup].
	Groups []string
	// StrictMode (--strict-mode) exposes an app port only when
	// HAPROXY_{n}_ENABLED=true.
	StrictMode bool
	// HealthCheck (--health-check, -H) routes only to tasks whose Marathon
	// health check results are all alive; tasks of an app with health checks
	// and no results yet get no traffic.
	HealthCheck bool
	// DontBindHTTPHTTPS (--dont-bind-http-https) leaves out the shared
	// marathon_http_in (:80) and marathon_https_in (:443) frontends.
	DontBindHTTPHTTPS bool
	// SSLCerts (--ssl-certs) are the PEM files served on :443. When empty the
	// marathon_https_in frontend is left out (marathon-lb would fall back to
	// /etc/ssl/cert.pem; the lb command decides that default, not this
	// package).
	SSLCerts []string
	// HAProxyMap (--haproxy-map) routes vhosts and app ids through map files
	// (domain2backend.map, app2backend.map) instead of one ACL per vhost.
	HAProxyMap bool
	// GroupHTTPSByVhost (--group-https-by-vhost) routes :443 by SNI in TCP
	// mode to one TLS-terminating frontend per vhost.
	GroupHTTPSByVhost bool
	// MinServPortIPPerTask and MaxServPortIPPerTask bound the service ports
	// given to IP-per-task apps that have none (defaults 10050 and 10100).
	MinServPortIPPerTask, MaxServPortIPPerTask int
	// ResolveHost maps an agent host name (a task's host in host and
	// bridge mode, when it is not an IP address) to the address HAProxy
	// connects to; on false the task's own ipAddresses entry is used, and
	// a task without one is left out (a port left without tasks says so in
	// its Skipped reason). Nil uses host names as they are.
	ResolveHost func(host string) (ip string, ok bool)
	// StatsPort is the port of the stats/admin listener ($PORTS, default
	// 9090).
	StatsPort int
	// AdminAddr is host:port of lb's own admin HTTP server. The stats
	// listener forwards /_haproxy_getconfig, /_haproxy_getpids,
	// /_haproxy_getvhostmap, /_haproxy_getappmap, /_mlb_signal/* and
	// /metrics to it. Empty means those paths answer 503.
	AdminAddr string
	// AdminAllow limits /_mlb_signal/* and /_haproxy_getconfig on the
	// stats port to clients in these networks (HAProxy answers 403 to
	// others). Empty means everyone, as marathon-lb.
	AdminAllow []netip.Prefix
	// MapDir is the directory holding the map files; the config refers to
	// MapDir/domain2backend.map and MapDir/app2backend.map.
	MapDir string
	// PreviousBackends are the backends of the previous model
	// (Config.Backends of the last Build). When two services claim the same
	// service port, one that was in the previous model keeps it, so an app
	// deployed later cannot take the port over because its id sorts first;
	// otherwise the first in app id order wins. Build only reads it.
	PreviousBackends map[string]bool
}

// withDefaults returns o with every empty field set to its default.
func (o Options) withDefaults() Options {
	if len(o.Groups) == 0 {
		o.Groups = []string{DefaultGroup}
	} else {
		o.Groups = append([]string(nil), o.Groups...)
	}
	o.SSLCerts = append([]string(nil), o.SSLCerts...)
	if o.MinServPortIPPerTask == 0 {
		o.MinServPortIPPerTask = DefaultMinServPortIPPerTask
	}
	if o.MaxServPortIPPerTask == 0 {
		o.MaxServPortIPPerTask = DefaultMaxServPortIPPerTask
	}
	if o.StatsPort == 0 {
		o.StatsPort = DefaultStatsPort
	}
	return o
}

// Config is everything the templates need to render haproxy.cfg: the
// effective options and one Service per exposed app port, sorted by Backend.
type Config struct {
	// Options are the options Build used, with defaults applied.
	Options Options
	// Services are the exposed app ports, sorted by Backend name.
	Services []Service
}

// Backends returns the set of backend names of c, for the next Build's
// Options.PreviousBackends.
func (c *Config) Backends() map[string]bool {
	out := make(map[string]bool, len(c.Services))
	for _, s := range c.Services {
		out[s.Backend] = true
	}
	return out
}

// Service is one exposed app port: a frontend on ServicePort, a backend with
// one server per task, and optional vhost routing on the shared frontends.
type Service struct {
	// AppID is the Marathon app id ("/prod/web"), or the deployment group
	// id for apps merged by HAPROXY_DEPLOYMENT_GROUP.
	AppID string
	// PortIndex is n in HAPROXY_{n}_* (the index in the app's port list).
	PortIndex int
	// ServicePort is the port bound by the service's frontend
	// (HAPROXY_{n}_PORT when set).
	ServicePort int
	// Backend names both the frontend and the backend:
	// "<safe app id>_<servicePort>", e.g. "prod_web_10000".
	Backend string
	// Mode is ModeHTTP or ModeTCP.
	Mode string
	// Balance is the HAProxy balance algorithm.
	Balance string
	// VHosts are the HAPROXY_{n}_VHOST names, in label order.
	VHosts []string
	// Path is HAPROXY_{n}_PATH (path_beg pattern(s)), or empty.
	Path string
	// Auth is set by HAPROXY_{n}_AUTH.
	Auth *Auth
	// BindAddr is HAPROXY_{n}_BIND_ADDR, default "*".
	BindAddr string
	// BindOptions is HAPROXY_{n}_BIND_OPTIONS, or empty.
	BindOptions string
	// Sticky is HAPROXY_{n}_STICKY.
	Sticky bool
	// RedirectToHTTPS is HAPROXY_{n}_REDIRECT_TO_HTTPS.
	RedirectToHTTPS bool
	// UseHSTS is HAPROXY_{n}_USE_HSTS.
	UseHSTS bool
	// SSLCert is HAPROXY_{n}_SSL_CERT: a PEM bound with "ssl crt" on the
	// service port (and used per vhost with --group-https-by-vhost).
	SSLCert string
	// ProxyPath is HAPROXY_{n}_HTTP_BACKEND_PROXYPASS_PATH.
	ProxyPath string
	// RevProxyPath is HAPROXY_{n}_HTTP_BACKEND_REVPROXY_PATH.
	RevProxyPath string
	// RedirPath is HAPROXY_{n}_HTTP_BACKEND_REDIR: "/" on a vhost is
	// redirected there.
	RedirPath string
	// NetworkAllowed are the source networks of
	// HAPROXY_{n}_BACKEND_NETWORK_ALLOWED_ACL; empty allows everyone.
	NetworkAllowed []string
	// BackendWeight is HAPROXY_{n}_BACKEND_WEIGHT: vhost rules of services
	// with a higher weight come first in the shared frontends.
	BackendWeight int
	// HealthCheck is the Marathon health check that applies to this port
	// (COMMAND checks are ignored), or nil.
	HealthCheck *HealthCheck
	// HealthCheckPortIndex is HAPROXY_{n}_BACKEND_HEALTHCHECK_PORT_INDEX, or
	// -1 when not set.
	HealthCheckPortIndex int
	// Servers are the tasks receiving traffic, sorted by Host, then Port.
	Servers []Server
	// Templates are per-app template overrides from HAPROXY_{n}_<TEMPLATE>
	// labels, keyed by the global template name ("HAPROXY_BACKEND_HEAD").
	// Values are used verbatim.
	Templates map[string]string
}

// Auth is a parsed HAPROXY_{n}_AUTH label ("realm:user:encrypted password").
type Auth struct {
	Realm    string
	User     string
	Password string
}

// HealthCheck is the part of a Marathon health check the templates use.
type HealthCheck struct {
	// Protocol is HTTP, HTTPS or TCP (MESOS_* forms are folded into these).
	Protocol               string
	Path                   string
	PortIndex              int
	Port                   int
	TimeoutSeconds         int
	IntervalSeconds        int
	GracePeriodSeconds     int
	MaxConsecutiveFailures int
	IgnoreHTTP1xx          bool
}

// IsHTTP reports whether the check speaks HTTP (HTTP or HTTPS).
func (h *HealthCheck) IsHTTP() bool {
	return h != nil && (h.Protocol == "HTTP" || h.Protocol == "HTTPS")
}

// Falls is the number of failed checks before HAProxy marks a server down:
// MaxConsecutiveFailures + 1, as marathon-lb computes it.
func (h *HealthCheck) Falls() int { return h.MaxConsecutiveFailures + 1 }

// Server is one task behind a backend.
type Server struct {
	// Name is the HAProxy server name: "<ip>_<port>" with every character
	// other than letters, digits and '-' replaced by '_', or
	// "<host>_<ip>_<port>" when the task has its own IP or its host name
	// was resolved.
	Name string
	// ID is the server id (1..32766) marathon-lb would give it: derived
	// from Name, rehashed on a clash with a server sorted before it.
	ID int
	// TaskID is the Marathon task id.
	TaskID string
	// Host is the agent host name or address the task runs on.
	Host string
	// IP is the address HAProxy connects to: the task's own IP for
	// IP-per-task apps, else Host as Options.ResolveHost maps it (Host
	// itself without a resolver).
	IP string
	// Port is the port HAProxy connects to.
	Port int
	// HealthCheckPort is the port the server's health check uses when it
	// differs from Port (0 = same port).
	HealthCheckPort int
	// Draining marks an old task during a HAPROXY_DEPLOYMENT_GROUP switch;
	// it is rendered disabled.
	Draining bool
}

// Skipped is an app or app port that Build left out, with the reason.
type Skipped struct {
	// AppID is the Marathon app id.
	AppID string
	// PortIndex is the port index, or -1 when the whole app was left out.
	PortIndex int
	// Reason says why, in words an operator understands.
	Reason string
	// Filtered is true when the app was left out by policy (another group,
	// not enabled in strict mode, no task receiving traffic) rather than
	// because of bad input.
	Filtered bool
}
