// Command lb is Switchyard's load balancer, a drop-in for marathon-lb: it
// reads apps from Marathon (lb sse: event stream; lb poll: every
// --poll-interval), renders an HAProxy configuration from their HAPROXY_*
// labels and keeps a master-worker HAProxy in step with it.
//
//	lb sse --marathon http://marathon:8080 --group external
//
// --stats-port, or else the first port of the environment variable PORTS
// (as in the marathon-lb image), sets the stats port (default 9090). SIGHUP
// re-reads Marathon and reloads; SIGUSR1 reloads.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/urfave/cli/v2"

	"github.com/switchyard/switchyard/cmd/internal/cliutil"
	"github.com/switchyard/switchyard/lb"
	"github.com/switchyard/switchyard/lb/controller"
	"github.com/switchyard/switchyard/marathon"
)

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr, os.Getenv))
}

// run is main without the exit, for tests. It returns the exit code.
func run(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	app := newApp(stdout, stderr, getenv, serve)
	if err := app.RunContext(ctx, normalizeArgs(args)); err != nil {
		var logged loggedError
		if !errors.As(err, &logged) {
			fmt.Fprintf(stderr, "lb: %v\n", err)
		}
		return 1
	}
	return 0
}

// loggedError is an error serve already logged; run only sets the exit
// code for it.
type loggedError struct{ error }

// serveFunc runs the load balancer with parsed settings; tests replace it.
type serveFunc func(ctx context.Context, s *settings, stdout, stderr io.Writer) error

// newApp builds the command line: "lb sse", "lb poll", and "lb" alone
// (marathon_lb.py's form: the event stream, every flag on the root).
func newApp(stdout, stderr io.Writer, getenv func(string) string, serve serveFunc) *cli.App {
	action := func(poll bool) cli.ActionFunc {
		return func(c *cli.Context) error {
			if (flagReader{c}).Bool("longhelp") {
				return longhelp(stdout)
			}
			s, err := parseSettings(c, poll, getenv)
			if err != nil {
				return err
			}
			return serve(c.Context, s, stdout, stderr)
		}
	}
	return &cli.App{
		Name:      "lb",
		Usage:     "a marathon-lb drop-in: HAProxy driven by Marathon",
		UsageText: "lb sse [flags] | lb poll [flags] | lb --longhelp | lb --version",
		Version:   cliutil.Version(),
		Writer:    stdout,
		ErrWriter: stderr,
		Flags:     lbFlags(),
		Action:    action(false),
		Commands: []*cli.Command{
			{Name: "sse", Usage: "follow Marathon's event stream (/v2/events)", Flags: lbFlags(), Action: action(false)},
			{Name: "poll", Usage: "re-read Marathon every --poll-interval seconds", Flags: lbFlags(), Action: action(true)},
			zddCommand(stdout, stderr),
		},
		HideHelpCommand: true,
	}
}

// serve wires the settings into a controller and runs it until ctx ends.
func serve(ctx context.Context, s *settings, stdout, stderr io.Writer) error {
	log, closeLog, err := newLogger(s, stderr)
	if err != nil {
		return err
	}
	defer closeLog()
	for _, f := range s.ignoredFlagsPresent {
		log.Debug("flag accepted for compatibility; it has no effect", "flag", "--"+f)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cfg, err := controllerConfig(s, log, reg)
	if err != nil {
		return err
	}
	cfg.DryOutput = stdout // --dry prints each configuration, as marathon-lb does
	ctrl, err := controller.New(cfg)
	if err != nil {
		return err
	}

	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGHUP, syscall.SIGUSR1)
	defer signal.Stop(sig)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case v := <-sig:
				if v == syscall.SIGHUP {
					ctrl.Signal(controller.SignalHUP)
				} else {
					ctrl.Signal(controller.SignalUSR1)
				}
			}
		}
	}()

	mode := "sse"
	if s.poll {
		mode = "poll"
	}
	log.Info("starting", "mode", mode, "marathon", s.marathon, "groups", s.groups,
		"haproxy_config", s.haproxyConfig, "stats_port", s.statsPort)
	if err := ctrl.Run(ctx); err != nil {
		log.Error("lb stopped", "err", err)
		return loggedError{err}
	}
	log.Info("stopped")
	return nil
}

// templatesDir is --templates-dir, or, when lb runs as a Marathon task
// whose sandbox holds a templates directory (fetched with the app's
// "fetch"), that directory, as marathon-lb does.
func templatesDir(s *settings, log *slog.Logger) string {
	if s.templatesDir != "" || s.sandboxTemplates == "" {
		return s.templatesDir
	}
	if fi, err := os.Stat(s.sandboxTemplates); err == nil && fi.IsDir() {
		log.Info("using the templates in the task sandbox", "dir", s.sandboxTemplates)
		return s.sandboxTemplates
	}
	return ""
}

// controllerConfig turns settings into the controller's configuration:
// the Marathon client, the model options and the HAProxy settings.
func controllerConfig(s *settings, log *slog.Logger, reg *prometheus.Registry) (controller.Config, error) {
	mc := marathon.ClientConfig{URLs: s.marathon, CACertFile: s.caCert, MaxBackoff: s.maxBackoff, Logger: log.With("component", "marathon")}
	var err error
	switch {
	case s.authCredentials != "":
		mc.Username, mc.Password, err = marathon.ParseCredentials(s.authCredentials)
		if err != nil {
			return controller.Config{}, fmt.Errorf("--auth-credentials: %w", err)
		}
	case s.credentialFile != "":
		mc.Username, mc.Password, err = marathon.ReadCredentialFile(s.credentialFile)
		if err != nil {
			return controller.Config{}, fmt.Errorf("--marathon-auth-credential-file: %w", err)
		}
	}
	client, err := marathon.NewClient(mc)
	if err != nil {
		return controller.Config{}, fmt.Errorf("marathon client: %w", err)
	}

	if err := prepareCerts(s, time.Now(), log); err != nil {
		return controller.Config{}, err
	}
	var certs []string
	for _, c := range s.sslCerts {
		if _, err := os.Stat(c); err != nil {
			log.Warn("SSL certificate not found; it is left out (no :443 without certificates)", "path", c, "err", err)
			continue
		}
		certs = append(certs, c)
	}
	return controller.Config{
		Marathon:      client,
		Poll:          s.poll,
		PollInterval:  s.pollInterval,
		HostCacheSize: s.hostCacheSize,
		Options: lb.Options{
			Groups:               s.groups,
			StrictMode:           s.strictMode,
			HealthCheck:          s.healthCheck,
			DontBindHTTPHTTPS:    s.dontBindHTTPHTTPS,
			SSLCerts:             certs,
			HAProxyMap:           s.haproxyMap,
			GroupHTTPSByVhost:    s.groupHTTPSByVhost,
			MinServPortIPPerTask: s.minServPort,
			MaxServPortIPPerTask: s.maxServPort,
			StatsPort:            s.statsPort,
			AdminAllow:           s.adminAllow,
			MapDir:               filepath.Dir(s.haproxyConfig),
		},
		TemplatesDir:     templatesDir(s, log),
		WatchFiles:       certs,
		ConfigPath:       s.haproxyConfig,
		HAProxyBinary:    s.haproxyBinary,
		ReloadCommand:    s.command,
		SkipValidation:   s.skipValidation,
		Dry:              s.dry,
		ReloadInterval:   s.reloadInterval,
		MaxReloadRetries: s.maxReloadRetries,
		Registry:         reg,
		Logger:           log,
	}, nil
}
