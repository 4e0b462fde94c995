package dns

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
)

// fakeSource is a Source whose apps a test sets; Set publishes an event.
type fakeSource struct {
	mu     sync.Mutex
	snap   Snapshot
	agents []AgentAddr
	leader string
	subs   []chan marathon.Event
	lists  int
}

func newFakeSource(snap Snapshot) *fakeSource {
	f := &fakeSource{snap: snap, leader: "10.0.0.100:8080"}
	for _, a := range snap.Agents {
		addr := a.IPs[0].String()
		if len(a.IPs) > 1 {
			addr = a.Hostname // looked up through fakeLookup
		}
		f.agents = append(f.agents, AgentAddr{ID: a.ID, Hostname: a.Hostname, Address: addr})
	}
	return f
}

func (f *fakeSource) ListApps(context.Context) ([]marathon.App, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lists++
	return f.snap.Apps, nil
}

func (f *fakeSource) Subscribe(string) (<-chan marathon.Event, func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan marathon.Event, 16)
	f.subs = append(f.subs, ch)
	return ch, func() {}
}

func (f *fakeSource) Leader(context.Context) (string, error) { return f.leader, nil }

func (f *fakeSource) Agents(context.Context) []AgentAddr {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.agents
}

// setApps replaces the apps and announces it like the scheduler would.
func (f *fakeSource) setApps(apps []marathon.App) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.snap.Apps = apps
	for _, ch := range f.subs {
		select {
		case ch <- marathon.Event{Type: marathon.EventStatusUpdate}:
		default: // a full queue already holds a trigger
		}
	}
}

// fakeLookup resolves the test hostnames; tests never ask real resolvers.
func fakeLookup(_ context.Context, host string) ([]netip.Addr, error) {
	if host == "agent2.example" {
		return ips("10.0.0.2", "2001:db8::2"), nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startServer runs a Server on a free loopback port until the test ends.
func startServer(t testing.TB, cfg Config, src Source) *Server {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	if cfg.LookupHost == nil {
		cfg.LookupHost = fakeLookup
	}
	s, err := New(cfg)
	require.NoError(t, err)
	require.NoError(t, s.Listen())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, src) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	select {
	case <-s.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("the DNS server did not build its first table")
	}
	return s
}

// query sends one question over net ("udp" or "tcp").
func query(t testing.TB, addr, network, name string, qtype uint16) *mdns.Msg {
	t.Helper()
	m := new(mdns.Msg)
	m.SetQuestion(name, qtype)
	c := &mdns.Client{Net: network, Timeout: 5 * time.Second}
	r, _, err := c.Exchange(m, addr)
	require.NoError(t, err)
	return r
}

// resolver is Go's own resolver, talking only to addr.
func resolver(addr string) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
}

func answerStrings(m *mdns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		switch r := rr.(type) {
		case *mdns.A:
			out = append(out, r.A.String())
		case *mdns.AAAA:
			out = append(out, r.AAAA.String())
		case *mdns.SRV:
			out = append(out, r.Target+":"+itoa(r.Port))
		default:
			out = append(out, rr.String())
		}
	}
	sort.Strings(out)
	return out
}

func itoa(p uint16) string { return strconv.Itoa(int(p)) }

func TestQueries(t *testing.T) {
	s := startServer(t, Config{TTL: 42}, newFakeSource(testSnapshot()))
	addr := s.Addr()
	w1 := "web-" + taskHash("web.1") + "-s1.marathon.mesos."

	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			r := query(t, addr, network, "web.marathon.mesos.", mdns.TypeA)
			assert.Equal(t, mdns.RcodeSuccess, r.Rcode)
			assert.True(t, r.Authoritative)
			assert.Equal(t, []string{"10.0.0.1", "10.0.0.2"}, answerStrings(r))
			assert.Equal(t, uint32(42), r.Answer[0].Header().Ttl)

			r = query(t, addr, network, "web.marathon.mesos.", mdns.TypeAAAA)
			assert.Equal(t, []string{"2001:db8::2"}, answerStrings(r))

			r = query(t, addr, network, "_http._web._tcp.marathon.mesos.", mdns.TypeSRV)
			require.Len(t, r.Answer, 2)
			assert.Contains(t, answerStrings(r), w1+":31001")
			assert.NotEmpty(t, r.Extra, "the targets' addresses come along")

			// Case does not matter, and the answer keeps the question's.
			r = query(t, addr, network, "WEB.Marathon.MESOS.", mdns.TypeA)
			require.Len(t, r.Answer, 2)
			assert.Equal(t, "WEB.Marathon.MESOS.", r.Answer[0].Header().Name)
		})
	}

	t.Run("NXDOMAIN with the SOA", func(t *testing.T) {
		for _, name := range []string{"nope.marathon.mesos.", "a.b.c.mesos.", "checked-x.marathon.mesos."} {
			r := query(t, addr, "udp", name, mdns.TypeA)
			assert.Equal(t, mdns.RcodeNameError, r.Rcode, name)
			assert.Empty(t, r.Answer)
			require.Len(t, r.Ns, 1)
			soa, ok := r.Ns[0].(*mdns.SOA)
			require.True(t, ok)
			assert.Equal(t, "mesos.", soa.Hdr.Name)
			assert.Equal(t, "ns1.mesos.", soa.Ns)
			assert.Equal(t, "root.ns1.mesos.", soa.Mbox)
			assert.Equal(t, uint32(42), soa.Minttl)
		}
	})
	t.Run("NODATA", func(t *testing.T) {
		// The name exists, the type does not; empty non-terminals exist.
		for _, q := range []struct {
			name  string
			qtype uint16
		}{{"web.marathon.mesos.", mdns.TypeSRV}, {"api-prod.marathon.mesos.", mdns.TypeAAAA}, {"marathon.slave.mesos.", mdns.TypeA}, {"_tcp.marathon.mesos.", mdns.TypeSRV}, {"web.marathon.mesos.", mdns.TypeMX}} {
			r := query(t, addr, "udp", q.name, q.qtype)
			assert.Equal(t, mdns.RcodeSuccess, r.Rcode, q.name)
			assert.Empty(t, r.Answer, q.name)
			require.Len(t, r.Ns, 1, q.name)
			assert.IsType(t, &mdns.SOA{}, r.Ns[0])
		}
	})
	t.Run("apex SOA and NS", func(t *testing.T) {
		r := query(t, addr, "udp", "mesos.", mdns.TypeSOA)
		require.Len(t, r.Answer, 1)
		assert.IsType(t, &mdns.SOA{}, r.Answer[0])
		r = query(t, addr, "udp", "mesos.", mdns.TypeNS)
		require.Len(t, r.Answer, 1)
		assert.Equal(t, "ns1.mesos.", r.Answer[0].(*mdns.NS).Ns)
		assert.Equal(t, []string{"127.0.0.1"}, addrStrings(r.Extra))
		r = query(t, addr, "udp", "mesos.", mdns.TypeA)
		assert.Equal(t, mdns.RcodeSuccess, r.Rcode)
		assert.Empty(t, r.Answer)
	})
	t.Run("ANY", func(t *testing.T) {
		r := query(t, addr, "tcp", "web.marathon.mesos.", mdns.TypeANY)
		assert.Equal(t, []string{"10.0.0.1", "10.0.0.2", "2001:db8::2"}, answerStrings(r))
	})
	t.Run("no resolvers: other names are refused", func(t *testing.T) {
		r := query(t, addr, "udp", "example.com.", mdns.TypeA)
		assert.Equal(t, mdns.RcodeRefused, r.Rcode)
		assert.Empty(t, r.Answer)
		assert.False(t, r.Authoritative)
	})
	t.Run("Go's resolver", func(t *testing.T) {
		ctx := context.Background()
		res := resolver(addr)
		hosts, err := res.LookupHost(ctx, "web.marathon.mesos.")
		require.NoError(t, err)
		sort.Strings(hosts)
		assert.Equal(t, []string{"10.0.0.1", "10.0.0.2", "2001:db8::2"}, hosts)
		_, recs, err := res.LookupSRV(ctx, "web", "tcp", "marathon.mesos.")
		require.NoError(t, err)
		assert.Len(t, recs, 4)
		_, err = res.LookupHost(ctx, "gone.marathon.mesos.")
		var de *net.DNSError
		require.ErrorAs(t, err, &de)
		assert.True(t, de.IsNotFound)
	})
}

func addrStrings(rrs []mdns.RR) []string {
	m := &mdns.Msg{Answer: rrs}
	return answerStrings(m)
}

func TestTruncation(t *testing.T) {
	var tasks []marathon.Task
	for i := range 200 {
		tasks = append(tasks, running("big."+itoa(uint16(i)), "a1-S1", 20000+i))
	}
	src := newFakeSource(Snapshot{Agents: []Agent{{ID: "a1-S1", IPs: ips("10.0.0.1")}}, Apps: []marathon.App{{ID: "/big", Tasks: tasks}}})
	s := startServer(t, Config{}, src)
	r := query(t, s.Addr(), "udp", "_big._tcp.marathon.mesos.", mdns.TypeSRV)
	assert.True(t, r.Truncated, "200 SRV records do not fit 512 bytes")
	assert.Less(t, len(r.Answer), 200)
	r = query(t, s.Addr(), "tcp", "_big._tcp.marathon.mesos.", mdns.TypeSRV)
	assert.False(t, r.Truncated)
	assert.Len(t, r.Answer, 200)
}

func TestTableFollowsEvents(t *testing.T) {
	snap := testSnapshot()
	src := newFakeSource(snap)
	s := startServer(t, Config{}, src)
	res := resolver(s.Addr())
	apps := append([]marathon.App(nil), snap.Apps...)
	apps[0].Tasks = apps[0].Tasks[:1] // web.2 is gone
	src.setApps(apps)
	require.Eventually(t, func() bool {
		hosts, err := res.LookupHost(context.Background(), "web.marathon.mesos.")
		return err == nil && len(hosts) == 1 && hosts[0] == "10.0.0.1"
	}, 10*time.Second, 10*time.Millisecond)
	src.setApps(apps[1:]) // /web deleted
	require.Eventually(t, func() bool {
		return query(t, s.Addr(), "udp", "web.marathon.mesos.", mdns.TypeA).Rcode == mdns.RcodeNameError
	}, 10*time.Second, 10*time.Millisecond)

	// A burst: the last state wins, however the rebuilds fall.
	for i := range 200 {
		burst := slices.Clone(apps)
		burst[0].Tasks = []marathon.Task{apps[0].Tasks[0]}
		burst[0].Tasks[0].Ports = []int{40000 + i}
		src.setApps(burst)
	}
	require.Eventually(t, func() bool {
		_, recs, err := res.LookupSRV(context.Background(), "", "", "_web._tcp.marathon.mesos.")
		return err == nil && len(recs) == 1 && recs[0].Port == 40199
	}, 10*time.Second, 10*time.Millisecond)
}

// upstream is a fake resolver on loopback: it answers A queries for
// example.com. with 192.0.2.7 and NXDOMAIN for everything else.
func upstream(t *testing.T, network string) string {
	t.Helper()
	h := mdns.HandlerFunc(func(w mdns.ResponseWriter, r *mdns.Msg) {
		m := new(mdns.Msg)
		m.SetReply(r)
		m.RecursionAvailable = true
		if strings.EqualFold(r.Question[0].Name, "example.com.") && r.Question[0].Qtype == mdns.TypeA {
			rr, _ := mdns.NewRR("example.com. 300 IN A 192.0.2.7")
			m.Answer = append(m.Answer, rr)
		} else {
			m.Rcode = mdns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})
	srv := &mdns.Server{Handler: h}
	switch network {
	case "udp":
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		require.NoError(t, err)
		srv.PacketConn = pc
	default:
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		srv.Listener = ln
	}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	if srv.PacketConn != nil {
		return srv.PacketConn.LocalAddr().String()
	}
	return srv.Listener.Addr().String()
}

func TestForwarding(t *testing.T) {
	up := upstream(t, "udp")
	// A resolver that never answers: its socket reads and drops.
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = silent.Close() })

	s := startServer(t, Config{Resolvers: []string{silent.LocalAddr().String(), up}, Timeout: 200 * time.Millisecond}, newFakeSource(testSnapshot()))
	r := query(t, s.Addr(), "udp", "example.com.", mdns.TypeA)
	assert.Equal(t, mdns.RcodeSuccess, r.Rcode)
	assert.Equal(t, []string{"192.0.2.7"}, answerStrings(r))
	assert.True(t, r.RecursionAvailable)
	assert.False(t, r.Authoritative)

	r = query(t, s.Addr(), "udp", "nothing.example.org.", mdns.TypeA)
	assert.Equal(t, mdns.RcodeNameError, r.Rcode)

	// Our own names are never forwarded, and say recursion is available.
	r = query(t, s.Addr(), "udp", "web.marathon.mesos.", mdns.TypeA)
	assert.True(t, r.Authoritative)
	assert.True(t, r.RecursionAvailable)

	hosts, err := resolver(s.Addr()).LookupHost(context.Background(), "example.com.")
	require.NoError(t, err)
	assert.Equal(t, []string{"192.0.2.7"}, hosts)

	t.Run("all upstreams silent: SERVFAIL", func(t *testing.T) {
		s := startServer(t, Config{Resolvers: []string{silent.LocalAddr().String()}, Timeout: 100 * time.Millisecond}, newFakeSource(Snapshot{}))
		r := query(t, s.Addr(), "udp", "example.com.", mdns.TypeA)
		assert.Equal(t, mdns.RcodeServerFailure, r.Rcode)
	})
	t.Run("over TCP", func(t *testing.T) {
		upTCP := upstream(t, "tcp")
		s := startServer(t, Config{Resolvers: []string{upTCP}}, newFakeSource(Snapshot{}))
		r := query(t, s.Addr(), "tcp", "example.com.", mdns.TypeA)
		assert.Equal(t, []string{"192.0.2.7"}, answerStrings(r))
	})
}

func TestResolversFromFile(t *testing.T) {
	path := t.TempDir() + "/resolv.conf"
	require.NoError(t, writeFile(path, "search example\nnameserver 192.0.2.1\nnameserver 2001:db8::53\n"))
	got, err := ResolversFromFile(path)
	require.NoError(t, err)
	assert.Equal(t, []string{"192.0.2.1:53", "[2001:db8::53]:53"}, got)
	s, err := New(Config{ResolvConf: path, Logger: quietLogger()})
	require.NoError(t, err)
	assert.Equal(t, []string{"192.0.2.1:53", "[2001:db8::53]:53"}, s.resolvers)
	_, err = New(Config{Resolvers: []string{"not-an-ip"}})
	assert.Error(t, err)
	_, err = New(Config{Domain: "bad domain"})
	assert.Error(t, err)
}

func TestHTTPAPI(t *testing.T) {
	s := startServer(t, Config{Domain: "mesos", TTL: 30}, newFakeSource(testSnapshot()))
	h := httptest.NewServer(s)
	t.Cleanup(h.Close)
	get := func(path string, out any) int {
		resp, err := http.Get(h.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		if out != nil {
			require.NoError(t, json.NewDecoder(resp.Body).Decode(out))
		}
		return resp.StatusCode
	}
	var version map[string]string
	require.Equal(t, 200, get("/v1/version", &version))
	assert.Equal(t, "Mesos-DNS", version["Service"])

	var config map[string]any
	require.Equal(t, 200, get("/v1/config", &config))
	assert.Equal(t, "mesos", config["Domain"])
	assert.EqualValues(t, 30, config["TTL"])

	var hosts []hostRecord
	require.Equal(t, 200, get("/v1/hosts/web.marathon.mesos", &hosts))
	assert.ElementsMatch(t, []hostRecord{{"web.marathon.mesos.", "10.0.0.1"}, {"web.marathon.mesos.", "10.0.0.2"}, {"web.marathon.mesos.", "2001:db8::2"}}, hosts)
	require.Equal(t, 200, get("/v1/hosts/nope.marathon.mesos", &hosts))
	assert.Equal(t, []hostRecord{{}}, hosts)

	var services []serviceRecord
	require.Equal(t, 200, get("/v1/services/_http._web._tcp.marathon.mesos.", &services))
	w1 := "web-" + taskHash("web.1") + "-s1.marathon.mesos."
	w2 := "web-" + taskHash("web.2") + "-s2.marathon.mesos."
	assert.ElementsMatch(t, []serviceRecord{
		{Service: "_http._web._tcp.marathon.mesos.", Host: w1, IP: "10.0.0.1", Port: "31001"},
		{Service: "_http._web._tcp.marathon.mesos.", Host: w2, IP: "10.0.0.2", Port: "31002"},
		{Service: "_http._web._tcp.marathon.mesos.", Host: w2, IP: "2001:db8::2", Port: "31002"},
	}, services)
	require.Equal(t, 200, get("/v1/services/_nope._tcp.marathon.mesos", &services))
	assert.Equal(t, []serviceRecord{{}}, services)
	assert.Equal(t, http.StatusNotImplemented, get("/v1/hosts/web.marathon.mesos/ports", nil))
}

// digPath finds dig; without it the test fails (it is a test
// prerequisite: .ci/prereqs.sh test) unless -short.
func digPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("dig")
	if err != nil {
		if testing.Short() {
			t.Skip("dig not installed (-short)")
		}
		t.Fatal("dig is missing: install dnsutils (.ci/prereqs.sh test)")
	}
	return p
}

// dig runs dig against addr and returns its +short lines, sorted.
func dig(t *testing.T, addr string, args ...string) []string {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	cmd := exec.Command(digPath(t), append([]string{"@" + host, "-p", port, "+time=5", "+tries=1"}, args...)...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	var lines []string
	for l := range strings.Lines(string(out)) {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	sort.Strings(lines)
	return lines
}

func TestDig(t *testing.T) {
	digPath(t)
	s := startServer(t, Config{}, newFakeSource(testSnapshot()))
	w1 := "web-" + taskHash("web.1") + "-s1.marathon.mesos."
	w2 := "web-" + taskHash("web.2") + "-s2.marathon.mesos."
	assert.Equal(t, []string{"10.0.0.1", "10.0.0.2"}, dig(t, s.Addr(), "+short", "web.marathon.mesos", "A"))
	assert.Equal(t, []string{"0 1 31001 " + w1, "0 1 31002 " + w2}, dig(t, s.Addr(), "+short", "_http._web._tcp.marathon.mesos", "SRV"))
	assert.Equal(t, []string{"0 1 31001 " + w1, "0 1 31002 " + w2}, dig(t, s.Addr(), "+short", "+tcp", "_http._web._tcp.marathon.mesos", "SRV"))
	full := strings.Join(dig(t, s.Addr(), "nope.marathon.mesos", "A"), "\n")
	assert.Contains(t, full, "status: NXDOMAIN")
	assert.Contains(t, full, "flags: qr aa rd")
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o644) }

func TestNeverForwardsToItself(t *testing.T) {
	// Reserve a port, then point the server's resolvers at its own address.
	probe, err := New(Config{Addr: "127.0.0.1:0", Logger: quietLogger()})
	require.NoError(t, err)
	require.NoError(t, probe.Listen())
	addr := probe.Addr()
	probe.pc.Close()
	probe.ln.Close()
	s, err := New(Config{Addr: addr, Resolvers: []string{addr, "192.0.2.1:53"}, Logger: quietLogger()})
	require.NoError(t, err)
	require.NoError(t, s.Listen())
	t.Cleanup(func() { s.pc.Close(); s.ln.Close() })
	assert.Equal(t, []string{"192.0.2.1:53"}, s.resolvers)
}
