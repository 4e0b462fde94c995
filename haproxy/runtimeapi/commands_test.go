package runtimeapi

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseShowProc(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want ProcList
	}{
		{
			name: "after a failed reload (2.6.12)",
			in: "#<PID>          <type>          <reloads>       <uptime>        <version>      \n" +
				"9724            master          2 [failed: 1]   0d00h10m42s     2.6.12-1+deb12u4\n" +
				"# workers\n2745            worker          1               0d00h00m01s     2.6.12-1+deb12u4\n# programs\n\n",
			want: ProcList{
				Master:        Proc{PID: 9724, Type: "master", Reloads: 2, Uptime: "0d00h10m42s", Version: "2.6.12-1+deb12u4"},
				FailedReloads: 1,
				Workers:       []Proc{{PID: 2745, Type: "worker", Reloads: 1, Uptime: "0d00h00m01s", Version: "2.6.12-1+deb12u4"}},
			},
		},
		{
			name: "old workers and programs (management guide example)",
			in: "#<PID>          <type>          <reloads>       <uptime>        <version>\n" +
				"1162            master          5 [failed: 0]   0d00h02m07s     2.5-dev13\n" +
				"# workers\n1271            worker          1               0d00h00m00s     2.5-dev13\n" +
				"# old workers\n1233            worker          3               0d00h00m43s     2.0-dev3-6019f6-289\n" +
				"# programs\n1244            foo             0               0d00h00m00s     -\n",
			want: ProcList{
				Master:     Proc{PID: 1162, Type: "master", Reloads: 5, Uptime: "0d00h02m07s", Version: "2.5-dev13"},
				Workers:    []Proc{{PID: 1271, Type: "worker", Reloads: 1, Uptime: "0d00h00m00s", Version: "2.5-dev13"}},
				OldWorkers: []Proc{{PID: 1233, Type: "worker", Reloads: 3, Uptime: "0d00h00m43s", Version: "2.0-dev3-6019f6-289"}},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseShowProc(tc.in)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
	for _, bad := range []string{"", "Permission denied.\n", "# workers\nabc worker 0\n"} {
		_, err := ParseShowProc(bad)
		assert.Error(t, err, "ParseShowProc(%q)", bad)
	}
}

func TestParseServersState(t *testing.T) {
	in := "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n" +
		"2 be 1 s1 127.0.0.1 0 0 1 1 616 8 2 0 6 0 0 0 - 18081 - 0 0 - - 0\n" +
		"2 be 2 s2 127.0.0.1 0 1 2 2 0 1 0 0 2 0 0 0 - 18082 - 0 0 - - 0\n\n"
	got, err := ParseServersState(in)
	require.NoError(t, err)
	assert.Equal(t, []ServerState{
		{BackendID: 2, Backend: "be", ID: 1, Name: "s1", Addr: "127.0.0.1", UWeight: 1, IWeight: 1, Port: 18081},
		{BackendID: 2, Backend: "be", ID: 2, Name: "s2", Addr: "127.0.0.1", AdminState: 1, UWeight: 2, IWeight: 2, Port: 18082},
	}, got)
	assert.False(t, got[0].Maint())
	assert.True(t, got[1].Maint())

	_, err = ParseServersState("1\n# header\n2 be 1 s1\n")
	assert.Error(t, err, "short line")
}

func TestCommandsAndAnswers(t *testing.T) {
	tests := []struct {
		cmd, answer string
		ok          bool
	}{
		{AddServerCmd("be", "s", "10.0.0.1", 80, "check inter 2s"), "New server registered.\n\n", true},
		{AddServerCmd("be", "s", "10.0.0.1", 80, "cookie x"), "'cookie' option is not accepted for dynamic server\n\n", false},
		{AddServerCmd("be", "s", "10.0.0.1", 80, ""), "\n", false},
		{DelServerCmd("be", "s"), "Server deleted.\n", true},
		{DelServerCmd("be", "s"), "Server still has connections attached to it, cannot remove it.\n", false},
		{SetServerStateCmd("be", "s", StateMaint), "\n", true},
		{SetServerStateCmd("be", "s", StateMaint), "No such server.\n\n", false},
		{SetServerAddrCmd("be", "s", "10.0.0.2", 81), "IP changed from '10.0.0.1' to '10.0.0.2', port changed from '80' to '81' by 'stats socket command'\n", true},
		{SetServerAddrCmd("be", "s", "10.0.0.2", 81), "no need to change the addr, no need to change the port by 'stats socket command'\n\n", true},
		{SetServerWeightCmd("be", "s", 3), "\n", true},
		{EnableHealthCmd("be", "s"), "\n", true},
		{EnableAgentCmd("be", "s"), "Agent was not configured on this server, cannot enable.\n\n", false},
	}
	for _, tc := range tests {
		err := CheckAnswer(tc.cmd, tc.answer)
		if tc.ok {
			assert.NoError(t, err, "CheckAnswer(%q, %q)", tc.cmd, tc.answer)
		} else {
			assert.Error(t, err, "CheckAnswer(%q, %q)", tc.cmd, tc.answer)
		}
	}
	assert.Equal(t, "add server be/s [::1]:8080 weight 2", AddServerCmd("be", "s", "::1", 8080, "weight 2"))
	assert.Equal(t, "set server be/s addr 10.0.0.2 port 81", SetServerAddrCmd("be", "s", "10.0.0.2", 81))
}

func TestBadCommand(t *testing.T) {
	c := New(filepath.Join(t.TempDir(), "none.sock"))
	for _, cmd := range []string{"", "  ", "show info\nshutdown frontend fe"} {
		_, err := c.Execute(t.Context(), cmd)
		assert.ErrorIs(t, err, ErrBadCommand, "Execute(%q)", cmd)
		_, err = c.ExecuteBatch(t.Context(), []string{"show info", cmd})
		assert.ErrorIs(t, err, ErrBadCommand, "ExecuteBatch(..., %q)", cmd)
	}
	_, err := c.Execute(t.Context(), "show info")
	assert.ErrorContains(t, err, "connect", "no socket")
}

func TestContextEndsSilentPeer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mute.sock")
	l, err := net.Listen("unix", path)
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			defer conn.Close() // accept and never answer
		}
	}()
	c := New(path)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = c.Execute(ctx, "show info")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	_, err = c.ExecuteBatch(ctx, []string{"show info"})
	require.Error(t, err)
	assert.Less(t, time.Since(start), 2*time.Second, "returns promptly")
}
