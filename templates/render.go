package templates

import (
	"cmp"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/switchyard/switchyard/lb"
)

// Map file names, relative to lb.Options.MapDir.
const (
	DomainMapFile = "domain2backend.map"
	AppMapFile    = "app2backend.map"
)

// AdminBackend is the backend that the stats listener of the default
// HAPROXY_HEAD uses for lb's own admin endpoints; Render always defines it,
// with one server at Options.AdminAddr when that is set.
const AdminBackend = "switchyard_admin"

// Output is a rendered configuration.
type Output struct {
	// Config is the full haproxy.cfg.
	Config []byte
	// Maps holds the map files by name (DomainMapFile, AppMapFile); empty
	// unless Options.HAProxyMap. Both files are present (maybe empty) when
	// maps are on, since the config may refer to them.
	Maps map[string][]byte
	// Skipped lists services left out because a per-app template override
	// (HAPROXY_{n}_<TEMPLATE> label) is unusable: malformed braces or a
	// placeholder the template does not offer.
	Skipped []lb.Skipped
}

// entry is a block of routing lines of one service for a shared frontend.
type entry struct {
	weight      int
	appID       string
	servicePort int
	text        string
}

func newEntry(svc *lb.Service, text string) entry {
	return entry{svc.BackendWeight, svc.AppID, svc.ServicePort, text}
}

// vhostBlock is the HTTPS routing of one service for one vhost.
type vhostBlock struct {
	host string
	text string
}

// svcOut is the rendered text of one service, committed only when every
// template of the service rendered.
type svcOut struct {
	svc          *lb.Service
	userlist     string
	frontend     string
	backend      string
	http         string
	httpsPrefix  string
	https        []vhostBlock
	appID        string
	httpMapLine  string
	httpsMapLine string
	appMapLine   string
	domainMap    [][2]string
	appMap       [][2]string
}

type renderer struct {
	set      *Set
	opts     lb.Options
	bindHTTP bool
	https    bool
	grouped  bool
	mapDir   string
	used     map[string]bool // templates used, recorded only when not nil (tests)
}

// parallelRenderMin is the number of services per CPU below which
// rendering stays on one goroutine.
const parallelRenderMin = 256

// Render renders cfg as haproxy.cfg (and map files with --haproxy-map).
// Output is deterministic. A service whose per-app override is unusable is
// left out and reported in Output.Skipped; Render returns an error only
// when a global template cannot be used. It never panics.
func (s *Set) Render(cfg *lb.Config) (*Output, error) {
	return s.render(cfg, nil)
}

// render is Render, recording the templates used into used when not nil.
func (s *Set) render(cfg *lb.Config, used map[string]bool) (*Output, error) {
	if cfg == nil {
		return nil, fmt.Errorf("render: nil config")
	}
	opts := cfg.Options
	if err := checkOptions(opts); err != nil {
		return nil, err
	}
	statsPort := opts.StatsPort
	if statsPort == 0 {
		statsPort = lb.DefaultStatsPort
	}
	r := &renderer{
		set:      s,
		opts:     opts,
		bindHTTP: !opts.DontBindHTTPHTTPS,
		mapDir:   opts.MapDir,
		used:     used,
	}
	r.https = r.bindHTTP && len(opts.SSLCerts) > 0
	r.grouped = r.https && opts.GroupHTTPSByVhost
	if r.mapDir == "" {
		r.mapDir = "."
	}
	r.mapDir = filepath.Clean(r.mapDir)

	// Services by app id, then port index: the order in which names are
	// handed out and the first http port of each app found.
	order := make([]int, len(cfg.Services))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		x, y := &cfg.Services[a], &cfg.Services[b]
		if c := cmp.Compare(x.AppID, y.AppID); c != 0 {
			return c
		}
		return cmp.Compare(x.PortIndex, y.PortIndex)
	})
	errs := r.nameClashes(cfg.Services, order)

	// The X-Marathon-App-Id frontend serves the first http port of each app.
	firstHTTP := make(map[string]string) // app id -> backend
	for _, i := range order {
		svc := &cfg.Services[i]
		if _, ok := firstHTTP[svc.AppID]; !ok && svc.Mode == lb.ModeHTTP && errs[i] == nil {
			firstHTTP[svc.AppID] = svc.Backend
		}
	}

	// Services render independently (the renderer only reads the set and
	// the options), so large configurations are split over the CPUs; the
	// results are then taken in order, so the output stays deterministic.
	rendered := make([]*svcOut, len(cfg.Services))
	renderRange := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			if errs[i] != nil {
				continue
			}
			svc := &cfg.Services[i]
			rendered[i], errs[i] = r.service(svc, firstHTTP[svc.AppID] == svc.Backend)
		}
	}
	workers := min(runtime.GOMAXPROCS(0), len(cfg.Services)/parallelRenderMin)
	if used != nil || workers < 2 { // used is written while rendering
		renderRange(0, len(cfg.Services))
	} else {
		var wg sync.WaitGroup
		chunk := (len(cfg.Services) + workers - 1) / workers
		for lo := 0; lo < len(cfg.Services); lo += chunk {
			hi := min(lo+chunk, len(cfg.Services))
			wg.Go(func() { renderRange(lo, hi) })
		}
		wg.Wait()
	}
	out := &Output{}
	outs := make([]*svcOut, 0, len(cfg.Services))
	for i, o := range rendered {
		if err := errs[i]; err != nil {
			svc := &cfg.Services[i]
			out.Skipped = append(out.Skipped, lb.Skipped{AppID: svc.AppID, PortIndex: svc.PortIndex, Reason: err.Error()})
			continue
		}
		outs = append(outs, o)
	}
	if err := r.assemble(out, outs, strconv.Itoa(statsPort)); err != nil {
		return nil, err
	}
	return out, nil
}

// fixedProxies are the proxy names of the default layout that are not
// derived from apps.
var fixedProxies = []string{"marathon_http_in", "marathon_http_appid_in", "marathon_https_in", "stats", AdminBackend}

// nameClashes returns, per service, why it must be left out because a name
// the config would give it is taken (nil when none is): its frontend and
// backend name, the name of its host and auth ACLs, or with
// --group-https-by-vhost the frontend and backend named after each of its
// vhosts. HAProxy refuses two proxies of one name, and ORs the definitions
// of an ACL name, so a clash would cost every app its config or let one
// app's rules act for another's. The X-Marathon-App-Id ACL of an http port
// is checked as well. Services are visited in order (by app id,
// then port index): the first keeps the name.
func (r *renderer) nameClashes(services []lb.Service, order []int) []error {
	errs := make([]error, len(services))
	// Owners are service indexes; -1 is the shared layout.
	who := func(i int) string {
		if i < 0 {
			return "the shared frontends"
		}
		return fmt.Sprintf("app %s port %d", services[i].AppID, services[i].PortIndex)
	}
	proxies := make(map[string]int, len(services)+len(fixedProxies))
	for _, n := range fixedProxies {
		proxies[n] = -1
	}
	for _, i := range order {
		b := services[i].Backend
		if !validProxyName(b) {
			// e.g. a HAPROXY_DEPLOYMENT_GROUP with a space: the app id
			// it gives becomes the name.
			errs[i] = fmt.Errorf("frontend and backend name %q is not a valid HAProxy name (letters, digits, '-', '_', '.', ':')", b)
			continue
		}
		if owner, ok := proxies[b]; ok {
			errs[i] = fmt.Errorf("frontend and backend name %s is already used by %s", b, who(owner))
			continue
		}
		proxies[b] = i
	}
	acls := make(map[string]int)
	vhostProxies := make(map[string]string) // grouped vhost proxy name -> vhost
	for _, i := range order {
		svc := &services[i]
		if errs[i] != nil || svc.Mode != lb.ModeHTTP || len(svc.VHosts) == 0 || !r.bindHTTP {
			continue
		}
		acl := aclName(svc)
		if owner, ok := acls[acl]; ok {
			errs[i] = fmt.Errorf("ACL name %s is already used by %s", acl, who(owner))
			continue
		}
		if r.grouped {
			for _, h := range svc.VHosts {
				n := lb.CleanName(h)
				if owner, ok := proxies[n]; ok {
					errs[i] = fmt.Errorf("vhost %s would name a frontend and a backend %s, already used by %s", h, n, who(owner))
					break
				}
				if v, ok := vhostProxies[n]; ok && v != h {
					errs[i] = fmt.Errorf("vhost %s would name a frontend and a backend %s, already used by vhost %s", h, n, v)
					break
				}
			}
			if errs[i] != nil {
				continue
			}
			for _, h := range svc.VHosts {
				vhostProxies[lb.CleanName(h)] = h
			}
		}
		acls[acl] = i
	}
	if !r.opts.HAProxyMap {
		// The X-Marathon-App-Id ACL is named after the app id.
		appIDs := make(map[string]string) // cleaned app id -> app id
		for _, i := range order {
			svc := &services[i]
			if errs[i] != nil || svc.Mode != lb.ModeHTTP {
				continue
			}
			n := cleanAppID(svc.AppID)
			if id, ok := appIDs[n]; ok && id != svc.AppID {
				errs[i] = fmt.Errorf("ACL name app_%s is already used by app %s", n, id)
				continue
			}
			appIDs[n] = svc.AppID
		}
	}
	return errs
}

// validProxyName reports whether HAProxy accepts s as a proxy (and ACL)
// name.
func validProxyName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '-' && c != '_' && c != '.' && c != ':' {
			return false
		}
	}
	return true
}

// checkOptions rejects operator options that would break a config line.
func checkOptions(o lb.Options) error {
	bad := func(what, v string) error {
		if v == "" || strings.IndexFunc(v, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '#' }) >= 0 {
			return fmt.Errorf("render: %s %q must be one word without spaces, control characters or '#'", what, v)
		}
		return nil
	}
	for _, c := range o.SSLCerts {
		if err := bad("ssl certificate", c); err != nil {
			return err
		}
	}
	if o.AdminAddr != "" {
		if err := bad("admin address", o.AdminAddr); err != nil {
			return err
		}
	}
	if o.MapDir != "" {
		if err := bad("map directory", o.MapDir); err != nil {
			return err
		}
	}
	if o.StatsPort < 0 || o.StatsPort > 65535 {
		return fmt.Errorf("render: stats port %d out of range", o.StatsPort)
	}
	return nil
}

// tmpl returns the template name for svc: its per-app override when the
// template is overridable, else the set's. For verbatim templates c is nil
// and text is the template.
func (r *renderer) tmpl(svc *lb.Service, name string) (c *compiled, text string, err error) {
	e, ok := lookup(name)
	if !ok {
		return nil, "", fmt.Errorf("unknown template %s", name)
	}
	if r.used != nil {
		r.used[name] = true
	}
	if svc != nil && e.overridable {
		if t, ok := svc.Templates[name]; ok {
			label := "HAPROXY_" + strconv.Itoa(svc.PortIndex) + "_" + strings.TrimPrefix(name, "HAPROXY_")
			t, err := normalize(e, t)
			if err != nil {
				return nil, "", fmt.Errorf("label %s: %w", label, err)
			}
			if e.kind != formatted {
				return nil, t, nil
			}
			c, err := compile(t, e.placeholders)
			if err != nil {
				return nil, "", fmt.Errorf("label %s: %w", label, err)
			}
			return c, "", nil
		}
	}
	if e.kind != formatted {
		return nil, r.set.texts[name], nil
	}
	c = r.set.compiled[name]
	if c == nil {
		return nil, "", fmt.Errorf("template %s is not loaded", name)
	}
	return c, "", nil
}

// emit appends template name, filled in with p, to sb.
func (r *renderer) emit(sb *strings.Builder, svc *lb.Service, name string, p params) error {
	c, text, err := r.tmpl(svc, name)
	if err != nil {
		return err
	}
	if c == nil {
		sb.WriteString(text)
		return nil
	}
	if err := c.execute(sb, p); err != nil {
		return fmt.Errorf("template %s: %w", name, err)
	}
	return nil
}

// emitString is emit into a new string.
func (r *renderer) emitString(svc *lb.Service, name string, p params) (string, error) {
	var sb strings.Builder
	err := r.emit(&sb, svc, name, p)
	return sb.String(), err
}

func itoa(n int) string { return strconv.Itoa(n) }

// checkParams fills in the health check placeholders.
func checkParams(hc *lb.HealthCheck, port int) params {
	portStr, portOpts, sslOpts := "", "", ""
	if port > 0 {
		portStr = itoa(port)
		portOpts = " port " + portStr
	}
	if hc.Protocol == "HTTPS" {
		sslOpts = " check-ssl verify none"
	}
	return params{
		"healthCheckFalls", itoa(hc.Falls()),
		"healthCheckGracePeriodSeconds", itoa(hc.GracePeriodSeconds),
		"healthCheckIgnoreHttp1xx", strconv.FormatBool(hc.IgnoreHTTP1xx),
		"healthCheckIntervalSeconds", itoa(hc.IntervalSeconds),
		"healthCheckMaxConsecutiveFailures", itoa(hc.MaxConsecutiveFailures),
		"healthCheckPath", hc.Path,
		"healthCheckPort", portStr,
		"healthCheckPortIndex", itoa(hc.PortIndex),
		"healthCheckPortOptions", portOpts,
		"healthCheckProtocol", hc.Protocol,
		"healthCheckSslOptions", sslOpts,
		"healthCheckTimeoutSeconds", itoa(hc.TimeoutSeconds),
	}
}

func (r *renderer) service(svc *lb.Service, appIDRoute bool) (*svcOut, error) {
	o := &svcOut{svc: svc}
	b := svc.Backend
	httpMode := svc.Mode == lb.ModeHTTP
	firstHost := ""
	if len(svc.VHosts) > 0 {
		firstHost = svc.VHosts[0]
	}
	if httpMode && firstHost == "" {
		// The glue templates are about the vhost: PROXYPASS sets the Host
		// header to it, REVPROXY rewrites Location headers naming it.
		// Without one, marathon-lb writes "Host None"; HAProxy refuses an
		// empty Host value, which would cost every app its config.
		for _, l := range []struct{ value, name, why string }{
			{svc.ProxyPath, "HTTP_BACKEND_PROXYPASS_PATH", "it sets the Host header to the vhost"},
			{svc.RevProxyPath, "HTTP_BACKEND_REVPROXY_PATH", "it rewrites Location headers that name the vhost"},
		} {
			if l.value != "" {
				return nil, fmt.Errorf("label HAPROXY_%d_%s needs HAPROXY_%d_VHOST: %s", svc.PortIndex, l.name, svc.PortIndex, l.why)
			}
		}
	}

	if svc.Auth != nil {
		var err error
		o.userlist, err = r.emitString(svc, "HAPROXY_USERLIST_HEAD", params{
			"backend", b, "user", svc.Auth.User, "passwd", svc.Auth.Password, "realm", svc.Auth.Realm})
		if err != nil {
			return nil, err
		}
	}

	// Per-port frontend.
	var fe strings.Builder
	sslCert, bindOptions := "", ""
	if svc.SSLCert != "" {
		sslCert = " ssl crt " + svc.SSLCert
	}
	if svc.BindOptions != "" {
		bindOptions = " " + svc.BindOptions
	}
	if err := r.emit(&fe, svc, "HAPROXY_FRONTEND_HEAD", params{
		"backend", b, "bindAddr", svc.BindAddr, "bindOptions", bindOptions, "mode", svc.Mode,
		"servicePort", itoa(svc.ServicePort), "sslCert", sslCert}); err != nil {
		return nil, err
	}
	if err := r.emit(&fe, svc, "HAPROXY_FRONTEND_BACKEND_GLUE", params{"backend", b}); err != nil {
		return nil, err
	}
	o.frontend = fe.String()

	// Backend.
	var be strings.Builder
	be.Grow(256 + 96*len(svc.Servers))
	if err := r.emit(&be, svc, "HAPROXY_BACKEND_HEAD", params{"backend", b, "balance", svc.Balance, "mode", svc.Mode}); err != nil {
		return nil, err
	}
	if httpMode {
		if svc.UseHSTS {
			if err := r.emit(&be, svc, "HAPROXY_BACKEND_HSTS_OPTIONS", nil); err != nil {
				return nil, err
			}
		}
		if err := r.emit(&be, svc, "HAPROXY_BACKEND_HTTP_OPTIONS", nil); err != nil {
			return nil, err
		}
		if svc.ProxyPath != "" {
			if err := r.emit(&be, svc, "HAPROXY_HTTP_BACKEND_PROXYPASS_GLUE", params{"hostname", firstHost, "proxypath", svc.ProxyPath}); err != nil {
				return nil, err
			}
		}
		if svc.RevProxyPath != "" {
			if err := r.emit(&be, svc, "HAPROXY_HTTP_BACKEND_REVPROXY_GLUE", params{"hostname", firstHost, "rootpath", strings.TrimSuffix(svc.RevProxyPath, "/")}); err != nil {
				return nil, err
			}
		}
		if svc.RedirPath != "" && firstHost != "" {
			if err := r.emit(&be, svc, "HAPROXY_HTTP_BACKEND_REDIR", params{"hostname", firstHost, "redirpath", svc.RedirPath}); err != nil {
				return nil, err
			}
		}
	}
	if len(svc.NetworkAllowed) > 0 {
		aclT, allowT := "HAPROXY_TCP_BACKEND_NETWORK_ALLOWED_ACL", "HAPROXY_TCP_BACKEND_ACL_ALLOW_DENY"
		if httpMode {
			aclT, allowT = "HAPROXY_HTTP_BACKEND_NETWORK_ALLOWED_ACL", "HAPROXY_HTTP_BACKEND_ACL_ALLOW_DENY"
		}
		for _, n := range svc.NetworkAllowed {
			if err := r.emit(&be, svc, aclT, params{"network_allowed", n}); err != nil {
				return nil, err
			}
		}
		if err := r.emit(&be, svc, allowT, nil); err != nil {
			return nil, err
		}
	}
	if svc.Sticky {
		if err := r.emit(&be, svc, "HAPROXY_BACKEND_STICKY_OPTIONS", nil); err != nil {
			return nil, err
		}
	}
	hc := svc.HealthCheck
	tcpCheck := hc != nil && (!httpMode || hc.Protocol == "TCP")
	if hc != nil {
		port := 0
		if len(svc.Servers) > 0 {
			port = svc.Servers[0].HealthCheckPort
		}
		name := "HAPROXY_BACKEND_HTTP_HEALTHCHECK_OPTIONS"
		if tcpCheck {
			name = "HAPROXY_BACKEND_TCP_HEALTHCHECK_OPTIONS"
		}
		if err := r.emit(&be, svc, name, checkParams(hc, port)); err != nil {
			return nil, err
		}
	}
	serverT, _, err := r.tmpl(svc, "HAPROXY_BACKEND_SERVER_OPTIONS")
	if err != nil {
		return nil, err
	}
	checkName := "HAPROXY_BACKEND_SERVER_HTTP_HEALTHCHECK_OPTIONS"
	if tcpCheck {
		checkName = "HAPROXY_BACKEND_SERVER_TCP_HEALTHCHECK_OPTIONS"
	}
	var checkT *compiled
	if hc != nil {
		if checkT, _, err = r.tmpl(svc, checkName); err != nil {
			return nil, err
		}
	}
	var opt strings.Builder
	lastCheckPort, lastCheck := -1, ""
	for i := range svc.Servers {
		srv := &svc.Servers[i]
		checkOpts := ""
		if checkT != nil {
			if srv.HealthCheckPort != lastCheckPort {
				opt.Reset()
				if err := checkT.execute(&opt, checkParams(hc, srv.HealthCheckPort)); err != nil {
					return nil, fmt.Errorf("template %s: %w", checkName, err)
				}
				lastCheckPort, lastCheck = srv.HealthCheckPort, opt.String()
			}
			checkOpts = lastCheck
		}
		cookie, other := "", ""
		if svc.Sticky {
			sum := sha1.Sum([]byte(srv.Name))
			// As in marathon-lb: the cookie options also turn the
			// server's health check on.
			cookie = " check cookie " + hex.EncodeToString(sum[:5])
		}
		if srv.Draining {
			other = " disabled"
		}
		if err := serverT.execute(&be, params{
			"serverName", srv.Name, "host_ipv4", srv.IP, "host", srv.Host, "port", itoa(srv.Port),
			"serverId", itoa(srv.ID), "cookieOptions", cookie, "healthCheckOptions", checkOpts,
			"otherOptions", other}); err != nil {
			return nil, fmt.Errorf("template HAPROXY_BACKEND_SERVER_OPTIONS: %w", err)
		}
	}
	o.backend = be.String()

	if httpMode && r.bindHTTP && len(svc.VHosts) > 0 {
		if err := r.vhostHTTP(svc, o); err != nil {
			return nil, err
		}
		if r.https {
			if err := r.vhostHTTPS(svc, o); err != nil {
				return nil, err
			}
		}
	}
	if httpMode && appIDRoute {
		if r.opts.HAProxyMap {
			o.appMap = append(o.appMap, [2]string{strings.ToLower(svc.AppID), b})
			if o.appMapLine, err = r.emitString(svc, "HAPROXY_MAP_HTTP_FRONTEND_APPID_ACL", params{"haproxy_dir", r.mapDir}); err != nil {
				return nil, err
			}
		} else {
			o.appID, err = r.emitString(svc, "HAPROXY_HTTP_FRONTEND_APPID_ACL", params{
				"appId", svc.AppID, "backend", b, "cleanedUpAppId", cleanAppID(svc.AppID), "hostname", firstHost})
			if err != nil {
				return nil, err
			}
		}
	}
	return o, nil
}

// vhostParams are the placeholders of the vhost routing templates.
func vhostParams(svc *lb.Service, acl, host string) params {
	realm := ""
	if svc.Auth != nil {
		realm = svc.Auth.Realm
	}
	return params{
		"appId", svc.AppID, "backend", svc.Backend, "bindAddr", svc.BindAddr,
		"cleanedUpHostname", acl, "hostname", host, "path", svc.Path, "realm", realm,
	}
}

// aclName names the host and auth ACLs of a service: the cleaned first
// vhost, "_", and the backend name. marathon-lb names them after the vhost
// and the app id, so that two apps sharing a vhost get their own ACLs
// (HAProxy ORs every definition of an ACL name: one shared auth ACL would
// let either app's users into both). The backend name adds the service
// port, which keeps two ports of one app apart as well; render skips a
// service whose name would still clash with another's.
func aclName(svc *lb.Service) string {
	return lb.CleanName(svc.VHosts[0]) + "_" + svc.Backend
}

// cleanAppID is the {cleanedUpAppId} of the X-Marathon-App-Id ACL: every
// character other than letters, digits, '-' and '.' replaced by '_'.
// marathon-lb replaces '.' too, which gives /a/b and /a.b one ACL; HAProxy
// ACL names may contain dots, and Marathon ids cannot contain '_'.
func cleanAppID(id string) string {
	b := []byte(id)
	for i, c := range b {
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '-' && c != '.' {
			b[i] = '_'
		}
	}
	return string(b)
}

func (o *svcOut) addDomain(host, backend string) {
	e := [2]string{strings.ToLower(host), backend}
	if !slices.Contains(o.domainMap, e) {
		o.domainMap = append(o.domainMap, e)
	}
}

// vhostHTTP renders the service's routing in marathon_http_in.
func (r *renderer) vhostHTTP(svc *lb.Service, o *svcOut) error {
	acl := aclName(svc)
	path, auth, redirect := svc.Path != "", svc.Auth != nil, svc.RedirectToHTTPS
	useMap := r.opts.HAProxyMap && !path && !auth && !redirect
	var sb strings.Builder
	var names []string // templates to emit, in order, for the first vhost
	emit := func(name, host string) error {
		return r.emit(&sb, svc, name, vhostParams(svc, acl, host))
	}
	if len(svc.VHosts) == 1 {
		h := svc.VHosts[0]
		switch {
		case useMap:
			o.addDomain(h, svc.Backend)
			line, err := r.emitString(svc, "HAPROXY_MAP_HTTP_FRONTEND_ACL", params{"haproxy_dir", r.mapDir})
			if err != nil {
				return err
			}
			o.httpMapLine = line
		case redirect && path:
			names = []string{"HAPROXY_HTTP_FRONTEND_ACL_ONLY", "HAPROXY_HTTP_FRONTEND_ACL_ONLY_WITH_PATH", "HAPROXY_BACKEND_REDIRECT_HTTP_TO_HTTPS_WITH_PATH"}
		case redirect:
			names = []string{"HAPROXY_HTTP_FRONTEND_ACL_ONLY", "HAPROXY_BACKEND_REDIRECT_HTTP_TO_HTTPS"}
		case path && auth:
			names = []string{"HAPROXY_HTTP_FRONTEND_ACL_WITH_AUTH_AND_PATH"}
		case path:
			names = []string{"HAPROXY_HTTP_FRONTEND_ACL_WITH_PATH"}
		case auth:
			names = []string{"HAPROXY_HTTP_FRONTEND_ACL_WITH_AUTH"}
		default:
			names = []string{"HAPROXY_HTTP_FRONTEND_ACL"}
		}
		for _, n := range names {
			if err := emit(n, h); err != nil {
				return err
			}
		}
		o.http = sb.String()
		return nil
	}
	// Several vhosts: the ACLs first, then one routing rule.
	first := svc.VHosts[0]
	if path {
		n := "HAPROXY_HTTP_FRONTEND_ACL_ONLY_WITH_PATH"
		if auth && !redirect {
			n = "HAPROXY_HTTP_FRONTEND_ACL_ONLY_WITH_PATH_AND_AUTH"
		}
		if err := emit(n, first); err != nil {
			return err
		}
	}
	for _, h := range svc.VHosts {
		if useMap {
			o.addDomain(h, svc.Backend)
			if o.httpMapLine == "" {
				line, err := r.emitString(svc, "HAPROXY_MAP_HTTP_FRONTEND_ACL_ONLY", params{"haproxy_dir", r.mapDir})
				if err != nil {
					return err
				}
				o.httpMapLine = line
			}
			continue
		}
		if err := emit("HAPROXY_HTTP_FRONTEND_ACL_ONLY", h); err != nil {
			return err
		}
	}
	route := ""
	switch {
	case redirect && path:
		route = "HAPROXY_BACKEND_REDIRECT_HTTP_TO_HTTPS_WITH_PATH"
	case redirect:
		route = "HAPROXY_BACKEND_REDIRECT_HTTP_TO_HTTPS"
	case path && auth:
		route = "HAPROXY_HTTP_FRONTEND_ROUTING_ONLY_WITH_PATH_AND_AUTH"
	case path:
		route = "HAPROXY_HTTP_FRONTEND_ROUTING_ONLY_WITH_PATH"
	case auth:
		route = "HAPROXY_HTTP_FRONTEND_ROUTING_ONLY_WITH_AUTH"
	case useMap:
	default:
		route = "HAPROXY_HTTP_FRONTEND_ROUTING_ONLY"
	}
	if route != "" {
		if err := emit(route, first); err != nil {
			return err
		}
	}
	o.http = sb.String()
	return nil
}

// vhostHTTPS renders the service's routing in marathon_https_in (or, with
// --group-https-by-vhost, in each vhost's TLS frontend), with the templates
// marathon-lb uses whatever the number of vhosts: the path ACL once, then
// per vhost HAPROXY_HTTPS_FRONTEND_ACL[_WITH_AUTH][_AND_PATH|_WITH_PATH].
// Like marathon-lb, it never uses HAPROXY_HTTPS_FRONTEND_AUTH_ACL_ONLY,
// HAPROXY_HTTPS_FRONTEND_AUTH_REQUEST_ONLY or
// HAPROXY_HTTPS_FRONTEND_ROUTING_ONLY_WITH_PATH_AND_AUTH (marathon-lb's text
// of the last one refers to an ACL of marathon_http_in).
func (r *renderer) vhostHTTPS(svc *lb.Service, o *svcOut) error {
	acl := aclName(svc)
	path, auth := svc.Path != "", svc.Auth != nil
	useMap := r.opts.HAProxyMap && !path && !auth && !r.grouped
	var pre strings.Builder
	if path {
		if err := r.emit(&pre, svc, "HAPROXY_HTTPS_FRONTEND_ACL_ONLY_WITH_PATH", vhostParams(svc, acl, svc.VHosts[0])); err != nil {
			return err
		}
	}
	o.httpsPrefix = pre.String()
	for _, h := range svc.VHosts {
		name := ""
		switch {
		case path && auth:
			name = "HAPROXY_HTTPS_FRONTEND_ACL_WITH_AUTH_AND_PATH"
		case path:
			name = "HAPROXY_HTTPS_FRONTEND_ACL_WITH_PATH"
		case auth:
			name = "HAPROXY_HTTPS_FRONTEND_ACL_WITH_AUTH"
		case useMap:
			o.addDomain(h, svc.Backend)
			if o.httpsMapLine == "" {
				line, err := r.emitString(svc, "HAPROXY_MAP_HTTPS_FRONTEND_ACL", params{"haproxy_dir", r.mapDir, "hostname", h})
				if err != nil {
					return err
				}
				o.httpsMapLine = line
			}
			continue
		default:
			name = "HAPROXY_HTTPS_FRONTEND_ACL"
		}
		text, err := r.emitString(svc, name, vhostParams(svc, acl, h))
		if err != nil {
			return err
		}
		o.https = append(o.https, vhostBlock{host: h, text: text})
	}
	return nil
}

// sortEntries orders routing blocks as marathon-lb does: it visits services
// by app id, then service port, and then sorts their blocks by backend
// weight, highest first, keeping that order among equal weights. HAProxy
// takes the first use_backend that matches, so this order decides which of
// two rules for the same vhost wins (HAPROXY_{n}_BACKEND_WEIGHT changes it).
func sortEntries(es []entry) {
	slices.SortStableFunc(es, func(a, b entry) int {
		if c := cmp.Compare(b.weight, a.weight); c != 0 {
			return c
		}
		if c := cmp.Compare(a.appID, b.appID); c != 0 {
			return c
		}
		return cmp.Compare(a.servicePort, b.servicePort)
	})
}

// assemble joins the rendered services into the final configuration.
func (r *renderer) assemble(out *Output, outs []*svcOut, statsPort string) error {
	if r.used != nil {
		r.used["HAPROXY_HEAD"] = true
	}
	var sb strings.Builder
	size := 4096
	for _, o := range outs {
		size += len(o.frontend) + len(o.backend) + len(o.http) + len(o.appID) + len(o.userlist) + 64
	}
	sb.Grow(size)
	sb.WriteString(r.set.head(statsPort))

	for _, o := range outs {
		sb.WriteString(o.userlist)
	}

	var domainMap, appMap [][2]string
	addMap := func(dst *[][2]string, es [][2]string) {
		for _, e := range es {
			if !slices.Contains(*dst, e) {
				*dst = append(*dst, e)
			}
		}
	}

	if r.bindHTTP {
		if err := r.emit(&sb, nil, "HAPROXY_HTTP_FRONTEND_HEAD", nil); err != nil {
			return err
		}
		var es []entry
		mapLine := ""
		for _, o := range outs {
			if o.http != "" {
				es = append(es, newEntry(o.svc, o.http))
			}
			if o.httpMapLine != "" && mapLine == "" {
				mapLine = o.httpMapLine
			}
			addMap(&domainMap, o.domainMap)
		}
		sortEntries(es)
		for _, e := range es {
			sb.WriteString(e.text)
		}
		sb.WriteString(mapLine)
	}

	if err := r.emit(&sb, nil, "HAPROXY_HTTP_FRONTEND_APPID_HEAD", nil); err != nil {
		return err
	}
	appLine := ""
	appOuts := slices.Clone(outs)
	slices.SortStableFunc(appOuts, func(a, b *svcOut) int { return cmp.Compare(a.svc.AppID, b.svc.AppID) })
	for _, o := range appOuts {
		sb.WriteString(o.appID)
		if o.appMapLine != "" && appLine == "" {
			appLine = o.appMapLine
		}
		addMap(&appMap, o.appMap)
	}
	sb.WriteString(appLine)

	if r.https {
		if err := r.assembleHTTPS(&sb, outs); err != nil {
			return err
		}
	}

	for _, o := range outs {
		sb.WriteString(o.frontend)
	}
	for _, o := range outs {
		sb.WriteString(o.backend)
	}
	sb.WriteString("\nbackend " + AdminBackend + "\n  mode http\n")
	if len(r.opts.AdminAllow) > 0 {
		nets := make([]string, len(r.opts.AdminAllow))
		for i, p := range r.opts.AdminAllow {
			nets[i] = p.Masked().String()
		}
		sb.WriteString("  acl switchyard_admin_allowed src " + strings.Join(nets, " ") + "\n")
		sb.WriteString("  http-request deny deny_status 403 if { path_beg /_mlb_signal/ } !switchyard_admin_allowed\n")
		sb.WriteString("  http-request deny deny_status 403 if { path /_haproxy_getconfig } !switchyard_admin_allowed\n")
	}
	if r.opts.AdminAddr != "" {
		sb.WriteString("  server admin " + r.opts.AdminAddr + "\n")
	}
	out.Config = []byte(sb.String())

	if r.opts.HAProxyMap {
		out.Maps = map[string][]byte{DomainMapFile: mapBytes(domainMap), AppMapFile: mapBytes(appMap)}
	}
	return nil
}

func mapBytes(es [][2]string) []byte {
	var sb strings.Builder
	for _, e := range es {
		sb.WriteString(e[0])
		sb.WriteByte(' ')
		sb.WriteString(e[1])
		sb.WriteByte('\n')
	}
	return []byte(sb.String())
}

func (r *renderer) assembleHTTPS(sb *strings.Builder, outs []*svcOut) error {
	certs := make([]string, len(r.opts.SSLCerts))
	for i, c := range r.opts.SSLCerts {
		certs[i] = "crt " + c
	}
	if !r.grouped {
		if err := r.emit(sb, nil, "HAPROXY_HTTPS_FRONTEND_HEAD", params{"sslCerts", strings.Join(certs, " ")}); err != nil {
			return err
		}
		var es []entry
		mapLine := ""
		for _, o := range outs {
			if o.httpsMapLine != "" && mapLine == "" {
				mapLine = o.httpsMapLine
			}
			if o.httpsPrefix == "" && len(o.https) == 0 {
				continue
			}
			var t strings.Builder
			t.WriteString(o.httpsPrefix)
			for _, v := range o.https {
				t.WriteString(v.text)
			}
			es = append(es, newEntry(o.svc, t.String()))
		}
		sortEntries(es)
		for _, e := range es {
			sb.WriteString(e.text)
		}
		sb.WriteString(mapLine)
		return nil
	}

	// Grouped by vhost: SNI routing in TCP mode to one TLS frontend per vhost.
	type group struct {
		entries  []entry
		certs    []string
		bindOpts []string
	}
	groups := make(map[string]*group)
	for _, o := range outs {
		for _, v := range o.https {
			g := groups[v.host]
			if g == nil {
				g = &group{}
				groups[v.host] = g
			}
			g.entries = append(g.entries, newEntry(o.svc, o.httpsPrefix+v.text))
			if c := o.svc.SSLCert; c != "" && !slices.Contains(g.certs, "crt "+c) {
				g.certs = append(g.certs, "crt "+c)
			}
			if bo := o.svc.BindOptions; bo != "" && !slices.Contains(g.bindOpts, bo) {
				g.bindOpts = append(g.bindOpts, bo)
			}
		}
	}
	hosts := make([]string, 0, len(groups))
	for h := range groups {
		hosts = append(hosts, h)
	}
	slices.Sort(hosts)
	if err := r.emit(sb, nil, "HAPROXY_HTTPS_GROUPED_FRONTEND_HEAD", nil); err != nil {
		return err
	}
	for _, h := range hosts {
		if err := r.emit(sb, nil, "HAPROXY_HTTPS_GROUPED_VHOST_FRONTEND_ACL", params{"backend", lb.CleanName(h), "host", h}); err != nil {
			return err
		}
	}
	for _, h := range hosts {
		g := groups[h]
		name := lb.CleanName(h)
		if err := r.emit(sb, nil, "HAPROXY_HTTPS_GROUPED_VHOST_BACKEND_HEAD", params{"name", name}); err != nil {
			return err
		}
		vcerts := g.certs
		if len(vcerts) == 0 {
			vcerts = certs
		}
		slices.Sort(g.bindOpts)
		bindOpts := ""
		for _, bo := range g.bindOpts {
			bindOpts += " " + bo
		}
		if err := r.emit(sb, nil, "HAPROXY_HTTPS_GROUPED_VHOST_FRONTEND_HEAD", params{
			"name", name, "sslCerts", strings.Join(vcerts, " "), "bindOpts", bindOpts}); err != nil {
			return err
		}
		sortEntries(g.entries)
		for _, e := range g.entries {
			sb.WriteString(e.text)
		}
	}
	return nil
}
