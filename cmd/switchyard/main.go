// Command switchyard runs a whole Switchyard cluster on one machine: the
// Marathon-compatible scheduler, one agent running command tasks, and the
// HAProxy load balancer following the scheduler's event stream. It deploys
// a sample app (two tasks of "switchyard hello") and prints where to reach
// it through HAProxy.
//
//	switchyard                      # the demo, state in a temporary directory
//	switchyard --data-dir DIR       # state kept in DIR across restarts
//	switchyard hello --listen :8000 # the sample app on its own
package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/switchyard/switchyard/cmd/internal/cliutil"
)

func main() {
	if err := newApp().Run(os.Args); err != nil {
		slog.Error("switchyard failed", "err", err)
		fmt.Fprintln(os.Stderr, "switchyard:", err)
		os.Exit(1)
	}
}

func newApp() *cli.App {
	return &cli.App{
		Name:    "switchyard",
		Usage:   "scheduler, agent and load balancer on one machine, with a sample app",
		Version: cliutil.Version(),
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "data-dir", Usage: "state directory (default: a temporary directory removed on exit)"},
			&cli.StringFlag{Name: "http-addr", Value: "127.0.0.1:8080", Usage: "address of the Marathon v2 API (loopback unless --insecure-no-auth: it has no authentication)"},
			&cli.StringFlag{Name: "group", Value: "webapps01", Usage: "HAPROXY_GROUP the load balancer exposes"},
			&cli.StringFlag{Name: "ports", Value: "31000-31999", Usage: "host port range the agent offers to tasks"},
			&cli.IntFlag{Name: "stats-port", Value: envInt("PORTS", 9090), EnvVars: nil, Usage: "HAProxy stats and admin port (env PORTS)"},
			&cli.IntFlag{Name: "sample-port", Value: 10000, Usage: "servicePort of the sample app (0: no sample app)"},
			&cli.StringFlag{Name: "sample-vhost", Value: "hello.switchyard.local", Usage: "HAPROXY_0_VHOST of the sample app"},
			&cli.BoolFlag{Name: "dont-bind-http-https", Usage: "do not bind :80/:443 (implied when not root)"},
			&cli.BoolFlag{Name: "keep-tasks", Usage: "leave tasks running on exit (they are re-adopted by the next run with the same --data-dir)"},
			&cli.StringFlag{Name: "haproxy-binary", Value: "haproxy", Usage: "HAProxy executable"},
			&cli.StringFlag{Name: "log-level", Value: "INFO", Usage: cliutil.LevelUsage},
			// Security (docs/security.md).
			&cli.BoolFlag{Name: "insecure-no-auth", Usage: "allow a non-loopback --http-addr although the API has no authentication"},
		}, cliutil.DNSFlags()...),
		Action: func(c *cli.Context) error {
			cfg, err := demoConfigFrom(c)
			if err != nil {
				return err
			}
			if err := checkAPIAddress(cfg.HTTPAddr, c.Bool("insecure-no-auth"), cfg.Logger); err != nil {
				return err
			}
			return runDemo(c.Context, cfg)
		},
		Commands: []*cli.Command{helloCommand()},
	}
}
