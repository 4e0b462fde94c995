package lb

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Label names. Per-port labels are written HAPROXY_{n}_<NAME>; these
// constants hold <NAME>.
const (
	labelPrefix = "HAPROXY_"

	LabelGroup                     = "HAPROXY_GROUP"
	LabelDeploymentGroup           = "HAPROXY_DEPLOYMENT_GROUP"
	LabelDeploymentAltPort         = "HAPROXY_DEPLOYMENT_ALT_PORT"
	LabelDeploymentColour          = "HAPROXY_DEPLOYMENT_COLOUR"
	LabelDeploymentStartedAt       = "HAPROXY_DEPLOYMENT_STARTED_AT"
	LabelDeploymentTargetInstances = "HAPROXY_DEPLOYMENT_TARGET_INSTANCES"
)

// LabelDoc describes one label for --longhelp.
type LabelDoc struct {
	// Name is the label as an operator writes it ("HAPROXY_{n}_VHOST").
	Name string
	// PerPort is true for HAPROXY_{n}_* labels.
	PerPort bool
	// Description is one line.
	Description string
}

// portLabelDocs lists the per-port setting labels, by <NAME>.
var portLabelDocs = []struct{ name, desc string }{
	{"AUTH", "HTTP basic auth on the vhost: realm:user:encrypted-password (a crypt(3) hash)."},
	{"BACKEND_HEALTHCHECK_PORT_INDEX", "Use the task port at this index for the server health checks."},
	{"BACKEND_NETWORK_ALLOWED_ACL", "Space-separated source networks (CIDR or address) allowed to reach the backend; others are denied."},
	{"BACKEND_WEIGHT", "Integer; vhost rules of higher-weight services come first in the shared frontends (default 0)."},
	{"BALANCE", "HAProxy balance algorithm (default roundrobin), e.g. leastconn, source, uri, hdr(host)."},
	{"BIND_ADDR", "Address the service port frontend binds to (default *)."},
	{"BIND_OPTIONS", "Extra options appended to the service port bind line."},
	{"ENABLED", "true/false; with --strict-mode only ports with true are exposed, otherwise false hides the port."},
	{"GROUP", "Comma-separated LB groups for this port; overrides HAPROXY_GROUP."},
	{"HTTP_BACKEND_PROXYPASS_PATH", "Strip this path prefix before forwarding, and set Host to the first vhost."},
	{"HTTP_BACKEND_REDIR", "Redirect requests for / on the vhost to this path or URL (301)."},
	{"HTTP_BACKEND_REVPROXY_PATH", "Rewrite Location headers of responses to live under this path."},
	{"MODE", "http or tcp (default http when the port has a vhost or an HTTP health check, else tcp)."},
	{"PATH", "Route the vhost only for request paths beginning with this prefix (space-separated prefixes allowed)."},
	{"PORT", "Bind the service frontend on this port instead of the servicePort."},
	{"REDIRECT_TO_HTTPS", "true: plain HTTP requests to the vhost get a 301 to HTTPS (needs a vhost)."},
	{"SSL_CERT", "PEM file: terminate TLS on the service port with it (and for the vhost with --group-https-by-vhost)."},
	{"STICKY", "true: sticky sessions with an inserted cookie."},
	{"USE_HSTS", "true: add a Strict-Transport-Security header to responses (http mode)."},
	{"VHOST", "Comma-separated virtual host names routed from the shared :80/:443 frontends."},
}

// Labels returns every label Switchyard reads from apps, with a one-line
// description, sorted by name; for --longhelp and documentation.
func Labels() []LabelDoc {
	docs := []LabelDoc{
		{Name: LabelGroup, Description: "Comma-separated LB groups the app belongs to; an LB serves the apps of its --group (\"*\" = all)."},
		{Name: LabelDeploymentGroup, Description: "Blue/green deployment group: apps sharing it are served as one app with this id."},
		{Name: LabelDeploymentAltPort, Description: "Alternate service port used during a blue/green deployment (read by the deployment tool)."},
		{Name: LabelDeploymentColour, Description: "Blue/green colour of the app (read by the deployment tool)."},
		{Name: LabelDeploymentStartedAt, Description: "Time the blue/green deployment started (RFC 3339 or zdd.py's isoformat); the older app keeps its settings."},
		{Name: LabelDeploymentTargetInstances, Description: "Instances the new app must reach before the old one is fully drained."},
	}
	for _, d := range portLabelDocs {
		docs = append(docs, LabelDoc{Name: "HAPROXY_{n}_" + d.name, PerPort: true, Description: d.desc})
	}
	docs = append(docs, LabelDoc{Name: "HAPROXY_{n}_<TEMPLATE>", PerPort: true,
		Description: "Replace template HAPROXY_<TEMPLATE> for this port with the label value (used verbatim)."})
	return docs
}

// portLabels are the parsed HAPROXY_{n}_* labels of one port index.
type portLabels struct {
	raw       map[string]string // <NAME> -> value, settings only
	templates map[string]string // HAPROXY_<TEMPLATE> -> value
}

// isSetting reports whether name (the part after HAPROXY_{n}_) is a setting
// label rather than a template override.
func isSetting(name string) bool {
	for _, d := range portLabelDocs {
		if d.name == name {
			return true
		}
	}
	return false
}

// splitPortLabel splits "HAPROXY_3_VHOST" into (3, "VHOST", true).
func splitPortLabel(key string) (int, string, bool) {
	if !strings.HasPrefix(key, labelPrefix) {
		return 0, "", false
	}
	rest := key[len(labelPrefix):]
	i := 0
	for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
		i++
	}
	if i == 0 || i > 5 || i >= len(rest) || rest[i] != '_' || i+1 >= len(rest) {
		return 0, "", false
	}
	n, err := strconv.Atoi(rest[:i])
	if err != nil {
		return 0, "", false
	}
	return n, rest[i+1:], true
}

// groupPortLabels sorts an app's labels by port index.
func groupPortLabels(labels map[string]string) map[int]*portLabels {
	var out map[int]*portLabels
	for k, v := range labels {
		n, name, ok := splitPortLabel(k)
		if !ok {
			continue
		}
		if out == nil {
			out = make(map[int]*portLabels)
		}
		pl := out[n]
		if pl == nil {
			pl = &portLabels{}
			out[n] = pl
		}
		if isSetting(name) {
			if pl.raw == nil {
				pl.raw = make(map[string]string)
			}
			pl.raw[name] = v
			continue
		}
		if !isTemplateName(name) {
			continue
		}
		if pl.templates == nil {
			pl.templates = make(map[string]string)
		}
		pl.templates[labelPrefix+name] = v
	}
	return out
}

// isTemplateName reports whether name looks like a template name suffix
// (upper-case letters, digits and underscores).
func isTemplateName(name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return name != ""
}

// checkLine rejects values that could break out of one config line: any
// control character (newline, carriage return, tab, NUL ...).
func checkLine(label, v string) error {
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("label %s: value contains a control character (%q)", label, r)
		}
	}
	return nil
}

// checkToken rejects values with whitespace or control characters.
func checkToken(label, v string) error {
	if err := checkLine(label, v); err != nil {
		return err
	}
	if strings.ContainsAny(v, " \"'#") {
		return fmt.Errorf("label %s: %q must be a single word without quotes or '#'", label, v)
	}
	return nil
}

// parseBool accepts marathon-lb's spellings of true and false.
func parseBool(label, v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "t", "yes", "y", "1", "on":
		return true, nil
	case "false", "f", "no", "n", "0", "off", "":
		return false, nil
	}
	return false, fmt.Errorf("label %s: %q is not a boolean (true or false)", label, v)
}

// parseGroups splits a comma-separated group list.
func parseGroups(label, v string) ([]string, error) {
	if err := checkLine(label, v); err != nil {
		return nil, err
	}
	var out []string
	for _, g := range strings.Split(v, ",") {
		g = strings.TrimSpace(g)
		if g != "" {
			out = append(out, g)
		}
	}
	return out, nil
}

// balanceAlgorithms are the first words HAProxy accepts after "balance".
var balanceAlgorithms = map[string]bool{
	"roundrobin": true, "static-rr": true, "leastconn": true, "first": true,
	"source": true, "uri": true, "url_param": true, "random": true,
	"hash": true,
}

// parseBalance validates a balance algorithm such as "leastconn",
// "hdr(host)", "rdp-cookie(mstshash)", "uri whole" or "url_param userid".
func parseBalance(label, v string) (string, error) {
	v = strings.TrimSpace(v)
	if err := checkLine(label, v); err != nil {
		return "", err
	}
	words := strings.Fields(v)
	if len(words) == 0 {
		return "", fmt.Errorf("label %s: empty balance algorithm", label)
	}
	first := words[0]
	name := first
	if i := strings.IndexByte(first, '('); i > 0 && strings.HasSuffix(first, ")") {
		name = first[:i]
		if !isWordChars(first[i+1 : len(first)-1]) {
			return "", fmt.Errorf("label %s: bad argument in %q", label, first)
		}
		if name != "hdr" && name != "rdp-cookie" && name != "random" {
			return "", fmt.Errorf("label %s: %q takes no argument in parentheses", label, name)
		}
	} else if !balanceAlgorithms[name] && name != "rdp-cookie" {
		return "", fmt.Errorf("label %s: unknown balance algorithm %q", label, v)
	}
	for _, w := range words[1:] {
		if !isWordChars(w) {
			return "", fmt.Errorf("label %s: bad balance parameter %q", label, w)
		}
	}
	return strings.Join(words, " "), nil
}

// isWordChars reports whether s has only letters, digits and "_.-=".
func isWordChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') &&
			c != '_' && c != '.' && c != '-' && c != '=' {
			return false
		}
	}
	return true
}

// parseVHosts splits and validates a comma-separated vhost list.
func parseVHosts(label, v string) ([]string, error) {
	if err := checkLine(label, v); err != nil {
		return nil, err
	}
	var out []string
	for _, h := range strings.Split(v, ",") {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		h = strings.ToLower(h) // host names are case-insensitive; SNI ACLs are not
		for i := 0; i < len(h); i++ {
			c := h[i]
			if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') &&
				c != '.' && c != '-' && c != '_' && c != ':' && c != '*' {
				return nil, fmt.Errorf("label %s: %q is not a valid host name", label, h)
			}
		}
		out = append(out, h)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("label %s: no host name in %q", label, v)
	}
	return out, nil
}

// parsePaths validates one or more space-separated path prefixes.
func parsePaths(label, v string) (string, error) {
	if err := checkLine(label, v); err != nil {
		return "", err
	}
	words := strings.Fields(v)
	if len(words) == 0 {
		return "", fmt.Errorf("label %s: empty path", label)
	}
	// A leading -i (ignore case), as in marathon-lb's example
	// '-i /multiple /paths'.
	i := 0
	if words[0] == "-i" {
		i = 1
	}
	if i == len(words) {
		return "", fmt.Errorf("label %s: empty path", label)
	}
	for _, w := range words[i:] {
		if !strings.HasPrefix(w, "/") || strings.ContainsAny(w, "\"'#{}\\") {
			return "", fmt.Errorf("label %s: %q is not a path beginning with /", label, w)
		}
	}
	return strings.Join(words, " "), nil
}

// parsePath validates a single path (or URL for redirects).
func parsePath(label, v string, allowURL bool) (string, error) {
	v = strings.TrimSpace(v)
	if err := checkToken(label, v); err != nil {
		return "", err
	}
	if strings.ContainsAny(v, "{}\\") {
		return "", fmt.Errorf("label %s: %q contains braces or backslashes", label, v)
	}
	if strings.HasPrefix(v, "/") || (allowURL && (strings.HasPrefix(v, "http://") || strings.HasPrefix(v, "https://"))) {
		return v, nil
	}
	return "", fmt.Errorf("label %s: %q must begin with /", label, v)
}

// parseAuth splits "realm:user:password".
func parseAuth(label, v string) (*Auth, error) {
	if err := checkLine(label, v); err != nil {
		return nil, err
	}
	parts := strings.SplitN(v, ":", 3)
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return nil, fmt.Errorf("label %s: want realm:user:encrypted-password", label)
	}
	if strings.ContainsAny(parts[0], "\"\\") {
		return nil, fmt.Errorf("label %s: realm must not contain quotes or backslashes", label)
	}
	if strings.ContainsAny(parts[1], " \"'#\\") || strings.ContainsAny(parts[2], " \"'#\\") {
		return nil, fmt.Errorf("label %s: user and password must be single words", label)
	}
	return &Auth{Realm: parts[0], User: parts[1], Password: parts[2]}, nil
}

// parsePort validates a TCP port number.
func parsePort(label, v string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("label %s: %q is not a port number (1-65535)", label, v)
	}
	return n, nil
}

// parseInt validates an integer within [lo, hi].
func parseInt(label, v string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("label %s: %q is not an integer in %d..%d", label, v, lo, hi)
	}
	return n, nil
}

// parseBindAddr validates an address to bind to.
func parseBindAddr(label, v string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", fmt.Errorf("label %s: empty bind address", label)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') &&
			c != '.' && c != '-' && c != ':' && c != '*' && c != '[' && c != ']' && c != '_' && c != '@' {
			return "", fmt.Errorf("label %s: %q is not a valid bind address", label, v)
		}
	}
	return v, nil
}

// parseNetworks validates space-separated CIDRs or addresses.
func parseNetworks(label, v string) ([]string, error) {
	if err := checkLine(label, v); err != nil {
		return nil, err
	}
	words := strings.Fields(v)
	if len(words) == 0 {
		return nil, fmt.Errorf("label %s: no network", label)
	}
	for _, w := range words {
		if _, err := netip.ParsePrefix(w); err == nil {
			continue
		}
		if _, err := netip.ParseAddr(w); err == nil {
			continue
		}
		return nil, fmt.Errorf("label %s: %q is not a network (CIDR) or address", label, w)
	}
	return words, nil
}

// applyPortLabels applies the settings labels of one port to s. It stops at
// the first invalid label and returns its error.
func applyPortLabels(s *Service, pl *portLabels) error {
	if pl == nil {
		return nil
	}
	// Visit in the fixed order of portLabelDocs so errors are deterministic.
	for _, d := range portLabelDocs {
		v, ok := pl.raw[d.name]
		if !ok {
			continue
		}
		label := fmt.Sprintf("HAPROXY_%d_%s", s.PortIndex, d.name)
		var err error
		switch d.name {
		case "AUTH":
			s.Auth, err = parseAuth(label, v)
		case "BACKEND_HEALTHCHECK_PORT_INDEX":
			s.HealthCheckPortIndex, err = parseInt(label, v, 0, 1000)
		case "BACKEND_NETWORK_ALLOWED_ACL":
			s.NetworkAllowed, err = parseNetworks(label, v)
		case "BACKEND_WEIGHT":
			s.BackendWeight, err = parseInt(label, v, -1000000, 1000000)
		case "BALANCE":
			s.Balance, err = parseBalance(label, v)
		case "BIND_ADDR":
			s.BindAddr, err = parseBindAddr(label, v)
		case "BIND_OPTIONS":
			err = checkLine(label, v)
			s.BindOptions = strings.TrimSpace(v)
			if err == nil && strings.Contains(s.BindOptions, "#") {
				err = fmt.Errorf("label %s: '#' would comment out the rest of the line", label)
			}
		case "ENABLED", "GROUP":
			// Handled by the group and strict-mode filter.
		case "HTTP_BACKEND_PROXYPASS_PATH":
			s.ProxyPath, err = parsePath(label, v, false)
		case "HTTP_BACKEND_REDIR":
			s.RedirPath, err = parsePath(label, v, true)
		case "HTTP_BACKEND_REVPROXY_PATH":
			s.RevProxyPath, err = parsePath(label, v, false)
		case "MODE":
			switch strings.ToLower(strings.TrimSpace(v)) {
			case ModeHTTP:
				s.Mode = ModeHTTP
			case ModeTCP:
				s.Mode = ModeTCP
			default:
				err = fmt.Errorf("label %s: %q is not http or tcp", label, v)
			}
		case "PATH":
			s.Path, err = parsePaths(label, v)
		case "PORT":
			s.ServicePort, err = parsePort(label, v)
		case "REDIRECT_TO_HTTPS":
			s.RedirectToHTTPS, err = parseBool(label, v)
		case "SSL_CERT":
			s.SSLCert = strings.TrimSpace(v)
			err = checkToken(label, s.SSLCert)
			if err == nil && s.SSLCert == "" {
				err = fmt.Errorf("label %s: empty certificate path", label)
			}
		case "STICKY":
			s.Sticky, err = parseBool(label, v)
		case "USE_HSTS":
			s.UseHSTS, err = parseBool(label, v)
		case "VHOST":
			s.VHosts, err = parseVHosts(label, v)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
