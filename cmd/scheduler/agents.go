package main

import (
	"fmt"
	"log/slog"
	"net"

	"github.com/urfave/cli/v2"

	"github.com/switchyard/switchyard/scheduler/agentapi"
)

// agentFlags are the flags of agent authentication
// (docs/security-agents.md).
func agentFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "agent-secret-file", EnvVars: []string{"SWITCHYARD_AGENT_SECRET_FILE"},
			Usage: "file of cluster secrets agents must present (one per line; several while rotating); without it only agents on this host are admitted"},
		&cli.BoolFlag{Name: "agent-insecure-no-auth",
			Usage: "admit agents from any address without a secret (anyone who reaches the API can then register and receive tasks with their env); --insecure-no-auth implies it"},
	}
}

// agentAuth builds the agent API's admission rule from the flags: the
// secrets of --agent-secret-file; without them, loopback peers only,
// unless --agent-insecure-no-auth (or the general --insecure-no-auth).
func agentAuth(c *cli.Context, addr string, log *slog.Logger) (agentapi.HandlerConfig, error) {
	cfg := agentapi.HandlerConfig{Logger: log}
	if p := c.String("agent-secret-file"); p != "" {
		secrets, err := agentapi.ReadSecretFile(p, func(msg string) { log.Warn(msg) })
		if err != nil {
			return cfg, fmt.Errorf("--agent-secret-file: %w", err)
		}
		cfg.Secrets = secrets
		return cfg, nil
	}
	// c.Bool is false for a flag this binary does not define.
	cfg.AllowAnonymous = c.Bool("agent-insecure-no-auth") || c.Bool("insecure-no-auth")
	switch {
	case cfg.AllowAnonymous:
		log.Warn("agents are not authenticated: anyone reaching the API can register as an agent and receive tasks with their environment")
	case !loopbackAddr(addr):
		log.Warn("no --agent-secret-file: only agents on this host are admitted; give agents a secret (agent --secret-file) to admit others",
			"addr", addr)
	}
	return cfg, nil
}

// loopbackAddr reports whether a listen address ("host:port") binds only
// loopback addresses.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
