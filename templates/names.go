package templates

import (
	"slices"
	"strings"
)

// kind says how a template is filled in.
type kind int

const (
	// formatted templates use Python str.format syntax: {name} placeholders
	// and {{ / }} for literal braces.
	formatted kind = iota
	// verbatim templates are copied as they are (marathon-lb never formats
	// them, so they may contain single braces such as "{ ssl_fc }").
	verbatim
	// head is HAPROXY_HEAD: copied as it is, except that the token
	// {statsPort} is replaced by the stats port.
	head
)

// Placeholder sets shared by several templates.
var (
	vhostPlaceholders = []string{"appId", "backend", "bindAddr", "cleanedUpHostname", "hostname", "path", "realm"}
	checkPlaceholders = []string{
		"healthCheckFalls", "healthCheckGracePeriodSeconds", "healthCheckIgnoreHttp1xx",
		"healthCheckIntervalSeconds", "healthCheckMaxConsecutiveFailures", "healthCheckPath",
		"healthCheckPort", "healthCheckPortIndex", "healthCheckPortOptions", "healthCheckProtocol",
		"healthCheckSslOptions", "healthCheckTimeoutSeconds",
	}
)

// info documents one template.
type info struct {
	name         string
	kind         kind
	overridable  bool // per app port, with label HAPROXY_{n}_<rest of name>
	placeholders []string
	doc          string
}

// catalog lists the 53 marathon-lb templates, sorted by name.
var catalog = []info{
	{"HAPROXY_BACKEND_HEAD", formatted, true, []string{"backend", "balance", "mode"},
		"Opens the backend of an app port: its name, balance algorithm and mode."},
	{"HAPROXY_BACKEND_HSTS_OPTIONS", verbatim, true, nil,
		"Added to http backends whose port has HAPROXY_{n}_USE_HSTS=true: sets Strict-Transport-Security on responses."},
	{"HAPROXY_BACKEND_HTTP_HEALTHCHECK_OPTIONS", formatted, true, checkPlaceholders,
		"Backend-level options for a Marathon HTTP/HTTPS health check (the check request, its timeout)."},
	{"HAPROXY_BACKEND_HTTP_OPTIONS", verbatim, true, nil,
		"Options of every http-mode backend: X-Forwarded-For, -Port and -Proto headers."},
	{"HAPROXY_BACKEND_REDIRECT_HTTP_TO_HTTPS", formatted, true, vhostPlaceholders,
		"In marathon_http_in, sends plain-HTTP requests for the vhost to HTTPS (HAPROXY_{n}_REDIRECT_TO_HTTPS)."},
	{"HAPROXY_BACKEND_REDIRECT_HTTP_TO_HTTPS_WITH_PATH", formatted, true, vhostPlaceholders,
		"Same as HAPROXY_BACKEND_REDIRECT_HTTP_TO_HTTPS, limited to HAPROXY_{n}_PATH."},
	{"HAPROXY_BACKEND_SERVER_HTTP_HEALTHCHECK_OPTIONS", formatted, true, checkPlaceholders,
		"Per-server check options for an HTTP/HTTPS health check ({healthCheckOptions} of the server line). Stripped of surrounding white space, then one space put before it; must be one line."},
	{"HAPROXY_BACKEND_SERVER_OPTIONS", formatted, true,
		[]string{"cookieOptions", "healthCheckOptions", "host", "host_ipv4", "otherOptions", "port", "serverId", "serverName"},
		"One server line per task."},
	{"HAPROXY_BACKEND_SERVER_TCP_HEALTHCHECK_OPTIONS", formatted, true, checkPlaceholders,
		"Per-server check options for a TCP health check, or any check of a tcp-mode port. Stripped and prefixed like the HTTP one."},
	{"HAPROXY_BACKEND_STICKY_OPTIONS", verbatim, true, nil,
		"Added to backends whose port has HAPROXY_{n}_STICKY=true: the session cookie."},
	{"HAPROXY_BACKEND_TCP_HEALTHCHECK_OPTIONS", formatted, true, checkPlaceholders,
		"Backend-level options for a TCP health check (empty by default)."},
	{"HAPROXY_FRONTEND_BACKEND_GLUE", formatted, true, []string{"backend"},
		"Ends the per-port frontend: sends its traffic to the backend of the same name."},
	{"HAPROXY_FRONTEND_HEAD", formatted, true,
		[]string{"backend", "bindAddr", "bindOptions", "mode", "servicePort", "sslCert"},
		"Opens the frontend of an app port, bound on its service port."},
	{"HAPROXY_HEAD", head, false, []string{"statsPort"},
		"Global settings, defaults, and the stats/admin listener. Used as is, except that {statsPort} is replaced."},
	{"HAPROXY_HTTPS_FRONTEND_ACL", formatted, true, vhostPlaceholders,
		"In marathon_https_in, routes a vhost (by TLS SNI) to its backend."},
	{"HAPROXY_HTTPS_FRONTEND_ACL_ONLY_WITH_PATH", formatted, true, vhostPlaceholders,
		"In marathon_https_in, defines the path ACL of a port with HAPROXY_{n}_PATH."},
	{"HAPROXY_HTTPS_FRONTEND_ACL_WITH_AUTH", formatted, true, vhostPlaceholders,
		"In marathon_https_in, routes a vhost by SNI and asks for basic auth (HAPROXY_{n}_AUTH)."},
	{"HAPROXY_HTTPS_FRONTEND_ACL_WITH_AUTH_AND_PATH", formatted, true, vhostPlaceholders,
		"In marathon_https_in, routes a vhost and path by SNI, with basic auth."},
	{"HAPROXY_HTTPS_FRONTEND_ACL_WITH_PATH", formatted, true, vhostPlaceholders,
		"In marathon_https_in, routes a vhost (SNI) and path to its backend."},
	{"HAPROXY_HTTPS_FRONTEND_AUTH_ACL_ONLY", formatted, true, vhostPlaceholders,
		"Not used: marathon-lb defines it but never renders it (several vhosts with auth use HAPROXY_HTTPS_FRONTEND_ACL_WITH_AUTH per vhost). A templates directory may hold it."},
	{"HAPROXY_HTTPS_FRONTEND_AUTH_REQUEST_ONLY", formatted, true, vhostPlaceholders,
		"Not used: marathon-lb defines it but never renders it (several vhosts with auth use HAPROXY_HTTPS_FRONTEND_ACL_WITH_AUTH per vhost). A templates directory may hold it."},
	{"HAPROXY_HTTPS_FRONTEND_HEAD", formatted, false, []string{"sslCerts"},
		"Opens marathon_https_in on :443 with the --ssl-certs certificates."},
	{"HAPROXY_HTTPS_FRONTEND_ROUTING_ONLY_WITH_PATH_AND_AUTH", formatted, true, vhostPlaceholders,
		"Not used: marathon-lb defines it but never renders it (its text refers to an ACL of marathon_http_in); several vhosts with a path and auth use HAPROXY_HTTPS_FRONTEND_ACL_WITH_AUTH_AND_PATH per vhost. A templates directory may hold it."},
	{"HAPROXY_HTTPS_GROUPED_FRONTEND_HEAD", verbatim, false, nil,
		"With --group-https-by-vhost: marathon_https_in in TCP mode, waiting for the TLS hello to read SNI."},
	{"HAPROXY_HTTPS_GROUPED_VHOST_BACKEND_HEAD", formatted, false, []string{"name"},
		"With --group-https-by-vhost: the backend that loops a vhost's TLS traffic to its own frontend."},
	{"HAPROXY_HTTPS_GROUPED_VHOST_FRONTEND_ACL", formatted, false, []string{"backend", "host"},
		"With --group-https-by-vhost: in marathon_https_in, sends a vhost's SNI to its loopback backend."},
	{"HAPROXY_HTTPS_GROUPED_VHOST_FRONTEND_HEAD", formatted, false, []string{"bindOpts", "name", "sslCerts"},
		"With --group-https-by-vhost: the frontend terminating TLS for one vhost, with its own certificates."},
	{"HAPROXY_HTTP_BACKEND_ACL_ALLOW_DENY", verbatim, false, nil,
		"Ends the network ACLs of an http backend: allow the listed networks, deny the rest."},
	{"HAPROXY_HTTP_BACKEND_NETWORK_ALLOWED_ACL", formatted, true, []string{"network_allowed"},
		"One allowed source network of an http backend (HAPROXY_{n}_BACKEND_NETWORK_ALLOWED_ACL)."},
	{"HAPROXY_HTTP_BACKEND_PROXYPASS_GLUE", formatted, true, []string{"hostname", "proxypath"},
		"Strips HAPROXY_{n}_HTTP_BACKEND_PROXYPASS_PATH from request paths and sets Host to the vhost."},
	{"HAPROXY_HTTP_BACKEND_REDIR", formatted, true, []string{"hostname", "redirpath"},
		"Redirects / on the vhost to HAPROXY_{n}_HTTP_BACKEND_REDIR."},
	{"HAPROXY_HTTP_BACKEND_REVPROXY_GLUE", formatted, true, []string{"hostname", "rootpath"},
		"Rewrites Location response headers under HAPROXY_{n}_HTTP_BACKEND_REVPROXY_PATH."},
	{"HAPROXY_HTTP_FRONTEND_ACL", formatted, true, vhostPlaceholders,
		"In marathon_http_in, routes one vhost (Host header) to its backend."},
	{"HAPROXY_HTTP_FRONTEND_ACL_ONLY", formatted, true, vhostPlaceholders,
		"In marathon_http_in, defines the host ACL for one of several vhosts (routing comes after)."},
	{"HAPROXY_HTTP_FRONTEND_ACL_ONLY_WITH_PATH", formatted, true, vhostPlaceholders,
		"In marathon_http_in, defines the path ACL of a port with several vhosts."},
	{"HAPROXY_HTTP_FRONTEND_ACL_ONLY_WITH_PATH_AND_AUTH", formatted, true, vhostPlaceholders,
		"In marathon_http_in, defines the path and auth ACLs of a port with several vhosts."},
	{"HAPROXY_HTTP_FRONTEND_ACL_WITH_AUTH", formatted, true, vhostPlaceholders,
		"In marathon_http_in, routes one vhost and asks for basic auth."},
	{"HAPROXY_HTTP_FRONTEND_ACL_WITH_AUTH_AND_PATH", formatted, true, vhostPlaceholders,
		"In marathon_http_in, routes one vhost and path, with basic auth."},
	{"HAPROXY_HTTP_FRONTEND_ACL_WITH_PATH", formatted, true, vhostPlaceholders,
		"In marathon_http_in, routes one vhost and path to its backend."},
	{"HAPROXY_HTTP_FRONTEND_APPID_ACL", formatted, true, []string{"appId", "backend", "cleanedUpAppId", "hostname"},
		"In marathon_http_appid_in, routes requests whose X-Marathon-App-Id header names the app."},
	{"HAPROXY_HTTP_FRONTEND_APPID_HEAD", verbatim, false, nil,
		"Opens marathon_http_appid_in on :9091 (routing by the X-Marathon-App-Id header)."},
	{"HAPROXY_HTTP_FRONTEND_HEAD", verbatim, false, nil,
		"Opens marathon_http_in on :80 (routing by Host header). Unknown hosts get HAProxy's 503."},
	{"HAPROXY_HTTP_FRONTEND_ROUTING_ONLY", formatted, true, vhostPlaceholders,
		"In marathon_http_in, routes the host ACL of a port with several vhosts to its backend."},
	{"HAPROXY_HTTP_FRONTEND_ROUTING_ONLY_WITH_AUTH", formatted, true, vhostPlaceholders,
		"In marathon_http_in, asks for auth and routes a port with several vhosts."},
	{"HAPROXY_HTTP_FRONTEND_ROUTING_ONLY_WITH_PATH", formatted, true, vhostPlaceholders,
		"In marathon_http_in, routes a port with several vhosts and a path."},
	{"HAPROXY_HTTP_FRONTEND_ROUTING_ONLY_WITH_PATH_AND_AUTH", formatted, true, vhostPlaceholders,
		"In marathon_http_in, asks for auth and routes a port with several vhosts and a path."},
	{"HAPROXY_MAP_HTTPS_FRONTEND_ACL", formatted, true, []string{"haproxy_dir", "hostname"},
		"With --haproxy-map: in marathon_https_in, routes by SNI through domain2backend.map."},
	{"HAPROXY_MAP_HTTP_FRONTEND_ACL", formatted, true, []string{"haproxy_dir"},
		"With --haproxy-map: in marathon_http_in, routes by Host through domain2backend.map."},
	{"HAPROXY_MAP_HTTP_FRONTEND_ACL_ONLY", formatted, true, []string{"haproxy_dir"},
		"With --haproxy-map, for ports with several vhosts: same role as HAPROXY_MAP_HTTP_FRONTEND_ACL."},
	{"HAPROXY_MAP_HTTP_FRONTEND_APPID_ACL", formatted, true, []string{"haproxy_dir"},
		"With --haproxy-map: in marathon_http_appid_in, routes X-Marathon-App-Id through app2backend.map."},
	{"HAPROXY_TCP_BACKEND_ACL_ALLOW_DENY", verbatim, false, nil,
		"Ends the network ACLs of a tcp backend: accept the listed networks, reject the rest."},
	{"HAPROXY_TCP_BACKEND_NETWORK_ALLOWED_ACL", formatted, true, []string{"network_allowed"},
		"One allowed source network of a tcp backend (HAPROXY_{n}_BACKEND_NETWORK_ALLOWED_ACL)."},
	{"HAPROXY_USERLIST_HEAD", formatted, true, []string{"backend", "passwd", "realm", "user"},
		"The userlist holding the HAPROXY_{n}_AUTH user of a port."},
}

// inlineTemplates are fragments placed inside the server line.
var inlineTemplates = []string{
	"HAPROXY_BACKEND_SERVER_HTTP_HEALTHCHECK_OPTIONS",
	"HAPROXY_BACKEND_SERVER_TCP_HEALTHCHECK_OPTIONS",
}

// lookup returns the catalog entry for name.
func lookup(name string) (info, bool) {
	i, ok := slices.BinarySearchFunc(catalog, name, func(e info, n string) int { return strings.Compare(e.name, n) })
	if !ok {
		return info{}, false
	}
	return catalog[i], true
}

// Names returns the names of all templates, sorted.
func Names() []string {
	out := make([]string, len(catalog))
	for i, e := range catalog {
		out[i] = e.name
	}
	return out
}

// Doc returns a short description of template name for --longhelp: what it
// does, whether an app port can override it, and its placeholders. It
// returns "" for an unknown name.
func Doc(name string) string {
	e, ok := lookup(name)
	if !ok {
		return ""
	}
	var sb strings.Builder
	sb.WriteString(e.doc)
	if e.overridable {
		sb.WriteString("\nOverridable per app port with label HAPROXY_{n}_")
		sb.WriteString(strings.TrimPrefix(e.name, "HAPROXY_"))
		sb.WriteString(".")
	} else {
		sb.WriteString("\nGlobal only (file in the templates directory).")
	}
	switch e.kind {
	case verbatim:
		sb.WriteString("\nUsed verbatim: no placeholders.")
	default:
		if len(e.placeholders) > 0 {
			sb.WriteString("\nPlaceholders:")
			for _, p := range e.placeholders {
				sb.WriteString(" {")
				sb.WriteString(p)
				sb.WriteString("}")
			}
		}
	}
	return sb.String()
}
