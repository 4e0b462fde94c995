// Package zdd performs marathon-lb style zero-downtime (blue/green)
// deployments: an app definition labelled HAPROXY_DEPLOYMENT_GROUP and
// HAPROXY_DEPLOYMENT_ALT_PORT is started next to the running colour under
// the other colour's id and service port, grown step by step while the
// old colour is drained and scaled down, and the old app is deleted at
// the end. The load balancer serves both colours in one backend meanwhile
// (see lb's deployment-group merge).
//
// The planning (colour, port, step sizes, when to kill what) is pure and
// lives in plan.go; Deployer does the I/O against Marathon and the load
// balancers' stats pages.
package zdd

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
	"os/exec"
	"strings"
	"time"

	"github.com/switchyard/switchyard/marathon"
)

// Marathon is the part of the Marathon client zdd uses
// (*marathon.Client satisfies it).
type Marathon interface {
	Apps(ctx context.Context) ([]marathon.App, error)
	App(ctx context.Context, id string) (marathon.App, error)
	CreateApp(ctx context.Context, def any) (marathon.App, error)
	ScaleApp(ctx context.Context, id string, instances int, force bool) (marathon.DeploymentResult, error)
	KillTasks(ctx context.Context, ids []string, scale bool) error
	DeleteApp(ctx context.Context, id string, force bool) (marathon.DeploymentResult, error)
}

// Defaults for zero Config fields.
const (
	DefaultStepDelay = 5 * time.Second
	DefaultMaxWait   = 10 * time.Minute
)

// ErrAborted is returned when the Confirm callback declines a step. The
// deployment is left as it is (no rollback).
var ErrAborted = errors.New("deployment aborted by the operator")

// Config configures a Deployer.
type Config struct {
	// Marathon is the API client (required).
	Marathon Marathon
	// Definition is the app JSON (required).
	Definition []byte
	// LBs are load balancer stats base URLs (http://lb:9090); when set,
	// old tasks are killed only once every LB shows them drained and the
	// new ones UP.
	LBs []string
	// HTTPClient fetches LB stats; nil means a client with a 10 s timeout.
	HTTPClient *http.Client
	// Dry prints the prepared definition and the planned steps, and
	// changes nothing.
	Dry bool
	// InitialInstances is the new app's first size (default 1).
	InitialInstances int
	// NewInstances, when above 0, makes a hybrid deployment: the new app
	// grows to this many instances only and the old app keeps the rest of
	// the target; both serve until --complete-cur or --complete-prev.
	NewInstances int
	// StepDelay is the pause between rounds (default DefaultStepDelay).
	StepDelay time.Duration
	// MaxWait bounds how long one step may wait: for new tasks to become
	// healthy (then the deployment fails) or for old servers to drain
	// (then draining servers are killed anyway, as marathon-lb does).
	// Default DefaultMaxWait.
	MaxWait time.Duration
	// PreKillHook is an executable run before each kill with three JSON
	// arguments: the old app, the task ids to kill, the new app. A
	// non-zero exit fails the deployment.
	PreKillHook string
	// CompleteCur and CompletePrev finish a deployment whose group runs
	// two apps: all instances to the newest app, or back to the one
	// before it.
	CompleteCur, CompletePrev bool
	// NoRollback leaves things as they are on failure; by default the old
	// app is scaled back to its target and the new app deleted.
	NoRollback bool
	// Confirm, when set, is asked before creating, killing and deleting;
	// false aborts with ErrAborted. Nil means yes (--force).
	Confirm func(question string) bool
	// Out receives the prepared definition (always) and the plan (--dry).
	// Nil discards.
	Out io.Writer
	// Logger gets one line per step; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Result describes a finished deployment.
type Result struct {
	NewID, OldID string // OldID is empty on a first deployment
	Colour       string
	ServicePort  int
	Target       int
}

// Deployer runs one deployment.
type Deployer struct {
	cfg Config
	def *Definition
	log *slog.Logger
}

// New checks cfg, parses the definition and applies defaults.
func New(cfg Config) (*Deployer, error) {
	if cfg.Marathon == nil {
		return nil, errors.New("zdd: no Marathon client")
	}
	if cfg.CompleteCur && cfg.CompletePrev {
		return nil, errors.New("zdd: --complete-cur and --complete-prev exclude each other")
	}
	def, err := ParseDefinition(cfg.Definition)
	if err != nil {
		return nil, fmt.Errorf("zdd: %w", err)
	}
	if cfg.InitialInstances <= 0 {
		cfg.InitialInstances = 1
	}
	if cfg.StepDelay <= 0 {
		cfg.StepDelay = DefaultStepDelay
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = DefaultMaxWait
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	lbs := make([]string, 0, len(cfg.LBs))
	for _, u := range cfg.LBs {
		if u = strings.TrimRight(strings.TrimSpace(u), "/"); u != "" {
			lbs = append(lbs, u)
		}
	}
	cfg.LBs = lbs
	return &Deployer{cfg: cfg, def: def, log: log.With("group", def.Group())}, nil
}

// Run performs the deployment and returns what it did. On failure it
// rolls back unless NoRollback (and not in --complete-* modes).
func (d *Deployer) Run(ctx context.Context) (Result, error) {
	apps, err := d.cfg.Marathon.Apps(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("zdd: list apps: %w", err)
	}
	if d.cfg.CompleteCur || d.cfg.CompletePrev {
		return d.complete(ctx, apps)
	}
	p, err := Prepare(d.def, apps, PrepareOptions{InitialInstances: d.cfg.InitialInstances, NewInstances: d.cfg.NewInstances}, d.cfg.Now())
	if err != nil {
		return Result{}, fmt.Errorf("zdd: %w", err)
	}
	res := Result{NewID: p.New.ID(), Colour: p.Colour, ServicePort: p.ServicePort, Target: p.Target}
	if p.Old != nil {
		res.OldID = p.Old.ID
	}
	body, _ := json.MarshalIndent(p.New, "", "  ")
	fmt.Fprintf(d.cfg.Out, "%s\n", body)
	d.log.Info("prepared deployment", "new", res.NewID, "old", res.OldID, "colour", p.Colour,
		"service_port", p.ServicePort, "initial_instances", p.Initial, "target_instances", p.Target, "new_instances", p.NewInstances)
	if d.cfg.Dry {
		d.printPlan(p)
		return res, nil
	}
	if !d.confirm(fmt.Sprintf("Create %s with %d instance(s)?", res.NewID, p.Initial)) {
		return res, ErrAborted
	}
	created, err := d.cfg.Marathon.CreateApp(ctx, p.New)
	if err != nil {
		return res, fmt.Errorf("zdd: %w", err)
	}
	d.log.Info("created new app", "app", created.ID, "instances", p.Initial)
	if p.Old == nil {
		// First deployment of the group: nothing to swap, wait until it serves.
		err = d.waitHealthy(ctx, res.NewID, p.Target)
	} else {
		err = d.swap(ctx, res.NewID, res.OldID, p.Target, p.NewInstances)
	}
	if err != nil {
		if errors.Is(err, ErrAborted) || d.cfg.NoRollback {
			d.log.Error("deployment failed; left as it is (no rollback)", "err", err)
			return res, err
		}
		d.log.Error("deployment failed; rolling back", "err", err)
		if rbErr := d.rollback(ctx, res.NewID, res.OldID, p.Target); rbErr != nil {
			return res, fmt.Errorf("zdd: %w (rollback failed too: %w)", err, rbErr)
		}
		return res, fmt.Errorf("zdd: %w (rolled back)", err)
	}
	d.log.Info("deployment complete", "app", res.NewID)
	return res, nil
}

// complete finishes a two-app group (--complete-cur / --complete-prev).
func (d *Deployer) complete(ctx context.Context, apps []marathon.App) (Result, error) {
	newApp, oldApp, target, err := Resume(apps, d.def.Group(), d.cfg.CompletePrev)
	if err != nil {
		return Result{}, fmt.Errorf("zdd: %w", err)
	}
	res := Result{NewID: newApp.ID, OldID: oldApp.ID, Colour: newApp.Labels[LabelColour], ServicePort: servicePortOf(newApp), Target: target}
	d.log.Info("completing deployment", "keep", newApp.ID, "keep_colour", res.Colour, "remove", oldApp.ID, "target_instances", target)
	if d.cfg.Dry {
		fmt.Fprintf(d.cfg.Out, "plan: move %s (%d instances) and %s (%d instances) to %s=%d, %s deleted\n",
			newApp.ID, newApp.Instances, oldApp.ID, oldApp.Instances, newApp.ID, target, oldApp.ID)
		return res, nil
	}
	if err := d.swap(ctx, newApp.ID, oldApp.ID, target, 0); err != nil {
		return res, fmt.Errorf("zdd: %w (left as it is)", err)
	}
	return res, nil
}

func (d *Deployer) confirm(q string) bool {
	if d.cfg.Confirm == nil {
		return true
	}
	return d.cfg.Confirm(q)
}

// printPlan writes the simulated steps of a deployment.
func (d *Deployer) printPlan(p Prepared) {
	w := d.cfg.Out
	if p.Old == nil {
		fmt.Fprintf(w, "plan: first deployment of group %s: create %s (%s, service port %d) with %d instances\n",
			d.def.Group(), p.New.ID(), p.Colour, p.ServicePort, p.Target)
		return
	}
	fmt.Fprintf(w, "plan: create %s (%s, service port %d) with %d instance(s); %s has %d, target %d\n",
		p.New.ID(), p.Colour, p.ServicePort, p.Initial, p.Old.ID, p.Old.Instances, p.Target)
	for i, s := range Schedule(p.Initial, p.Old.Instances, p.Target, p.NewInstances) {
		fmt.Fprintf(w, "plan: step %d: %s=%d %s=%d\n", i+1, p.New.ID(), s[0], p.Old.ID, s[1])
	}
	if p.NewInstances > 0 {
		fmt.Fprintf(w, "plan: keep both (hybrid); finish with --complete-cur or --complete-prev\n")
		return
	}
	fmt.Fprintf(w, "plan: delete %s\n", p.Old.ID)
}

// sleep waits for the step delay or ctx.
func (d *Deployer) sleep(ctx context.Context) error {
	t := time.NewTimer(d.cfg.StepDelay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// waitHealthy waits until app id has n healthy tasks and no deployment.
func (d *Deployer) waitHealthy(ctx context.Context, id string, n int) error {
	deadline := d.cfg.Now().Add(d.cfg.MaxWait)
	for {
		app, err := d.cfg.Marathon.App(ctx, id)
		if err == nil {
			h := len(healthyTasks(app))
			if h >= n && len(app.Deployments) == 0 {
				d.log.Info("app healthy", "app", id, "healthy", h)
				return nil
			}
			d.log.Info("waiting for app to be healthy", "app", id, "healthy", h, "want", n)
		} else {
			d.log.Warn("reading app failed", "app", id, "err", err)
		}
		if d.cfg.Now().After(deadline) {
			return fmt.Errorf("%s not healthy after %s", id, d.cfg.MaxWait)
		}
		if err := d.sleep(ctx); err != nil {
			return err
		}
	}
}

// swap runs rounds until the new app has target instances and the old
// app is deleted, or, with newTarget between 1 and target-1, until the
// hybrid split is reached.
func (d *Deployer) swap(ctx context.Context, newID, oldID string, target, newTarget int) error {
	lastProgress := d.cfg.Now()
	drainTimedOut := false
	lastReason := ""
	for round := 1; ; round++ {
		if round > 1 {
			if err := d.sleep(ctx); err != nil {
				return err
			}
		}
		newApp, errNew := d.cfg.Marathon.App(ctx, newID)
		oldApp, errOld := d.cfg.Marathon.App(ctx, oldID)
		var step Step
		if err := errors.Join(errNew, errOld); err != nil {
			if hasStatus(err, http.StatusNotFound) || ctx.Err() != nil {
				return err // an app vanished under us, or we were stopped
			}
			step = Step{Kind: StepWait, Reason: fmt.Sprintf("reading the apps failed: %v", err)}
		} else {
			obs := Observation{New: newApp, Old: oldApp, Target: target, NewTarget: newTarget, DrainTimedOut: drainTimedOut}
			var lbErr error
			if len(d.cfg.LBs) > 0 {
				obs.LB, lbErr = d.lbView(ctx, newApp, oldApp)
			}
			d.log.Debug("round", "n", round, "new", newID, "new_instances", newApp.Instances,
				"old", oldID, "old_instances", oldApp.Instances, "target", target)
			step = Next(obs)
			if lbErr != nil && step.Kind != StepWait {
				step = Step{Kind: StepWait, Reason: fmt.Sprintf("load balancer stats unavailable: %v", lbErr)}
			}
		}
		switch step.Kind {
		case StepWait:
			waited := d.cfg.Now().Sub(lastProgress)
			level := slog.LevelDebug
			if step.Reason != lastReason {
				level = slog.LevelInfo // say it once, not every round
			}
			lastReason = step.Reason
			d.log.Log(ctx, level, "waiting", "reason", step.Reason, "waited", waited.Round(time.Second))
			if waited > d.cfg.MaxWait {
				if step.WaitingForDrain && !drainTimedOut {
					d.log.Warn("old servers did not drain within --max-wait; killing draining ones", "max_wait", d.cfg.MaxWait)
					drainTimedOut = true
					continue
				}
				return fmt.Errorf("no progress for %s: %s", d.cfg.MaxWait, step.Reason)
			}
		case StepAct:
			if len(step.Kill) > 0 {
				if err := d.kill(ctx, oldApp, newApp, step.Kill); err != nil {
					if !hasStatus(err, http.StatusConflict) {
						return err
					}
					d.log.Warn("old app locked by a deployment; retrying next round", "app", oldID, "err", err)
					continue
				}
			}
			if step.ScaleNewTo > 0 {
				d.log.Info("scaling new app up", "app", newID, "from", newApp.Instances, "to", step.ScaleNewTo)
				if _, err := d.cfg.Marathon.ScaleApp(ctx, newID, step.ScaleNewTo, false); err != nil {
					if !hasStatus(err, http.StatusConflict) {
						return err
					}
					d.log.Warn("new app locked by a deployment; retrying next round", "app", newID, "err", err)
					continue
				}
			}
			lastProgress, drainTimedOut, lastReason = d.cfg.Now(), false, ""
		case StepHybridDone:
			d.log.Info("hybrid deployment in place; both apps serve (finish with --complete-cur or --complete-prev)",
				"new", newID, "new_instances", newApp.Instances, "old", oldID, "old_instances", oldApp.Instances)
			return nil
		case StepDeleteOld:
			if !d.confirm(fmt.Sprintf("Delete %s?", oldID)) {
				return ErrAborted
			}
			d.log.Info("deleting old app", "app", oldID, "reason", step.Reason)
			if _, err := d.cfg.Marathon.DeleteApp(ctx, oldID, false); err != nil {
				return err
			}
			return nil
		}
	}
}

// hasStatus reports whether err carries a Marathon answer with this code.
func hasStatus(err error, code int) bool {
	var se *marathon.StatusError
	return errors.As(err, &se) && se.Code == code
}

// kill runs the pre-kill hook and kills old tasks, scaling the old app down.
func (d *Deployer) kill(ctx context.Context, oldApp, newApp marathon.App, ids []string) error {
	if d.cfg.PreKillHook != "" {
		if err := d.runHook(ctx, oldApp, newApp, ids); err != nil {
			return err
		}
	}
	if !d.confirm(fmt.Sprintf("Kill %d task(s) of %s (%s)?", len(ids), oldApp.ID, strings.Join(ids, ", "))) {
		return ErrAborted
	}
	d.log.Info("scaling old app down", "app", oldApp.ID, "kill", len(ids), "tasks", ids, "from", oldApp.Instances, "to", oldApp.Instances-len(ids))
	return d.cfg.Marathon.KillTasks(ctx, ids, true)
}

// runHook runs --pre-kill-hook with the old app, the task ids and the new
// app as JSON arguments.
func (d *Deployer) runHook(ctx context.Context, oldApp, newApp marathon.App, ids []string) error {
	oldJSON, _ := json.Marshal(oldApp)
	idsJSON, _ := json.Marshal(ids)
	newJSON, _ := json.Marshal(newApp)
	d.log.Info("running pre-kill hook", "hook", d.cfg.PreKillHook, "tasks", ids)
	cmd := exec.CommandContext(ctx, d.cfg.PreKillHook, string(oldJSON), string(idsJSON), string(newJSON))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if s := strings.TrimSpace(out.String()); s != "" {
		d.log.Info("pre-kill hook output", "output", s)
	}
	if err != nil {
		return fmt.Errorf("pre-kill hook %s: %w", d.cfg.PreKillHook, err)
	}
	return nil
}

// rollback scales the old app back to target, waits for it to be healthy
// and deletes the new app. It uses its own deadline, so that an
// interrupted deployment (ctx cancelled) is still rolled back.
func (d *Deployer) rollback(ctx context.Context, newID, oldID string, target int) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.MaxWait+time.Minute)
	defer cancel()
	var errs []error
	if oldID != "" {
		d.log.Info("rollback: scaling old app back", "app", oldID, "instances", target)
		if _, err := d.cfg.Marathon.ScaleApp(rctx, oldID, target, true); err != nil {
			errs = append(errs, err)
		} else if err := d.waitHealthy(rctx, oldID, target); err != nil {
			errs = append(errs, err)
		}
	}
	d.log.Info("rollback: deleting new app", "app", newID)
	if _, err := d.cfg.Marathon.DeleteApp(rctx, newID, true); err != nil {
		if !hasStatus(err, http.StatusNotFound) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// lbView reads every LB's stats and builds the view for Next.
func (d *Deployer) lbView(ctx context.Context, newApp, oldApp marathon.App) (*LBView, error) {
	rows := make([][]StatRow, 0, len(d.cfg.LBs))
	for _, base := range d.cfg.LBs {
		r, err := d.fetchStats(ctx, base)
		if err != nil {
			return nil, err
		}
		rows = append(rows, r)
	}
	cache := map[string][]string{}
	resolve := func(host string) []string {
		if a, ok := cache[host]; ok {
			return a
		}
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		a, _ := net.DefaultResolver.LookupHost(rctx, host)
		cache[host] = a
		return a
	}
	return BuildLBView(rows, d.def.Group(), newApp, oldApp, resolve), nil
}

func (d *Deployer) fetchStats(ctx context.Context, base string) ([]StatRow, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/haproxy?stats;csv", nil)
	if err != nil {
		return nil, fmt.Errorf("LB %s: %w", base, err)
	}
	resp, err := d.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("LB %s: %w", base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("LB %s: stats: status %d", base, resp.StatusCode)
	}
	rows, err := ParseStats(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("LB %s: %w", base, err)
	}
	return rows, nil
}
