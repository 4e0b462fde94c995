// Package placement decides where a task goes: it picks an agent and host
// ports for one task from the agents' resources, the resources already used
// by placed tasks, and the app's constraints. It is pure: it performs no I/O
// and keeps no state beyond the Cluster value a caller builds for one
// scheduling pass. Randomness (the dynamic host port start position) comes
// from an injected *rand.Rand so results are reproducible in tests.
package placement

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// PortRange is an inclusive range of host ports an agent offers.
type PortRange struct {
	Begin int
	End   int
}

// Agent is one node that can run tasks, with what it offers.
type Agent struct {
	ID         string
	Hostname   string
	Attributes map[string]string
	CPUs       float64
	Mem        float64
	Disk       float64
	Ports      []PortRange
}

// Task is a task already placed on an agent; it uses resources and ports.
type Task struct {
	AgentID   string
	AppID     string
	CPUs      float64
	Mem       float64
	Disk      float64
	HostPorts []int
}

// PortKind says how a requested port gets its host port.
type PortKind int

// Port kinds.
const (
	// PortDynamic takes any free port from the agent's ranges.
	PortDynamic PortKind = iota
	// PortFixed needs exactly Port, offered by the agent and free.
	PortFixed
	// PortNone binds no host port (container network without hostPort).
	PortNone
)

// PortRequest is one port of a task, in port-index order.
type PortRequest struct {
	Kind PortKind
	Port int
}

// Request describes one task to place.
type Request struct {
	AppID       string
	CPUs        float64
	Mem         float64
	Disk        float64
	Ports       []PortRequest
	Constraints [][]string
}

// Placement is where a task goes: the agent and its host ports, in the
// order of Request.Ports (0 for PortNone entries).
type Placement struct {
	AgentID   string
	HostPorts []int
}

// Reject reasons, named like Marathon's queue reject summary.
const (
	ReasonCPUs       = "InsufficientCpus"
	ReasonMem        = "InsufficientMemory"
	ReasonDisk       = "InsufficientDisk"
	ReasonPorts      = "InsufficientPorts"
	ReasonConstraint = "UnfulfilledConstraint"
)

// ErrNoAgents is returned when the cluster has no agent at all.
var ErrNoAgents = errors.New("no agents available")

// NoFitError says no agent could take a task, with how many agents
// rejected it for each reason.
type NoFitError struct {
	Reasons map[string]int
	// Agents is how many agents were considered (all rejected it).
	Agents int
	// Best is what the agent with the most free CPUs (then memory) had
	// left, for telling operators how far off the request is.
	Best Free
}

// Free is what one agent has left.
type Free struct {
	AgentID  string
	Hostname string
	CPUs     float64
	Mem      float64
	Disk     float64
	// Ports is how many of its host ports are free.
	Ports int
}

// free returns what a has left.
func (a *agentState) free() Free {
	ports := 0
	for _, r := range a.Ports {
		ports += r.End - r.Begin + 1
	}
	for p := range a.ports {
		if offers(a, p) {
			ports--
		}
	}
	return Free{AgentID: a.ID, Hostname: a.Hostname, CPUs: a.CPUs - a.cpus, Mem: a.Mem - a.mem, Disk: a.Disk - a.disk, Ports: ports}
}

// Error implements error.
func (e *NoFitError) Error() string {
	keys := make([]string, 0, len(e.Reasons))
	for k := range e.Reasons {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, e.Reasons[k]))
	}
	return "no agent fits: " + strings.Join(parts, ", ")
}

type agentState struct {
	Agent
	cpus, mem, disk float64 // used
	ports           map[int]bool
	perApp          map[string]int
	total           int
}

// Cluster is the resource ledger of one scheduling pass. Place records each
// placement so later placements in the same pass see it. A Cluster is not
// safe for concurrent use.
type Cluster struct {
	agents []*agentState
	byID   map[string]*agentState
	rnd    *rand.Rand
	// regexps caches compiled LIKE/UNLIKE patterns.
	regexps map[string]*regexp.Regexp
}

// NewCluster builds the ledger from the agents and the tasks already placed.
// Tasks on unknown agents are ignored.
func NewCluster(agents []Agent, tasks []Task, rnd *rand.Rand) *Cluster {
	c := &Cluster{byID: make(map[string]*agentState, len(agents)), rnd: rnd, regexps: map[string]*regexp.Regexp{}}
	for _, a := range agents {
		st := &agentState{Agent: a, ports: map[int]bool{}, perApp: map[string]int{}}
		c.agents = append(c.agents, st)
		c.byID[a.ID] = st
	}
	sort.Slice(c.agents, func(i, j int) bool { return c.agents[i].ID < c.agents[j].ID })
	for _, t := range tasks {
		c.Add(t)
	}
	return c
}

// Add records a task as using resources on its agent.
func (c *Cluster) Add(t Task) {
	a, ok := c.byID[t.AgentID]
	if !ok {
		return
	}
	a.cpus += t.CPUs
	a.mem += t.Mem
	a.disk += t.Disk
	for _, p := range t.HostPorts {
		if p > 0 {
			a.ports[p] = true
		}
	}
	a.perApp[t.AppID]++
	a.total++
}

// Place picks an agent and host ports for req and records the result in the
// ledger. Among the agents that fit, it prefers the one with the fewest
// tasks of the same app, then the fewest tasks, then the smallest id.
func (c *Cluster) Place(req Request) (Placement, error) {
	if len(c.agents) == 0 {
		return Placement{}, ErrNoAgents
	}
	reasons := map[string]int{}
	var best *agentState
	var bestPorts []int
	for _, a := range c.agents {
		ports, reason := c.fits(a, req)
		if reason != "" {
			reasons[reason]++
			continue
		}
		if best == nil || better(a, best, req.AppID) {
			best, bestPorts = a, ports
		}
	}
	if best == nil {
		nf := &NoFitError{Reasons: reasons, Agents: len(c.agents)}
		for i, a := range c.agents {
			f := a.free()
			if i == 0 || f.CPUs > nf.Best.CPUs+epsilon || (f.CPUs > nf.Best.CPUs-epsilon && f.Mem > nf.Best.Mem) {
				nf.Best = f
			}
		}
		return Placement{}, nf
	}
	c.Add(Task{AgentID: best.ID, AppID: req.AppID, CPUs: req.CPUs, Mem: req.Mem, Disk: req.Disk, HostPorts: bestPorts})
	return Placement{AgentID: best.ID, HostPorts: bestPorts}, nil
}

func better(a, b *agentState, app string) bool {
	if a.perApp[app] != b.perApp[app] {
		return a.perApp[app] < b.perApp[app]
	}
	if a.total != b.total {
		return a.total < b.total
	}
	return a.ID < b.ID
}

const epsilon = 1e-9

// fits returns the host ports req would get on a, or a reject reason.
func (c *Cluster) fits(a *agentState, req Request) ([]int, string) {
	switch {
	case a.cpus+req.CPUs > a.CPUs+epsilon:
		return nil, ReasonCPUs
	case a.mem+req.Mem > a.Mem+epsilon:
		return nil, ReasonMem
	case a.disk+req.Disk > a.Disk+epsilon:
		return nil, ReasonDisk
	}
	for _, con := range req.Constraints {
		if !c.satisfies(a, req.AppID, con) {
			return nil, ReasonConstraint
		}
	}
	ports, ok := c.pickPorts(a, req.Ports)
	if !ok {
		return nil, ReasonPorts
	}
	return ports, ""
}

func offers(a *agentState, p int) bool {
	for _, r := range a.Ports {
		if p >= r.Begin && p <= r.End {
			return true
		}
	}
	return false
}

// pickPorts assigns host ports: fixed ones must be offered and free;
// dynamic ones are taken consecutively from a random start position in the
// agent's ranges (wrapping), so a just-freed port is rarely reused at once.
func (c *Cluster) pickPorts(a *agentState, reqs []PortRequest) ([]int, bool) {
	out := make([]int, len(reqs))
	taken := map[int]bool{}
	dynamic := 0
	for i, r := range reqs {
		switch r.Kind {
		case PortFixed:
			if r.Port <= 0 || !offers(a, r.Port) || a.ports[r.Port] || taken[r.Port] {
				return nil, false
			}
			out[i] = r.Port
			taken[r.Port] = true
		case PortDynamic:
			dynamic++
		}
	}
	if dynamic == 0 {
		return out, true
	}
	size := 0
	for _, r := range a.Ports {
		if r.End >= r.Begin {
			size += r.End - r.Begin + 1
		}
	}
	if size == 0 {
		return nil, false
	}
	start := 0
	if c.rnd != nil {
		start = c.rnd.IntN(size)
	}
	free := make([]int, 0, dynamic)
	for k := 0; k < size && len(free) < dynamic; k++ {
		p := nthPort(a.Ports, (start+k)%size)
		if p <= 0 || a.ports[p] || taken[p] {
			continue
		}
		free = append(free, p)
		taken[p] = true
	}
	if len(free) < dynamic {
		return nil, false
	}
	j := 0
	for i, r := range reqs {
		if r.Kind == PortDynamic {
			out[i] = free[j]
			j++
		}
	}
	return out, true
}

func nthPort(ranges []PortRange, n int) int {
	for _, r := range ranges {
		if r.End < r.Begin {
			continue
		}
		w := r.End - r.Begin + 1
		if n < w {
			return r.Begin + n
		}
		n -= w
	}
	return 0
}

// fieldValue returns the agent's value for a constraint field.
func fieldValue(a *agentState, field string) (string, bool) {
	if field == "hostname" || field == "@hostname" {
		return a.Hostname, true
	}
	v, ok := a.Attributes[strings.TrimPrefix(field, "@")]
	return v, ok
}

// counts returns how many tasks of app run per value of field.
func (c *Cluster) counts(app, field string) map[string]int {
	m := map[string]int{}
	for _, a := range c.agents {
		if v, ok := fieldValue(a, field); ok && a.perApp[app] > 0 {
			m[v] += a.perApp[app]
		}
	}
	return m
}

func (c *Cluster) regexp(pattern string) (*regexp.Regexp, error) {
	if re, ok := c.regexps[pattern]; ok {
		return re, nil
	}
	re, err := regexp.Compile("^(?:" + pattern + ")$")
	if err != nil {
		return nil, fmt.Errorf("constraint regex %q: %w", pattern, err)
	}
	c.regexps[pattern] = re
	return re, nil
}

// satisfies reports whether placing one more task of app on a keeps the
// constraint. Malformed constraints are never satisfied (validation rejects
// them before they reach the scheduler).
func (c *Cluster) satisfies(a *agentState, app string, con []string) bool {
	if len(con) < 2 {
		return false
	}
	field, op := con[0], strings.ToUpper(con[1])
	value := ""
	if len(con) > 2 {
		value = con[2]
	}
	v, has := fieldValue(a, field)
	if op == "UNLIKE" {
		if !has {
			return true
		}
		re, err := c.regexp(value)
		return err == nil && !re.MatchString(v)
	}
	if !has {
		return false
	}
	switch op {
	case "UNIQUE":
		return c.counts(app, field)[v] == 0
	case "CLUSTER":
		if value != "" {
			return v == value
		}
		for placed := range c.counts(app, field) {
			return v == placed
		}
		return true
	case "IS":
		return v == value
	case "LIKE":
		re, err := c.regexp(value)
		return err == nil && re.MatchString(v)
	case "MAX_PER":
		n, err := strconv.Atoi(value)
		return err == nil && c.counts(app, field)[v] < n
	case "GROUP_BY":
		return c.groupByOK(a, app, field, v, value)
	}
	return false
}

// groupByOK keeps the tasks of app evenly spread over the values of field:
// v must be among the least loaded values. Values known from the agents
// count, and when an expected number of values is given and more values are
// expected than agents show, an unseen value counts as 0.
func (c *Cluster) groupByOK(_ *agentState, app, field, v, expected string) bool {
	counts := c.counts(app, field)
	values := map[string]bool{}
	for _, a := range c.agents {
		if x, ok := fieldValue(a, field); ok {
			values[x] = true
		}
	}
	minCount := -1
	for x := range values {
		if n := counts[x]; minCount < 0 || n < minCount {
			minCount = n
		}
	}
	if k, err := strconv.Atoi(expected); err == nil && k > len(values) {
		minCount = 0
	}
	return counts[v] <= minCount
}
