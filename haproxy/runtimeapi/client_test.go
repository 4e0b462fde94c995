package runtimeapi_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/haproxy/haproxytest"
	"github.com/switchyard/switchyard/haproxy/runtimeapi"
)

func testConfig(port int) string {
	return fmt.Sprintf(`global
  maxconn 100
defaults
  mode http
  timeout connect 1s
  timeout client 5s
  timeout server 5s
frontend fe
  bind 127.0.0.1:%d
  default_backend be
backend be
  balance roundrobin
  server s1 127.0.0.1:9 weight 2
`, port)
}

// TestMasterCLI exercises the client against a real HAProxy master CLI.
func TestMasterCLI(t *testing.T) {
	p := haproxytest.Start(t, testConfig(haproxytest.FreePort(t)))
	ctx := t.Context()
	master := p.Runtime()

	pl, err := master.ShowProc(ctx)
	require.NoError(t, err)
	require.Len(t, pl.Workers, 1)
	assert.Equal(t, "master", pl.Master.Type)
	assert.Zero(t, pl.FailedReloads)

	w := master.On("@1")
	info, err := w.Execute(ctx, "show info")
	require.NoError(t, err)
	assert.Contains(t, info, fmt.Sprintf("Pid: %d", pl.Workers[0].PID), "@1 reaches the worker")
	byPID, err := master.On(fmt.Sprintf("@!%d", pl.Workers[0].PID)).Execute(ctx, "show info")
	require.NoError(t, err)
	assert.Contains(t, byPID, fmt.Sprintf("Pid: %d", pl.Workers[0].PID), "@!pid reaches the worker")

	// A batch keeps every answer apart, errors included.
	outs, err := w.ExecuteBatch(ctx, []string{
		runtimeapi.AddServerCmd("be", "s2", "127.0.0.1", 10, "weight 3"),
		"show servers state be",
		runtimeapi.DelServerCmd("be", "nope"),
		runtimeapi.SetServerStateCmd("be", "s2", runtimeapi.StateReady),
		runtimeapi.SetServerStateCmd("be", "s2", runtimeapi.StateMaint),
		runtimeapi.DelServerCmd("be", "s2"),
	})
	require.NoError(t, err)
	require.Len(t, outs, 6)
	assert.NoError(t, runtimeapi.CheckAnswer("add server", outs[0]))
	states, err := runtimeapi.ParseServersState(outs[1])
	require.NoError(t, err)
	require.Len(t, states, 2)
	assert.Equal(t, "s2", states[1].Name)
	assert.Equal(t, 3, states[1].UWeight)
	assert.True(t, states[1].Maint(), "a new dynamic server starts in maintenance")
	assert.Contains(t, outs[2], "No such server")
	assert.Equal(t, "\n", outs[3])
	assert.Contains(t, outs[5], "Server deleted.")

	// Typed helpers.
	require.NoError(t, w.AddServer(ctx, "be", "s3", "127.0.0.1", 11, "check inter 5s"))
	require.NoError(t, w.EnableHealth(ctx, "be", "s3"))
	require.NoError(t, w.SetServerState(ctx, "be", "s3", runtimeapi.StateReady))
	require.NoError(t, w.SetServerAddr(ctx, "be", "s3", "127.0.0.2", 12))
	require.NoError(t, w.SetServerWeight(ctx, "be", "s3", 7))
	states, err = w.ShowServersState(ctx, "be")
	require.NoError(t, err)
	require.Len(t, states, 2)
	assert.Equal(t, runtimeapi.ServerState{BackendID: states[1].BackendID, Backend: "be", ID: states[1].ID, Name: "s3",
		Addr: "127.0.0.2", OpState: states[1].OpState, UWeight: 7, IWeight: 1, Port: 12}, states[1])
	err = w.AddServer(ctx, "be", "s4", "127.0.0.1", 13, "cookie abc")
	var ce *runtimeapi.CommandError
	require.ErrorAs(t, err, &ce)
	assert.True(t, strings.HasPrefix(ce.Command, "@1 add server be/s4"), ce.Command)
	assert.Contains(t, ce.Response, "cookie")
	require.NoError(t, w.SetServerState(ctx, "be", "s3", runtimeapi.StateMaint))
	require.NoError(t, w.DelServer(ctx, "be", "s3"))
	assert.Error(t, w.DelServer(ctx, "be", "s3"), "already deleted")
}
