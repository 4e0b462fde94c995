package haproxy

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestOutputLogRemembersLoadMarkers: the master's "Loading success" is
// known to have arrived after a reload started even when thousands of an
// old worker's lines pushed it out of the kept lines (the reload used to
// wait a further second for it at ~120 apps and more).
func TestOutputLogRemembersLoadMarkers(t *testing.T) {
	o := newOutputLog(5)
	before := o.seq()
	o.add("[NOTICE]   (1) : Loading success.")
	for i := range 5000 {
		o.add(fmt.Sprintf("Proxy app_%d stopped (cumulated conns: FE: 0, BE: 0).", i))
	}
	assert.True(t, o.sawSince(loadingSuccess, before))
	assert.False(t, o.sawSince(loadingSuccess, before+1), "only lines from seq on count")
	assert.False(t, o.sawSince(loadingFailure, 0))
	assert.Equal(t, 5001, o.seq())
	assert.Equal(t, []string{
		"Proxy app_4995 stopped (cumulated conns: FE: 0, BE: 0).",
		"Proxy app_4996 stopped (cumulated conns: FE: 0, BE: 0).",
		"Proxy app_4997 stopped (cumulated conns: FE: 0, BE: 0).",
		"Proxy app_4998 stopped (cumulated conns: FE: 0, BE: 0).",
		"Proxy app_4999 stopped (cumulated conns: FE: 0, BE: 0).",
	}, o.since(0), "the last max lines are kept, in order")
	assert.Equal(t, []string{"Proxy app_4999 stopped (cumulated conns: FE: 0, BE: 0)."}, o.since(5000))
	assert.Empty(t, o.since(5001))

	short := newOutputLog(10)
	short.add("a")
	short.add("b")
	assert.Equal(t, []string{"a", "b"}, short.since(0))
	assert.Equal(t, []string{"b"}, short.since(1))
}

func TestProxyStopped(t *testing.T) {
	tests := []struct {
		line string
		want bool
	}{
		{"[WARNING] Proxy app_10000 stopped (cumulated conns: FE: 0, BE: 0).", true},
		{"Proxy app_10000 stopped (cumulated conns: FE: 0, BE: 0).", true},
		{"[WARNING]  (1234) : Proxy stats stopped (cumulated conns: FE: 3, BE: 0).", true},
		{"Stopping backend app_10000 in 0 ms.", true},
		{"[WARNING] Stopping frontend marathon_http_in in 0 ms.", true},
		{"[WARNING] Current worker (22315) exited with code 0 (Exit)", false},
		{"[ALERT] Proxy 'x': unable to find server", false},
		{"[NOTICE] Loading success.", false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, proxyStopped(tt.line), tt.line)
	}
}

// BenchmarkOutputLogAdd: adding a line costs the same with 500 lines kept
// (it used to copy all of them for every line past the limit).
func BenchmarkOutputLogAdd(b *testing.B) {
	o := newOutputLog(500)
	line := "Proxy app_10000 stopped (cumulated conns: FE: 0, BE: 0)."
	for b.Loop() {
		o.add(line)
	}
}
