package httpapi

import (
	"context"
	"net/http"
	"sort"
	"strings"

	"github.com/switchyard/switchyard/marathon"
)

// GroupTreeService is an optional GroupService extension for backends
// that store groups on their own (empty groups, enforceRole) and group
// versions. Without it groups are derived from app ids only, group
// versions are unknown and PATCH answers 405.
type GroupTreeService interface {
	// UpdateGroupTree is UpdateGroup that also replaces the stored groups
	// under id (id itself included): update gets them, sorted by id, with
	// the apps, and returns the groups to keep or create; the others are
	// removed.
	UpdateGroupTree(ctx context.Context, id string, update func(apps []marathon.App, groups []marathon.GroupMeta) ([]marathon.App, []marathon.GroupMeta, error), force, dryRun bool, clientIP, uri string) (marathon.DeploymentResult, []marathon.DeploymentStep, error)
	// ListGroups returns the stored groups; groups implied by app ids
	// need not be listed.
	ListGroups(ctx context.Context) ([]marathon.GroupMeta, error)
	// GroupVersions lists, newest first, the versions in which group id
	// existed (404 when it does not exist now).
	GroupVersions(ctx context.Context, id string) ([]string, error)
	// GroupVersion returns group id at version: its app definitions and
	// its stored groups (404 when it did not exist then).
	GroupVersion(ctx context.Context, id, version string) ([]marathon.App, []marathon.GroupMeta, error)
	// PatchGroup sets enforceRole of a top-level group (404 unknown
	// group, 422 not top-level).
	PatchGroup(ctx context.Context, id string, enforceRole bool) error
}

// group is the JSON of /v2/groups (Marathon's GroupInfo).
type group struct {
	ID           string   `json:"id"`
	Apps         []any    `json:"apps"`
	Groups       []*group `json:"groups"`
	Pods         []any    `json:"pods"`
	Dependencies []string `json:"dependencies"`
	Version      string   `json:"version"`
	EnforceRole  bool     `json:"enforceRole"`
}

// buildGroups builds the group tree of the apps (every prefix of an app
// id is a group) and the stored groups; render renders each app. A group
// without version of its own has the newest version found in it.
func buildGroups(apps []marathon.App, stored []marathon.GroupMeta, render func(marathon.App) any) *group {
	root := &group{ID: "/"}
	byID := map[string]*group{"/": root}
	var ensure func(id string) *group
	ensure = func(id string) *group {
		if g, ok := byID[id]; ok {
			return g
		}
		g := &group{ID: id}
		byID[id] = g
		p := ensure(parentOf(id))
		p.Groups = append(p.Groups, g)
		return g
	}
	for _, m := range stored {
		if m.ID == "/" || m.ID == "" {
			continue
		}
		g := ensure(m.ID)
		g.EnforceRole = m.EnforceRole
		g.Version = max(g.Version, m.Version)
	}
	for _, a := range apps {
		g := ensure(parentOf(a.ID))
		g.Apps = append(g.Apps, render(a))
		g.Version = max(g.Version, a.Version)
	}
	for _, g := range byID {
		if g.Apps == nil {
			g.Apps = []any{}
		}
		if g.Groups == nil {
			g.Groups = []*group{}
		}
		g.Pods, g.Dependencies = []any{}, []string{}
		sort.Slice(g.Groups, func(i, j int) bool { return g.Groups[i].ID < g.Groups[j].ID })
	}
	var version func(g *group) string
	version = func(g *group) string {
		for _, c := range g.Groups {
			g.Version = max(g.Version, version(c))
		}
		return g.Version
	}
	version(root)
	return root
}

// find returns group id in the tree under g, or nil.
func (g *group) find(id string) *group {
	if g.ID == id {
		return g
	}
	for _, c := range g.Groups {
		if inside(c.ID, id) {
			return c.find(id)
		}
	}
	return nil
}

// inside reports whether id is gid or lies under it.
func inside(gid, id string) bool { return id == gid || strings.HasPrefix(id, gid+"/") }

// getGroup serves GET /v2/groups[/{id}] and the group versions:
// /v2/groups[/{id}]/versions lists them, /v2/groups[/{id}]/versions/{v}
// shows the group at one of them.
func (s *server) getGroup(w http.ResponseWriter, r *http.Request) {
	rest := strings.Trim(strings.TrimPrefix(r.URL.Path, "/v2/groups"), "/")
	segs := strings.Split(rest, "/")
	n := len(segs)
	switch {
	case rest == "":
	case segs[n-1] == "versions":
		s.groupVersions(w, r, marathon.CanonicalID(strings.Join(segs[:n-1], "/")))
		return
	case n >= 2 && segs[n-2] == "versions":
		s.groupVersion(w, r, marathon.CanonicalID(strings.Join(segs[:n-2], "/")), segs[n-1])
		return
	}
	id := marathon.CanonicalID(rest)
	apps, err := s.cfg.Apps.ListApps(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var stored []marathon.GroupMeta
	if ts, ok := s.cfg.Apps.(GroupTreeService); ok {
		if stored, err = ts.ListGroups(r.Context()); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	e := parseEmbed(r)
	e.counts, e.deployments = true, true
	root := buildGroups(apps, stored, func(a marathon.App) any { return render(a, e) })
	g := root.find(id)
	if g == nil {
		writeMessage(w, http.StatusNotFound, "Group '"+id+"' does not exist")
		return
	}
	writeJSON(w, http.StatusOK, g)
}

// groupTree returns the backend's GroupTreeService, or answers 404 for
// the group (versions are unknown without one).
func (s *server) groupTree(w http.ResponseWriter, id string) (GroupTreeService, bool) {
	ts, ok := s.cfg.Apps.(GroupTreeService)
	if !ok {
		writeMessage(w, http.StatusNotFound, "Group '"+id+"' does not exist")
	}
	return ts, ok
}

func (s *server) groupVersions(w http.ResponseWriter, r *http.Request, id string) {
	ts, ok := s.groupTree(w, id)
	if !ok {
		return
	}
	vs, err := ts.GroupVersions(r.Context(), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if vs == nil {
		vs = []string{}
	}
	writeJSON(w, http.StatusOK, vs)
}

func (s *server) groupVersion(w http.ResponseWriter, r *http.Request, id, version string) {
	ts, ok := s.groupTree(w, id)
	if !ok {
		return
	}
	apps, groups, err := ts.GroupVersion(r.Context(), id, version)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	root := buildGroups(apps, groups, func(a marathon.App) any { return renderBare(a) })
	g := root.find(id)
	if g == nil {
		writeMessage(w, http.StatusNotFound, "Group '"+id+"' does not exist")
		return
	}
	writeJSON(w, http.StatusOK, g)
}
