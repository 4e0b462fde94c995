package main

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDNSFlags(t *testing.T) {
	dnsAddr := freeAddr(t)
	// No upstream answers at this address: forwarding is configured, not used.
	base, _ := runScheduler(t, "--advertise", "127.0.0.1:8080", "--dns-addr", dnsAddr, "--dns-domain", "cluster.test",
		"--dns-ttl", "7", "--dns-resolvers", "127.0.0.1:1")

	resp, err := http.Get(base + "/v1/config")
	require.NoError(t, err)
	defer resp.Body.Close()
	var cfg map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&cfg))
	assert.Equal(t, "cluster.test", cfg["Domain"])
	assert.EqualValues(t, 7, cfg["TTL"])
	assert.Equal(t, []any{"127.0.0.1:1"}, cfg["Resolvers"])

	m := new(mdns.Msg)
	m.SetQuestion("leader.cluster.test.", mdns.TypeA)
	var r *mdns.Msg
	require.Eventually(t, func() bool {
		r, _, err = (&mdns.Client{Timeout: time.Second}).Exchange(m, dnsAddr)
		return err == nil && len(r.Answer) == 1
	}, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, "127.0.0.1", r.Answer[0].(*mdns.A).A.String())
	assert.Equal(t, uint32(7), r.Answer[0].Header().Ttl)
}

func TestBadDNSFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--dns-addr", "127.0.0.1:0", "--dns-ttl", "0"},
		{"--dns-addr", "127.0.0.1:0", "--dns-domain", "no spaces"},
		{"--dns-addr", "127.0.0.1:0", "--dns-resolvers", "resolver.example"},
		{"--dns-addr", "nonsense"},
	} {
		err := newApp().Run(append([]string{"scheduler", "--http-addr", "127.0.0.1:0", "--log-level", "error"}, args...))
		assert.Error(t, err, "%v", args)
	}
}
