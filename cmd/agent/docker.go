package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/switchyard/switchyard/scheduler/agent/driver"
	"github.com/switchyard/switchyard/scheduler/agent/driver/docker"
)

// dockerDriver enables the Docker driver with --docker.
func dockerDriver() driverFactory {
	return driverFactory{
		name: docker.Name,
		flags: []cli.Flag{
			&cli.BoolFlag{Name: "docker", Usage: "also run Docker tasks (container.docker.image)"},
			&cli.StringFlag{Name: "docker-host", Usage: "Docker engine address (default: DOCKER_HOST or the local socket)"},
			&cli.StringFlag{Name: "docker-network", Value: "bridge", EnvVars: []string{docker.EnvBridgeNetwork},
				Usage: "Docker network BRIDGE tasks join"},
			&cli.StringFlag{Name: "docker-bind-ip", EnvVars: []string{docker.EnvPortBindIP},
				Usage: "host IP BRIDGE port mappings are published on (default: every address)"},
			&cli.StringFlag{Name: "docker-sandbox-mount", Value: "/mnt/mesos/sandbox",
				Usage: "where a task's sandbox (fetched artifacts, output) is mounted in its container, also MESOS_SANDBOX; \"\" to not mount it. An agent running in a container needs --data-dir bind-mounted at the same path"},
		},
		enabled: func(c *cli.Context) bool { return c.Bool("docker") },
		build: func(c *cli.Context, log *slog.Logger) (driver.Driver, func() error, error) {
			cfg, err := dockerConfig(c, log)
			if err != nil {
				return nil, nil, err
			}
			d, err := docker.New(cfg)
			if err != nil {
				return nil, nil, err
			}
			ctx, cancel := context.WithTimeout(c.Context, 10*time.Second)
			defer cancel()
			if err := d.Ping(ctx); err != nil {
				_ = d.Close()
				return nil, nil, err
			}
			return d, d.Close, nil
		},
	}
}

// dockerConfig turns the --docker-* flags (and their environment
// variables) into the driver's Config.
func dockerConfig(c *cli.Context, log *slog.Logger) (docker.Config, error) {
	bindIP := c.String("docker-bind-ip")
	if bindIP != "" && net.ParseIP(bindIP) == nil {
		return docker.Config{}, fmt.Errorf("--docker-bind-ip: %q is not an IP address", bindIP)
	}
	if m := c.String("docker-sandbox-mount"); m != "" && !path.IsAbs(m) {
		return docker.Config{}, fmt.Errorf("--docker-sandbox-mount: %q is not an absolute path", m)
	}
	return docker.Config{
		Host:          c.String("docker-host"),
		Owner:         c.String("hostname"),
		BridgeNetwork: c.String("docker-network"),
		PortBindIP:    bindIP,
		SandboxMount:  c.String("docker-sandbox-mount"),
		Logger:        log,
	}, nil
}
