package controller

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"time"
)

// HostLookup resolves a host name; *net.Resolver satisfies it.
type HostLookup interface {
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

// Resolution policy for agent host names.
const (
	// hostTTL is how long an answer is used before it is looked up again
	// (a failed refresh keeps the previous answer).
	hostTTL = 5 * time.Minute
	// hostRetry is how long a host that could not be resolved waits
	// before the next attempt.
	hostRetry = 30 * time.Second
	// hostLookupTimeout bounds one round of lookups.
	hostLookupTimeout = 3 * time.Second
	// hostLookupParallel bounds the lookups in flight.
	hostLookupParallel = 16
	// defaultHostCacheSize is marathon-lb's --lru-cache-capacity default.
	defaultHostCacheSize = 1000
)

// hostResolver turns the agent host names of host- and bridge-mode tasks
// into IPv4 addresses, as marathon-lb does: HAProxy gets an address it can
// use without DNS at runtime ("add server" with a name leaves the server
// without an address), and server names carry both. Answers are cached;
// a host that cannot be resolved keeps its last address, and while one has
// never resolved lb.Build routes its tasks to their own ipAddresses (the
// agent address Mesos reports), or leaves out the tasks without any and
// says so in /_switchyard/skipped (failures are logged once per attempt).
type hostResolver struct {
	lookup HostLookup
	size   int
	log    *slog.Logger
	now    func() time.Time

	mu      sync.Mutex
	entries map[string]*hostEntry // guarded by mu
}

type hostEntry struct {
	ip      string    // "" until resolved once
	checked time.Time // last lookup attempt
	used    time.Time // last render that needed it, for eviction
}

func newHostResolver(lookup HostLookup, size int, log *slog.Logger) *hostResolver {
	if lookup == nil {
		lookup = net.DefaultResolver
	}
	if size <= 0 {
		size = defaultHostCacheSize
	}
	return &hostResolver{lookup: lookup, size: size, log: log, now: time.Now, entries: map[string]*hostEntry{}}
}

// hostPass is one render's use of the resolver. lb.Build asks it (through
// lb.Options.ResolveHost) for the host names of the tasks it routes to, so
// only those are ever looked up: answers come from the cache; finish then
// looks up the names that were missing or are due for a refresh.
type hostPass struct {
	r     *hostResolver
	now   time.Time
	table map[string]string // cached answers at begin
	asked map[string]bool   // host names Build asked for
}

// begin starts a pass on a snapshot of the cache.
func (r *hostResolver) begin() *hostPass {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := &hostPass{r: r, now: r.now(), table: make(map[string]string, len(r.entries)), asked: map[string]bool{}}
	for h, e := range r.entries {
		if e.ip != "" {
			p.table[h] = e.ip
		}
	}
	return p
}

// resolve is lb.Options.ResolveHost. Build calls it from one goroutine.
func (p *hostPass) resolve(host string) (string, bool) {
	p.asked[host] = true
	ip, ok := p.table[host]
	return ip, ok
}

// finish records which names the render needed, looks up those never
// resolved (after hostRetry for a failed one) or older than hostTTL, 16 at
// a time within hostLookupTimeout, and trims the cache. It reports whether
// an answer changed, in which case the caller builds again.
func (p *hostPass) finish() (changed bool) {
	r := p.r
	var due []string
	old := map[string]string{}
	r.mu.Lock()
	for h := range p.asked {
		e := r.entries[h]
		if e == nil {
			e = &hostEntry{}
			r.entries[h] = e
		}
		e.used = p.now
		wait := hostTTL
		if e.ip == "" {
			wait = hostRetry
		}
		if e.checked.IsZero() || p.now.Sub(e.checked) >= wait {
			due = append(due, h)
			old[h] = e.ip
		}
	}
	r.mu.Unlock()

	if len(due) > 0 {
		r.lookupAll(due, p.now)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, h := range due {
		if e := r.entries[h]; e != nil && e.ip != old[h] {
			changed = true
		}
	}
	r.evict(p.now)
	return changed
}

// lookupAll resolves hosts, hostLookupParallel at a time.
func (r *hostResolver) lookupAll(hosts []string, now time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), hostLookupTimeout)
	defer cancel()
	sem := make(chan struct{}, hostLookupParallel)
	var wg sync.WaitGroup
	for _, h := range hosts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ip, err := r.lookupIPv4(ctx, h)
			r.mu.Lock()
			defer r.mu.Unlock()
			e := r.entries[h]
			e.checked = now
			switch {
			case err == nil:
				if e.ip != ip && e.ip != "" {
					r.log.Info("agent host resolves to a new address", "host", h, "old", e.ip, "ip", ip)
				}
				e.ip = ip
			case e.ip != "":
				r.log.Warn("cannot resolve agent host; keeping its last address", "host", h, "ip", e.ip, "err", err)
			default:
				r.log.Warn("cannot resolve agent host; its tasks use their ipAddresses, or are left out without any", "host", h, "err", err, "retry_in", hostRetry)
			}
		}()
	}
	wg.Wait()
}

// lookupIPv4 returns host's first IPv4 address (marathon-lb serves IPv4
// backends), or its first address when it has no IPv4 one.
func (r *hostResolver) lookupIPv4(ctx context.Context, host string) (string, error) {
	addrs, err := r.lookup.LookupIPAddr(ctx, host)
	if err != nil {
		return "", err
	}
	for _, a := range addrs {
		if v4 := a.IP.To4(); v4 != nil {
			return v4.String(), nil
		}
	}
	if len(addrs) > 0 {
		return addrs[0].IP.String(), nil
	}
	return "", &net.DNSError{Err: "no address", Name: host, IsNotFound: true}
}

// evict drops the least recently needed entries beyond the cache size,
// never one the current render (at now) needs. Caller holds r.mu.
func (r *hostResolver) evict(now time.Time) {
	for len(r.entries) > r.size {
		var oldest string
		var at time.Time
		for h, e := range r.entries {
			if e.used.Before(now) && (oldest == "" || e.used.Before(at)) {
				oldest, at = h, e.used
			}
		}
		if oldest == "" {
			return
		}
		delete(r.entries, oldest)
	}
}
