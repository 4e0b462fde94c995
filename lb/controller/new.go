package controller

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/switchyard/switchyard/haproxy"
)

// New checks cfg and returns a Controller ready to Run. It neither
// connects to Marathon nor starts HAProxy; Run does.
func New(cfg Config) (*Controller, error) {
	if cfg.ConfigPath == "" && !cfg.Dry {
		return nil, errors.New("controller: no HAProxy config path")
	}
	if cfg.HAProxyBinary == "" {
		cfg.HAProxyBinary = "haproxy"
	}
	if cfg.Options.MapDir == "" && cfg.ConfigPath != "" {
		cfg.Options.MapDir = filepath.Dir(cfg.ConfigPath)
	}
	c, err := newController(cfg)
	if err != nil {
		return nil, err
	}
	c.newRenderer = func() (renderer, error) {
		opts := cfg.Options
		opts.AdminAddr = c.AdminAddr()
		r, err := loadRenderer(opts, cfg.TemplatesDir)
		if err != nil {
			return nil, err
		}
		r.hosts = c.hosts
		return r, nil
	}
	c.newApplier = func() (applier, error) {
		haproxyCheck := func(ctx context.Context, b []byte) error { return haproxy.Check(ctx, cfg.HAProxyBinary, b) }
		a := &haproxyApplier{
			log:            c.log,
			m:              c.metrics,
			check:          func(ctx context.Context, b []byte) error { return validateBoth(ctx, b, haproxyCheck, parseConfig) },
			diff:           haproxy.Diff,
			command:        cfg.ReloadCommand,
			configPath:     cfg.ConfigPath,
			mapDir:         cfg.Options.MapDir,
			skipValidation: cfg.SkipValidation,
			dry:            cfg.Dry,
			dryOut:         cfg.DryOutput,
			minInterval:    cfg.MinReloadInterval,
		}
		if !cfg.Dry && cfg.ReloadCommand == "" {
			a.newProc = func() process {
				return haproxy.NewProcess(haproxy.ProcessConfig{
					Binary:     cfg.HAProxyBinary,
					ConfigPath: cfg.ConfigPath,
					Logger:     c.log.With("component", "haproxy"),
					OnRestart: func(loaded []byte) {
						c.metrics.haproxyRestarts.Inc()
						// Only the latest restart matters; this is the only sender.
						select {
						case <-c.haproxyRestarted:
						default:
						}
						c.haproxyRestarted <- loaded
					},
				})
			}
			a.proc = a.newProc()
			a.preload = func(ctx context.Context, prev, b []byte) error {
				if err := parseChanged(ctx, prev, b, parseWhole); err != nil {
					return fmt.Errorf("%w: %w", haproxy.ErrInvalidConfig, err)
				}
				return nil
			}
		}
		return a, nil
	}
	return c, nil
}
