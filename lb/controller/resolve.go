package controller

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/switchyard/switchyard/marathon"
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
// a host that cannot be resolved keeps its last address, and one that
// never resolved leaves its tasks out (logged once per attempt).
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

// refresh looks up the host names of apps' tasks that are new or due,
// concurrently, and returns the function lb.Options.ResolveHost wants.
func (r *hostResolver) refresh(apps []marathon.App) func(string) (string, bool) {
	now := r.now()
	var due []string
	r.mu.Lock()
	for i := range apps {
		for _, t := range apps[i].Tasks {
			h := t.Host
			if h == "" || net.ParseIP(h) != nil {
				continue
			}
			e := r.entries[h]
			if e == nil {
				e = &hostEntry{}
				r.entries[h] = e
			}
			if !e.used.Equal(now) {
				e.used = now
				wait := hostTTL
				if e.ip == "" {
					wait = hostRetry
				}
				if e.checked.IsZero() || now.Sub(e.checked) >= wait {
					due = append(due, h)
				}
			}
		}
	}
	r.mu.Unlock()

	if len(due) > 0 {
		r.lookupAll(due, now)
	}
	r.mu.Lock()
	r.evict(now)
	table := make(map[string]string, len(r.entries))
	for h, e := range r.entries {
		if e.ip != "" {
			table[h] = e.ip
		}
	}
	r.mu.Unlock()
	return func(host string) (string, bool) {
		ip, ok := table[host]
		return ip, ok
	}
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
				r.log.Warn("cannot resolve agent host; its tasks are left out", "host", h, "err", err, "retry_in", hostRetry)
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
