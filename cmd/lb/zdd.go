package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/switchyard/switchyard/cmd/internal/cliutil"
	"github.com/switchyard/switchyard/lb/zdd"
	"github.com/switchyard/switchyard/marathon"
)

// zddCommand is "lb zdd": a marathon-lb zdd.py style blue/green
// deployment of one app JSON file. Flags map onto zdd.Config; the work is
// in lb/zdd.
func zddCommand(stdout, stderr io.Writer) *cli.Command {
	return &cli.Command{
		Name:      "zdd",
		Usage:     "zero-downtime (blue/green) deployment of an app JSON, as marathon-lb's zdd.py",
		UsageText: "lb zdd --marathon URL --json app.json [--lb http://LB:9090 ...] [--force] [--dry]",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "marathon", Aliases: []string{"m"}, Value: cli.NewStringSlice(defaultMarathon),
				Usage: "Marathon endpoint(s), tried in order"},
			&cli.StringFlag{Name: "json", Aliases: []string{"j"}, Required: true, Usage: "app definition (JSON) with HAPROXY_DEPLOYMENT_GROUP and HAPROXY_DEPLOYMENT_ALT_PORT labels"},
			&cli.StringSliceFlag{Name: "lb", Aliases: []string{"marathon-lb", "l"},
				Usage: "load balancer stats URL (http://LB:9090), repeatable: old tasks are killed only once drained on every LB"},
			&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "do not ask before creating, killing and deleting"},
			&cli.BoolFlag{Name: "dry", Aliases: []string{"dry-run", "d"}, Usage: "print the new app definition and the planned steps; change nothing"},
			&cli.IntFlag{Name: "initial-instances", Aliases: []string{"i"}, Value: 1, Usage: "instances the new app starts with (at most the target)"},
			&cli.IntFlag{Name: "new-instances", Aliases: []string{"n"}, Usage: "hybrid deployment: move only this many instances to the new app; both colours keep serving (finish with --complete-cur/--complete-prev)"},
			&cli.StringFlag{Name: "step-delay", Aliases: []string{"s"}, Value: "5s", Usage: "pause between steps (duration, or seconds)"},
			&cli.StringFlag{Name: "max-wait", Aliases: []string{"w"}, Value: "10m", Usage: "longest wait for one step (duration, or seconds): new tasks healthy, old servers drained"},
			&cli.StringFlag{Name: "pre-kill-hook", Usage: "executable run before each kill with 3 JSON arguments: old app, task ids, new app; non-zero exit stops the deployment"},
			&cli.BoolFlag{Name: "complete-cur", Aliases: []string{"c"}, Usage: "group runs two apps: move all instances to the newest one"},
			&cli.BoolFlag{Name: "complete-prev", Aliases: []string{"p"}, Usage: "group runs two apps: move all instances back to the previous one"},
			&cli.BoolFlag{Name: "no-rollback", Usage: "on failure leave both apps as they are (default: scale the old app back, delete the new one)"},
			&cli.StringFlag{Name: "auth-credentials", Usage: "user:password for Marathon's API"},
			&cli.StringFlag{Name: "marathon-auth-credential-file", Usage: "file holding user:password for Marathon's API"},
			&cli.StringFlag{Name: "marathon-ca-cert", Usage: "PEM CA bundle to trust for https Marathon URLs"},
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "log format: text or json"},
			&cli.StringFlag{Name: "log-level", Value: "INFO", Usage: cliutil.LevelUsage},
			&cli.StringFlag{Name: "syslog-socket", Value: "/dev/null", Usage: "syslog socket to log to ('/dev/null': stderr)"},
		},
		Action: func(c *cli.Context) error {
			log, closeLog, err := newLogger(&settings{logLevel: c.String("log-level"), logFormat: c.String("log-format"),
				syslogSocket: c.String("syslog-socket"), syslogSocketSet: c.IsSet("syslog-socket")}, stderr)
			if err != nil {
				return err
			}
			defer closeLog()
			cfg, err := zddConfig(c)
			if err != nil {
				return err
			}
			cfg.Out, cfg.Logger = stdout, log.With("component", "zdd")
			if !c.Bool("force") && !cfg.Dry {
				in := bufio.NewReader(os.Stdin)
				cfg.Confirm = func(q string) bool {
					fmt.Fprintf(stdout, "%s [y/N] ", q)
					line, _ := in.ReadString('\n')
					a := strings.ToLower(strings.TrimSpace(line))
					return a == "y" || a == "yes"
				}
			}
			d, err := zdd.New(cfg)
			if err != nil {
				return err
			}
			if _, err := d.Run(c.Context); err != nil {
				log.Error("zdd failed", "err", err)
				return loggedError{err}
			}
			return nil
		},
	}
}

// zddConfig maps the flags onto zdd.Config (without output, logger and
// confirmation).
func zddConfig(c *cli.Context) (zdd.Config, error) {
	mc := marathon.ClientConfig{URLs: splitList(c.StringSlice("marathon")), CACertFile: c.String("marathon-ca-cert")}
	var err error
	switch {
	case c.String("auth-credentials") != "":
		if mc.Username, mc.Password, err = marathon.ParseCredentials(c.String("auth-credentials")); err != nil {
			return zdd.Config{}, fmt.Errorf("--auth-credentials: %w", err)
		}
	case c.String("marathon-auth-credential-file") != "":
		if mc.Username, mc.Password, err = marathon.ReadCredentialFile(c.String("marathon-auth-credential-file")); err != nil {
			return zdd.Config{}, fmt.Errorf("--marathon-auth-credential-file: %w", err)
		}
	}
	client, err := marathon.NewClient(mc)
	if err != nil {
		return zdd.Config{}, err
	}
	def, err := os.ReadFile(c.String("json"))
	if err != nil {
		return zdd.Config{}, fmt.Errorf("--json: %w", err)
	}
	stepDelay, err := secondsOrDuration(c.String("step-delay"))
	if err != nil {
		return zdd.Config{}, fmt.Errorf("--step-delay: %w", err)
	}
	maxWait, err := secondsOrDuration(c.String("max-wait"))
	if err != nil {
		return zdd.Config{}, fmt.Errorf("--max-wait: %w", err)
	}
	return zdd.Config{
		Marathon:         client,
		Definition:       def,
		LBs:              splitList(c.StringSlice("lb")),
		Dry:              c.Bool("dry"),
		InitialInstances: c.Int("initial-instances"),
		NewInstances:     c.Int("new-instances"),
		StepDelay:        stepDelay,
		MaxWait:          maxWait,
		PreKillHook:      c.String("pre-kill-hook"),
		CompleteCur:      c.Bool("complete-cur"),
		CompletePrev:     c.Bool("complete-prev"),
		NoRollback:       c.Bool("no-rollback"),
	}, nil
}

// secondsOrDuration reads "5s", "10m" or zdd.py's plain seconds ("300").
func secondsOrDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		if n <= 0 {
			return 0, fmt.Errorf("%q: want a positive duration", s)
		}
		return time.Duration(n * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q: want a duration (5s, 10m) or seconds", s)
	}
	if d <= 0 {
		return 0, fmt.Errorf("%q: want a positive duration", s)
	}
	return d, nil
}
