package agent

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/scheduler/agentapi"
)

func TestParseResources(t *testing.T) {
	def := agentapi.Resources{CPUs: 2, Mem: 1000, Disk: 500, Ports: []agentapi.PortRange{{Begin: 31000, End: 32000}}}
	tests := []struct {
		name    string
		in      string
		want    agentapi.Resources
		wantErr string
	}{
		{"empty keeps defaults", "", def, ""},
		{"all", "cpus:4;mem:4096;disk:10000;ports:[31000-32000]",
			agentapi.Resources{CPUs: 4, Mem: 4096, Disk: 10000, Ports: []agentapi.PortRange{{Begin: 31000, End: 32000}}}, ""},
		{"walkthrough ports, roles, spaces, gpus", " cpus(*):0.5 ; ports(*):[80-82, 443-443,2048-65535]; gpus:1;",
			agentapi.Resources{CPUs: 0.5, Mem: 1000, Disk: 500, Ports: []agentapi.PortRange{{Begin: 80, End: 82}, {Begin: 443, End: 443}, {Begin: 2048, End: 65535}}}, ""},
		{"single ports sorted", "ports:[9000,8000-8001]",
			agentapi.Resources{CPUs: 2, Mem: 1000, Disk: 500, Ports: []agentapi.PortRange{{Begin: 8000, End: 8001}, {Begin: 9000, End: 9000}}}, ""},
		{"no ports", "ports:[]", agentapi.Resources{CPUs: 2, Mem: 1000, Disk: 500, Ports: []agentapi.PortRange{}}, ""},
		{"missing colon", "cpus4", agentapi.Resources{}, "want name:value"},
		{"bad number", "mem:lots", agentapi.Resources{}, "not a non-negative number"},
		{"negative", "cpus:-1", agentapi.Resources{}, "not a non-negative number"},
		{"nan", "cpus:NaN", agentapi.Resources{}, "not a non-negative number"},
		{"ports no brackets", "ports:31000-32000", agentapi.Resources{}, "want [begin-end"},
		{"ports reversed", "ports:[10-5]", agentapi.Resources{}, "begin <= end"},
		{"ports too big", "ports:[1-70000]", agentapi.Resources{}, "65535"},
		{"ports overlap", "ports:[1-10,5-20]", agentapi.Resources{}, "overlap"},
		{"ports garbage", "ports:[a-b]", agentapi.Resources{}, "not numbers"},
		{"unclosed role", "cpus(*:1", agentapi.Resources{}, "unclosed role"},
		{"empty name", ":3", agentapi.Resources{}, "empty name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseResources(tt.in, def)
			if tt.wantErr != "" {
				assert.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func FuzzParseResources(f *testing.F) {
	for _, s := range []string{"cpus:4;mem:4096;disk:10000;ports:[31000-32000]", "ports:[80-82,443-443,2048-65535]", "cpus(*):1", ";;", "ports:[", "mem:1e400"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseResources(s, agentapi.Resources{})
		if err != nil {
			return
		}
		if r.CPUs < 0 || r.Mem < 0 || r.Disk < 0 {
			t.Fatalf("negative resource from %q: %+v", s, r)
		}
		for i, p := range r.Ports {
			if p.Begin < 1 || p.End > 65535 || p.Begin > p.End || (i > 0 && p.Begin <= r.Ports[i-1].End) {
				t.Fatalf("bad ranges from %q: %+v", s, r.Ports)
			}
		}
	})
}

func TestParseAttributes(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]string
		wantErr string
	}{
		{"empty", "", map[string]string{}, ""},
		{"two", "rack:r1;zone:a", map[string]string{"rack": "r1", "zone": "a"}, ""},
		{"colon in value", "url:http://x; az : eu-1 ", map[string]string{"url": "http://x", "az": "eu-1"}, ""},
		{"no colon", "rack", nil, "want name:value"},
		{"dup", "a:1;a:2", nil, "given twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAttributes(tt.in)
			if tt.wantErr != "" {
				assert.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestDetectResources(t *testing.T) {
	r := DetectResources(t.TempDir())
	assert.Positive(t, r.CPUs)
	assert.Positive(t, r.Mem)
	assert.GreaterOrEqual(t, r.Disk, 0.0)
	assert.Equal(t, []agentapi.PortRange{{Begin: 31000, End: 32000}}, r.Ports)
}
