// Command scheduler is the Marathon-compatible scheduler daemon: it serves
// Marathon's v2 API and event stream for clients and load balancers, and
// the agent API that agents register with and poll.
//
//	scheduler --http-credentials-file /etc/switchyard/users \
//	  --tls-cert cert.pem --tls-key key.pem --data-dir /var/lib/switchyard
//	scheduler ... --dns-addr :53 --dns-domain mesos   # task names over DNS (docs/dns.md)
//
// State is kept in a data directory by default (/var/lib/switchyard as
// root, else $XDG_STATE_HOME/switchyard or ~/.local/state/switchyard), so
// a restart loses nothing; --in-memory keeps it in memory only, and --zk
// keeps it in ZooKeeper (docs/ha.md).
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/urfave/cli/v2"
	"golang.org/x/sync/errgroup"

	"github.com/switchyard/switchyard/cmd/internal/cliutil"
	"github.com/switchyard/switchyard/scheduler"
	"github.com/switchyard/switchyard/scheduler/dns"
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
			&cli.StringFlag{Name: "data-dir", Value: "", Usage: "directory of the state store, created if missing (default: /var/lib/switchyard as root, else $XDG_STATE_HOME/switchyard or ~/.local/state/switchyard)"},
			&cli.BoolFlag{Name: "in-memory", Usage: "keep state in memory only: a restart forgets every app (tests, demos)"},
			&cli.DurationFlag{Name: "event-keepalive", Value: 10 * time.Second, Usage: "interval of ': ping' comments on /v2/events"},
			&cli.DurationFlag{Name: "agent-timeout", Value: 15 * time.Second, Usage: "an agent silent this long is unreachable"},
			&cli.DurationFlag{Name: "agent-max-age", Value: 24 * time.Hour, Usage: "an unreachable agent no task refers to is forgotten after this long (like Mesos's registry_max_agent_age)"},
			&cli.StringFlag{Name: "advertise", Value: "", Usage: "host:port reported as leader (default: hostname and the http-addr port)"},
			&cli.StringFlag{Name: "log-level", Value: "INFO", Usage: cliutil.LevelUsage},
		}, slices.Concat(agentFlags(), securityFlags(), cliutil.DNSFlags(), zkFlags())...),
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
	logger := cliutil.NewFilteredLogger(c.App.ErrWriter, levels.Handler)
	slog.SetDefault(logger)
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()

	dataDir, err := resolveDataDir(c.String("data-dir"), c.Bool("in-memory"), os.Geteuid(), os.Getenv, os.UserHomeDir)
	if err != nil {
		return err
	}
	if dataDir == "" && c.String("zk") == "" {
		logger.Warn("state kept in memory only (--in-memory): a restart forgets every app, and agents kill the tasks after their reconcile grace")
	}
	sec, err := securityConfig(c, logger)
	if err != nil {
		return err
	}
	advertise := c.String("advertise")
	if advertise == "" {
		host, _ := os.Hostname()
		_, port, _ := net.SplitHostPort(sec.advertised())
		advertise = net.JoinHostPort(host, port)
	}
	agents, err := agentAuth(c, sec.advertised(), logger)
	if err != nil {
		return err
	}
	if err := agentClientCA(c, sec.tls, &agents, logger); err != nil {
		return err
	}
	cfg := server.Config{
		Agents: agents,
		Scheduler: scheduler.Config{
			DataDir:      dataDir,
			AgentTimeout: c.Duration("agent-timeout"),
			AgentMaxAge:  c.Duration("agent-max-age"),
			Leader:       advertise,
			MaxVersions:  c.Int("max-versions"),
		},
		EventKeepalive:  c.Duration("event-keepalive"),
		Logger:          logger,
		Loggers:         levels,
		Auth:            sec.auth,
		MaxBodyBytes:    c.Int64("max-body-bytes"),
		MaxEventStreams: c.Int("max-event-streams"),
		LeaderScheme:    sec.leaderScheme(),
	}
	dnsOpts, err := cliutil.DNSOptionsFrom(c)
	if err != nil {
		return err
	}
	if dnsOpts.Addr != "" {
		cfg.Registry = prometheus.NewRegistry() // the scheduler's /metrics, DNS included
		cfg.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		if cfg.DNS, err = newDNS(dnsOpts, cfg.Registry, logger); err != nil {
			return err
		}
		if err := cfg.DNS.Listen(); err != nil {
			return err
		}
	}
	var endpoints []server.Endpoint
	closeAll := func() {
		for _, e := range endpoints {
			_ = e.Listener.Close()
		}
	}
	for _, l := range []struct {
		addr string
		tls  *tls.Config
	}{{sec.httpAddr, nil}, {sec.httpsAddr, sec.tls}} {
		if l.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			closeAll()
			return fmt.Errorf("listen %s: %w", l.addr, err)
		}
		endpoints = append(endpoints, server.Endpoint{Listener: ln, TLS: l.tls})
		scheme := "http"
		if l.tls != nil {
			scheme = "https"
		}
		logger.Info("scheduler listening", "addr", ln.Addr().String(), "scheme", scheme, "data_dir", dataDir)
	}
	// Event streams and long polls end with ctx; other requests get 5 s.
	serveOpts := server.ServeOptions{
		Grace: 5 * time.Second, Logger: logger,
		ReadTimeout: c.Duration("http-read-timeout"), IdleTimeout: c.Duration("http-idle-timeout"),
	}
	if c.String("zk") != "" {
		// One node of an HA cluster: it leads when elected, else proxies.
		return runHA(ctx, c, cfg, advertise, func(ctx context.Context, h http.Handler) error {
			g, gctx := errgroup.WithContext(ctx)
			for _, e := range endpoints {
				opts := serveOpts
				opts.TLS = e.TLS
				g.Go(func() error { return server.ServeWith(gctx, e.Listener, h, opts) })
			}
			return g.Wait()
		})
	}
	return server.Run(ctx, cfg, endpoints, serveOpts)
}

// newDNS builds the Mesos-DNS compatible server the --dns-* flags ask
// for.
func newDNS(o cliutil.DNSOptions, reg prometheus.Registerer, logger *slog.Logger) (*dns.Server, error) {
	return dns.New(dns.Config{
		Addr: o.Addr, Domain: o.Domain, TTL: o.TTL, Resolvers: o.Resolvers, ResolvConf: "/etc/resolv.conf",
		Timeout: o.Timeout, Refresh: o.Refresh, Version: cliutil.Version(), Registry: reg, Logger: logger.With("component", "dns"),
	})
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
