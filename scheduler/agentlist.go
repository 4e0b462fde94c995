package scheduler

import (
	"context"
	"time"
)

// AgentResources is an amount of CPU, memory (MiB) and disk (MiB).
type AgentResources struct {
	CPUs float64 `json:"cpus"`
	Mem  float64 `json:"mem"`
	Disk float64 `json:"disk"`
}

// AgentPortRange is an inclusive range of host ports an agent offers.
type AgentPortRange struct {
	Begin int `json:"begin"`
	End   int `json:"end"`
}

// AgentTask is one task placed on an agent.
type AgentTask struct {
	ID    string `json:"id"`
	AppID string `json:"appId"`
	State string `json:"state"`
	Ports []int  `json:"ports"`
}

// AgentInfo is the read-only view of one registered agent that the web UI
// lists (GET /ui/api/agents).
type AgentInfo struct {
	ID         string            `json:"id"`
	Hostname   string            `json:"hostname"`
	Address    string            `json:"address"`
	Attributes map[string]string `json:"attributes"`
	Resources  AgentResources    `json:"resources"`
	Used       AgentResources    `json:"used"`
	Ports      []AgentPortRange  `json:"ports"`
	// Reachable is false when the agent has not been heard from since this
	// scheduler started or missed its heartbeat deadline.
	Reachable  bool        `json:"reachable"`
	Registered time.Time   `json:"registered"`
	LastSeen   *time.Time  `json:"lastSeen,omitempty"`
	Tasks      []AgentTask `json:"tasks"`
}

// Agents lists the registered agents with the resources their tasks use
// and those tasks (tasks being killed included until they end).
func (s *Scheduler) Agents(context.Context) ([]AgentInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	byAgent := map[string][]AgentTask{}
	used := map[string]AgentResources{}
	for _, t := range s.store.Tasks() {
		ports := t.HostPorts
		if ports == nil {
			ports = []int{}
		}
		byAgent[t.AgentID] = append(byAgent[t.AgentID], AgentTask{ID: t.ID, AppID: t.AppID, State: t.State, Ports: ports})
		if def := s.appDef(t.AppID, t.Version); def != nil {
			u := used[t.AgentID]
			u.CPUs += def.CPUs
			u.Mem += def.Mem
			u.Disk += def.Disk
			used[t.AgentID] = u
		}
	}
	out := []AgentInfo{}
	for _, a := range s.store.Agents() {
		info := AgentInfo{
			ID: a.ID, Hostname: a.Hostname, Address: a.Address, Attributes: a.Attributes,
			Resources: AgentResources{CPUs: a.CPUs, Mem: a.Mem, Disk: a.Disk}, Used: used[a.ID],
			Ports: []AgentPortRange{}, Registered: a.Registered, Tasks: byAgent[a.ID],
		}
		if info.Attributes == nil {
			info.Attributes = map[string]string{}
		}
		if info.Tasks == nil {
			info.Tasks = []AgentTask{}
		}
		for _, r := range a.Ports {
			info.Ports = append(info.Ports, AgentPortRange{Begin: r.Begin, End: r.End})
		}
		if l := s.live[a.ID]; l != nil && l.seen {
			info.Reachable = !l.unreachable
			seen := l.lastSeen
			info.LastSeen = &seen
		}
		out = append(out, info)
	}
	return out, nil
}
