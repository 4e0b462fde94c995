package main

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/switchyard/switchyard/cmd/internal/cliutil"
)

// Defaults, as in marathon-lb.
const (
	defaultMarathon      = "http://master.mesos:8080"
	defaultGroup         = "external"
	defaultHAProxyConfig = "/etc/haproxy/haproxy.cfg"
	defaultSSLCerts      = "/etc/ssl/cert.pem"
	defaultSyslogSocket  = "/dev/log"
	defaultStatsPort     = 9090
)

// selfSignedEnv is the environment variable that turns on
// --self-signed-cert; the lb image sets it.
const selfSignedEnv = "SWITCHYARD_SELF_SIGNED_CERT"

// settings are the parsed command line: what the operator asked for,
// before any file is read or connection made.
type settings struct {
	poll         bool
	pollInterval time.Duration

	marathon          []string
	groups            []string
	haproxyConfig     string
	haproxyBinary     string
	command           string
	maxReloadRetries  int
	reloadInterval    time.Duration
	strictMode        bool
	healthCheck       bool
	haproxyMap        bool
	dontBindHTTPHTTPS bool
	groupHTTPSByVhost bool
	sslCerts          []string
	sslCertsSet       bool
	skipValidation    bool
	dry               bool
	minServPort       int
	maxServPort       int
	credentialFile    string
	authCredentials   string
	caCert            string
	syslogSocket      string
	syslogSocketSet   bool
	logFormat         string
	logLevel          string
	templatesDir      string
	// sandboxTemplates is $MESOS_SANDBOX/templates when lb runs as a
	// Marathon task without --templates-dir: used if it is a directory.
	sandboxTemplates string
	statsPort        int
	selfSignedCert   bool
	// envCerts are certificates given in the environment
	// (HAPROXY_SSL_CERT, HAPROXY_SSL_CERT0..100), to be written to
	// their files before HAProxy starts; their paths are in sslCerts.
	envCerts            []envCert
	hostCacheSize       int
	maxBackoff          time.Duration
	ignoredFlagsPresent []string
	// adminAllow limits the admin paths of the stats port (--admin-allow).
	adminAllow []netip.Prefix
}

// ignoredFlags are marathon-lb flags accepted so existing unit files keep
// working, but which have no effect here (logged at debug).
var ignoredFlags = []string{"sse", "archive-versions", "skip-config-cleanup", "dcos-auth-credentials"}

// lbFlags returns marathon-lb's flags (plus ours: --templates-dir,
// --poll-interval, --haproxy-binary). A new slice each call: urfave/cli
// flags hold parse state.
func lbFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "longhelp", Usage: "print every template and label, then exit"},
		&cli.StringSliceFlag{Name: "marathon", Aliases: []string{"m"}, Value: cli.NewStringSlice(defaultMarathon),
			Usage: "Marathon endpoint(s), tried in order; repeat the flag or separate with commas or spaces"},
		&cli.StringFlag{Name: "haproxy-config", Value: defaultHAProxyConfig, Usage: "where to write the HAProxy configuration"},
		&cli.StringSliceFlag{Name: "group", Value: cli.NewStringSlice(defaultGroup),
			Usage: "only expose apps of these HAPROXY_GROUPs ('*' for all); repeatable"},
		&cli.StringFlag{Name: "command", Aliases: []string{"c"}, Usage: "run this command (sh -c) to reload HAProxy instead of running HAProxy ourselves"},
		&cli.IntFlag{Name: "max-reload-retries", Value: 10, Usage: "retries of a failed reload (-1: forever, 0: none)"},
		&cli.IntFlag{Name: "reload-interval", Value: 10, Usage: "seconds to wait between reload retries"},
		&cli.BoolFlag{Name: "strict-mode", Usage: "expose an app port only with HAPROXY_{n}_ENABLED=true"},
		&cli.BoolFlag{Name: "sse", Aliases: []string{"s"}, Usage: "use the event stream (the sse subcommand does this; accepted for compatibility)"},
		&cli.IntFlag{Name: "archive-versions", Value: 5, Usage: "accepted for compatibility; no effect"},
		&cli.BoolFlag{Name: "health-check", Aliases: []string{"H"}, Usage: "route only to tasks whose Marathon health checks are all alive"},
		&cli.IntFlag{Name: "lru-cache-capacity", Value: 1000, Usage: "how many agent host names to keep resolved to IP addresses"},
		&cli.BoolFlag{Name: "haproxy-map", Usage: "route vhosts and app ids through map files instead of one ACL each"},
		&cli.BoolFlag{Name: "dont-bind-http-https", Usage: "do not bind the shared :80 and :443 frontends"},
		&cli.BoolFlag{Name: "group-https-by-vhost", Usage: "route :443 by SNI to one frontend per vhost"},
		&cli.StringFlag{Name: "ssl-certs", Value: defaultSSLCerts, Usage: "comma-separated PEM files served on :443 (missing files are left out with a warning); the environment variables HAPROXY_SSL_CERT and HAPROXY_SSL_CERT0..100 add certificates written to /etc/ssl/cert.pem, cert0.pem... (as marathon-lb's image)"},
		&cli.BoolFlag{Name: "self-signed-cert",
			Usage: "without --ssl-certs, create " + defaultSSLCerts + " as a self-signed certificate when it does not exist, so :443 is served; also set by the environment variable " + selfSignedEnv + "=true, as in the lb image (marathon-lb's image does this)"},
		&cli.IntFlag{Name: "stats-port", Value: defaultStatsPort,
			Usage: "port of HAProxy's stats page and of /_haproxy_health_check, /_switchyard/...; without the flag, the first port of the environment variable PORTS (as marathon-lb's image), else 9090"},
		&cli.BoolFlag{Name: "skip-validation", Usage: "do not validate the configuration with haproxy -c"},
		&cli.BoolFlag{Name: "skip-config-cleanup", Usage: "accepted for compatibility; no effect"},
		&cli.BoolFlag{Name: "dry", Aliases: []string{"d"}, Usage: "only render and log the configuration; never touch HAProxy"},
		&cli.IntFlag{Name: "min-serv-port-ip-per-task", Value: 10050, Usage: "lowest servicePort given to IP-per-task apps without one"},
		&cli.IntFlag{Name: "max-serv-port-ip-per-task", Value: 10100, Usage: "highest servicePort given to IP-per-task apps without one"},
		&cli.IntFlag{Name: "max-backoff", Value: 30, Usage: "longest wait in seconds between event stream reconnects (marathon-lb's default is 300)"},
		&cli.StringFlag{Name: "syslog-socket", Value: defaultSyslogSocket, Usage: "syslog socket to log to when it exists ('/dev/null': never); otherwise logs go to stderr"},
		&cli.StringFlag{Name: "log-format", Value: "text", Usage: "log format: text or json (marathon-lb's Python format strings mean text)"},
		&cli.StringFlag{Name: "log-level", Value: "INFO", Usage: cliutil.LevelUsage},
		&cli.StringFlag{Name: "marathon-auth-credential-file", Usage: "file holding user:password for Marathon's API"},
		&cli.StringFlag{Name: "auth-credentials", Usage: "user:password for Marathon's API"},
		&cli.StringFlag{Name: "dcos-auth-credentials", Usage: "accepted for compatibility; no effect"},
		&cli.StringFlag{Name: "marathon-ca-cert", Usage: "PEM CA bundle to trust for https Marathon URLs"},
		&cli.StringFlag{Name: "templates-dir", Usage: "directory of template files overriding the defaults by name (watched); default $MESOS_SANDBOX/templates when it exists, as marathon-lb"},
		&cli.IntFlag{Name: "poll-interval", Value: 60, Usage: "seconds between two reads of Marathon in poll mode"},
		&cli.StringFlag{Name: "haproxy-binary", Value: "haproxy", Usage: "HAProxy executable (looked up in PATH)"},
		&cli.StringSliceFlag{Name: "admin-allow", Usage: "CIDR[,CIDR]: only these clients may use /_mlb_signal/* and /_haproxy_getconfig on the stats port (default: everyone, as marathon-lb)"},
	}
}

// parseSettings reads the flags of c; args are the positional arguments
// (extra Marathon URLs, as marathon-lb's "--marathon URL URL" allows).
func parseSettings(c *cli.Context, poll bool, getenv func(string) string) (*settings, error) {
	f := flagReader{c}
	s := &settings{
		poll:              poll,
		pollInterval:      time.Duration(f.Int("poll-interval")) * time.Second,
		marathon:          splitList(f.StringSlice("marathon")),
		groups:            splitList(f.StringSlice("group")),
		haproxyConfig:     f.String("haproxy-config"),
		haproxyBinary:     f.String("haproxy-binary"),
		command:           f.String("command"),
		maxReloadRetries:  f.Int("max-reload-retries"),
		reloadInterval:    time.Duration(f.Int("reload-interval")) * time.Second,
		strictMode:        f.Bool("strict-mode"),
		healthCheck:       f.Bool("health-check"),
		haproxyMap:        f.Bool("haproxy-map"),
		dontBindHTTPHTTPS: f.Bool("dont-bind-http-https"),
		groupHTTPSByVhost: f.Bool("group-https-by-vhost"),
		sslCerts:          splitList([]string{f.String("ssl-certs")}),
		sslCertsSet:       f.IsSet("ssl-certs"),
		skipValidation:    f.Bool("skip-validation"),
		dry:               f.Bool("dry"),
		minServPort:       f.Int("min-serv-port-ip-per-task"),
		maxServPort:       f.Int("max-serv-port-ip-per-task"),
		credentialFile:    f.String("marathon-auth-credential-file"),
		authCredentials:   f.String("auth-credentials"),
		caCert:            f.String("marathon-ca-cert"),
		syslogSocket:      f.String("syslog-socket"),
		syslogSocketSet:   f.IsSet("syslog-socket"),
		logFormat:         f.String("log-format"),
		logLevel:          f.String("log-level"),
		templatesDir:      f.String("templates-dir"),
		statsPort:         f.Int("stats-port"),
		selfSignedCert:    f.Bool("self-signed-cert"),
		hostCacheSize:     f.Int("lru-cache-capacity"),
		maxBackoff:        time.Duration(f.Int("max-backoff")) * time.Second,
	}
	for _, a := range c.Args().Slice() {
		if !isURL(a) {
			return nil, fmt.Errorf("unexpected argument %q (flags go before arguments; only extra --marathon URLs may follow)", a)
		}
		s.marathon = append(s.marathon, a)
	}
	if !f.IsSet("marathon") && c.Args().Len() > 0 {
		s.marathon = s.marathon[1:] // URLs given only as arguments replace the default
	}
	for _, name := range ignoredFlags {
		if f.IsSet(name) {
			s.ignoredFlagsPresent = append(s.ignoredFlagsPresent, name)
		}
	}
	if len(s.marathon) == 0 {
		return nil, errors.New("--marathon: at least one URL is required")
	}
	for _, m := range s.marathon {
		if err := checkMarathonURL(m); err != nil {
			return nil, err
		}
	}
	for _, v := range splitList(f.StringSlice("admin-allow")) {
		p, err := parseAllow(v)
		if err != nil {
			return nil, fmt.Errorf("--admin-allow: %w", err)
		}
		s.adminAllow = append(s.adminAllow, p)
	}
	if len(s.groups) == 0 {
		return nil, errors.New("--group: at least one group is required")
	}
	if s.pollInterval <= 0 {
		return nil, fmt.Errorf("--poll-interval %d: must be positive", f.Int("poll-interval"))
	}
	if s.reloadInterval < 0 {
		return nil, fmt.Errorf("--reload-interval %d: must not be negative", f.Int("reload-interval"))
	}
	if s.minServPort <= 0 || s.maxServPort < s.minServPort || s.maxServPort > 65535 {
		return nil, fmt.Errorf("--min-serv-port-ip-per-task %d / --max-serv-port-ip-per-task %d: want 0 < min <= max <= 65535", s.minServPort, s.maxServPort)
	}
	if _, err := cliutil.ParseLevel(s.logLevel); err != nil {
		return nil, err
	}
	if sb := getenv("MESOS_SANDBOX"); sb != "" && s.templatesDir == "" {
		s.sandboxTemplates = filepath.Join(sb, "templates")
	}
	if v := getenv(selfSignedEnv); v != "" && !s.selfSignedCert {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("environment %s=%q: want true or false", selfSignedEnv, v)
		}
		s.selfSignedCert = b
	}
	s.envCerts = certsFromEnv(getenv, filepath.Dir(defaultSSLCerts))
	for _, c := range s.envCerts {
		if !slices.Contains(s.sslCerts, c.path) {
			s.sslCerts = append(s.sslCerts, c.path)
		}
	}
	if f.IsSet("stats-port") {
		if s.statsPort <= 0 || s.statsPort > 65535 {
			return nil, fmt.Errorf("--stats-port %d: want a port number", s.statsPort)
		}
	} else if ports := getenv("PORTS"); ports != "" {
		first, _, _ := strings.Cut(ports, ",")
		p, err := strconv.Atoi(strings.TrimSpace(first))
		if err != nil || p <= 0 || p > 65535 {
			return nil, fmt.Errorf("environment PORTS=%q: want a port number (the first one is the stats port)", ports)
		}
		s.statsPort = p
	}
	return s, nil
}

// envCert is a PEM certificate (and key) given in an environment
// variable, and the file it is written to.
type envCert struct {
	variable, path, pem string
}

// certsFromEnv reads the certificate variables of marathon-lb's image:
// HAPROXY_SSL_CERT becomes dir/cert.pem and HAPROXY_SSL_CERT<n> (n from
// 0 to 100) dir/cert<n>.pem. As the image's "echo -e" does, a literal
// "\n" in a value is a line break, so a PEM fits on one line.
func certsFromEnv(getenv func(string) string, dir string) []envCert {
	var out []envCert
	add := func(variable, file string) {
		if v := getenv(variable); v != "" {
			out = append(out, envCert{variable: variable, path: filepath.Join(dir, file), pem: strings.ReplaceAll(v, `\n`, "\n")})
		}
	}
	add("HAPROXY_SSL_CERT", "cert.pem")
	if len(out) == 0 {
		return nil // the image reads the numbered ones only with the first
	}
	for i := 0; i <= 100; i++ {
		add(fmt.Sprintf("HAPROXY_SSL_CERT%d", i), fmt.Sprintf("cert%d.pem", i))
	}
	return out
}

// flagReader reads a flag from the innermost command where it was set:
// every flag is defined on the root and on the subcommands, and urfave/cli
// would otherwise return the subcommand's default for "lb --group g sse".
type flagReader struct{ c *cli.Context }

func (f flagReader) ctx(name string) *cli.Context {
	for _, x := range f.c.Lineage() {
		if x != nil && x.Command != nil && x.IsSet(name) {
			return x
		}
	}
	return f.c
}

func (f flagReader) IsSet(name string) bool           { return f.ctx(name).IsSet(name) }
func (f flagReader) String(name string) string        { return f.ctx(name).String(name) }
func (f flagReader) Int(name string) int              { return f.ctx(name).Int(name) }
func (f flagReader) Bool(name string) bool            { return f.ctx(name).Bool(name) }
func (f flagReader) StringSlice(name string) []string { return f.ctx(name).StringSlice(name) }

// splitList flattens values that may each hold several items separated by
// commas or white space, dropping empty items.
func splitList(values []string) []string {
	var out []string
	for _, v := range values {
		out = append(out, strings.FieldsFunc(v, func(r rune) bool {
			return r == ',' || r == ' ' || r == '\t' || r == '\n'
		})...)
	}
	return out
}

// checkMarathonURL rejects a --marathon URL that lb cannot use: not
// http(s)://host[:port][/prefix], or ending in /v2, which lb adds itself
// (marathon-lb would request /v2/v2/apps and retry its 404 forever).
func checkMarathonURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("--marathon: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--marathon %q: want http(s)://host[:port], e.g. http://master.mesos:8080", u.Redacted())
	}
	if p := strings.TrimRight(u.Path, "/"); p == "/v2" || strings.HasSuffix(p, "/v2") {
		given := u.Redacted()
		u.Path = strings.TrimSuffix(p, "/v2")
		return fmt.Errorf("--marathon %q ends in /v2: give Marathon's base URL, %s (lb adds /v2/apps and /v2/events itself)", given, u.Redacted())
	}
	return nil
}

func isURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

// normalizeArgs turns marathon-lb's "--marathon URL1 URL2 ..." (argparse
// nargs="+") into repeated flags, because urfave/cli stops parsing flags
// at the first positional argument.
func normalizeArgs(args []string) []string {
	const (
		none      = iota
		wantValue // just saw --marathon
		afterURL  // saw --marathon URL: more URLs may follow
	)
	out := make([]string, 0, len(args))
	state := none
	for _, a := range args {
		switch {
		case state == wantValue:
			out = append(out, a)
			state = afterURL
			continue
		case state == afterURL && isURL(a):
			out = append(out, "--marathon", a)
			continue
		}
		state = none
		switch {
		case a == "--marathon" || a == "-m":
			state = wantValue
		case strings.HasPrefix(a, "--marathon=") || strings.HasPrefix(a, "-m="):
			state = afterURL
		}
		out = append(out, a)
	}
	return out
}

// parseAllow parses a CIDR of --admin-allow; a bare address means that
// address alone.
func parseAllow(v string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(v); err == nil {
		return p, nil
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is neither a CIDR nor an address", v)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}
