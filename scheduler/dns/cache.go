package dns

import (
	"encoding/binary"
	"hash/maphash"
	"net/netip"
	"slices"

	"github.com/switchyard/switchyard/marathon"
)

// appEntry is one app's share of the name table, kept between rebuilds:
// an app whose definition and tasks did not change is not built again.
// Its rrsets are never changed once built (tables share them).
type appEntry struct {
	fp      uint64
	names   map[string]*rrset
	parents []string // the ancestors of names (below the domain)
	tasks   int
}

// tableCache holds the app entries of the last build. It belongs to one
// goroutine (the watch loop).
type tableCache struct {
	seed   maphash.Seed
	apps   map[string]*appEntry
	agents uint64 // fingerprint of the agents the entries were built with
}

func newTableCache() *tableCache {
	return &tableCache{seed: maphash.MakeSeed(), apps: map[string]*appEntry{}}
}

// build is buildCached without a cache (every app is built).
func build(domain, framework string, snap Snapshot, nsIPs []netip.Addr) *table {
	return buildCached(newTableCache(), domain, framework, snap, nsIPs)
}

// buildCached builds the table of snap (see the names in table.go),
// building only the apps whose fingerprint changed since the last call
// with c, and merging the rest from c.
func buildCached(c *tableCache, domain, framework string, snap Snapshot, nsIPs []netip.Addr) *table {
	agents := make(map[string]Agent, len(snap.Agents))
	var h maphash.Hash
	h.SetSeed(c.seed)
	for _, a := range snap.Agents {
		agents[a.ID] = a
		h.WriteString(a.ID)
		for _, ip := range a.IPs {
			b := ip.As16()
			h.Write(b[:])
		}
		h.WriteByte(0)
	}
	if fp := h.Sum64(); fp != c.agents {
		clear(c.apps) // agent addresses are in every entry
		c.agents = fp
	}

	// The cluster's own names first, into a builder whose rrsets are new.
	b := newTableBuilder(domain, framework, 16)
	for _, a := range snap.Agents {
		b.addIPs(b.fqdn("slave"), a.IPs)
		if hn := domainFrag(a.Hostname); hn != "" {
			b.addIPs(b.fqdn(hn, "slave"), a.IPs)
		}
	}
	b.addIPs(b.fqdn("ns1"), nsIPs)
	if len(snap.Leader) > 0 {
		fw := domainFrag(framework)
		b.addIPs(b.fqdn("leader"), snap.Leader)
		b.addIPs(b.fqdn("master"), snap.Leader)
		b.addIPs(b.fqdn("master0"), snap.Leader)
		b.addIPs(b.fqdn(fw), snap.Leader)
		b.addSRV(b.fqdn("_leader", "_tcp"), b.fqdn("leader"), snap.LeaderPort)
		b.addSRV(b.fqdn("_leader", "_udp"), b.fqdn("leader"), snap.LeaderPort)
		b.addSRV(b.fqdn("_framework", "_tcp", fw), b.fqdn(fw), snap.LeaderPort)
	}
	cluster := b.finish()

	// Then every app's entry, rebuilt when its fingerprint changed.
	hint := len(cluster.names)
	entries := make([]*appEntry, 0, len(snap.Apps))
	seen := make(map[string]bool, len(snap.Apps))
	for i := range snap.Apps {
		app := &snap.Apps[i]
		seen[app.ID] = true
		fp := c.fingerprint(app)
		e := c.apps[app.ID]
		if e == nil || e.fp != fp {
			ab := newTableBuilder(domain, framework, 6+4*len(app.Tasks))
			ab.app(app, agents)
			t := ab.finish()
			e = &appEntry{fp: fp, names: t.names, tasks: t.tasks}
			// Ancestors that are names of the app stay names when
			// merged; the others may be empty non-terminals.
			for p := range t.ents {
				e.parents = append(e.parents, p)
			}
			c.apps[app.ID] = e
		}
		entries = append(entries, e)
		hint += len(e.names)
	}
	for id := range c.apps {
		if !seen[id] {
			delete(c.apps, id)
		}
	}

	// Merge: a name two sources share gets a new, combined rrset.
	t := &table{names: make(map[string]*rrset, hint), ents: map[string]struct{}{}}
	for n, rs := range cluster.names {
		t.names[n] = rs
	}
	for _, e := range entries {
		t.tasks += e.tasks
		for n, rs := range e.names {
			if prev, ok := t.names[n]; ok {
				t.names[n] = mergeRRs(prev, rs)
			} else {
				t.names[n] = rs
			}
		}
	}
	addENT := func(p string) {
		if _, ok := t.names[p]; !ok {
			t.ents[p] = struct{}{}
		}
	}
	for p := range cluster.ents {
		addENT(p)
	}
	for _, e := range entries {
		for _, p := range e.parents {
			addENT(p)
		}
	}
	return t
}

// mergeRRs is a new rrset with the records of a and b.
func mergeRRs(a, b *rrset) *rrset {
	out := &rrset{a: slices.Clone(a.a), aaaa: slices.Clone(a.aaaa), srv: slices.Clone(a.srv)}
	for _, ip := range b.a {
		if !slices.Contains(out.a, ip) {
			out.a = append(out.a, ip)
		}
	}
	for _, ip := range b.aaaa {
		if !slices.Contains(out.aaaa, ip) {
			out.aaaa = append(out.aaaa, ip)
		}
	}
	for _, s := range b.srv {
		if !slices.Contains(out.srv, s) {
			out.srv = append(out.srv, s)
		}
	}
	return out
}

// fingerprint hashes what an app's records depend on: its definition
// (the version changes with every change; the port and network fields
// are hashed as well) and, per task, its id, state, agent, host, ports,
// addresses and health verdicts.
func (c *tableCache) fingerprint(app *marathon.App) uint64 {
	var h maphash.Hash
	h.SetSeed(c.seed)
	str := func(s string) { h.WriteString(s); h.WriteByte(0) }
	var buf [8]byte
	num := func(n int) {
		binary.LittleEndian.PutUint64(buf[:], uint64(n))
		h.Write(buf[:])
	}
	str(app.ID)
	str(app.Version)
	num(len(app.HealthChecks))
	if app.IPAddress != nil {
		h.WriteByte(1)
		if d := app.IPAddress.Discovery; d != nil {
			for _, p := range d.Ports {
				num(p.Number)
				str(p.Name)
				str(p.Protocol)
			}
		}
	}
	for _, n := range app.Networks {
		str(n.Mode)
	}
	for _, p := range app.PortDefinitions {
		str(p.Name)
		str(p.Protocol)
	}
	if ct := app.Container; ct != nil {
		mappings := ct.PortMappings
		if ct.Docker != nil {
			mappings = append(slices.Clip(mappings), ct.Docker.PortMappings...)
		}
		for _, m := range mappings {
			num(m.ContainerPort)
			str(m.Name)
			str(m.Protocol)
		}
	}
	for i := range app.Tasks {
		t := &app.Tasks[i]
		str(t.ID)
		str(t.State)
		str(t.SlaveID)
		str(t.Host)
		num(len(t.Ports))
		for _, p := range t.Ports {
			num(p)
		}
		for _, ip := range t.IPAddresses {
			str(ip.IPAddress)
		}
		num(len(t.HealthCheckResults))
		for _, r := range t.HealthCheckResults {
			if r.Alive {
				h.WriteByte(1)
			} else {
				h.WriteByte(2)
			}
		}
	}
	return h.Sum64()
}
