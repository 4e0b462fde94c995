package controller

import (
	"context"

	"github.com/switchyard/switchyard/marathon"
)

// Source is where the controller reads Marathon state: a full snapshot of
// the apps with their tasks, and the event stream that says when to read it
// again. *marathon.Client satisfies it.
type Source interface {
	// Apps returns every app with its tasks embedded.
	Apps(ctx context.Context) ([]marathon.App, error)
	// Events streams the events of the given types until ctx ends. The
	// stream reconnects by itself and sends an event of type
	// marathon.EventStreamAttached after every (re)connect.
	Events(ctx context.Context, types []string) <-chan marathon.Event
}

// rendered is one HAProxy configuration produced from a Marathon snapshot.
type rendered struct {
	// Config is the haproxy.cfg text.
	Config []byte
	// Maps holds the map files the config refers to, by file name
	// (relative to the map directory), when --haproxy-map is on.
	Maps map[string][]byte
	// VhostMap and AppMap are the vhost-to-backend and app-id-to-backend
	// maps served at /_haproxy_getvhostmap and /_haproxy_getappmap, one
	// "key value" line per entry.
	VhostMap []byte
	AppMap   []byte
	// Skipped lists the app ports left out of Config, with the reason.
	Skipped []skippedPort
}

// skippedPort is one app port the model left out of the configuration.
type skippedPort struct {
	AppID     string
	PortIndex int
	Reason    string
	// Filtered is true when the port was left out by policy (another
	// group, strict mode, no task) rather than because of bad input.
	Filtered bool
	// Rejected is true when the port was left out because HAProxy
	// rejects the configuration it produces (haproxy -c), although its
	// labels passed lb's own checks.
	Rejected bool
}

// renderer turns a Marathon snapshot into a configuration. The real one is
// lb.Build followed by templates.Render; tests use fakes.
type renderer interface {
	render(apps []marathon.App) (rendered, error)
}

// prober is the optional ability of an applier to validate a candidate
// configuration without applying it; the controller uses it to find the
// app ports HAProxy rejects. *haproxyApplier has it.
type prober interface {
	// probe runs haproxy -c on r as a reload would; an error wrapping a
	// *haproxy.CheckError means HAProxy rejected it.
	probe(ctx context.Context, r rendered) error
}

// applyResult says what an applier did with a configuration.
type applyResult struct {
	// action is one of actionNone, actionRuntime, actionReload, actionWrite.
	action string
	// reason is why a reload happened (empty otherwise).
	reason string
}

// Actions an applier reports.
const (
	actionNone    = "none"    // identical to the running config
	actionRuntime = "runtime" // servers changed through the runtime API
	actionReload  = "reload"  // HAProxy reloaded (or the reload command ran)
	actionDry     = "dry"     // rendered and logged only (--dry)
)

// applier puts a rendered configuration into effect. The real one drives
// HAProxy (or an external reload command); tests use fakes. It is used by
// the controller's loop goroutine only.
type applier interface {
	// start puts the first configuration in place and starts HAProxy.
	start(ctx context.Context, r rendered) error
	// apply makes r the running configuration. force, when not empty, is a
	// reason to reload even when nothing changed. A *tooSoonError means
	// "try again after its delay" (--reload-interval).
	apply(ctx context.Context, r rendered, force string) (applyResult, error)
	// running returns the configuration currently in effect (nil before
	// start).
	running() rendered
	// pendingFlush reports whether changes applied at runtime still have
	// to be validated and written. beginFlush starts that: run may be
	// called on another goroutine, done on the loop goroutine with run's
	// result (both nil when nothing is pending). flush does both at once.
	pendingFlush() bool
	beginFlush() (run func(context.Context) error, done func(context.Context, error) error)
	flush(ctx context.Context) error
	// pids returns the HAProxy process ids.
	pids(ctx context.Context) ([]int, error)
	// done is closed when HAProxy is gone for good (not merely restarted);
	// nil when lb does not own an HAProxy process.
	done() <-chan struct{}
	// stop stops HAProxy, if lb owns it.
	stop(ctx context.Context) error
}
