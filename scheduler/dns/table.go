package dns

import (
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/switchyard/switchyard/marathon"
)

// Snapshot is what the name table is built from: every app with its tasks
// (as GET /v2/apps?embed=apps.tasks shows them), the agents and the
// leading scheduler. Host names are already resolved to addresses.
type Snapshot struct {
	Apps   []marathon.App
	Agents []Agent
	// Leader is the scheduler's address; LeaderPort its API port (0:
	// no SRV records for it).
	Leader     []netip.Addr
	LeaderPort int
}

// Agent is one agent: its id, hostname and addresses.
type Agent struct {
	ID       string
	Hostname string
	IPs      []netip.Addr
}

// rrset holds the records of one name.
type rrset struct {
	a, aaaa []netip.Addr
	srv     []srvTarget
}

// srvTarget is the target host and port of one SRV record.
type srvTarget struct {
	target string
	port   uint16
}

// table is an immutable name table: queries read it without locks; a
// change builds a new one.
type table struct {
	names map[string]*rrset
	// ents are the empty non-terminals: names with no records of their
	// own but names below them (marathon.<domain>, _tcp.marathon...):
	// they exist, so a query for them gets NOERROR with no data.
	ents map[string]struct{}
	// tasks counts the tasks that made it into the table.
	tasks int
}

// tableBuilder builds a table for one domain.
type tableBuilder struct {
	t           *table
	domain      string // "mesos." (lower case, fully qualified)
	framework   string // "marathon"
	fwSuffix    string // ".marathon.mesos."
	slaveSuffix string // ".marathon.slave.mesos."
}

func newTableBuilder(domain, framework string, sizeHint int) *tableBuilder {
	return &tableBuilder{
		t:           &table{names: make(map[string]*rrset, sizeHint), ents: map[string]struct{}{}},
		domain:      domain,
		framework:   framework,
		fwSuffix:    "." + domainFrag(framework) + "." + domain,
		slaveSuffix: "." + domainFrag(framework) + ".slave." + domain,
	}
}

func (b *tableBuilder) set(name string) *rrset {
	rs := b.t.names[name]
	if rs == nil {
		rs = &rrset{}
		b.t.names[name] = rs
	}
	return rs
}

// addIP adds an A or AAAA record unless it is there already.
func (b *tableBuilder) addIP(name string, ip netip.Addr) {
	ip = ip.Unmap()
	if !ip.IsValid() {
		return
	}
	rs := b.set(name)
	if ip.Is4() {
		if !slices.Contains(rs.a, ip) {
			rs.a = append(rs.a, ip)
		}
		return
	}
	if !slices.Contains(rs.aaaa, ip) {
		rs.aaaa = append(rs.aaaa, ip)
	}
}

func (b *tableBuilder) addIPs(name string, ips []netip.Addr) {
	for _, ip := range ips {
		b.addIP(name, ip)
	}
}

// addSRV adds an SRV record unless it is there already.
func (b *tableBuilder) addSRV(name, target string, port int) {
	if port <= 0 || port > 65535 {
		return
	}
	rs := b.set(name)
	t := srvTarget{target: target, port: uint16(port)}
	if !slices.Contains(rs.srv, t) {
		rs.srv = append(rs.srv, t)
	}
}

// fqdn joins labels and the domain.
func (b *tableBuilder) fqdn(labels ...string) string {
	return strings.Join(labels, ".") + "." + b.domain
}

// finish computes the empty non-terminals and returns the table.
func (b *tableBuilder) finish() *table {
	for name := range b.t.names {
		for p := parent(name); p != "" && p != b.domain && len(p) > len(b.domain); p = parent(p) {
			if _, ok := b.t.names[p]; ok {
				continue
			}
			b.t.ents[p] = struct{}{}
		}
	}
	return b.t
}

// parent drops the first label of a fully qualified name.
func parent(name string) string {
	if i := strings.IndexByte(name, '.'); i >= 0 && i+1 < len(name) {
		return name[i+1:]
	}
	return ""
}

// The names of the table (buildCached builds them) are Mesos-DNS's (see
// docs/dns.md): per running task of app T, framework F and domain D
//
//	T.F.D                      A/AAAA: the task's addresses
//	T-<hash>-<agent>.F.D       A/AAAA: the same, one name per task
//	T.F.slave.D, T-...F.slave.D A/AAAA: the agents' addresses
//	_T._tcp.F.D (and _udp)     SRV: each port -> T-<hash>-<agent>.F.D
//	_<port name>._T._tcp.F.D   SRV: the same, for named ports
//	_T._tcp.F.slave.D, _udp    SRV: each host port -> T-...F.slave.D
//
// and leader.D, master.D, master0.D, _leader._tcp.D, _leader._udp.D, F.D,
// _framework._tcp.F.D, slave.D, <agent hostname>.slave.D and ns1.D.

// app adds the records of one app's tasks that are running (and healthy,
// when the app has health checks).
func (b *tableBuilder) app(app *marathon.App, agents map[string]Agent) {
	name := taskName(app.ID)
	if name == "" {
		return
	}
	perTask := ipPerTask(app)
	ports := portSpecs(app)
	// The app's names, made once: tasks share them.
	var (
		fwSuffix    = b.fwSuffix // ".marathon.mesos."
		slaveSuffix = b.slaveSuffix
		nameA       = name + fwSuffix
		nameSlaveA  = name + slaveSuffix
		srvTCPSlave = "_" + name + "._tcp" + slaveSuffix
		srvUDPSlave = "_" + name + "._udp" + slaveSuffix
		srvNames    = map[[2]string]string{} // port name, proto -> SRV name
	)
	srvName := func(portName, proto string) string {
		key := [2]string{portName, proto}
		n, ok := srvNames[key]
		if !ok {
			n = "_" + name + "._" + proto + fwSuffix
			if portName != "" {
				n = "_" + portName + "." + n
			}
			srvNames[key] = n
		}
		return n
	}
	for i := range app.Tasks {
		t := &app.Tasks[i]
		if t.State != marathon.TaskRunning || (len(app.HealthChecks) > 0 && !healthy(t)) {
			continue
		}
		agentIPs := agents[t.SlaveID].IPs
		if len(agentIPs) == 0 {
			agentIPs = parseIPs(t.Host)
		}
		taskIPs := agentIPs
		if perTask || len(taskIPs) == 0 {
			if ips := taskAddrs(t); len(ips) > 0 {
				taskIPs = ips
			}
		}
		if len(agentIPs) == 0 {
			agentIPs = taskIPs
		}
		if len(taskIPs) == 0 {
			continue // nowhere to point at
		}
		b.t.tasks++
		canonical := name + "-" + taskHash(t.ID) + "-" + agentTail(t.SlaveID)
		target, slaveTarget := canonical+fwSuffix, canonical+slaveSuffix
		b.addIPs(nameA, taskIPs)
		b.addIPs(target, taskIPs)
		b.addIPs(nameSlaveA, agentIPs)
		b.addIPs(slaveTarget, agentIPs)

		// Discovery ports (Marathon's DiscoveryInfo): host ports, or the
		// container ports of an IP-per-task app, with their protocols and
		// names; the target is the task's own name.
		for _, p := range discoveryPorts(perTask, ports, t.Ports) {
			for _, proto := range p.protocols {
				b.addSRV(srvName("", proto), target, p.number)
				if p.name != "" {
					b.addSRV(srvName(p.name, proto), target, p.number)
				}
			}
		}
		// Resource ports: every host port, tcp and udp, on the agent.
		for _, hp := range t.Ports {
			b.addSRV(srvTCPSlave, slaveTarget, hp)
			b.addSRV(srvUDPSlave, slaveTarget, hp)
		}
	}
}

// healthy reports whether a task has health results and all are alive.
func healthy(t *marathon.Task) bool {
	if len(t.HealthCheckResults) == 0 {
		return false
	}
	for _, h := range t.HealthCheckResults {
		if !h.Alive {
			return false
		}
	}
	return true
}

// ipPerTask reports whether the app's tasks get their own IP address (a
// container network, or the pre-1.5 ipAddress field).
func ipPerTask(app *marathon.App) bool {
	if app.IPAddress != nil {
		return true
	}
	for _, n := range app.Networks {
		if n.Mode == "container" {
			return true
		}
	}
	return false
}

// portSpec is one port of an app definition.
type portSpec struct {
	number    int // container port (0: not known)
	name      string
	protocols []string
}

// portSpecs lists the app's ports in order: port mappings, the pre-1.5
// ipAddress discovery ports, or port definitions.
func portSpecs(app *marathon.App) []portSpec {
	var out []portSpec
	var mappings []marathon.PortMapping
	if c := app.Container; c != nil {
		mappings = c.PortMappings
		if len(mappings) == 0 && c.Docker != nil {
			mappings = c.Docker.PortMappings
		}
	}
	switch {
	case len(mappings) > 0:
		for _, m := range mappings {
			out = append(out, portSpec{number: m.ContainerPort, name: label(m.Name), protocols: protocols(m.Protocol)})
		}
	case app.IPAddress != nil && app.IPAddress.Discovery != nil:
		for _, p := range app.IPAddress.Discovery.Ports {
			out = append(out, portSpec{number: p.Number, name: label(p.Name), protocols: protocols(p.Protocol)})
		}
	default:
		for _, p := range app.PortDefinitions {
			out = append(out, portSpec{name: label(p.Name), protocols: protocols(p.Protocol)})
		}
	}
	return out
}

// discoveryPorts pairs a task's ports with the app's port specs: host
// ports by position, or for IP-per-task apps the container ports.
func discoveryPorts(perTask bool, specs []portSpec, hostPorts []int) []portSpec {
	if perTask {
		var out []portSpec
		for _, s := range specs {
			if s.number > 0 {
				out = append(out, s)
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	out := make([]portSpec, 0, len(hostPorts))
	for i, hp := range hostPorts {
		p := portSpec{number: hp, protocols: []string{"tcp"}}
		if i < len(specs) {
			p.name, p.protocols = specs[i].name, specs[i].protocols
		}
		out = append(out, p)
	}
	return out
}

// protocols splits Marathon's "tcp", "udp" or "udp,tcp" (default tcp).
func protocols(s string) []string {
	var out []string
	for p := range strings.SplitSeq(strings.ToLower(s), ",") {
		if p = strings.TrimSpace(p); (p == "tcp" || p == "udp") && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		out = []string{"tcp"}
	}
	return out
}

// taskAddrs parses a task's IP addresses.
func taskAddrs(t *marathon.Task) []netip.Addr {
	var out []netip.Addr
	for _, ip := range t.IPAddresses {
		if a, err := netip.ParseAddr(ip.IPAddress); err == nil {
			out = append(out, a.Unmap())
		}
	}
	return out
}

// parseIPs returns s as an address when it is one ("" or a hostname: nil).
func parseIPs(s string) []netip.Addr {
	if a, err := netip.ParseAddr(s); err == nil {
		return []netip.Addr{a.Unmap()}
	}
	return nil
}

// splitPort splits "host:port" (port 0 when absent or bad).
func splitPort(hostport string) (string, int) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport, 0
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return host, 0
	}
	return host, p
}
