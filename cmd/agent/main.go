// Command agent is the Switchyard agent daemon: it registers with the
// scheduler, offers this machine's resources and runs the tasks it is
// assigned as commands (always) or Docker containers (with --docker).
//
//	agent --master http://master:8080 --resources "cpus:4;mem:4096;ports:[31000-32000]" --attributes "rack:r1"
//
// Stopping the agent (SIGINT, SIGTERM) leaves its tasks running; the next
// agent started on the same --data-dir re-adopts them. Under systemd use
// KillMode=process, or stopping the unit kills the tasks with it.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/switchyard/switchyard/cmd/internal/cliutil"
	"github.com/switchyard/switchyard/scheduler/agent"
	"github.com/switchyard/switchyard/scheduler/agent/driver"
	"github.com/switchyard/switchyard/scheduler/agent/driver/process"
	"github.com/switchyard/switchyard/scheduler/agent/fetch"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newApp(runAgent).RunContext(ctx, os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "agent:", err)
		os.Exit(1)
	}
}

// runFunc runs a configured agent; tests replace it.
type runFunc func(ctx context.Context, cfg agent.Config) error

func runAgent(ctx context.Context, cfg agent.Config) error {
	a, err := agent.New(cfg)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

// driverFactory builds an optional task driver when its flag is set.
type driverFactory struct {
	name  string
	flags []cli.Flag
	// enabled reports whether the operator asked for the driver.
	enabled func(c *cli.Context) bool
	// build returns the driver and a function releasing it.
	build func(c *cli.Context, log *slog.Logger) (driver.Driver, func() error, error)
}

// optionalDrivers lists the drivers beyond "process" this binary can run.
func optionalDrivers() []driverFactory {
	return []driverFactory{dockerDriver()}
}

func newApp(run runFunc) *cli.App {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "master", Aliases: []string{"scheduler"}, Value: "http://127.0.0.1:8080", EnvVars: []string{"SWITCHYARD_MASTER"},
			Usage: "scheduler base URL; several, comma-separated, for an HA cluster (http://m1:8080,http://m2:8080)"},
		&cli.StringFlag{Name: "hostname", Usage: "name to register with and give tasks as HOST (default: the machine's host name)"},
		&cli.StringFlag{Name: "address", Usage: "host or IP tasks are reached at (default: what the hostname resolves to)"},
		&cli.StringFlag{Name: "resources", Usage: `Mesos-style resources, e.g. "cpus:4;mem:4096;disk:10000;ports:[31000-32000]"; unnamed ones are detected`},
		&cli.StringFlag{Name: "attributes", Usage: `Mesos-style attributes, e.g. "rack:r1;zone:a"`},
		&cli.StringFlag{Name: "data-dir", Aliases: []string{"work_dir"}, Value: "/var/lib/switchyard/agent", Usage: "agent id, task records and sandboxes"},
		&cli.DurationFlag{Name: "shutdown-delay", Value: 0,
			Usage: "how long a killed task keeps running after TASK_KILLING is reported, before it is signalled, so load balancers drop it first (like Nomad's shutdown_delay); an app's SWITCHYARD_SHUTDOWN_DELAY label overrides it"},
		&cli.StringSliceFlag{Name: "fetch-local-dir",
			Usage: "a directory whose files apps may fetch with file:// URIs or absolute paths (repeatable; none: local files cannot be fetched)"},
		&cli.StringFlag{Name: "secrets-dir",
			Usage: "directory holding the files app secrets name as their source (\"/db/pass\" is DIR/db/pass); none: tasks that use secrets fail"},
		&cli.DurationFlag{Name: "sandbox-retention", Aliases: []string{"gc_delay"}, Value: agent.DefaultSandboxRetention,
			Usage: "how long an ended task's sandbox (logs) is kept"},
		&cli.DurationFlag{Name: "reconcile-grace", Value: agent.DefaultReconcileGrace,
			Usage: "how long a running task that the scheduler has no record of (a scheduler started without its state) keeps running before it is killed"},
		&cli.StringFlag{Name: "log-level", Value: "INFO", Usage: cliutil.LevelUsage},
	}
	flags = append(flags, securityFlags()...)
	factories := optionalDrivers()
	for _, f := range factories {
		flags = append(flags, f.flags...)
	}
	return &cli.App{
		Name:    "agent",
		Usage:   "run Switchyard tasks on this machine",
		Version: cliutil.Version(),
		Flags:   flags,
		Action: func(c *cli.Context) error {
			log, err := newLogger(c.String("log-level"))
			if err != nil {
				return err
			}
			cfg, closers, err := config(c, log, factories)
			defer func() {
				for _, cl := range closers {
					if err := cl(); err != nil {
						log.Warn("closing driver", "err", err)
					}
				}
			}()
			if err != nil {
				return err
			}
			log.Info("agent starting", "master", cfg.SchedulerURL,
				"cpus", cfg.Resources.CPUs, "mem", cfg.Resources.Mem, "disk", cfg.Resources.Disk, "drivers", len(cfg.Drivers))
			return run(c.Context, cfg)
		},
	}
}

// config turns flags into an agent.Config, building the enabled drivers.
func config(c *cli.Context, log *slog.Logger, factories []driverFactory) (agent.Config, []func() error, error) {
	masters, err := checkMasters(c.String("master"))
	if err != nil {
		return agent.Config{}, nil, err
	}
	master := masters[0]
	if err := checkResourceNames(c.String("resources")); err != nil {
		return agent.Config{}, nil, fmt.Errorf("--resources: %w", err)
	}
	dataDir := c.String("data-dir")
	res, err := agent.ParseResources(c.String("resources"), agent.DetectResources(existingParent(dataDir)))
	if err != nil {
		return agent.Config{}, nil, fmt.Errorf("--resources: %w", err)
	}
	attrs, err := agent.ParseAttributes(c.String("attributes"))
	if err != nil {
		return agent.Config{}, nil, fmt.Errorf("--attributes: %w", err)
	}
	drivers := map[string]driver.Driver{process.Name: process.New(process.Config{Logger: log})}
	var closers []func() error
	for _, f := range factories {
		if !f.enabled(c) {
			continue
		}
		d, closeFn, err := f.build(c, log)
		if err != nil {
			return agent.Config{}, closers, fmt.Errorf("%s driver: %w", f.name, err)
		}
		drivers[f.name] = d
		if closeFn != nil {
			closers = append(closers, closeFn)
		}
	}
	cfg := agent.Config{
		SchedulerURL:     master,
		Hostname:         c.String("hostname"),
		Address:          c.String("address"),
		Resources:        res,
		Attributes:       attrs,
		DataDir:          dataDir,
		SandboxRetention: c.Duration("sandbox-retention"),
		ShutdownDelay:    c.Duration("shutdown-delay"),
		ReconcileGrace:   c.Duration("reconcile-grace"),
		Fetch:            fetch.Config{LocalDirs: c.StringSlice("fetch-local-dir")},
		SecretsDir:       c.String("secrets-dir"),
		Drivers:          drivers,
		Logger:           log,
	}
	if err := applySecurity(c, log, &cfg); err != nil {
		return agent.Config{}, closers, err
	}
	followMasters(&cfg, masters)
	return cfg, closers, nil
}

// checkMaster returns --master if it is an http(s) URL with a host: the
// agent would otherwise retry a request it can never make, forever.
func checkMaster(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		return strings.TrimSpace(raw), nil
	}
	hint := "http://127.0.0.1:8080"
	if !strings.Contains(raw, "://") && raw != "" {
		hint = "http://" + strings.TrimSpace(raw)
	}
	return "", fmt.Errorf("--master %q: want the scheduler's URL with its scheme, e.g. %s", raw, hint)
}

// checkResourceNames rejects a --resources entry whose name is not one of
// the resources the agent offers and the scheduler places tasks by
// ("cpu:4" would otherwise be ignored and the CPUs detected). The rest of
// the syntax is agent.ParseResources's to check.
func checkResourceNames(spec string) error {
	knownResources := []string{"cpus", "mem", "disk", "ports"}
	for _, item := range strings.Split(spec, ";") {
		name, _, ok := strings.Cut(strings.TrimSpace(item), ":")
		if !ok {
			continue
		}
		name = strings.TrimSpace(name)
		if i := strings.IndexByte(name, '('); i >= 0 {
			name = name[:i] // a Mesos role: "cpus(*)"
		}
		if name == "" || slices.Contains(knownResources, name) {
			continue
		}
		msg := fmt.Sprintf("unknown resource %q", name)
		for _, k := range knownResources {
			l := strings.ToLower(name)
			if strings.HasPrefix(l, k) || strings.HasPrefix(k, l) {
				msg += fmt.Sprintf(" (did you mean %q?)", k)
				break
			}
		}
		return fmt.Errorf("%s: the agent offers only %s", msg, strings.Join(knownResources, ", "))
	}
	return nil
}

// existingParent returns dir or its closest existing parent, for
// measuring free disk space before the data dir is created.
func existingParent(dir string) string {
	d := filepath.Clean(dir)
	for {
		if _, err := os.Stat(d); err == nil {
			return d
		}
		p := filepath.Dir(d)
		if p == d {
			return d
		}
		d = p
	}
}

func newLogger(level string) (*slog.Logger, error) {
	l, err := cliutil.ParseLevel(level)
	if err != nil {
		return nil, err
	}
	return cliutil.NewTextLogger(os.Stderr, l), nil
}
