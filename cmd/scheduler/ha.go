package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sync/errgroup"

	"github.com/switchyard/switchyard/scheduler/leader"
	"github.com/switchyard/switchyard/scheduler/server"
	"github.com/switchyard/switchyard/scheduler/zk"
)

// zkFlags are the flags of a highly available scheduler (Marathon's
// --zk and --zk_session_timeout).
func zkFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "zk", EnvVars: []string{"SWITCHYARD_ZK"},
			Usage: "ZooKeeper URL zk://[user:pass@]host:2181[,host:2181...]/path: keep the state there and elect a leader among the schedulers sharing it (empty: one scheduler, state in --data-dir)"},
		&cli.DurationFlag{Name: "zk-session-timeout", Value: 10 * time.Second,
			Usage: "ZooKeeper session timeout: a leader that stops answering is replaced after about this long"},
	}
}

// runHA runs the scheduler as one node of an HA cluster: it leads when
// elected and otherwise proxies the API to the leader. serve serves the
// node's handler on its listeners until ctx ends.
func runHA(ctx context.Context, c *cli.Context, cfg server.Config, advertise string, serve func(context.Context, http.Handler) error) error {
	u, err := zk.ParseURL(c.String("zk"))
	if err != nil {
		return fmt.Errorf("--zk: %w", err)
	}
	if c.String("data-dir") != "" {
		cfg.Logger.Warn("--data-dir is not used with --zk: the state is in ZooKeeper")
	}
	el, err := leader.New(leader.Config{URL: u, SessionTimeout: c.Duration("zk-session-timeout"), Advertise: advertise, Logger: cfg.Logger})
	if err != nil {
		return err
	}
	defer el.Close()
	ha := server.NewHA(server.HAConfig{Config: cfg, URL: u, Elector: el, Advertise: advertise, Scheme: cfg.LeaderScheme})
	cfg.Logger.Info("joining the scheduler cluster", "zk", u.String(), "advertise", advertise)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return ha.Run(gctx) })
	g.Go(func() error { return serve(gctx, ha) })
	return g.Wait()
}
