package haproxy

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestOutputDedup(t *testing.T) {
	// What HAProxy 2.6 writes on a reload with "log stdout format raw"
	// (after cleanLine), and whether each line is dropped.
	lines := []struct {
		line    string
		dropped bool
	}{
		{"[NOTICE] Reloading HAProxy", false},
		{"[WARNING] Proxy stats stopped (cumulated conns: FE: 0, BE: 0).", false},
		{"Proxy stats stopped (cumulated conns: FE: 0, BE: 0).", true},
		{"[WARNING] Proxy <HTTPCLIENT> stopped (cumulated conns: FE: 0, BE: 0).", false},
		{"Proxy <HTTPCLIENT> stopped (cumulated conns: FE: 0, BE: 0).", true},
		{"[WARNING] Server app/s1 is DOWN, reason: Layer4 connection problem. 0 active and 0 backup servers left.", false},
		{"Server app/s1 is DOWN, reason: Layer4 connection problem. 0 active and 0 backup servers left.", true},
		{"Server app/s1 is DOWN, reason: Layer4 connection problem. 0 active and 0 backup servers left.", false}, // a third copy is not HAProxy's pair
		// Another process's lines between a message and its copy.
		{"[WARNING] Proxy switchyard_admin stopped (cumulated conns: FE: 0, BE: 3).", false},
		{"[WARNING] Current worker (20350) exited with code 0 (Exit)", false},
		{"Proxy switchyard_admin stopped (cumulated conns: FE: 0, BE: 3).", true},
		{"[WARNING] CLI : Proxy bulk_app-0500_11500 stopped (cumulated conns: FE: 4899, BE: 0).", false},
		{"Proxy bulk_app-0500_11500 stopped (cumulated conns: FE: 4899, BE: 0).", true},
		{"[ALERT] backend 'app' has no server available!", false},
		{"backend app has no server available!", false}, // different text
		{"Connect from 127.0.0.1:4000 to 127.0.0.1:80 (fe/HTTP)", false},
		{"[NOTICE] New worker (10092) forked", false},
		{"[NOTICE] Loading success.", false},
	}
	var d outputDedup
	for i, l := range lines {
		assert.Equal(t, l.dropped, d.repeated(l.line), "line %d: %q", i, l.line)
	}
}

func TestOutputDedupWindow(t *testing.T) {
	var d outputDedup
	for i := range dedupWindow + 1 {
		assert.False(t, d.repeated(fmt.Sprintf("[WARNING] Proxy p%d stopped.", i)))
	}
	assert.False(t, d.repeated("Proxy p0 stopped."), "older than the window: logged")
	assert.True(t, d.repeated(fmt.Sprintf("Proxy p%d stopped.", dedupWindow)))
	assert.False(t, d.repeated(fmt.Sprintf("Proxy p%d stopped.", dedupWindow)), "each message matches one copy")
}
