package controller

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/lb"
	"github.com/switchyard/switchyard/lb/lbtest"
	"github.com/switchyard/switchyard/marathon"
)

// fakeLookup answers from a table and counts the lookups per host.
type fakeLookup struct {
	mu      sync.Mutex
	answers map[string][]net.IPAddr
	calls   map[string]int
}

func (f *fakeLookup) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[host]++
	a, ok := f.answers[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return a, nil
}

func (f *fakeLookup) set(host string, ips ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(ips) == 0 {
		delete(f.answers, host)
		return
	}
	var a []net.IPAddr
	for _, ip := range ips {
		a = append(a, net.IPAddr{IP: net.ParseIP(ip)})
	}
	f.answers[host] = a
}

// renderWith does what the model renderer does with r for a render whose
// routed tasks run on hosts (IP addresses are never asked, as lb.Build
// does): a pass, and a second one when an answer changed. It returns the
// answers the last build saw.
func renderWith(r *hostResolver, hosts ...string) func(string) (string, bool) {
	build := func() *hostPass {
		p := r.begin()
		for _, h := range hosts {
			if net.ParseIP(h) == nil {
				p.resolve(h)
			}
		}
		return p
	}
	p := build()
	if p.finish() {
		p = build()
		p.finish()
	}
	return func(h string) (string, bool) { ip, ok := p.table[h]; return ip, ok }
}

func TestHostResolver(t *testing.T) {
	f := &fakeLookup{answers: map[string][]net.IPAddr{}, calls: map[string]int{}}
	f.set("agent-1", "10.0.0.1")
	f.set("agent-2", "fd00::2", "10.0.0.2") // IPv4 preferred
	f.set("agent-6", "fd00::6")             // IPv6 only
	r := newHostResolver(f, 0, slog.New(slog.DiscardHandler))
	now := time.Unix(1_000_000, 0)
	r.now = func() time.Time { return now }

	resolve := renderWith(r, "agent-1", "agent-1", "agent-2", "agent-6", "10.9.9.9", "missing")
	for _, tc := range []struct {
		host, want string
		ok         bool
	}{
		{"agent-1", "10.0.0.1", true},
		{"agent-2", "10.0.0.2", true},
		{"agent-6", "fd00::6", true},
		{"missing", "", false},
	} {
		ip, ok := resolve(tc.host)
		assert.Equal(t, tc.ok, ok, tc.host)
		assert.Equal(t, tc.want, ip, tc.host)
	}
	assert.Equal(t, 1, f.calls["agent-1"], "one lookup per host and render")

	// Within the TTL: answers from the cache; a failed host is retried
	// only after hostRetry.
	now = now.Add(hostRetry / 2)
	f.set("missing", "10.0.0.9")
	resolve = renderWith(r, "agent-1", "missing")
	_, ok := resolve("missing")
	assert.False(t, ok, "not retried before hostRetry")
	assert.Equal(t, 1, f.calls["agent-1"])
	now = now.Add(hostRetry)
	resolve = renderWith(r, "agent-1", "missing")
	ip, ok := resolve("missing")
	assert.True(t, ok)
	assert.Equal(t, "10.0.0.9", ip)
	assert.Equal(t, 1, f.calls["agent-1"], "still cached")

	// After the TTL it is looked up again; a failed refresh keeps the
	// last address, a changed answer replaces it.
	now = now.Add(hostTTL)
	f.set("agent-1")
	f.set("agent-2", "10.0.0.22")
	resolve = renderWith(r, "agent-1", "agent-2")
	assert.Equal(t, 2, f.calls["agent-1"])
	ip, ok = resolve("agent-1")
	assert.True(t, ok)
	assert.Equal(t, "10.0.0.1", ip, "stale address kept when DNS fails")
	ip, _ = resolve("agent-2")
	assert.Equal(t, "10.0.0.22", ip)
}

func TestHostResolverEviction(t *testing.T) {
	f := &fakeLookup{answers: map[string][]net.IPAddr{}, calls: map[string]int{}}
	for _, h := range []string{"a", "b", "c"} {
		f.set(h, "10.0.0.1")
	}
	r := newHostResolver(f, 2, slog.New(slog.DiscardHandler))
	now := time.Unix(1_000_000, 0)
	r.now = func() time.Time { return now }

	// One render needing more hosts than the cache holds keeps them all.
	resolve := renderWith(r, "a", "b", "c")
	for _, h := range []string{"a", "b", "c"} {
		_, ok := resolve(h)
		assert.True(t, ok, h)
	}
	// The next render needs only c: the others are evicted down to the
	// size, least recently needed first, and looked up again when needed.
	now = now.Add(time.Second)
	renderWith(r, "c")
	r.mu.Lock()
	assert.Len(t, r.entries, 2)
	assert.Contains(t, r.entries, "c")
	r.mu.Unlock()
	now = now.Add(time.Second)
	renderWith(r, "a", "b")
	assert.Equal(t, 3, f.calls["a"]+f.calls["b"], "the evicted host was looked up again")
}

func TestHostResolverLookupTimeout(t *testing.T) {
	blocked := blockingLookup{}
	r := newHostResolver(blocked, 0, slog.New(slog.DiscardHandler))
	start := time.Now()
	resolve := renderWith(r, "slow")
	_, ok := resolve("slow")
	assert.False(t, ok)
	require.Less(t, time.Since(start), 10*hostLookupTimeout, "a hung DNS server cannot hold the render")
}

type blockingLookup struct{}

func (blockingLookup) LookupIPAddr(ctx context.Context, _ string) ([]net.IPAddr, error) {
	<-ctx.Done()
	return nil, errors.Join(errors.New("timed out"), ctx.Err())
}

// Through the real renderer: only the hosts of tasks lb routes to are
// looked up, and their servers get the address.
func TestModelRendererResolvesRoutedHosts(t *testing.T) {
	f := &fakeLookup{answers: map[string][]net.IPAddr{}, calls: map[string]int{}}
	f.set("agent-1", "10.0.0.1")
	f.set("other-agent", "10.0.0.2")
	m, err := loadRenderer(lb.Options{Groups: []string{"web"}, AdminAddr: "127.0.0.1:1"}, "")
	require.NoError(t, err)
	m.hosts = newHostResolver(f, 0, slog.New(slog.DiscardHandler))
	apps := []marathon.App{
		lbtest.App("routed", lbtest.Group("web"), lbtest.PortDefinitions(10000), lbtest.Tasks(lbtest.Task("agent-1", 31000))),
		lbtest.App("elsewhere", lbtest.Group("other"), lbtest.PortDefinitions(10001), lbtest.Tasks(lbtest.Task("other-agent", 31001))),
	}
	r, err := m.render(apps)
	require.NoError(t, err)
	assert.Contains(t, string(r.Config), "server agent-1_10_0_0_1_31000 10.0.0.1:31000")
	assert.Equal(t, 1, f.calls["agent-1"])
	assert.Zero(t, f.calls["other-agent"], "a task of another group is not looked up")

	// The next render answers from the cache.
	_, err = m.render(apps)
	require.NoError(t, err)
	assert.Equal(t, 1, f.calls["agent-1"])
}

// TestModelRendererUnresolvedHost checks that a task whose agent host name
// does not resolve is routed to the address Mesos reported for it
// (ipAddresses), and that a port left without any task says why.
func TestModelRendererUnresolvedHost(t *testing.T) {
	f := &fakeLookup{answers: map[string][]net.IPAddr{}, calls: map[string]int{}}
	m, err := loadRenderer(lb.Options{Groups: []string{"web"}, AdminAddr: "127.0.0.1:1"}, "")
	require.NoError(t, err)
	m.hosts = newHostResolver(f, 0, slog.New(slog.DiscardHandler))
	apps := []marathon.App{
		lbtest.App("fallback", lbtest.Group("web"), lbtest.PortDefinitions(10000),
			lbtest.Tasks(lbtest.WithIP(lbtest.Task("agent-1.invalid", 31000), "10.0.0.1"))),
		lbtest.App("dropped", lbtest.Group("web"), lbtest.PortDefinitions(10001),
			lbtest.Tasks(lbtest.Task("agent-2.invalid", 31001))),
	}
	r, err := m.render(apps)
	require.NoError(t, err)
	assert.Contains(t, string(r.Config), "server agent-1_invalid_10_0_0_1_31000 10.0.0.1:31000")
	assert.NotContains(t, string(r.Config), "dropped_10001")
	require.Len(t, r.Skipped, 1)
	assert.Equal(t, skippedPort{AppID: "/dropped", PortIndex: 0, Filtered: true,
		Reason: "no task with an address: agent host name agent-2.invalid does not resolve and its tasks have no ipAddresses"}, r.Skipped[0])
}
