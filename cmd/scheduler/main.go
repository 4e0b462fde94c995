// Command scheduler is the Marathon-compatible scheduler daemon: it serves
// Marathon's v2 API and event stream for clients and load balancers, and
// the agent API that agents register with and poll.
//
//	scheduler --http-addr :8080 --data-dir /var/lib/switchyard
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sync/errgroup"

	"github.com/switchyard/switchyard/cmd/internal/cliutil"
	"github.com/switchyard/switchyard/scheduler"
	"github.com/switchyard/switchyard/scheduler/loglevel"
	"github.com/switchyard/switchyard/scheduler/server"
)

func main() {
	if err := newApp().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "scheduler:", err)
		os.Exit(1)
	}
}

// newApp builds the command line interface.
func newApp() *cli.App {
	return &cli.App{
		Name:    "scheduler",
		Usage:   "Marathon-compatible scheduler",
		Version: cliutil.Version(),
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "http-addr", Value: ":8080", Usage: "address of the API (Marathon v2 and agent API)"},
			&cli.StringFlag{Name: "data-dir", Value: "", Usage: "directory of the state store (empty: memory only)"},
			&cli.DurationFlag{Name: "event-keepalive", Value: 10 * time.Second, Usage: "interval of ': ping' comments on /v2/events"},
			&cli.DurationFlag{Name: "agent-timeout", Value: 15 * time.Second, Usage: "an agent silent this long is unreachable"},
			&cli.DurationFlag{Name: "agent-max-age", Value: 24 * time.Hour, Usage: "an unreachable agent no task refers to is forgotten after this long (like Mesos's registry_max_agent_age)"},
			&cli.StringFlag{Name: "advertise", Value: "", Usage: "host:port reported as leader (default: hostname and the http-addr port)"},
			&cli.StringFlag{Name: "log-level", Value: "INFO", Usage: cliutil.LevelUsage},
		}, append(agentFlags(), zkFlags()...)...),
		Action: run,
	}
}

func run(c *cli.Context) error {
	level, err := cliutil.ParseLevel(c.String("log-level"))
	if err != nil {
		return err
	}
	levels := loglevel.New(level)
	defer levels.Close()
	logger := cliutil.NewFilteredLogger(os.Stderr, levels.Handler)
	slog.SetDefault(logger)
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()

	addr := c.String("http-addr")
	advertise := c.String("advertise")
	if advertise == "" {
		host, _ := os.Hostname()
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			return fmt.Errorf("--http-addr %q: %w", addr, err)
		}
		advertise = net.JoinHostPort(host, port)
	}
	agents, err := agentAuth(c, addr, logger)
	if err != nil {
		return err
	}
	cfg := server.Config{
		Agents: agents,
		Scheduler: scheduler.Config{
			DataDir:      c.String("data-dir"),
			AgentTimeout: c.Duration("agent-timeout"),
			AgentMaxAge:  c.Duration("agent-max-age"),
			Leader:       advertise,
			OnAbdicate:   stop,
		},
		EventKeepalive: c.Duration("event-keepalive"),
		Logger:         logger,
		Loggers:        levels,
	}
	if c.String("zk") != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen %s: %w", addr, err)
		}
		logger.Info("scheduler listening", "addr", ln.Addr().String())
		return runHA(ctx, c, cfg, advertise, func(ctx context.Context, h http.Handler) error {
			return server.Serve(ctx, ln, h, 5*time.Second)
		})
	}
	handler, sched, err := server.New(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		_ = sched.Close()
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	logger.Info("scheduler listening", "addr", ln.Addr().String(), "data_dir", c.String("data-dir"))
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return sched.Run(gctx) })
	// Event streams and long polls end with gctx; other requests get 5 s.
	g.Go(func() error { return server.Serve(gctx, ln, handler, 5*time.Second) })
	return g.Wait()
}
