// Package dns serves the scheduler's apps and tasks as DNS names the way
// Mesos-DNS does (docs/dns.md): A/AAAA and SRV records for the running
// (and, with health checks, healthy) tasks of every app under
// <app>.marathon.<domain>, records for the leader, masters and agents, an
// SOA/NS for the domain, and forwarding of every other name to upstream
// resolvers. It also serves Mesos-DNS's HTTP API (/v1/...).
//
// The name table is rebuilt from a Source (the scheduler) whenever the
// scheduler publishes an event, and on a timer; queries read the current
// table without locks. The DNS protocol is github.com/miekg/dns.
package dns
