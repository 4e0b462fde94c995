package controller

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"time"

	"github.com/switchyard/switchyard/haproxy"
	"github.com/switchyard/switchyard/lb"
	"github.com/switchyard/switchyard/marathon"
)

// The incremental path.
//
// A task event (status_update_event, health_status_changed_event) changes
// one task of one app. Re-reading every app from Marathon, rebuilding and
// re-rendering the whole configuration and comparing it with the running
// one costs time and memory in proportion to the cluster (hundreds of
// milliseconds at 5,000 apps), while the change itself touches a few
// server lines. So the loop patches its snapshot of the apps from the
// event itself (patchEvent) and, at the next sync, builds and renders only
// the apps it patched (incremental): when an app's services are the same
// as in the model in effect but for their servers, and it reports the same
// skipped ports, the servers of its backends are all that differ between
// the running configuration and a full render, so the running
// configuration is updated by splicing the app's re-rendered backend
// sections into it, and HAProxy by the runtime operations haproxy.Diff
// finds between the app's old and new sections.
//
// Whenever that does not hold (a service appears or goes, a label or port
// changes, a port clash, a deployment group, a port HAProxy rejected, an
// unknown app or task, a task state whose effect on /v2/apps is not
// certain), the loop falls back to the full path: a full render of the
// patched snapshot, or a re-read of every app when the snapshot itself is
// in doubt (reconnect, unknown app, api_post_event and the other trigger
// events, the periodic resync). TestIncrementalMatchesFullResync replays
// random event sequences and checks that both paths give the same
// configuration.

// changeApplier is the optional ability of an applier to apply a
// servers-only change the caller computed (*haproxyApplier has it).
type changeApplier interface {
	applyChange(ctx context.Context, r rendered, ch haproxy.Change) (applyResult, bool, error)
}

// model is the lb model of the configuration in effect, with what the
// incremental path needs to compare an app against it.
type model struct {
	cfg *lb.Config
	// byApp are the indexes in cfg.Services of each app's services.
	byApp map[string][]int
	// skipped are the ports left out of the configuration in effect.
	skipped []skippedPort
}

func newModel(cfg *lb.Config, skipped []skippedPort) *model {
	if cfg == nil {
		return nil
	}
	by := make(map[string][]int, len(cfg.Services))
	for i := range cfg.Services {
		id := cfg.Services[i].AppID
		by[id] = append(by[id], i)
	}
	return &model{cfg: cfg, byApp: by, skipped: skipped}
}

// indexApps maps each app's canonical id to its index in st.apps.
func (st *loopState) indexApps() {
	st.appIndex = make(map[string]int, len(st.apps))
	for i := range st.apps {
		st.appIndex[marathon.CanonicalID(st.apps[i].ID)] = i
	}
}

// patchEvent applies a task event to st.apps. It returns the canonical id
// of the app patched, or ok false when the event cannot be applied exactly
// (another event type, an unknown app or task, a state whose effect on
// the app's task list is not certain): the caller then re-reads Marathon.
func (st *loopState) patchEvent(ev marathon.Event) (appID string, ok bool) {
	if !st.haveApps || st.appIndex == nil {
		return "", false
	}
	switch ev.Type {
	case marathon.EventStatusUpdate:
		var e marathon.StatusUpdateEvent
		if err := json.Unmarshal(ev.Data, &e); err != nil || e.AppID == "" || e.TaskID == "" {
			return "", false
		}
		id := marathon.CanonicalID(e.AppID)
		i, known := st.appIndex[id]
		if !known {
			return "", false
		}
		return id, patchStatus(&st.apps[i], &e)
	case marathon.EventHealthStatusChanged:
		var e marathon.HealthStatusChangedEvent
		if err := json.Unmarshal(ev.Data, &e); err != nil || e.AppID == "" || e.TaskID == "" {
			return "", false
		}
		id := marathon.CanonicalID(e.AppID)
		i, known := st.appIndex[id]
		if !known {
			return "", false
		}
		return id, patchHealth(&st.apps[i], &e)
	}
	return "", false
}

// patchStatus applies a status_update_event to app: a live state adds or
// updates the task, a terminal one removes it (Marathon drops terminal
// tasks from /v2/apps). A terminal state for a task lb does not know,
// TASK_LOST, TASK_UNREACHABLE, TASK_UNKNOWN and anything else are left to
// a re-read.
func patchStatus(app *marathon.App, e *marathon.StatusUpdateEvent) bool {
	j := slices.IndexFunc(app.Tasks, func(t marathon.Task) bool { return t.ID == e.TaskID })
	switch e.TaskStatus {
	case marathon.TaskStaging, marathon.TaskStarting, marathon.TaskRunning, marathon.TaskKilling:
		if j < 0 {
			app.Tasks = append(app.Tasks, marathon.Task{
				ID: e.TaskID, AppID: app.ID, Host: e.Host, SlaveID: e.SlaveID, State: e.TaskStatus,
				Version: e.Version, Ports: slices.Clone(e.Ports), IPAddresses: slices.Clone(e.IPAddresses),
			})
			return true
		}
		t := &app.Tasks[j]
		t.State = e.TaskStatus
		if e.Host != "" {
			t.Host = e.Host
		}
		if e.SlaveID != "" {
			t.SlaveID = e.SlaveID
		}
		if e.Version != "" {
			t.Version = e.Version
		}
		if e.Ports != nil {
			t.Ports = slices.Clone(e.Ports)
		}
		if e.IPAddresses != nil {
			t.IPAddresses = slices.Clone(e.IPAddresses)
		}
		return true
	case marathon.TaskFinished, marathon.TaskFailed, marathon.TaskKilled, marathon.TaskError,
		marathon.TaskDropped, marathon.TaskGone, "TASK_GONE_BY_OPERATOR":
		if j < 0 {
			return false // a task lb never saw: its snapshot may be behind
		}
		app.Tasks = slices.Delete(app.Tasks, j, j+1)
		return true
	}
	return false
}

// patchHealth applies a health_status_changed_event to app. The event does
// not say which health check changed, so only an app with one health
// check is patched (its task then has one result).
func patchHealth(app *marathon.App, e *marathon.HealthStatusChangedEvent) bool {
	if len(app.HealthChecks) != 1 {
		return false
	}
	j := slices.IndexFunc(app.Tasks, func(t marathon.Task) bool { return t.ID == e.TaskID })
	if j < 0 {
		return false
	}
	t := &app.Tasks[j]
	res := marathon.HealthCheckResult{TaskID: e.TaskID, InstanceID: e.InstanceID}
	if len(t.HealthCheckResults) == 1 {
		res = t.HealthCheckResults[0]
	}
	res.Alive = e.Alive
	t.HealthCheckResults = []marathon.HealthCheckResult{res}
	return true
}

// edit replaces old[at:at+n] with text.
type edit struct {
	at, n int
	text  []byte
}

// incremental applies the changes of the apps patched since the last sync
// (st.dirty) without rendering the others; see the top of this file. It
// returns false when the full path must be taken, having changed nothing.
func (c *Controller) incremental(ctx context.Context, st *loopState) bool {
	m, ok := c.rend.(*modelRenderer)
	if !ok || st.model == nil {
		return false
	}
	ca, ok := c.applier.(changeApplier)
	if !ok {
		return false
	}
	start := time.Now()
	cur := c.applier.running()
	if cur.Config == nil {
		return false
	}
	type update struct {
		idx     []int
		servers [][]lb.Server
	}
	var (
		ch      haproxy.Change
		edits   []edit
		updates []update
	)
	ids := make([]string, 0, len(st.dirty))
	for id := range st.dirty {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		i, known := st.appIndex[id]
		if !known {
			return false
		}
		app := &st.apps[i]
		if _, grouped := app.Labels[lb.LabelDeploymentGroup]; grouped {
			return false // merged with other apps: their services are shared
		}
		cfg, skipped := m.buildApps([]marathon.App{*app}, false)
		oldIdx := st.model.byApp[id]
		if len(cfg.Services) != len(oldIdx) {
			return false
		}
		old := &lb.Config{Options: st.model.cfg.Options, Services: make([]lb.Service, len(oldIdx))}
		for k, j := range oldIdx {
			old.Services[k] = st.model.cfg.Services[j]
			if !sameButServers(&old.Services[k], &cfg.Services[k]) {
				return false
			}
		}
		nr, err := m.renderModel(cfg, skipped)
		if err != nil || !sameSkipped(appSkipped(st.model.skipped, id), appSkipped(nr.Skipped, id)) {
			return false
		}
		or, err := m.renderModel(old, nil)
		if err != nil {
			return false
		}
		if bytes.Equal(or.Config, nr.Config) {
			continue // nothing this LB serves changed
		}
		d, err := haproxy.Diff(or.Config, nr.Config)
		if err != nil || d.Reload {
			return false
		}
		// The app's backend sections must be all that differs: spliced
		// into its old render, they give its new one.
		var own []edit
		for k := range cfg.Services {
			b := cfg.Services[k].Backend
			e, ok := spliceBackend(cur.Config, or.Config, nr.Config, b)
			if !ok {
				return false
			}
			oe, ok := spliceBackend(or.Config, or.Config, nr.Config, b)
			if !ok {
				return false
			}
			if e.n > 0 || len(e.text) > 0 {
				edits = append(edits, e)
				own = append(own, oe)
			}
		}
		if !bytes.Equal(applyEdits(or.Config, own), nr.Config) {
			return false
		}
		ch.Add = append(ch.Add, d.Add...)
		ch.Remove = append(ch.Remove, d.Remove...)
		ch.Update = append(ch.Update, d.Update...)
		u := update{idx: oldIdx}
		for k := range cfg.Services {
			u.servers = append(u.servers, cfg.Services[k].Servers)
		}
		updates = append(updates, u)
	}
	clear(st.dirty)
	c.metrics.incrementalSyncs.Inc()
	if len(edits) == 0 && ch.IsZero() {
		c.log.Debug("configuration unchanged", "duration", time.Since(start), "path", "incremental")
		return true
	}
	next := cur
	next.Config = applyEdits(cur.Config, edits)
	res, handled, err := ca.applyChange(ctx, next, ch)
	if !handled {
		return false
	}
	if err != nil {
		if ctx.Err() != nil {
			return true
		}
		c.metrics.syncErrors.Inc()
		c.log.Error("applying a servers-only change failed; will render everything", "err", err)
		c.markDirty(st, false)
		return true
	}
	for _, u := range updates {
		for k, j := range u.idx {
			st.model.cfg.Services[j].Servers = u.servers[k]
		}
	}
	c.metrics.lastApplyDuration.Set(time.Since(start).Seconds())
	c.publish(c.applier.running())
	c.log.Info("configuration applied", "action", res.action, "reason", res.reason, "path", "incremental",
		"apps", len(ids), "duration", time.Since(start), "since_event", time.Since(st.firstDirty))
	return true
}

// sameButServers reports whether two services are equal but for their
// servers.
func sameButServers(a, b *lb.Service) bool {
	x, y := *a, *b
	x.Servers, y.Servers = nil, nil
	return reflect.DeepEqual(x, y)
}

// appSkipped returns the entries of app id in list, sorted.
func appSkipped(list []skippedPort, id string) []skippedPort {
	var out []skippedPort
	for _, s := range list {
		if s.AppID == id {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(x, y skippedPort) int {
		if c := cmp.Compare(x.PortIndex, y.PortIndex); c != 0 {
			return c
		}
		return cmp.Compare(x.Reason, y.Reason)
	})
	return out
}

func sameSkipped(a, b []skippedPort) bool { return slices.Equal(a, b) }

// spliceBackend returns the edit of full that replaces backend's section
// as rendered in old (a render of one app) with its section in new. ok is
// false when the section cannot be found in full exactly as in old.
func spliceBackend(full, old, new []byte, backend string) (edit, bool) {
	ob, ok := backendBlock(old, backend)
	if !ok {
		return edit{}, false
	}
	nb, ok := backendBlock(new, backend)
	if !ok {
		return edit{}, false
	}
	header := []byte("\nbackend " + backend + "\n")
	at := bytes.Index(full, header)
	if at < 0 || bytes.Contains(full[at+1:], header) || !bytes.HasPrefix(full[at:], ob) {
		return edit{}, false
	}
	if rest := full[at+len(ob):]; !bytes.HasPrefix(rest, []byte("\nbackend ")) {
		return edit{}, false
	}
	if bytes.Equal(ob, nb) {
		return edit{}, true
	}
	return edit{at: at, n: len(ob), text: nb}, true
}

// backendBlock returns the section of backend in a rendered configuration:
// from the blank line before its header to the blank line before the next
// backend's (the admin backend always comes last).
func backendBlock(cfg []byte, backend string) ([]byte, bool) {
	header := []byte("\nbackend " + backend + "\n")
	at := bytes.Index(cfg, header)
	if at < 0 {
		return nil, false
	}
	end := bytes.Index(cfg[at+1:], []byte("\nbackend "))
	if end < 0 {
		return nil, false
	}
	return cfg[at : at+1+end], true
}

// applyEdits returns a copy of b with the edits (not overlapping) made.
func applyEdits(b []byte, edits []edit) []byte {
	slices.SortFunc(edits, func(x, y edit) int { return cmp.Compare(x.at, y.at) })
	size := len(b)
	for _, e := range edits {
		size += len(e.text) - e.n
	}
	out := make([]byte, 0, size)
	pos := 0
	for _, e := range edits {
		out = append(out, b[pos:e.at]...)
		out = append(out, e.text...)
		pos = e.at + e.n
	}
	return append(out, b[pos:]...)
}
