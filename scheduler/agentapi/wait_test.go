package agentapi

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func FuzzParseWait(f *testing.F) {
	for _, s := range []string{"", "5s", "7", "1h", "-1s", "1e300", "NaN", "0.001", "1e10"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseWait(s)
		if err != nil {
			return
		}
		if d < 0 || d > MaxWait {
			t.Fatalf("parseWait(%q) = %s, outside [0, %s]", s, d, MaxWait)
		}
	})
}

func TestParseWait(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"", DefaultWait, false},
		{"0", 0, false},
		{"1.5", 1500 * time.Millisecond, false},
		{"250ms", 250 * time.Millisecond, false},
		{"31s", MaxWait, false},
		{"1e10", MaxWait, false},
		{"1e300", MaxWait, false},
		{"-1", 0, true},
		{"NaN", 0, true},
		{"soon", 0, true},
	}
	for _, tt := range tests {
		got, err := parseWait(tt.in)
		if tt.wantErr {
			assert.Error(t, err, "parseWait(%q)", tt.in)
			continue
		}
		require.NoError(t, err, "parseWait(%q)", tt.in)
		assert.Equal(t, tt.want, got, "parseWait(%q)", tt.in)
	}
}
