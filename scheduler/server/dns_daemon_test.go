package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/scheduler"
	"github.com/switchyard/switchyard/scheduler/agentapi"
	"github.com/switchyard/switchyard/scheduler/dns"
	"github.com/switchyard/switchyard/scheduler/schedulertest"
)

// TestDNSFollowsNewTerm: Run serves DNS and, after DELETE /v2/leader
// starts a new term with a new scheduler, follows that one's events.
func TestDNSFollowsNewTerm(t *testing.T) {
	d, err := dns.New(dns.Config{Addr: "127.0.0.1:0", Refresh: time.Hour, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		LookupHost: func(context.Context, string) ([]netip.Addr, error) { return nil, nil }})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{
			Scheduler: scheduler.Config{DataDir: t.TempDir(), Leader: ln.Addr().String()},
			Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
			DNS:       d,
		}, []Endpoint{{Listener: ln}}, ServeOptions{Grace: time.Second})
	}()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
	})
	base := "http://" + ln.Addr().String()
	<-d.Ready()
	code, _ := do(t, "GET", base+"/v1/hosts/leader.mesos", "")
	require.Equal(t, http.StatusOK, code, "the HTTP API is mounted")

	code, body := do(t, "DELETE", base+"/v2/leader", "")
	require.Equal(t, http.StatusOK, code, body)
	require.Eventually(t, func() bool {
		code, _ := do(t, "GET", base+"/v2/apps", "")
		return code == http.StatusOK
	}, 20*time.Second, 20*time.Millisecond, "the new term serves")

	// A fake agent over HTTP, registered with the new term.
	agent := schedulertest.NewFakeAgent(agentapi.NewClient(base, http.DefaultClient), "agent0")
	agent.Wait = 100 * time.Millisecond
	agentCtx, stopAgent := context.WithCancel(context.Background())
	agentDone := make(chan struct{})
	go func() { defer close(agentDone); _ = agent.Run(agentCtx) }()
	t.Cleanup(func() { stopAgent(); <-agentDone })

	// The new term's task is in DNS: DNS follows the new scheduler (the
	// refresh is an hour away).
	code, body = do(t, "POST", base+"/v2/apps", `{"id":"/after","cmd":"sleep 1","instances":1,"cpus":0.1,"mem":16}`)
	require.Equal(t, http.StatusCreated, code, body)
	ok := assert.Eventually(t, func() bool {
		m := new(mdns.Msg)
		m.SetQuestion("after.marathon.mesos.", mdns.TypeA)
		r, _, err := (&mdns.Client{Timeout: time.Second}).Exchange(m, d.Addr())
		return err == nil && len(r.Answer) == 1
	}, 20*time.Second, 20*time.Millisecond, "after.marathon.mesos")
	if !ok {
		_, tasks := do(t, "GET", base+"/v2/apps/after/tasks", "")
		_, hosts := do(t, "GET", base+"/v1/hosts/after.marathon.mesos", "")
		t.Log(tasks, hosts)
	}
}
