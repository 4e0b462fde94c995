package placement

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func agent(id string, attrs ...string) Agent {
	a := Agent{ID: id, Hostname: id + ".local", CPUs: 4, Mem: 4096, Disk: 1000,
		Ports: []PortRange{{Begin: 31000, End: 31009}}, Attributes: map[string]string{}}
	for i := 0; i+1 < len(attrs); i += 2 {
		a.Attributes[attrs[i]] = attrs[i+1]
	}
	return a
}

func req(app string, cons ...[]string) Request {
	return Request{AppID: app, CPUs: 1, Mem: 128, Ports: []PortRequest{{Kind: PortDynamic}}, Constraints: cons}
}

func TestPlaceSequence(t *testing.T) {
	three := []Agent{agent("a", "rack", "r1"), agent("b", "rack", "r1"), agent("c", "rack", "r2")}
	tests := []struct {
		name     string
		agents   []Agent
		existing []Task
		reqs     []Request
		want     []string // agent id per request, "" = no fit
		reason   string   // reason expected in the last failure
	}{
		{name: "spread over agents", agents: three, reqs: []Request{req("/w"), req("/w"), req("/w")}, want: []string{"a", "b", "c"}},
		{name: "unique hostname", agents: three,
			reqs: []Request{req("/w", []string{"hostname", "UNIQUE"}), req("/w", []string{"hostname", "UNIQUE"}), req("/w", []string{"hostname", "UNIQUE"}), req("/w", []string{"hostname", "UNIQUE"})},
			want: []string{"a", "b", "c", ""}, reason: ReasonConstraint},
		{name: "unique attribute", agents: three,
			reqs: []Request{req("/w", []string{"rack", "UNIQUE"}), req("/w", []string{"rack", "UNIQUE"}), req("/w", []string{"rack", "UNIQUE"})},
			want: []string{"a", "c", ""}, reason: ReasonConstraint},
		{name: "cluster with value", agents: three,
			reqs: []Request{req("/w", []string{"rack", "CLUSTER", "r2"}), req("/w", []string{"rack", "CLUSTER", "r2"})},
			want: []string{"c", "c"}},
		{name: "cluster without value follows first", agents: three,
			reqs: []Request{req("/w", []string{"rack", "CLUSTER"}), req("/w", []string{"rack", "CLUSTER"}), req("/w", []string{"rack", "CLUSTER"})},
			want: []string{"a", "b", "a"}},
		{name: "like", agents: three,
			reqs: []Request{req("/w", []string{"hostname", "LIKE", "[bc]\\.local"}), req("/w", []string{"hostname", "LIKE", "[bc]\\.local"})},
			want: []string{"b", "c"}},
		{name: "like is a full match", agents: three,
			reqs: []Request{req("/w", []string{"hostname", "LIKE", "b"})}, want: []string{""}, reason: ReasonConstraint},
		{name: "unlike", agents: three,
			reqs: []Request{req("/w", []string{"rack", "UNLIKE", "r1"}), req("/w", []string{"rack", "UNLIKE", "r1"})},
			want: []string{"c", "c"}},
		{name: "unlike passes missing attribute", agents: []Agent{agent("a")},
			reqs: []Request{req("/w", []string{"rack", "UNLIKE", "r1"})}, want: []string{"a"}},
		{name: "missing attribute fails like", agents: []Agent{agent("a")},
			reqs: []Request{req("/w", []string{"rack", "LIKE", "r1"})}, want: []string{""}, reason: ReasonConstraint},
		{name: "max per", agents: three,
			reqs: []Request{req("/w", []string{"rack", "MAX_PER", "1"}), req("/w", []string{"rack", "MAX_PER", "1"}), req("/w", []string{"rack", "MAX_PER", "1"})},
			want: []string{"a", "c", ""}, reason: ReasonConstraint},
		{name: "group by evens racks", agents: three,
			reqs: []Request{req("/w", []string{"rack", "GROUP_BY"}), req("/w", []string{"rack", "GROUP_BY"}), req("/w", []string{"rack", "GROUP_BY"}), req("/w", []string{"rack", "GROUP_BY"})},
			want: []string{"a", "c", "b", "c"}},
		{name: "is", agents: three,
			reqs: []Request{req("/w", []string{"rack", "IS", "r1"})}, want: []string{"a"}},
		{name: "other apps do not count for unique", agents: []Agent{agent("a")},
			existing: []Task{{AgentID: "a", AppID: "/other", CPUs: 1}},
			reqs:     []Request{req("/w", []string{"hostname", "UNIQUE"})}, want: []string{"a"}},
		{name: "cpus exhausted", agents: []Agent{agent("a")},
			existing: []Task{{AgentID: "a", AppID: "/x", CPUs: 3.5}},
			reqs:     []Request{req("/w")}, want: []string{""}, reason: ReasonCPUs},
		{name: "mem exhausted", agents: []Agent{agent("a")},
			reqs: []Request{{AppID: "/w", CPUs: 0.1, Mem: 5000}}, want: []string{""}, reason: ReasonMem},
		{name: "disk exhausted", agents: []Agent{agent("a")},
			reqs: []Request{{AppID: "/w", CPUs: 0.1, Disk: 5000}}, want: []string{""}, reason: ReasonDisk},
		{name: "fixed port must be offered", agents: []Agent{agent("a")},
			reqs: []Request{{AppID: "/w", CPUs: 0.1, Ports: []PortRequest{{Kind: PortFixed, Port: 80}}}}, want: []string{""}, reason: ReasonPorts},
		{name: "fixed port must be free", agents: []Agent{agent("a"), agent("b")},
			existing: []Task{{AgentID: "a", AppID: "/x", HostPorts: []int{31005}}},
			reqs:     []Request{{AppID: "/w", CPUs: 0.1, Ports: []PortRequest{{Kind: PortFixed, Port: 31005}}}}, want: []string{"b"}},
		{name: "ports run out", agents: []Agent{agent("a")},
			reqs: []Request{{AppID: "/w", CPUs: 0.1, Ports: make([]PortRequest, 11)}}, want: []string{""}, reason: ReasonPorts},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCluster(tc.agents, tc.existing, rand.New(rand.NewPCG(1, 2)))
			var got []string
			var lastErr error
			for _, r := range tc.reqs {
				p, err := c.Place(r)
				if err != nil {
					lastErr = err
					got = append(got, "")
					continue
				}
				got = append(got, p.AgentID)
			}
			assert.Equal(t, tc.want, got)
			if tc.reason != "" {
				var nf *NoFitError
				require.ErrorAs(t, lastErr, &nf)
				assert.Positive(t, nf.Reasons[tc.reason], "reasons %v", nf.Reasons)
			}
		})
	}
}

func TestPlacePorts(t *testing.T) {
	a := agent("a")
	a.Ports = []PortRange{{Begin: 80, End: 80}, {Begin: 31000, End: 31002}}
	c := NewCluster([]Agent{a}, []Task{{AgentID: "a", AppID: "/x", HostPorts: []int{31001}}}, rand.New(rand.NewPCG(3, 4)))
	p, err := c.Place(Request{AppID: "/w", Ports: []PortRequest{{Kind: PortFixed, Port: 80}, {Kind: PortDynamic}, {Kind: PortNone}, {Kind: PortDynamic}}})
	require.NoError(t, err)
	assert.Equal(t, 80, p.HostPorts[0])
	assert.Equal(t, 0, p.HostPorts[2])
	assert.ElementsMatch(t, []int{31000, 31002}, []int{p.HostPorts[1], p.HostPorts[3]})
	_, err = c.Place(Request{AppID: "/w", Ports: []PortRequest{{Kind: PortDynamic}}})
	var nf *NoFitError
	require.ErrorAs(t, err, &nf)
	assert.Equal(t, map[string]int{ReasonPorts: 1}, nf.Reasons)
}

func TestPlaceNoAgents(t *testing.T) {
	_, err := NewCluster(nil, nil, nil).Place(req("/w"))
	assert.ErrorIs(t, err, ErrNoAgents)
}
