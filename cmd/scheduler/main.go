// Command scheduler is the Marathon-compatible scheduler daemon: it serves
// Marathon's v2 API and event stream for clients and load balancers, and
// the agent API that agents register with and poll.
//
//	scheduler --http-addr :8080 --data-dir /var/lib/switchyard
//
// State is kept in a data directory by default (/var/lib/switchyard as
// root, else $XDG_STATE_HOME/switchyard or ~/.local/state/switchyard), so
// a restart loses nothing; --in-memory keeps it in memory only.
package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sync/errgroup"

	"github.com/switchyard/switchyard/scheduler"
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
		Name:  "scheduler",
		Usage: "Marathon-compatible scheduler",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "http-addr", Value: ":8080", Usage: "address of the API (Marathon v2 and agent API)"},
			&cli.StringFlag{Name: "data-dir", Value: "", Usage: "directory of the state store, created if missing (default: /var/lib/switchyard as root, else $XDG_STATE_HOME/switchyard or ~/.local/state/switchyard)"},
			&cli.BoolFlag{Name: "in-memory", Usage: "keep state in memory only: a restart forgets every app (tests, demos)"},
			&cli.DurationFlag{Name: "event-keepalive", Value: 10 * time.Second, Usage: "interval of ': ping' comments on /v2/events"},
			&cli.DurationFlag{Name: "agent-timeout", Value: 15 * time.Second, Usage: "an agent silent this long is unreachable"},
			&cli.DurationFlag{Name: "agent-max-age", Value: 24 * time.Hour, Usage: "an unreachable agent no task refers to is forgotten after this long (like Mesos's registry_max_agent_age)"},
			&cli.StringFlag{Name: "advertise", Value: "", Usage: "host:port reported as leader (default: hostname and the http-addr port)"},
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error"},
		},
		Action: run,
	}
}

func run(c *cli.Context) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(logger)
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()

	dataDir, err := resolveDataDir(c.String("data-dir"), c.Bool("in-memory"), os.Geteuid(), os.Getenv, os.UserHomeDir)
	if err != nil {
		return err
	}
	if dataDir == "" {
		logger.Warn("state kept in memory only (--in-memory): a restart forgets every app, and agents kill the tasks after their reconcile grace")
	}
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
	handler, sched, err := server.New(server.Config{
		Scheduler: scheduler.Config{
			DataDir:      dataDir,
			AgentTimeout: c.Duration("agent-timeout"),
			AgentMaxAge:  c.Duration("agent-max-age"),
			Leader:       advertise,
			OnAbdicate:   stop,
		},
		EventKeepalive: c.Duration("event-keepalive"),
		Logger:         logger,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		_ = sched.Close()
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	logger.Info("scheduler listening", "addr", ln.Addr().String(), "data_dir", dataDir)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return sched.Run(gctx) })
	// Event streams and long polls end with gctx; other requests get 5 s.
	g.Go(func() error { return server.Serve(gctx, ln, handler, 5*time.Second) })
	return g.Wait()
}

// resolveDataDir returns the state directory: flagDir when set, "" (memory
// only) with inMemory, else the default for the user (euid): root uses
// /var/lib/switchyard, others $XDG_STATE_HOME/switchyard (when absolute)
// or ~/.local/state/switchyard.
func resolveDataDir(flagDir string, inMemory bool, euid int, getenv func(string) string, home func() (string, error)) (string, error) {
	switch {
	case inMemory && flagDir != "":
		return "", errors.New("--in-memory and --data-dir exclude each other")
	case inMemory:
		return "", nil
	case flagDir != "":
		return flagDir, nil
	case euid == 0:
		return "/var/lib/switchyard", nil
	}
	if x := getenv("XDG_STATE_HOME"); filepath.IsAbs(x) {
		return filepath.Join(x, "switchyard"), nil
	}
	h, err := home()
	if err != nil || h == "" {
		return "", fmt.Errorf("no --data-dir and no home directory for the default (%v); pass --data-dir or --in-memory", err)
	}
	return filepath.Join(h, ".local", "state", "switchyard"), nil
}
