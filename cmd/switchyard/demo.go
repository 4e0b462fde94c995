package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/urfave/cli/v2"
	"golang.org/x/sync/errgroup"

	"github.com/switchyard/switchyard/cmd/internal/cliutil"
	"github.com/switchyard/switchyard/lb"
	"github.com/switchyard/switchyard/lb/controller"
	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/scheduler"
	"github.com/switchyard/switchyard/scheduler/agent"
	"github.com/switchyard/switchyard/scheduler/agent/driver"
	"github.com/switchyard/switchyard/scheduler/agent/driver/process"
	"github.com/switchyard/switchyard/scheduler/agentapi"
	"github.com/switchyard/switchyard/scheduler/dns"
	"github.com/switchyard/switchyard/scheduler/loglevel"
	"github.com/switchyard/switchyard/scheduler/server"
)

// demoConfig is everything the all-in-one needs, parsed from flags.
type demoConfig struct {
	DataDir       string
	TempDataDir   bool
	HTTPAddr      string
	Group         string
	Ports         agentapi.PortRange
	StatsPort     int
	SamplePort    int
	SampleVHost   string
	DontBindHTTP  bool
	KeepTasks     bool
	HAProxyBinary string
	Logger        *slog.Logger
	// Levels serves /logging: the components' log levels, changeable at
	// run time. Nil: /logging shows none.
	Levels *loglevel.Registry
	// DNS configures the scheduler's DNS server (off without an Addr).
	DNS cliutil.DNSOptions
}

func demoConfigFrom(c *cli.Context) (demoConfig, error) {
	level, err := cliutil.ParseLevel(c.String("log-level"))
	if err != nil {
		return demoConfig{}, err
	}
	cfg := demoConfig{
		DataDir:       c.String("data-dir"),
		HTTPAddr:      c.String("http-addr"),
		Group:         c.String("group"),
		StatsPort:     c.Int("stats-port"),
		SamplePort:    c.Int("sample-port"),
		SampleVHost:   c.String("sample-vhost"),
		DontBindHTTP:  c.Bool("dont-bind-http-https"),
		KeepTasks:     c.Bool("keep-tasks"),
		HAProxyBinary: c.String("haproxy-binary"),
		Levels:        loglevel.New(level),
	}
	cfg.Logger = cliutil.NewFilteredLogger(os.Stderr, cfg.Levels.Handler)
	if cfg.DNS, err = cliutil.DNSOptionsFrom(c); err != nil {
		return demoConfig{}, err
	}
	pr, err := parsePortRange(c.String("ports"))
	if err != nil {
		return demoConfig{}, err
	}
	cfg.Ports = pr
	if os.Geteuid() != 0 && !cfg.DontBindHTTP {
		cfg.Logger.Warn("not root: the shared :80/:443 frontends are not bound (as --dont-bind-http-https); servicePorts still work")
		cfg.DontBindHTTP = true
	}
	return cfg, nil
}

func parsePortRange(s string) (agentapi.PortRange, error) {
	lo, hi, ok := strings.Cut(s, "-")
	b, err1 := strconv.Atoi(strings.TrimSpace(lo))
	e, err2 := strconv.Atoi(strings.TrimSpace(hi))
	if !ok || err1 != nil || err2 != nil || b < 1 || e > 65535 || b > e {
		return agentapi.PortRange{}, fmt.Errorf("--ports %q: want FIRST-LAST, e.g. 31000-31999", s)
	}
	return agentapi.PortRange{Begin: b, End: e}, nil
}

// runDemo starts the scheduler, one agent and the load balancer, deploys
// the sample app, waits until it answers through HAProxy, prints how to
// reach it, and runs until ctx ends or a signal arrives.
func runDemo(parent context.Context, cfg demoConfig) error {
	log := cfg.Logger
	haproxyPath, err := findHAProxy(cfg.HAProxyBinary)
	if err != nil {
		return err
	}
	if err := checkPortsFree(cfg); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("locating own executable: %w", err)
	}
	if cfg.DataDir == "" {
		dir, err := os.MkdirTemp("", "switchyard-")
		if err != nil {
			return fmt.Errorf("data dir: %w", err)
		}
		cfg.DataDir, cfg.TempDataDir = dir, true
		defer os.RemoveAll(dir)
	}
	for _, sub := range []string{"scheduler", "agent", "haproxy"} {
		if err := os.MkdirAll(filepath.Join(cfg.DataDir, sub), 0o755); err != nil {
			return fmt.Errorf("data dir: %w", err)
		}
	}

	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()

	// The scheduler: Marathon's v2 API, /v2/events and the agent API.
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("scheduler listen: %w", err)
	}
	apiURL := "http://" + ln.Addr().String()
	srvCfg := server.Config{
		Scheduler: scheduler.Config{
			DataDir: filepath.Join(cfg.DataDir, "scheduler"),
			Leader:  ln.Addr().String(),
			Logger:  log.With("component", "scheduler"),
		},
		Logger: log.With("component", "scheduler"),
	}
	if cfg.Levels != nil {
		srvCfg.Loggers = cfg.Levels
	}
	if cfg.DNS.Addr != "" {
		o := cfg.DNS
		srvCfg.Registry = prometheus.NewRegistry() // the scheduler's /metrics, DNS included
		srvCfg.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		srvCfg.DNS, err = dns.New(dns.Config{
			Addr: o.Addr, Domain: o.Domain, TTL: o.TTL, Resolvers: o.Resolvers, ResolvConf: "/etc/resolv.conf",
			Timeout: o.Timeout, Refresh: o.Refresh, Version: cliutil.Version(), Registry: srvCfg.Registry,
			Logger: log.With("component", "dns"),
		})
		if err == nil {
			err = srvCfg.DNS.Listen()
		}
		if err != nil {
			ln.Close()
			return fmt.Errorf("dns: %w", err)
		}
	}
	handler, sched, err := server.New(srvCfg)
	if err != nil {
		ln.Close()
		return fmt.Errorf("scheduler: %w", err)
	}

	// One agent running command tasks on this machine.
	procDriver := process.New(process.Config{Logger: log.With("component", "driver")})
	ag, err := agent.New(agent.Config{
		SchedulerURL: apiURL,
		Hostname:     "localhost",
		Address:      "127.0.0.1",
		Resources:    agentapi.Resources{CPUs: 8, Mem: 8192, Disk: 10000, Ports: []agentapi.PortRange{cfg.Ports}},
		Attributes:   map[string]string{"rack": "local"},
		DataDir:      filepath.Join(cfg.DataDir, "agent"),
		Drivers:      map[string]driver.Driver{process.Name: procDriver},
		Logger:       log.With("component", "agent"),
		// A one-machine demo: tasks run as whoever runs it (root too),
		// so the sample app can execute this binary wherever it lives.
		// The agent API admits only this loopback agent (no secret
		// needed); tasks still never inherit this process's environment.
		AllowRootTasks: true,
		// The agent kills the tasks itself, so their end is recorded and
		// the next run neither misses them nor counts them as failed.
		KillTasksOnStop: !cfg.KeepTasks,
	})
	if err != nil {
		ln.Close()
		return fmt.Errorf("agent: %w", err)
	}

	// The load balancer, following the scheduler like it follows Marathon.
	client, err := marathon.NewClient(marathon.ClientConfig{URLs: []string{apiURL}, Logger: log.With("component", "lb")})
	if err != nil {
		ln.Close()
		return fmt.Errorf("lb: %w", err)
	}
	ctl, err := controller.New(controller.Config{
		Marathon: client,
		Options: lb.Options{
			Groups:            []string{cfg.Group},
			DontBindHTTPHTTPS: cfg.DontBindHTTP,
			StatsPort:         cfg.StatsPort,
			MapDir:            filepath.Join(cfg.DataDir, "haproxy"),
		},
		ConfigPath:    filepath.Join(cfg.DataDir, "haproxy", "haproxy.cfg"),
		HAProxyBinary: haproxyPath,
		Registry:      prometheus.NewRegistry(),
		Logger:        log.With("component", "lb"),
	})
	if err != nil {
		ln.Close()
		return fmt.Errorf("lb: %w", err)
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return sched.Run(gctx) })
	g.Go(func() error {
		if err := server.Serve(gctx, ln, handler, 5*time.Second); err != nil {
			return fmt.Errorf("scheduler API: %w", err)
		}
		return nil
	})
	g.Go(func() error { return ag.Run(gctx) })
	if srvCfg.DNS != nil {
		g.Go(func() error { return srvCfg.DNS.Run(gctx, server.DNSSource(sched)) })
	}
	g.Go(func() error { return ctl.Run(gctx) })
	g.Go(func() error {
		if cfg.SamplePort == 0 {
			return nil
		}
		if err := deploySample(gctx, apiURL, self, cfg); err != nil {
			return err
		}
		if err := waitReachable(gctx, fmt.Sprintf("http://127.0.0.1:%d/", cfg.SamplePort), sampleText); err != nil {
			return err
		}
		printBanner(os.Stdout, apiURL, cfg)
		return nil
	})
	err = g.Wait()
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// sampleApp is the app the demo deploys, as a user would POST it: two
// tasks of "switchyard hello" behind servicePort cfg.SamplePort and the
// vhost cfg.SampleVHost, with an HTTP health check.
func sampleApp(self string, cfg demoConfig) map[string]any {
	return map[string]any{
		"id":              "/hello",
		"cmd":             fmt.Sprintf("exec %q hello --listen 127.0.0.1:$PORT0 --text '%s'", self, sampleText),
		"instances":       2,
		"cpus":            0.1,
		"mem":             32,
		"portDefinitions": []map[string]any{{"port": cfg.SamplePort, "protocol": "tcp", "name": "http"}},
		"healthChecks": []map[string]any{{
			"protocol": "HTTP", "path": "/", "gracePeriodSeconds": 10, "intervalSeconds": 2,
			"timeoutSeconds": 1, "maxConsecutiveFailures": 3,
		}},
		"labels": map[string]string{
			"HAPROXY_GROUP":   cfg.Group,
			"HAPROXY_0_VHOST": cfg.SampleVHost,
		},
	}
}

// deploySample POSTs the sample app; an existing one (a kept data dir) is
// left as it is.
func deploySample(ctx context.Context, apiURL, self string, cfg demoConfig) error {
	body, err := json.Marshal(sampleApp(self, cfg))
	if err != nil {
		return fmt.Errorf("sample app: %w", err)
	}
	var lastErr error
	for attempt := 0; attempt < 50; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, apiURL+"/v2/apps", bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("sample app: %w", err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			switch {
			case resp.StatusCode == http.StatusCreated, resp.StatusCode == http.StatusConflict:
				return nil
			case resp.StatusCode >= 400 && resp.StatusCode < 500:
				return fmt.Errorf("sample app rejected: %s: %s", resp.Status, msg)
			}
			lastErr = fmt.Errorf("%s: %s", resp.Status, msg)
		} else {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("sample app: scheduler did not accept it: %w", lastErr)
}

// sampleText is what the sample app answers; the demo checks for it, so
// another server answering on the sample port is not mistaken for it.
const sampleText = "HELLO FROM SWITCHYARD"

// findHAProxy finds the HAProxy executable: name on PATH, or, for the
// default name, where Debian installs it (/usr/sbin is not on a normal
// user's PATH).
func findHAProxy(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err == nil {
		return p, nil
	}
	if name == "haproxy" {
		for _, p := range []string{"/usr/sbin/haproxy", "/usr/local/sbin/haproxy"} {
			if _, serr := exec.LookPath(p); serr == nil {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("HAProxy not found (%w): `make run` installs it when run as root; or `sudo apt-get install -y haproxy`", err)
}

// checkPortsFree fails early, with the port's name, when another process
// holds a port the demo's HAProxy must bind: otherwise the demo would wait
// for a sample app that HAProxy can never serve, or mistake the other
// process for it.
func checkPortsFree(cfg demoConfig) error {
	type port struct {
		n          int
		what, flag string
	}
	ports := []port{{cfg.StatsPort, "HAProxy's stats port", "--stats-port (or PORTS)"}}
	if cfg.SamplePort != 0 {
		ports = append(ports, port{cfg.SamplePort, "the sample app's servicePort", "--sample-port"})
	}
	if !cfg.DontBindHTTP {
		ports = append(ports, port{80, "the shared HTTP frontend", "--dont-bind-http-https"})
	}
	for _, p := range ports {
		ln, err := net.Listen("tcp", fmt.Sprintf(":%d", p.n))
		if err != nil {
			return fmt.Errorf("port %d (%s) is not free: %w; stop what holds it, or choose another with %s", p.n, p.what, err, p.flag)
		}
		ln.Close()
	}
	return nil
}

// waitReachable polls url until it answers 200 with want in its body
// (through HAProxy).
func waitReachable(ctx context.Context, url, want string) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(string(body), want) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("sample app not reachable at %s after 2 minutes", url)
}

func printBanner(w io.Writer, apiURL string, cfg demoConfig) {
	fmt.Fprintf(w, "\nSwitchyard is up (state in %s).\n\n", cfg.DataDir)
	fmt.Fprintf(w, "  curl http://127.0.0.1:%d/                      # the sample app through HAProxy (servicePort, round robin)\n", cfg.SamplePort)
	if !cfg.DontBindHTTP {
		fmt.Fprintf(w, "  curl -H 'Host: %s' http://127.0.0.1/   # the shared :80 frontend, by vhost\n", cfg.SampleVHost)
	}
	fmt.Fprintf(w, "  http://127.0.0.1:%d/haproxy?stats              # HAProxy's stats page\n", cfg.StatsPort)
	fmt.Fprintf(w, "  curl %s/v2/apps?embed=apps.tasks       # the Marathon v2 API\n", apiURL)
	fmt.Fprintf(w, "  curl -X PUT -H 'Content-Type: application/json' %s/v2/apps/hello -d '{\"instances\": 3}'\n\n", apiURL)
	fmt.Fprintln(w, "Ctrl-C stops everything.")
}

func envInt(key string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(key)); err == nil && v > 0 {
		return v
	}
	return def
}
