package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"

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
		&cli.StringFlag{Name: "agent-client-ca", EnvVars: []string{"SWITCHYARD_AGENT_CLIENT_CA"},
			Usage: "PEM CA certificates; agents must connect over HTTPS with a client certificate they signed (mutual TLS, on top of the secret); needs --tls-cert and --tls-key"},
		&cli.BoolFlag{Name: "agent-client-cert-hostname",
			Usage: "with --agent-client-ca, an agent's hostname must be a DNS (or IP) name of its client certificate"},
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

// agentClientCA applies --agent-client-ca: the HTTPS listener (tlsCfg)
// asks clients for a certificate, without requiring or verifying one
// (the users' API keeps working without), and the agent API (cfg) admits
// only requests whose certificate chains to the file's CAs.
func agentClientCA(c *cli.Context, tlsCfg *tls.Config, cfg *agentapi.HandlerConfig, log *slog.Logger) error {
	path := c.String("agent-client-ca")
	if path == "" {
		if c.Bool("agent-client-cert-hostname") {
			return errors.New("--agent-client-cert-hostname needs --agent-client-ca")
		}
		return nil
	}
	if tlsCfg == nil {
		return errors.New("--agent-client-ca needs --tls-cert and --tls-key: client certificates travel over HTTPS only")
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--agent-client-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("--agent-client-ca %s: no PEM certificate in it", path)
	}
	tlsCfg.ClientCAs = pool
	tlsCfg.ClientAuth = tls.RequestClientCert
	cfg.ClientCAs = pool
	cfg.ClientCertHostname = c.Bool("agent-client-cert-hostname")
	log.Info("agents must present a client certificate over HTTPS", "ca", path, "hostname_bound", cfg.ClientCertHostname)
	return nil
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
