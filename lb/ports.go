package lb

import (
	"crypto/sha1"
	"encoding/binary"
	"strconv"

	"github.com/switchyard/switchyard/marathon"
)

// Networking modes, as marathon-lb derives them from an app definition.
const (
	netHost      = "host"
	netBridge    = "container/bridge"
	netContainer = "container"
)

// networkingMode returns host by default; container when the app has an
// ipAddress or a docker USER network; container/bridge for docker BRIDGE;
// and the mode of the last networks[] entry when there is one.
func networkingMode(app *marathon.App) string {
	mode := netHost
	if app.IPAddress != nil {
		mode = netContainer
	}
	if app.Container != nil && app.Container.Docker != nil {
		switch app.Container.Docker.Network {
		case "USER":
			mode = netContainer
		case "BRIDGE":
			mode = netBridge
		}
	}
	for _, n := range app.Networks {
		if n.Mode == "" {
			mode = netContainer
		} else {
			mode = n.Mode
		}
	}
	return mode
}

// portMappings returns docker.portMappings when present, else
// container.portMappings.
func portMappings(app *marathon.App) []marathon.PortMapping {
	if app.Container == nil {
		return nil
	}
	if app.Container.Docker != nil && len(app.Container.Docker.PortMappings) > 0 {
		return app.Container.Docker.PortMappings
	}
	return app.Container.PortMappings
}

// portDefinitionPorts returns portDefinitions[].port, else ports.
func portDefinitionPorts(app *marathon.App) []int {
	if len(app.PortDefinitions) > 0 {
		out := make([]int, len(app.PortDefinitions))
		for i, p := range app.PortDefinitions {
			out[i] = p.Port
		}
		return out
	}
	return app.Ports
}

// containerPorts returns the ports an IP-per-task app listens on:
// ipAddress.discovery ports, else the containerPorts of its port mappings.
func containerPorts(app *marathon.App) []int {
	if app.IPAddress != nil && app.IPAddress.Discovery != nil && len(app.IPAddress.Discovery.Ports) > 0 {
		out := make([]int, len(app.IPAddress.Discovery.Ports))
		for i, p := range app.IPAddress.Discovery.Ports {
			out[i] = p.Number
		}
		return out
	}
	pms := portMappings(app)
	out := make([]int, len(pms))
	for i, p := range pms {
		out[i] = p.ContainerPort
	}
	return out
}

// portAssigner gives IP-per-task apps without service ports a port from
// [lo, hi] the way marathon-lb's ServicePortAssigner does, so that lb and
// marathon-lb instances agree: try i (0..49) takes the first 4 bytes of the
// SHA-1 of "<app id>-<container port>-<i>" as a number, modulo the range
// size, from lo; a port already given goes on to the next try, then to the
// lowest free port. The same (app id, container port) always gets the same
// port within one Build; ports depend on the order apps are fed in
// (Marathon's listing order, as in marathon-lb).
type portAssigner struct {
	lo, hi int
	byKey  map[assignKey]int // 0: none (range exhausted)
	used   map[int]bool
}

type assignKey struct {
	appID string
	port  int
}

func newPortAssigner(lo, hi int) *portAssigner {
	return &portAssigner{lo: lo, hi: hi, byKey: make(map[assignKey]int), used: make(map[int]bool)}
}

// assign returns a port for (appID, containerPort), or 0 when the range is
// exhausted or empty.
func (a *portAssigner) assign(appID string, containerPort int) int {
	key := assignKey{appID, containerPort}
	if p := a.byKey[key]; p != 0 {
		return p
	}
	p := a.next(appID, containerPort)
	a.byKey[key] = p // an exhausted request counts too, as in marathon-lb
	if p != 0 {
		a.used[p] = true
	}
	return p
}

func (a *portAssigner) next(appID string, containerPort int) int {
	size := a.hi - a.lo + 1
	if a.lo <= 0 || a.hi <= 0 || size <= 0 || len(a.byKey) >= size {
		return 0
	}
	const maxClashes = 50 // marathon-lb's MAX_CLASHES
	prefix := appID + "-" + strconv.Itoa(containerPort) + "-"
	for try := range maxClashes {
		sum := sha1.Sum([]byte(prefix + strconv.Itoa(try)))
		p := a.lo + int(uint64(binary.BigEndian.Uint32(sum[:4]))%uint64(size))
		if !a.used[p] {
			return p
		}
	}
	for p := a.lo; p <= a.hi; p++ {
		if !a.used[p] {
			return p
		}
	}
	return 0
}

// servicePorts returns the app's service ports by port index, as
// marathon-lb finds them: in the two container modes the port mappings'
// service ports when any is set; else portDefinitions (or ports). An
// IP-per-task (container mode) app with none at all and at least one task
// gets one per container port from the assigner. A 0 entry means "none".
func servicePorts(app *marathon.App, mode string, a *portAssigner) []int {
	if mode == netContainer || mode == netBridge {
		pms := portMappings(app)
		out := make([]int, len(pms))
		set := false
		for i, pm := range pms {
			out[i] = pm.ServicePort
			set = set || pm.ServicePort != 0
		}
		if set {
			return out
		}
	}
	if ports := portDefinitionPorts(app); len(ports) > 0 {
		return append([]int(nil), ports...)
	}
	if mode == netContainer && len(app.Tasks) > 0 {
		cps := containerPorts(app)
		out := make([]int, len(cps))
		for i, cp := range cps {
			out[i] = a.assign(app.ID, cp)
		}
		return out
	}
	return nil
}

// taskAddress returns the address and ports HAProxy uses to reach a task,
// or ok=false when the task has none yet.
func taskAddress(app *marathon.App, t *marathon.Task, mode string) (ip string, ports []int, ok bool) {
	switch mode {
	case netContainer:
		if len(t.IPAddresses) == 0 || t.IPAddresses[0].IPAddress == "" {
			return "", nil, false
		}
		ip = t.IPAddresses[0].IPAddress
		ports = containerPorts(app)
	default:
		// Host and bridge networking: the agent's address and the task's
		// host ports. A task without ports is not routable, except for a
		// host-mode app with requirePorts, whose ports are its
		// portDefinitions.
		ip = t.Host
		ports = t.Ports
		if len(ports) == 0 && mode == netHost && app.RequirePorts {
			ports = portDefinitionPorts(app)
		}
	}
	if ip == "" || len(ports) == 0 {
		return "", nil, false
	}
	return ip, ports, true
}
