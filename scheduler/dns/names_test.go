package dns

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestLabel(t *testing.T) {
	long := strings.Repeat("a", 60)
	tests := []struct{ in, want string }{
		{"web", "web"},
		{"Web_App.v2", "web-app-v2"},
		{"--lead", "lead"},
		{"trail--", "trail"},
		{"sp ace$%", "space"},
		{"4abc", "4abc"}, // RFC 1123 allows a leading digit
		{"", ""},
		{"---", ""},
		{strings.Repeat("x", 70), strings.Repeat("x", 63)},
		// Hyphens at the cut are replaced by what follows them.
		{long + "---bcdef", long + "bcd"},
		{long + "--", long},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := label(tt.in)
			assert.Equal(t, tt.want, got)
			assert.LessOrEqual(t, len(got), 63)
		})
	}
}

func TestTaskName(t *testing.T) {
	tests := []struct{ id, want string }{
		{"/web", "web"},
		{"/prod/web/api", "api-web-prod"}, // Marathon: api.web.prod; Mesos-DNS: one label
		{"/My_Group/app.v1", "app-v1-my-group"},
		{"/", ""},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, taskName(tt.id), tt.id)
	}
}

func TestTaskHashAndTail(t *testing.T) {
	// Mesos-DNS's own test vector for its hash of "test".
	assert.Equal(t, "iffe9", taskHash("test"))
	assert.Len(t, taskHash("web.8f7c"), 5)
	assert.NotEqual(t, taskHash("a"), taskHash("b"))
	assert.Equal(t, "s0", agentTail("5d3c0a2e-8d4b-4b7e-9b1a-0c1d2e3f4a5b-S0"))
	assert.Equal(t, "agent1", agentTail("agent1"))
}

func TestDomainFrag(t *testing.T) {
	assert.Equal(t, "agent1.example.com", domainFrag("Agent1.Example.com."))
	assert.Equal(t, "a-b.c", domainFrag("a_b..c"))
	assert.Equal(t, "", domainFrag("..."))
}
