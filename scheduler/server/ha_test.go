package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/scheduler"
	"github.com/switchyard/switchyard/scheduler/leader"
	"github.com/switchyard/switchyard/scheduler/zk"
	"github.com/switchyard/switchyard/scheduler/zk/zktest"
)

type haNode struct {
	addr string
	ha   *HA
	el   *leader.Elector
	stop context.CancelFunc
	done chan struct{}
}

func startHANode(t *testing.T, u zk.URL) *haNode {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	logger := slog.New(slog.DiscardHandler)
	el, err := leader.New(leader.Config{URL: u, SessionTimeout: 4 * time.Second, Advertise: addr, Logger: logger})
	require.NoError(t, err)
	ha := NewHA(HAConfig{
		Config:    Config{Scheduler: scheduler.Config{ReconcileInterval: 50 * time.Millisecond}, Logger: logger},
		URL:       u,
		Elector:   el,
		Advertise: addr,
	})
	ctx, cancel := context.WithCancel(context.Background())
	n := &haNode{addr: addr, ha: ha, el: el, stop: cancel, done: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = ha.Run(ctx) }()
	go func() { defer wg.Done(); _ = Serve(ctx, ln, ha, 5*time.Second) }()
	go func() { wg.Wait(); el.Close(); close(n.done) }()
	t.Cleanup(n.close)
	return n
}

func (n *haNode) close() {
	n.stop()
	<-n.done
}

func get(t *testing.T, method, url string, hdr http.Header) (int, string, http.Header) {
	req, err := http.NewRequest(method, url, strings.NewReader(`{"id":"/a","cmd":"sleep 1","instances":0}`))
	require.NoError(t, err)
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestHAStandbyProxies(t *testing.T) {
	ens := zktest.Start(t, 1)
	u, err := zk.ParseURL(ens.URL("/ha"))
	require.NoError(t, err)
	a := startHANode(t, u)
	require.Eventually(t, a.ha.Leading, 30*time.Second, 10*time.Millisecond)
	b := startHANode(t, u)

	// /v2/leader on the standby names the leader.
	require.Eventually(t, func() bool {
		code, body, _ := get(t, "GET", "http://"+b.addr+"/v2/leader", nil)
		return code == 200 && strings.Contains(body, a.addr)
	}, 30*time.Second, 10*time.Millisecond)
	assert.False(t, b.ha.Leading())

	// Writes through the standby reach the leader's state.
	code, body, hdr := get(t, "POST", "http://"+b.addr+"/v2/apps", nil)
	require.Equal(t, 201, code, body)
	assert.Equal(t, "http://"+a.addr, hdr.Get("X-Marathon-Leader"))
	code, _, _ = get(t, "GET", "http://"+a.addr+"/v2/apps/a", nil)
	assert.Equal(t, 200, code)

	// The standby answers /ping itself, and never forwards a forwarded
	// request.
	code, body, _ = get(t, "GET", "http://"+b.addr+"/ping", nil)
	assert.Equal(t, 200, code)
	assert.Equal(t, "pong\n", body)
	code, body, _ = get(t, "GET", "http://"+b.addr+"/v2/apps", http.Header{HeaderProxied: {"10.0.0.9:8080"}})
	assert.Equal(t, 503, code)
	assert.Contains(t, body, "not the leader")

	// DELETE /v2/leader through the standby: the standby leads, with the
	// state the old leader wrote.
	code, body, _ = get(t, "DELETE", "http://"+b.addr+"/v2/leader", nil)
	require.Equal(t, 200, code, body)
	require.Eventually(t, b.ha.Leading, 30*time.Second, 10*time.Millisecond)
	code, _, _ = get(t, "GET", "http://"+a.addr+"/v2/apps/a", nil)
	assert.Equal(t, 200, code, "the old leader proxies to the new one, which loaded the app")

	// The new leader stops (its node leaves the election): the old one
	// leads again.
	b.close()
	require.Eventually(t, a.ha.Leading, 30*time.Second, 10*time.Millisecond)
	code, _, _ = get(t, "GET", "http://"+a.addr+"/v2/apps/a", nil)
	assert.Equal(t, 200, code)
}
