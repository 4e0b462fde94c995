package controller

import (
	"net"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBindLines(t *testing.T) {
	cfg := "global\n  stats socket /x\n" +
		"frontend web_10000\n  bind *:10000\n  mode http\n" +
		"listen stats\n  bind 0.0.0.0:9090\n" +
		"frontend multi\n  bind :81,127.0.0.1:82 ssl crt /c.pem\n" +
		"frontend v6\n  bind [::1]:83\n  bind ipv6@:84\n" +
		"frontend odd\n  bind unix@/run/x.sock\n  bind /run/y.sock\n  bind :85-86\n  bind fd@3\n  bind name.example:87\n" +
		"backend web_10000\n  bind *:99\n"
	got := bindLines([]byte(cfg))
	want := []bindLine{
		{line: 4, section: "web_10000", network: "tcp4", addr: "0.0.0.0:10000", port: 10000},
		{line: 7, section: "stats", network: "tcp4", addr: "0.0.0.0:9090", port: 9090},
		{line: 9, section: "multi", network: "tcp4", addr: "0.0.0.0:81", port: 81},
		{line: 9, section: "multi", network: "tcp4", addr: "127.0.0.1:82", port: 82},
		{line: 11, section: "v6", network: "tcp6", addr: "[::1]:83", port: 83},
		{line: 12, section: "v6", network: "tcp6", addr: "[::]:84", port: 84},
	}
	assert.Equal(t, want, got)
}

func TestBusyBinds(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	busy := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	free, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	freePort := strconv.Itoa(free.Addr().(*net.TCPAddr).Port)
	require.NoError(t, free.Close())

	next := "frontend a\n  bind 127.0.0.1:" + freePort + "\nfrontend b\n  bind 127.0.0.1:" + busy + "\n"
	alerts := busyBinds(t.Context(), []byte(next), nil)
	require.Len(t, alerts, 1)
	assert.Equal(t, 4, alerts[0].Line)
	assert.Equal(t, "Binding for frontend b: cannot bind socket (Address already in use) for [127.0.0.1:"+busy+"]", alerts[0].Text)
	assert.Len(t, loadFailure(&bindBusyError{alerts: alerts}), 1, "treated as a load failure")
	assert.True(t, probedOnly(&bindBusyError{alerts: alerts}))

	// A port the running configuration binds is HAProxy's: not checked.
	cur := "frontend old\n  bind 127.0.0.1:" + busy + "\n"
	assert.Empty(t, busyBinds(t.Context(), []byte(next), []byte(cur)))
}
