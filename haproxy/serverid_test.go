package haproxy_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/haproxy"
	"github.com/switchyard/switchyard/haproxy/haproxytest"
)

// TestApplyKeepsServerIDs checks that servers carrying marathon-lb's
// "id N" (the default server template has it) are added at runtime with
// that id, so server state and stats keep their ids.
func TestApplyKeepsServerIDs(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	port := haproxytest.FreePort(t)
	// "id" right after the address, as in marathon-lb's server template.
	withID := func(cfg string, ids map[*backend]int) string {
		for be, id := range ids {
			addr := fmt.Sprintf("127.0.0.1:%d ", be.port)
			cfg = strings.Replace(cfg, addr, fmt.Sprintf("%sid %d ", addr, id), 1)
		}
		return cfg
	}
	oldCfg := withID(config(port, "", a), map[*backend]int{a: 28363})
	require.Contains(t, oldCfg, " id 28363 check")
	p := haproxytest.Start(t, oldCfg)
	ctx := t.Context()
	client := &http.Client{Timeout: 5 * time.Second}

	newCfg := withID(config(port, "", a, b), map[*backend]int{a: 28363, b: 15582})
	ch, err := haproxy.Diff([]byte(oldCfg), []byte(newCfg))
	require.NoError(t, err)
	require.False(t, ch.Reload, "adding a server with an id needs no reload: %v", ch)
	require.Len(t, ch.Add, 1)
	require.NoError(t, p.Apply(ctx, ch))
	assert.Equal(t, map[string]int{"a": 2, "b": 2}, seen(t, client, port, 4))

	states, err := p.Runtime().On("@1").ShowServersState(ctx, "be")
	require.NoError(t, err)
	ids := map[string]int{}
	for _, s := range states {
		ids[s.Name] = s.ID
	}
	assert.Equal(t, map[string]int{"a": 28363, "b": 15582}, ids)
}
