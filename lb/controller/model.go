package controller

import (
	"bytes"
	"fmt"
	"sort"
	"sync"

	"github.com/switchyard/switchyard/lb"
	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/templates"
)

// modelRenderer is the real renderer: lb.Build, then the template set.
type modelRenderer struct {
	opts lb.Options
	set  *templates.Set
	// hosts resolves agent host names; nil uses them as they are.
	hosts *hostResolver

	mu sync.Mutex
	// held are the backends of the last build: on a service port clash
	// they keep their port (lb.Options.PreviousBackends). Guarded by mu.
	held map[string]bool
}

// loadRenderer reads the templates (defaults, overridden by dir when set).
func loadRenderer(opts lb.Options, dir string) (*modelRenderer, error) {
	set := templates.Default()
	if dir != "" {
		var err error
		if set, err = templates.Load(dir); err != nil {
			return nil, fmt.Errorf("load templates: %w", err)
		}
	}
	return &modelRenderer{opts: opts, set: set}, nil
}

func (m *modelRenderer) render(apps []marathon.App) (rendered, error) {
	r, _, err := m.renderWithModel(apps)
	return r, err
}

// renderWithModel is render, also returning the model rendered.
func (m *modelRenderer) renderWithModel(apps []marathon.App) (rendered, *lb.Config, error) {
	cfg, skipped := m.build(apps)
	r, err := m.renderModel(cfg, skipped)
	return r, cfg, err
}

// build runs lb.Build on apps and remembers its backends for the next
// build (lb.Options.PreviousBackends).
func (m *modelRenderer) build(apps []marathon.App) (*lb.Config, []skippedPort) {
	return m.buildApps(apps, true)
}

// buildApps runs lb.Build on apps; remember says whether its backends are
// the ones served from now on (false for the one-app builds of the
// incremental path).
func (m *modelRenderer) buildApps(apps []marathon.App, remember bool) (*lb.Config, []skippedPort) {
	opts := m.opts
	m.mu.Lock()
	opts.PreviousBackends = m.held
	m.mu.Unlock()
	var hosts *hostPass
	if m.hosts != nil {
		hosts = m.hosts.begin()
		opts.ResolveHost = hosts.resolve
	}
	cfg, skipped := lb.Build(apps, opts)
	if hosts != nil && hosts.finish() {
		// A host name got its (new) address: build with it.
		hosts = m.hosts.begin()
		opts.ResolveHost = hosts.resolve
		cfg, skipped = lb.Build(apps, opts)
		hosts.finish()
	}
	if remember {
		m.mu.Lock()
		m.held = cfg.Backends()
		m.mu.Unlock()
	}
	out := make([]skippedPort, 0, len(skipped))
	for _, s := range skipped {
		out = append(out, skippedPort{AppID: s.AppID, PortIndex: s.PortIndex, Reason: s.Reason, Filtered: s.Filtered})
	}
	return cfg, out
}

// inherit takes over prev's memory of the backends served.
func (m *modelRenderer) inherit(prev *modelRenderer) {
	prev.mu.Lock()
	held := prev.held
	prev.mu.Unlock()
	m.mu.Lock()
	m.held = held
	m.mu.Unlock()
}

// renderModel renders cfg; skipped are the ports already left out of it.
func (m *modelRenderer) renderModel(cfg *lb.Config, skipped []skippedPort) (rendered, error) {
	out, err := m.set.Render(cfg)
	if err != nil {
		return rendered{}, fmt.Errorf("render: %w", err)
	}
	r := rendered{Config: out.Config, Maps: out.Maps}
	r.VhostMap, r.AppMap = out.Maps[templates.DomainMapFile], out.Maps[templates.AppMapFile]
	if r.VhostMap == nil || r.AppMap == nil {
		v, a := serviceMaps(cfg)
		if r.VhostMap == nil {
			r.VhostMap = v
		}
		if r.AppMap == nil {
			r.AppMap = a
		}
	}
	r.Skipped = append(r.Skipped, skipped...)
	for _, s := range out.Skipped {
		r.Skipped = append(r.Skipped, skippedPort{AppID: s.AppID, PortIndex: s.PortIndex, Reason: s.Reason, Filtered: s.Filtered})
	}
	return r, nil
}

// serviceMaps computes the vhost-to-backend and app-to-backend maps of the
// http services, for /_haproxy_getvhostmap and /_haproxy_getappmap when
// --haproxy-map is off (marathon-lb answers from its map files; we answer
// with what they would hold).
func serviceMaps(cfg *lb.Config) (vhosts, apps []byte) {
	var vb, ab bytes.Buffer
	type kv struct{ k, v string }
	var vl, al []kv
	seenApp := map[string]bool{}
	for _, s := range cfg.Services {
		if s.Mode != lb.ModeHTTP {
			continue
		}
		for _, h := range s.VHosts {
			vl = append(vl, kv{h, s.Backend})
		}
		if !seenApp[s.AppID] {
			seenApp[s.AppID] = true
			al = append(al, kv{s.AppID, s.Backend})
		}
	}
	sort.SliceStable(vl, func(i, j int) bool { return vl[i].k < vl[j].k })
	sort.SliceStable(al, func(i, j int) bool { return al[i].k < al[j].k })
	for _, e := range vl {
		fmt.Fprintf(&vb, "%s %s\n", e.k, e.v)
	}
	for _, e := range al {
		fmt.Fprintf(&ab, "%s %s\n", e.k, e.v)
	}
	return vb.Bytes(), ab.Bytes()
}
