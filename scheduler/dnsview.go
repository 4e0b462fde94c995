package scheduler

import "context"

// AgentAddress is what the DNS name table needs to know of an agent.
type AgentAddress struct {
	ID       string
	Hostname string
	// Address is the agent's IP address or, when it registered without
	// one, its hostname.
	Address string
}

// AgentAddresses lists the agents that are registered and reachable
// (read-only; scheduler/dns builds slave.<domain> records from it).
func (s *Scheduler) AgentAddresses(context.Context) []AgentAddress {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []AgentAddress
	for _, a := range s.store.Agents() {
		if l := s.live[a.ID]; l != nil && l.unreachable {
			continue
		}
		out = append(out, AgentAddress{ID: a.ID, Hostname: a.Hostname, Address: a.Address})
	}
	return out
}
