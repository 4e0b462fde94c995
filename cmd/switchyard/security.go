package main

import (
	"fmt"
	"log/slog"
	"net"
)

// checkAPIAddress keeps the all-in-one a laptop tool: its scheduler API
// has no users, so it listens on a loopback address unless
// --insecure-no-auth accepts the risk (for a production cluster run the
// scheduler command with --http-credentials; see docs/security.md).
func checkAPIAddress(addr string, insecure bool, log *slog.Logger) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--http-addr %q: %w", addr, err)
	}
	ip := net.ParseIP(host)
	if host == "localhost" || (ip != nil && ip.IsLoopback()) {
		return nil
	}
	if insecure {
		log.Warn("scheduler API without authentication open to the network (--insecure-no-auth): anyone who can reach it can run commands on this machine", "address", addr)
		return nil
	}
	log.Error("refusing to start: switchyard's scheduler API has no authentication and would be open to the network; "+
		"use a loopback --http-addr (the default 127.0.0.1:8080), run the scheduler command with --http-credentials, or accept the risk with --insecure-no-auth", "address", addr)
	return fmt.Errorf("--http-addr %q is not a loopback address: the API has no authentication (use --insecure-no-auth to allow it)", addr)
}
