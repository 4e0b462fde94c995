package marathon_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
)

func TestParseShutdownDelay(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{in: "5", want: 5 * time.Second},
		{in: " 2.5 ", want: 2500 * time.Millisecond},
		{in: "0", want: 0},
		{in: "1500ms", want: 1500 * time.Millisecond},
		{in: "1m30s", want: 90 * time.Second},
		{in: "600", want: 10 * time.Minute},
		{in: "601", wantErr: true},
		{in: "11m", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "-1s", wantErr: true},
		{in: "NaN", wantErr: true},
		{in: "Inf", wantErr: true},
		{in: "", wantErr: true},
		{in: "soon", wantErr: true},
		{in: "5 s", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := marathon.ParseShutdownDelay(tt.in)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}
