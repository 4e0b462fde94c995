package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/switchyard/switchyard/scheduler/agent"
	"github.com/switchyard/switchyard/scheduler/agentapi"
)

// securityFlags are the flags of agent authentication and task isolation
// (docs/security-agents.md).
func securityFlags() []cli.Flag {
	defaultUser := ""
	if os.Geteuid() == 0 {
		defaultUser = "nobody"
	}
	return []cli.Flag{
		&cli.StringFlag{Name: "secret-file", EnvVars: []string{"SWITCHYARD_AGENT_SECRET_FILE"},
			Usage: "file holding the cluster secret the scheduler's --agent-secret-file holds (first line used)"},
		&cli.StringFlag{Name: "ca-file", Usage: "PEM CA certificates to trust for an https --master (default: the system's)"},
		&cli.StringFlag{Name: "cert-file", Usage: "PEM client certificate presented to an https --master (mutual TLS); needs --key-file"},
		&cli.StringFlag{Name: "key-file", Usage: "PEM private key of --cert-file"},
		&cli.StringFlag{Name: "default-user", Value: defaultUser,
			Usage: `user command tasks run as when their app has no "user" (like Mesos' --switch_user); empty: the agent's own user. Default "nobody" when the agent runs as root`},
		&cli.BoolFlag{Name: "allow-root-tasks",
			Usage: `let command tasks run as root (an app's "user": "root", or the agent's own user when it is root and --default-user is empty)`},
		&cli.StringSliceFlag{Name: "task-env-passthrough",
			Usage: "NAME[,NAME]: variables of the agent's environment tasks also get (none by default: tasks never inherit the agent's environment)"},
	}
}

// applySecurity fills cfg's authentication and task isolation fields from
// the flags.
func applySecurity(c *cli.Context, log *slog.Logger, cfg *agent.Config) error {
	if p := c.String("secret-file"); p != "" {
		secrets, err := agentapi.ReadSecretFile(p, func(msg string) { log.Warn(msg) })
		if err != nil {
			return fmt.Errorf("--secret-file: %w", err)
		}
		cfg.Secret = secrets[0]
	}
	hc, err := httpClient(c.String("ca-file"), c.String("cert-file"), c.String("key-file"))
	if err != nil {
		return err
	}
	cfg.HTTPClient = hc
	if u, err := url.Parse(cfg.SchedulerURL); err == nil && u.Scheme == "http" && !loopbackHost(u.Hostname()) {
		if cfg.Secret != "" {
			log.Warn("the cluster secret and task environments travel in clear text: use an https --master")
		} else {
			log.Warn("no --secret-file: a scheduler on another host refuses this agent unless it runs with --insecure-no-auth")
		}
	}
	cfg.DefaultUser = c.String("default-user")
	cfg.AllowRootTasks = c.Bool("allow-root-tasks")
	cfg.TaskEnvPassthrough = c.StringSlice("task-env-passthrough")
	log.Info("agent security", "cluster_secret", cfg.Secret != "", "default_user", cfg.DefaultUser,
		"allow_root_tasks", cfg.AllowRootTasks, "task_env_passthrough", cfg.TaskEnvPassthrough)
	if os.Geteuid() != 0 && cfg.DefaultUser != "" {
		log.Warn("--default-user needs an agent running as root to switch users; tasks of other users will fail", "default_user", cfg.DefaultUser)
	}
	return nil
}

// httpClient returns the client for the scheduler: nil (the default)
// without TLS options.
func httpClient(caFile, certFile, keyFile string) (*http.Client, error) {
	if caFile == "" && certFile == "" && keyFile == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca-file %s: no PEM certificate in it", caFile)
		}
		tc.RootCAs = pool
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("--cert-file and --key-file go together")
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("--cert-file/--key-file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	return &http.Client{Transport: tr}, nil
}

// loopbackHost reports whether host is "localhost" or a loopback IP.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
