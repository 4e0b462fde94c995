// Package crashtest kills real agent and scheduler processes (kill -9) at
// random points and checks what survives: no orphan process, no duplicate
// task, no acknowledged write lost. The processes are this test binary
// re-executed in a role (TestMain), so the test needs no build step.
package crashtest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/switchyard/switchyard/scheduler"
	"github.com/switchyard/switchyard/scheduler/agent"
	"github.com/switchyard/switchyard/scheduler/agent/driver"
	"github.com/switchyard/switchyard/scheduler/agent/driver/process"
	"github.com/switchyard/switchyard/scheduler/agentapi"
	"github.com/switchyard/switchyard/scheduler/server"
)

// Environment of a re-executed role.
const (
	envRole = "CRASHTEST_ROLE" // "agent" or "scheduler"
	envURL  = "CRASHTEST_URL"  // agent: the scheduler's base URL
	envDir  = "CRASHTEST_DIR"  // the role's data directory
	envAddr = "CRASHTEST_ADDR" // scheduler: the address to listen on
)

func TestMain(m *testing.M) {
	switch os.Getenv(envRole) {
	case "agent":
		os.Exit(runRole(runAgent))
	case "scheduler":
		os.Exit(runRole(runScheduler))
	}
	os.Exit(m.Run())
}

func runRole(run func(ctx context.Context, log *slog.Logger) error) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, log); err != nil {
		log.Error("role failed", "err", err)
		return 1
	}
	return 0
}

// runAgent is cmd/agent with fixed settings.
func runAgent(ctx context.Context, log *slog.Logger) error {
	a, err := agent.New(agent.Config{
		SchedulerURL: os.Getenv(envURL),
		Hostname:     "localhost",
		Address:      "127.0.0.1",
		Resources:    agentapi.Resources{CPUs: 64, Mem: 65536, Disk: 1000, Ports: []agentapi.PortRange{{Begin: 41000, End: 41999}}},
		DataDir:      os.Getenv(envDir),
		Drivers:      map[string]driver.Driver{process.Name: process.New(process.Config{Logger: log})},
		PollWait:     500 * time.Millisecond,
		RetryMin:     20 * time.Millisecond,
		RetryMax:     200 * time.Millisecond,
		Logger:       log,
		// Tasks run as the test's user (root): the crash tests count
		// processes, not users.
		AllowRootTasks: true,
	})
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

// runScheduler is cmd/scheduler with fixed settings.
func runScheduler(ctx context.Context, log *slog.Logger) error {
	h, sched, err := server.New(server.Config{
		Scheduler: scheduler.Config{DataDir: os.Getenv(envDir), Leader: "127.0.0.1:8080", ReconcileInterval: 50 * time.Millisecond},
		Logger:    log,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", os.Getenv(envAddr))
	if err != nil {
		_ = sched.Close()
		return fmt.Errorf("listen: %w", err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return sched.Run(gctx) })
	g.Go(func() error { return server.Serve(gctx, ln, h, time.Second) })
	return g.Wait()
}
