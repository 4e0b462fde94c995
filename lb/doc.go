// Package lb is the pure load-balancer model of Switchyard: it turns Marathon
// apps (with their tasks) and the operator's Options into a Config that the
// templates package renders as haproxy.cfg.
//
// Build follows marathon-lb's rules: which apps a load balancer exposes
// (HAPROXY_GROUP, HAPROXY_{n}_GROUP, --group, --strict-mode), how service
// ports are found for each networking mode (host, container/bridge,
// container), which tasks receive traffic (TASK_RUNNING, TASK_LOST,
// TASK_UNREACHABLE or no state, with a host and ports; with --health-check
// only tasks whose health checks are all alive),
// and how the HAPROXY_{n}_* labels change a service. The package does no I/O
// and keeps no state: the same input always gives the same output.
//
// A bad label never breaks the other apps: the affected app port is left out
// and reported in the []Skipped that Build returns.
package lb
