package controller

import (
	"context"
	"fmt"

	"github.com/switchyard/switchyard/haproxy"
)

// validateBoth validates cfg two ways at once: check is the authority
// (haproxy -c), and parse is a config-parser pass that must read the same
// backends and servers as the section splitter the runtime-API path relies
// on. haproxy -c runs in its own process, so the parse costs no latency
// unless it is the slower of the two. A config either rejects is invalid;
// HAProxy's own verdict is reported first since it carries the lines the
// bad-app isolation uses.
func validateBoth(ctx context.Context, cfg []byte, check, parse func(context.Context, []byte) error) error {
	parsed := make(chan error, 1)
	go func() { parsed <- parse(ctx, cfg) }()
	err := check(ctx, cfg)
	perr := <-parsed
	if err != nil {
		return err
	}
	if perr != nil {
		return fmt.Errorf("%w: %w", haproxy.ErrInvalidConfig, perr)
	}
	return nil
}

// parseConfig runs haproxy.Parse (config-parser) on cfg.
func parseConfig(_ context.Context, cfg []byte) error {
	_, err := haproxy.Parse(cfg)
	return err
}
