package dns

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/switchyard/switchyard/marathon"
)

// Defaults, as Mesos-DNS has them.
const (
	DefaultDomain    = "mesos"
	DefaultFramework = "marathon"
	DefaultTTL       = 60
	DefaultTimeout   = 5 * time.Second
	DefaultRefresh   = 30 * time.Second
	// DefaultMinInterval is Config.MinInterval's default.
	DefaultMinInterval = 10 * time.Millisecond
	// maxHold bounds how long a change waits for the next rebuild.
	maxHold = 250 * time.Millisecond
)

// Source is the scheduler as the name table sees it: read-only, and
// events only flow from it to us.
type Source interface {
	// ListApps returns every app with its tasks.
	ListApps(context.Context) ([]marathon.App, error)
	// Subscribe delivers the scheduler's events until the returned
	// function is called (or the channel is closed by the source).
	Subscribe(remoteAddr string) (<-chan marathon.Event, func())
	// Leader returns the leading scheduler's host:port.
	Leader(context.Context) (string, error)
	// Agents lists the reachable agents.
	Agents(context.Context) []AgentAddr
}

// AgentAddr is an agent as the scheduler knows it.
type AgentAddr struct {
	ID       string
	Hostname string
	// Address is an IP address or a hostname.
	Address string
}

// Config configures a Server.
type Config struct {
	// Addr is the UDP and TCP address to serve DNS on (":53" in
	// production); empty serves only the HTTP API.
	Addr string
	// Domain is the zone the server owns (default "mesos").
	Domain string
	// Framework names the scheduler in task names (default "marathon").
	Framework string
	// TTL is the time to live of every record, in seconds (default 60).
	TTL uint32
	// Resolvers are the upstream servers (IP or IP:port) names outside
	// Domain are forwarded to. Empty: the nameservers of ResolvConf;
	// none at all refuses those names.
	Resolvers []string
	// ResolvConf is a resolv.conf file read when Resolvers is empty
	// (empty: none is read).
	ResolvConf string
	// Timeout bounds one forwarded query (default 5s).
	Timeout time.Duration
	// Refresh is how often the table is rebuilt even without events
	// (agents joining or leaving publish none; default 30s).
	Refresh time.Duration
	// MinInterval keeps rebuilds during a burst of events this far apart,
	// and at least four times as long as a rebuild takes (default 10ms;
	// a change after a quiet spell is applied at once).
	MinInterval time.Duration
	// Version is what /v1/version reports.
	Version string
	// LookupHost resolves agent and leader hostnames (default: the
	// system resolver). Names inside Domain are never looked up.
	LookupHost func(ctx context.Context, host string) ([]netip.Addr, error)
	// Registry receives the server's metrics (optional).
	Registry prometheus.Registerer
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Server is the DNS server and its HTTP API. Create it with New, serve
// it with Run; it is an http.Handler (the /v1/ API) and a miekg/dns
// Handler.
type Server struct {
	cfg       Config
	domain    string // "mesos."
	resolvers []string
	log       *slog.Logger
	metrics   *metrics
	mux       *http.ServeMux

	tab       atomic.Pointer[snapshot]
	following sync.Mutex  // held by Follow
	cache     *tableCache // Follow's
	ready     chan struct{}
	once      sync.Once

	mu    sync.Mutex
	pc    net.PacketConn
	ln    net.Listener
	nsIPs []netip.Addr
}

// snapshot is the current table with its serial number.
type snapshot struct {
	t      *table
	serial uint32
}

// New checks cfg and fills in the defaults.
func New(cfg Config) (*Server, error) {
	if cfg.Domain == "" {
		cfg.Domain = DefaultDomain
	}
	cfg.Domain = strings.ToLower(strings.Trim(cfg.Domain, "."))
	if _, ok := mdns.IsDomainName(cfg.Domain + "."); !ok || domainFrag(cfg.Domain) != cfg.Domain {
		return nil, fmt.Errorf("dns domain %q: not a valid domain name", cfg.Domain)
	}
	if cfg.Framework == "" {
		cfg.Framework = DefaultFramework
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = DefaultRefresh
	}
	if cfg.MinInterval == 0 {
		cfg.MinInterval = DefaultMinInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.LookupHost == nil {
		cfg.LookupHost = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	s := &Server{
		cfg:     cfg,
		domain:  cfg.Domain + ".",
		log:     cfg.Logger,
		metrics: newMetrics(cfg.Registry),
		ready:   make(chan struct{}),
		cache:   newTableCache(),
	}
	if len(cfg.Resolvers) == 0 && cfg.ResolvConf != "" {
		rs, err := ResolversFromFile(cfg.ResolvConf)
		if err != nil {
			s.log.Warn("no upstream DNS resolvers: names outside the domain are refused", "err", err)
		}
		cfg.Resolvers = rs
		s.cfg.Resolvers = rs
	}
	for _, r := range cfg.Resolvers {
		addr, err := resolverAddr(r)
		if err != nil {
			return nil, err
		}
		s.resolvers = append(s.resolvers, addr)
	}
	s.tab.Store(&snapshot{t: build(s.domain, cfg.Framework, Snapshot{}, nil)})
	s.mux = s.routes()
	return s, nil
}

// resolverAddr adds port 53 to a resolver given without one.
func resolverAddr(r string) (string, error) {
	if ap, err := netip.ParseAddrPort(r); err == nil {
		return ap.String(), nil
	}
	ip, err := netip.ParseAddr(strings.Trim(r, "[]"))
	if err != nil {
		return "", fmt.Errorf("dns resolver %q: want an IP address or IP:port: %w", r, err)
	}
	return net.JoinHostPort(ip.String(), "53"), nil
}

// ResolversFromFile reads the nameservers of a resolv.conf file (Mesos-DNS
// recommends forwarding to the host's own resolvers).
func ResolversFromFile(path string) ([]string, error) {
	cc, err := mdns.ClientConfigFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("read resolvers: %w", err)
	}
	out := make([]string, 0, len(cc.Servers))
	for _, s := range cc.Servers {
		out = append(out, net.JoinHostPort(s, cc.Port))
	}
	return out, nil
}

// Listen binds the UDP and TCP sockets of cfg.Addr (the same port for
// both; with port 0 a free one). Run calls it when it was not called.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pc != nil || s.cfg.Addr == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("dns address %q: %w", s.cfg.Addr, err)
	}
	for try := 0; ; try++ {
		pc, err := net.ListenPacket("udp", s.cfg.Addr)
		if err != nil {
			return fmt.Errorf("dns listen udp %s: %w", s.cfg.Addr, err)
		}
		p := port
		if p == "0" {
			p = strconv.Itoa(pc.LocalAddr().(*net.UDPAddr).Port)
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(host, p))
		if err != nil {
			_ = pc.Close()
			if port == "0" && try < 20 {
				continue // the free UDP port is taken for TCP: try another
			}
			return fmt.Errorf("dns listen tcp %s: %w", net.JoinHostPort(host, p), err)
		}
		s.pc, s.ln = pc, ln
		s.nsIPs = listenerIPs(host)
		s.resolvers = s.notSelf(s.resolvers, pc.LocalAddr().(*net.UDPAddr))
		return nil
	}
}

// notSelf drops the resolvers that are this server (a resolv.conf that
// points at the host's own DNS server would make every forwarded query
// come back to us).
func (s *Server) notSelf(resolvers []string, self *net.UDPAddr) []string {
	own := map[netip.Addr]bool{}
	if ip, ok := netip.AddrFromSlice(self.IP); ok {
		own[ip.Unmap()] = true
	}
	if addrs, err := net.InterfaceAddrs(); err == nil && self.IP.IsUnspecified() {
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				own[p.Addr().Unmap()] = true
			}
		}
	}
	var out []string
	for _, r := range resolvers {
		ap, err := netip.ParseAddrPort(r)
		if err == nil && int(ap.Port()) == self.Port && (own[ap.Addr().Unmap()] || ap.Addr().IsLoopback() && self.IP.IsUnspecified()) {
			s.log.Warn("dns: not forwarding to ourselves; dropped that resolver", "resolver", r)
			continue
		}
		out = append(out, r)
	}
	return out
}

// Addr is the bound DNS address (empty before Listen or without one).
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pc == nil {
		return ""
	}
	return s.pc.LocalAddr().String()
}

// listenerIPs is what ns1.<domain> resolves to: the listen address, or
// every non-loopback interface address when it listens on all of them.
func listenerIPs(host string) []netip.Addr {
	if ip, err := netip.ParseAddr(host); err == nil && !ip.IsUnspecified() {
		return []netip.Addr{ip.Unmap()}
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && !p.Addr().IsLoopback() && !p.Addr().IsLinkLocalUnicast() {
			out = append(out, p.Addr().Unmap())
		}
	}
	return out
}

// Ready is closed once the first table from the source is in place.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Run serves DNS (when cfg.Addr is set) and keeps the table in step with
// src until ctx ends: Serve and Follow together.
func (s *Server) Run(ctx context.Context, src Source) error {
	if err := s.Listen(); err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { s.Follow(gctx, src); return nil })
	g.Go(func() error { return s.Serve(gctx) })
	return g.Wait()
}

// Serve answers queries on the bound address (Listen; nothing without
// cfg.Addr) until ctx ends, from whatever table Follow last built.
func (s *Server) Serve(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	s.mu.Lock()
	pc, ln := s.pc, s.ln
	s.mu.Unlock()
	if pc == nil {
		<-ctx.Done()
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	udp := &mdns.Server{PacketConn: pc, Handler: s, UDPSize: mdns.DefaultMsgSize}
	tcp := &mdns.Server{Listener: ln, Handler: s, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
	for _, srv := range []*mdns.Server{udp, tcp} {
		g.Go(func() error {
			if err := srv.ActivateAndServe(); err != nil && gctx.Err() == nil {
				return fmt.Errorf("dns serve: %w", err)
			}
			return nil
		})
		g.Go(func() error {
			<-gctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_ = srv.ShutdownContext(sctx)
			return nil
		})
	}
	s.log.Info("dns listening", "addr", pc.LocalAddr().String(), "domain", s.cfg.Domain, "resolvers", s.resolvers)
	return g.Wait()
}

// Follow keeps the table in step with src until ctx ends. A scheduler
// that starts over (a new leadership term) is followed by calling Follow
// again with it; the table stays as it was in between. Calls do not
// overlap: a second one waits for the first to return.
func (s *Server) Follow(ctx context.Context, src Source) {
	s.following.Lock()
	defer s.following.Unlock()
	s.watch(ctx, src)
}

// watch rebuilds the table after every batch of events and every
// cfg.Refresh. Events are triggers, not deltas: every rebuild reads the
// whole state, so a lost or repeated event cannot leave the table wrong.
// A change after a quiet spell is applied at once; during a burst the
// rebuilds are cfg.MinInterval and four rebuild times apart.
func (s *Server) watch(ctx context.Context, src Source) {
	tick := time.NewTicker(s.cfg.Refresh)
	defer tick.Stop()
	f := &following{resolved: map[string][]netip.Addr{}}
	var (
		last  time.Time
		dirty bool
		hold  <-chan time.Time
	)
	var took time.Duration // how long rebuilds take
	refresh := func() {
		start := time.Now()
		s.rebuild(ctx, src, f)
		last, dirty = time.Now(), false
		took = (3*took + last.Sub(start)) / 4 // smoothed: one slow rebuild is no trend
	}
	for ctx.Err() == nil {
		events, cancel := src.Subscribe("switchyard-dns")
		refresh()
		for open := true; open; {
			select {
			case <-ctx.Done():
				cancel()
				return
			case <-tick.C:
				clear(f.resolved) // look hostnames up again
				f.agents = nil    // and read the agents again
				refresh()
			case <-hold:
				hold = nil
				if dirty {
					refresh()
				}
			case ev, ok := <-events:
				if !ok {
					open = false // dropped by the source: subscribe again
					break
				}
				dirty = dirty || relevant(ev.Type)
				if !dirty || hold != nil {
					break
				}
				// At most about a fifth of a core goes to rebuilding,
				// and no change waits more than maxHold.
				if wait := min(max(s.cfg.MinInterval, 4*took), maxHold) - time.Since(last); wait > 0 {
					hold = time.After(wait)
					break
				}
				refresh()
			}
		}
		cancel()
	}
}

// relevant tells events that may change names from those that cannot.
func relevant(eventType string) bool {
	switch eventType {
	case marathon.EventStreamAttached, marathon.EventStreamDetached, "failed_health_check_event",
		"subscribe_event", "unsubscribe_event", "add_health_check_event", "remove_health_check_event":
		return false
	}
	return true
}

// following is what one Follow keeps between rebuilds: hostnames looked
// up, and the agents as last read. Agents change without events
// (registering, going away), so they are read again on every refresh
// tick, on the first rebuild, and when a task runs on an agent not known.
type following struct {
	resolved map[string][]netip.Addr
	agents   []Agent // nil: read them
	known    map[string]bool
}

// unknownAgent reports whether a running task's agent is not in f.agents.
func (f *following) unknownAgent(apps []marathon.App) bool {
	for i := range apps {
		for j := range apps[i].Tasks {
			if t := &apps[i].Tasks[j]; t.State == marathon.TaskRunning && !f.known[t.SlaveID] {
				return true
			}
		}
	}
	return false
}

// rebuild reads the source and swaps in a new table.
func (s *Server) rebuild(ctx context.Context, src Source, f *following) {
	start := time.Now()
	apps, err := src.ListApps(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("dns: listing apps failed; keeping the old names", "err", err)
		}
		return
	}
	snap := Snapshot{Apps: apps}
	if leader, err := src.Leader(ctx); err == nil && leader != "" {
		host, port := splitPort(leader)
		snap.Leader, snap.LeaderPort = s.resolve(ctx, host, f.resolved), port
	}
	if f.agents == nil || f.unknownAgent(apps) {
		f.agents, f.known = []Agent{}, map[string]bool{}
		for _, a := range src.Agents(ctx) {
			f.agents = append(f.agents, Agent{ID: a.ID, Hostname: a.Hostname, IPs: s.resolve(ctx, a.Address, f.resolved)})
			f.known[a.ID] = true
		}
	}
	snap.Agents = f.agents
	s.mu.Lock()
	ns := s.nsIPs
	s.mu.Unlock()
	read := time.Now()
	t := buildCached(s.cache, s.domain, s.cfg.Framework, snap, ns)
	s.install(t)
	done := time.Now()
	s.metrics.rebuilds.Inc()
	s.metrics.rebuildSeconds.Observe(done.Sub(start).Seconds())
	s.log.Debug("dns: name table rebuilt", "names", len(t.names), "tasks", t.tasks,
		"read_ms", float64(read.Sub(start).Microseconds())/1000, "build_ms", float64(done.Sub(read).Microseconds())/1000)
	s.metrics.names.Set(float64(len(t.names)))
	s.once.Do(func() { close(s.ready) })
}

// install makes t the current table with a new serial: the Unix time,
// or one more than the last serial when that is not larger.
func (s *Server) install(t *table) {
	prev := s.tab.Load()
	serial := uint32(time.Now().Unix())
	if prev != nil && serial <= prev.serial {
		serial = prev.serial + 1
	}
	s.tab.Store(&snapshot{t: t, serial: serial})
}

// resolve returns host's addresses: parsed when it is an address, else
// looked up (once per refresh) unless it lies inside our own domain.
func (s *Server) resolve(ctx context.Context, host string, cache map[string][]netip.Addr) []netip.Addr {
	if host == "" {
		return nil
	}
	if ips := parseIPs(strings.Trim(host, "[]")); ips != nil {
		return ips
	}
	if ips, ok := cache[host]; ok {
		return ips
	}
	var ips []netip.Addr
	if !mdns.IsSubDomain(s.domain, mdns.Fqdn(strings.ToLower(host))) {
		lctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
		found, err := s.cfg.LookupHost(lctx, host)
		cancel()
		if err != nil {
			s.log.Debug("dns: cannot resolve host", "host", host, "err", err)
		}
		for _, ip := range found {
			ips = append(ips, ip.Unmap())
		}
	}
	cache[host] = ips
	return ips
}
