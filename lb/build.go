package lb

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/switchyard/switchyard/marathon"
)

// Build turns Marathon apps into the load-balancer model. It is pure and
// deterministic: the output is sorted by backend name and does not depend on
// the order of apps or of their tasks, except for the service ports given
// to IP-per-task apps that have none, which follow the order of apps (pass
// Marathon's, as marathon-lb does, so that both pick the same ports). Every
// app port left out is reported in the returned []Skipped (sorted by app id,
// then port index); one bad app never affects another.
func Build(apps []marathon.App, opts Options) (*Config, []Skipped) {
	opts = opts.withDefaults()
	b := builder{
		opts:     opts,
		assigner: newPortAssigner(opts.MinServPortIPPerTask, opts.MaxServPortIPPerTask),
		services: make([]Service, 0, len(apps)),
	}
	for _, g := range opts.Groups {
		if g == "*" {
			b.allGroups = true
		}
	}

	list, draining := mergeDeploymentGroups(apps)
	b.draining = draining
	for i, a := range list {
		if a.ID != "" && (a.ID[0] != '/' || (len(a.ID) > 1 && a.ID[len(a.ID)-1] == '/')) {
			c := marathon.CanonicalID(a.ID)
			cp := *a // never modify the caller's apps
			cp.ID = c
			list[i] = &cp
		}
	}
	// IP-per-task service ports are assigned in marathon-lb's order:
	// Marathon's listing order, deployment groups after the other apps.
	sps := make(map[*marathon.App][]int, len(list))
	for _, app := range list {
		if validID(app.ID) {
			sps[app] = servicePorts(app, networkingMode(app), b.assigner)
		}
	}
	slices.SortStableFunc(list, func(x, y *marathon.App) int { return cmp.Compare(x.ID, y.ID) })
	for _, app := range list {
		b.app(app, sps[app])
	}
	b.resolvePortClashes()
	// Sort indexes rather than the (large) Service values, then copy once.
	order := make([]int32, len(b.services))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(x, y int32) int { return cmp.Compare(b.services[x].Backend, b.services[y].Backend) })
	sorted := make([]Service, len(b.services))
	for i, j := range order {
		sorted[i] = b.services[j]
	}
	b.services = sorted
	slices.SortStableFunc(b.skipped, func(x, y Skipped) int {
		if c := cmp.Compare(x.AppID, y.AppID); c != 0 {
			return c
		}
		return cmp.Compare(x.PortIndex, y.PortIndex)
	})
	return &Config{Options: opts, Services: b.services}, b.skipped
}

type builder struct {
	opts      Options
	allGroups bool
	assigner  *portAssigner
	draining  map[string]bool // task ids drained by a deployment-group switch
	services  []Service
	skipped   []Skipped
}

func (b *builder) skip(appID string, idx int, filtered bool, format string, args ...any) {
	b.skipped = append(b.skipped, Skipped{AppID: appID, PortIndex: idx, Reason: fmt.Sprintf(format, args...), Filtered: filtered})
}

// servesGroups reports whether this LB serves an app port in groups.
func (b *builder) servesGroups(groups []string) bool {
	if b.allGroups {
		return true
	}
	for _, g := range groups {
		if slices.Contains(b.opts.Groups, g) {
			return true
		}
	}
	return false
}

// liveTask is a task that may receive traffic, with its address (a host
// name is resolved per service, see Options.ResolveHost).
type liveTask struct {
	task  *marathon.Task
	ip    string
	ports []int
}

// validID reports whether an app id names an app (not the root group).
func validID(id string) bool { return strings.Trim(id, "/") != "" }

// app adds the services of one app; sps are its service ports (computed
// for every app beforehand, so that IP-per-task ports are the same on every
// LB whatever its group).
func (b *builder) app(app *marathon.App, sps []int) {
	id := app.ID
	if !validID(id) {
		b.skip(id, -1, false, "app has no id")
		return
	}
	mode := networkingMode(app)

	var appGroups []string
	if v, ok := app.Labels[LabelGroup]; ok {
		g, err := parseGroups(LabelGroup, v)
		if err != nil {
			b.skip(id, -1, false, "%v", err)
			return
		}
		appGroups = g
	}
	if len(sps) == 0 {
		if b.servesGroups(appGroups) {
			b.skip(id, -1, true, "app has no service ports")
		}
		return
	}
	pls := groupPortLabels(app.Labels)
	tasks := b.liveTasks(app, mode)

	for i, sp := range sps {
		pl := pls[i]
		groups := appGroups
		if pl != nil {
			if v, ok := pl.raw["GROUP"]; ok {
				g, err := parseGroups(fmt.Sprintf("HAPROXY_%d_GROUP", i), v)
				if err != nil {
					b.skip(id, i, false, "%v", err)
					continue
				}
				groups = g
			}
		}
		if !b.servesGroups(groups) {
			continue // another LB's app: not ours to report
		}
		enabled := !b.opts.StrictMode
		if pl != nil {
			if v, ok := pl.raw["ENABLED"]; ok {
				e, err := parseBool(fmt.Sprintf("HAPROXY_%d_ENABLED", i), v)
				if err != nil {
					b.skip(id, i, false, "%v", err)
					continue
				}
				enabled = e
			}
		}
		if !enabled {
			if b.opts.StrictMode {
				b.skip(id, i, true, "strict mode: HAPROXY_%d_ENABLED is not true", i)
			} else {
				b.skip(id, i, true, "HAPROXY_%d_ENABLED is false", i)
			}
			continue
		}
		s, unresolved, err := b.service(app, i, sp, pl, tasks)
		if err != nil {
			b.skip(id, i, false, "%v", err)
			continue
		}
		if len(s.Servers) == 0 {
			reason := "no running task with ports"
			switch {
			case len(unresolved) == 1:
				reason = fmt.Sprintf("no task with an address: agent host name %s does not resolve and its tasks have no ipAddresses", unresolved[0])
			case len(unresolved) > 1:
				reason = fmt.Sprintf("no task with an address: agent host names %s do not resolve and the tasks have no ipAddresses", strings.Join(unresolved, ", "))
			case b.opts.HealthCheck && len(app.HealthChecks) > 0:
				reason = "no running task with all health checks alive"
			}
			b.skip(id, i, true, "%s", reason)
			continue
		}
		b.services = append(b.services, s)
	}
}

// liveTasks returns the app's tasks that may receive traffic.
func (b *builder) liveTasks(app *marathon.App, mode string) []liveTask {
	var out []liveTask
	for ti := range app.Tasks {
		t := &app.Tasks[ti]
		if !routableState(t.State) || t.Host == "" {
			continue
		}
		if b.opts.HealthCheck && len(app.HealthChecks) > 0 {
			if len(t.HealthCheckResults) == 0 {
				continue
			}
			alive := true
			for _, r := range t.HealthCheckResults {
				alive = alive && r.Alive
			}
			if !alive {
				continue
			}
		}
		ip, ports, ok := taskAddress(app, t, mode)
		if !ok {
			continue
		}
		out = append(out, liveTask{task: t, ip: ip, ports: ports})
	}
	return out
}

// routableState reports whether a task in this state may receive traffic.
// As marathon-lb: TASK_RUNNING, and TASK_LOST and TASK_UNREACHABLE (the
// agent is cut off, the task may well still run), and a task without a
// state; starting, killing, terminal and unknown states get none.
func routableState(state string) bool {
	switch state {
	case marathon.TaskStaging, marathon.TaskStarting, marathon.TaskKilling,
		marathon.TaskFinished, marathon.TaskFailed, marathon.TaskKilled, marathon.TaskError,
		marathon.TaskDropped, marathon.TaskGone, "TASK_GONE_BY_OPERATOR", marathon.TaskUnknown:
		return false
	}
	return true
}

// healthCheckFor returns the first non-COMMAND check with a fixed port or
// with portIndex idx (an absent portIndex means 0), as marathon-lb does,
// and Marathon's protocol of it (upper case; MESOS_HTTP stays MESOS_HTTP
// while the returned check's Protocol is HTTP).
func healthCheckFor(app *marathon.App, idx int) (*HealthCheck, string, error) {
	for _, hc := range app.HealthChecks {
		raw := strings.ToUpper(hc.Protocol)
		proto := strings.TrimPrefix(raw, "MESOS_")
		switch proto {
		case "HTTP", "HTTPS", "TCP":
		case "":
			if hc.Command != nil {
				continue
			}
			raw, proto = "HTTP", "HTTP" // Marathon's default protocol
		default:
			continue // COMMAND and anything unknown: HAProxy cannot run it
		}
		pi := 0
		if hc.PortIndex != nil {
			pi = *hc.PortIndex
		}
		port := 0
		if hc.Port != nil {
			port = *hc.Port
		}
		if port == 0 && pi != idx {
			continue
		}
		h := &HealthCheck{
			Protocol:               proto,
			Path:                   hc.Path,
			PortIndex:              pi,
			Port:                   port,
			TimeoutSeconds:         hc.TimeoutSeconds,
			IntervalSeconds:        hc.IntervalSeconds,
			GracePeriodSeconds:     hc.GracePeriodSeconds,
			MaxConsecutiveFailures: hc.MaxConsecutiveFailures,
			IgnoreHTTP1xx:          hc.IgnoreHTTP1xx,
		}
		if h.TimeoutSeconds <= 0 {
			h.TimeoutSeconds = 20
		}
		if h.IntervalSeconds <= 0 {
			h.IntervalSeconds = 60
		}
		if h.MaxConsecutiveFailures < 0 {
			h.MaxConsecutiveFailures = 0
		}
		if h.Protocol != "TCP" {
			if h.Path == "" {
				h.Path = "/"
			}
			if !strings.HasPrefix(h.Path, "/") || strings.ContainsAny(h.Path, " \"'#{}\\") {
				return nil, "", fmt.Errorf("health check path %q cannot be used in an HAProxy check", h.Path)
			}
			if err := checkLine("healthChecks.path", h.Path); err != nil {
				return nil, "", err
			}
		}
		return h, raw, nil
	}
	return nil, "", nil
}

// service builds the service of port idx. unresolved are the agent host
// names (sorted, once each) whose tasks were left out because the name does
// not resolve and the task has no ipAddresses.
func (b *builder) service(app *marathon.App, idx, sp int, pl *portLabels, tasks []liveTask) (s Service, unresolved []string, err error) {
	s = Service{
		AppID:                app.ID,
		PortIndex:            idx,
		ServicePort:          sp,
		Balance:              DefaultBalance,
		BindAddr:             DefaultBindAddr,
		HealthCheckPortIndex: -1,
	}
	if err := applyPortLabels(&s, pl); err != nil {
		return s, nil, err
	}
	if s.ServicePort <= 0 {
		return s, nil, fmt.Errorf("port %d has no service port", idx)
	}
	if pl != nil && len(pl.templates) > 0 {
		s.Templates = pl.templates
	}
	// As marathon-lb: the port's own check makes it an http service only
	// when its protocol is HTTP (an HTTPS-checked app may be TLS
	// passthrough); a check borrowed from another port index does so for
	// any HTTP or HTTPS protocol, MESOS_ ones included.
	hc, proto, err := healthCheckFor(app, idx)
	if err != nil {
		return s, nil, err
	}
	httpCheck := proto == "HTTP"
	if hc == nil && s.HealthCheckPortIndex >= 0 {
		if hc, _, err = healthCheckFor(app, s.HealthCheckPortIndex); err != nil {
			return s, nil, err
		}
		httpCheck = hc.IsHTTP()
	}
	s.HealthCheck = hc
	if s.Mode == "" {
		if len(s.VHosts) > 0 || httpCheck {
			s.Mode = ModeHTTP
		} else {
			s.Mode = ModeTCP
		}
	}
	s.Backend = marathon.SafeID(app.ID) + "_" + strconv.Itoa(s.ServicePort)

	seen := make(map[string]bool, len(tasks))
	for _, lt := range tasks {
		if idx >= len(lt.ports) || lt.ports[idx] <= 0 {
			continue
		}
		ip := lt.ip
		if ip == lt.task.Host && b.opts.ResolveHost != nil && net.ParseIP(ip) == nil {
			// Asked only for the ports this LB serves, so that only
			// their hosts are looked up. A name that does not resolve
			// falls back to the address Mesos reported for the task.
			if resolved, ok := b.opts.ResolveHost(ip); ok {
				ip = resolved
			} else if own := firstTaskIP(lt.task); own != "" {
				ip = own
			} else {
				if !slices.Contains(unresolved, lt.task.Host) {
					unresolved = append(unresolved, lt.task.Host)
				}
				continue // the resolver logs the failure
			}
		}
		srv := Server{
			TaskID: lt.task.ID,
			Host:   lt.task.Host,
			IP:     ip,
			Port:   lt.ports[idx],
		}
		srv.Name = serverName(srv.Host, srv.IP, srv.Port)
		if seen[srv.Name] {
			continue
		}
		seen[srv.Name] = true
		switch {
		case s.HealthCheckPortIndex >= 0 && s.HealthCheckPortIndex < len(lt.ports):
			srv.HealthCheckPort = lt.ports[s.HealthCheckPortIndex]
		case hc != nil && hc.Port > 0:
			srv.HealthCheckPort = hc.Port
		}
		if srv.HealthCheckPort == srv.Port {
			srv.HealthCheckPort = 0
		}
		srv.Draining = b.draining[lt.task.ID]
		s.Servers = append(s.Servers, srv)
	}
	slices.SortFunc(s.Servers, func(x, y Server) int {
		if c := cmp.Compare(x.Host, y.Host); c != 0 {
			return c
		}
		if c := cmp.Compare(x.Port, y.Port); c != 0 {
			return c
		}
		return cmp.Compare(x.IP, y.IP)
	})
	taken := make(map[int]bool, len(s.Servers))
	for i := range s.Servers {
		s.Servers[i].ID = serverID(s.Servers[i].Name, taken)
	}
	slices.Sort(unresolved)
	return s, unresolved, nil
}

// firstTaskIP returns the task's first IPv4 ipAddresses entry (the
// templates write "ip:port"), else its first entry, else "".
func firstTaskIP(t *marathon.Task) string {
	first := ""
	for _, a := range t.IPAddresses {
		ip := net.ParseIP(a.IPAddress)
		if ip == nil {
			continue
		}
		if ip.To4() != nil {
			return a.IPAddress
		}
		if first == "" {
			first = a.IPAddress
		}
	}
	return first
}

// cleanName replaces every character other than ASCII letters, digits and
// '-' with '_', as marathon-lb does for server and ACL names.
func cleanName(s string) string {
	var sb strings.Builder
	sb.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' {
			sb.WriteByte(c)
		} else {
			sb.WriteByte('_')
		}
	}
	return sb.String()
}

// CleanName is cleanName for other packages: the HAProxy-safe form of a
// host name or app id used in ACL and server names.
func CleanName(s string) string { return cleanName(s) }

// serverName is "<ip>_<port>", or "<host>_<ip>_<port>" when the task has its
// own address, cleaned for HAProxy.
func serverName(host, ip string, port int) string {
	if host != ip {
		return cleanName(host + "_" + ip + "_" + strconv.Itoa(port))
	}
	return cleanName(ip + "_" + strconv.Itoa(port))
}

// serverID returns the id marathon-lb gives the server called name in a
// backend whose servers (sorted by host, then port) already hold taken: the
// SHA-256 of the name as a number, modulo 32767; when that is 0 or taken,
// the same for the name followed by a space and the hex digest, and so on.
// Equal ids mean HAProxy's server-state file and stats carry over between
// marathon-lb and lb. After 1000 rehashes (where marathon-lb would stop
// with a recursion error) the lowest free id is used.
func serverID(name string, taken map[int]bool) int {
	key := name
	for range 1000 {
		sum := sha256.Sum256([]byte(key))
		var id uint64 // the digest as a big-endian number, modulo 32767
		for i := 0; i < len(sum); i += 4 {
			id = (id<<32 | uint64(binary.BigEndian.Uint32(sum[i:]))) % 32767
		}
		if id > 0 && !taken[int(id)] {
			taken[int(id)] = true
			return int(id)
		}
		key += " " + hex.EncodeToString(sum[:])
	}
	for id := 1; id < 32767; id++ {
		if !taken[id] {
			taken[id] = true
			return id
		}
	}
	return 0
}

// wildcardAddr reports whether a bind address listens on every address.
func wildcardAddr(a string) bool {
	return a == "" || a == "*" || a == "0.0.0.0" || a == "::" || a == "[::]"
}

// resolvePortClashes drops services whose frontend would bind a port that
// is already taken, by the shared frontends or by another app, so that one
// app cannot make HAProxy refuse the whole configuration. Among apps, the
// services of the previous model (Options.PreviousBackends) come first, then
// the others in app id order.
func (b *builder) resolvePortClashes() {
	held := b.opts.PreviousBackends
	// Visit the held services first, then the others; each in id order.
	order := make([]int, 0, len(b.services))
	for _, wantHeld := range []bool{true, false} {
		for i := range b.services {
			if held[b.services[i].Backend] == wantHeld {
				order = append(order, i)
			}
		}
	}
	reserved := map[int]string{
		b.opts.StatsPort: "the stats listener",
		9091:             "marathon_http_appid_in",
	}
	if !b.opts.DontBindHTTPHTTPS {
		reserved[80] = "marathon_http_in"
		if len(b.opts.SSLCerts) > 0 {
			reserved[443] = "marathon_https_in"
		}
	}
	type bound struct{ addr, backend string }
	used := make(map[int][]bound)
	keep := make([]bool, len(b.services))
	for _, i := range order {
		s := &b.services[i]
		if who, ok := reserved[s.ServicePort]; ok {
			b.skip(s.AppID, s.PortIndex, false, "service port %d is used by %s", s.ServicePort, who)
			continue
		}
		clash := ""
		for _, u := range used[s.ServicePort] {
			if u.addr == s.BindAddr || wildcardAddr(u.addr) || wildcardAddr(s.BindAddr) {
				clash = u.backend
				break
			}
		}
		if clash != "" {
			if held[clash] && !held[s.Backend] {
				b.skip(s.AppID, s.PortIndex, false, "service port %d is already bound by %s, which held it before", s.ServicePort, clash)
			} else {
				b.skip(s.AppID, s.PortIndex, false, "service port %d is already bound by %s", s.ServicePort, clash)
			}
			continue
		}
		used[s.ServicePort] = append(used[s.ServicePort], bound{s.BindAddr, s.Backend})
		keep[i] = true
	}
	kept := b.services[:0]
	for i := range b.services {
		if keep[i] {
			kept = append(kept, b.services[i])
		}
	}
	b.services = kept
}
