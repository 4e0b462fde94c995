package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/switchyard/switchyard/marathon"
)

// MultiAppUpdater is an optional AppService extension for PUT and PATCH
// /v2/apps (many apps, one deployment). Backends without it answer 405.
type MultiAppUpdater interface {
	// UpdateApps applies every update atomically (each gets the current
	// definition of its id, nil when absent) and starts one deployment.
	UpdateApps(ctx context.Context, updates map[string]func(current *marathon.App) (marathon.App, error), force bool, clientIP, uri string) (marathon.DeploymentResult, error)
}

// putApps serves PUT /v2/apps (create or update; partialUpdate default
// true) and PATCH /v2/apps (partial, existing apps only).
func (s *server) putApps(w http.ResponseWriter, r *http.Request) {
	mu, ok := s.cfg.Apps.(MultiAppUpdater)
	if !ok {
		s.methodNotAllowed(w)
		return
	}
	body, err := readBody(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var items []json.RawMessage
	if err := json.Unmarshal(body, &items); err != nil {
		s.writeError(w, r, badJSON(err))
		return
	}
	patch := r.Method == http.MethodPatch
	partial := patch || boolParam(r, "partialUpdate", true)
	updates := map[string]func(*marathon.App) (marathon.App, error){}
	for i, item := range items {
		m, err := rawObject(item)
		if err != nil {
			s.writeError(w, r, badJSON(err))
			return
		}
		var id string
		if raw, ok := m["id"]; ok {
			_ = json.Unmarshal(raw, &id)
		}
		if strings.Trim(id, "/") == "" {
			s.writeError(w, r, &ValidationError{Details: []marathon.ErrorDetail{{Path: fmt.Sprintf("(%d)/id", i), Errors: []string{"must not be empty"}}}})
			return
		}
		id = canonicalAppID(id)
		item := item
		updates[id] = func(cur *marathon.App) (marathon.App, error) {
			if cur == nil && patch {
				return marathon.App{}, notFound("App '" + id + "' does not exist")
			}
			if !partial {
				return MergeApp(id, nil, item)
			}
			return MergeApp(id, cur, item)
		}
	}
	res, err := mu.UpdateApps(r.Context(), updates, boolParam(r, "force", false), clientIP(r), r.URL.Path)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Marathon-Deployment-Id", res.DeploymentID)
	writeJSON(w, http.StatusOK, res)
}

// getDeployment serves GET /v2/deployments/{id}.
func (s *server) getDeployment(w http.ResponseWriter, r *http.Request) {
	ds, err := s.cfg.Deployments.ListDeployments(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	id := r.PathValue("id")
	for _, d := range ds {
		if d.ID == id {
			writeJSON(w, http.StatusOK, d)
			return
		}
	}
	writeMessage(w, http.StatusNotFound, "DeploymentPlan "+id+" does not exist")
}

// wantsText reports whether the client prefers text/plain over JSON
// (the legacy /v2/tasks form): text/plain or text/* must be named and
// ranked above application/json, so */* keeps JSON.
func wantsText(r *http.Request) bool {
	ranges := parseAccept(r.Header.Values("Accept"))
	qText, match := quality(ranges, "text/plain")
	qJSON, _ := quality(ranges, "application/json")
	return match >= matchType && qText > qJSON
}

// writeTasksText writes the legacy tab-separated form of /v2/tasks (spec
// §1.3) for apps, sorted by id: one line per service port,
// "<safe id>\t<service port>\t<host:port>\t...", with the endpoints of
// the app's running tasks sorted; an app without service ports gets one
// line "<safe id>\t \t<host>\t...". An endpoint is the task's host and
// the host port of that port index (0 when the task has none); a port
// without host port on a container network is the task's IP and the
// container port.
func writeTasksText(w http.ResponseWriter, apps []marathon.App, tasks []marathon.Task) {
	byApp := map[string][]marathon.Task{}
	for _, t := range tasks {
		if t.State == marathon.TaskRunning {
			byApp[t.AppID] = append(byApp[t.AppID], t)
		}
	}
	apps = slices.Clone(apps)
	sort.Slice(apps, func(i, j int) bool { return apps[i].ID < apps[j].ID })
	var b strings.Builder
	for _, a := range apps {
		running := byApp[a.ID]
		id := marathon.SafeID(a.ID)
		if len(a.Ports) == 0 {
			hosts := make([]string, 0, len(running))
			for _, t := range running {
				hosts = append(hosts, t.Host)
			}
			sort.Strings(hosts)
			writeTextLine(&b, id, " ", hosts)
			continue
		}
		for i, sp := range a.Ports {
			eps := make([]string, 0, len(running))
			for _, t := range running {
				if ep, ok := textEndpoint(a, t, i); ok {
					eps = append(eps, ep)
				}
			}
			sort.Strings(eps)
			writeTextLine(&b, id, strconv.Itoa(sp), eps)
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, b.String())
}

func writeTextLine(b *strings.Builder, id, port string, endpoints []string) {
	b.WriteString(id)
	b.WriteByte('\t')
	b.WriteString(port)
	for _, ep := range endpoints {
		b.WriteByte('\t')
		b.WriteString(ep)
	}
	b.WriteByte('\n')
}

// textEndpoint is the endpoint of task t for port index i of app a. Task
// ports list only the ports that have a host port, so on a container
// network the index skips the mappings without one.
func textEndpoint(a marathon.App, t marathon.Task, i int) (string, bool) {
	hostIdx := i
	if c := a.Container; c != nil && i < len(c.PortMappings) && len(a.Networks) > 0 &&
		a.Networks[len(a.Networks)-1].Mode == ModeContainer {
		pm := c.PortMappings[i]
		if pm.HostPort == nil {
			if len(t.IPAddresses) == 0 {
				return "", false
			}
			return net.JoinHostPort(t.IPAddresses[0].IPAddress, strconv.Itoa(pm.ContainerPort)), true
		}
		hostIdx = 0
		for _, prev := range c.PortMappings[:i] {
			if prev.HostPort != nil {
				hostIdx++
			}
		}
	}
	port := 0
	if hostIdx < len(t.Ports) {
		port = t.Ports[hostIdx]
	}
	return net.JoinHostPort(t.Host, strconv.Itoa(port)), true
}

// CallbackService is an optional backend extension for the legacy HTTP
// callback event API (/v2/eventSubscriptions, go-marathon's default
// events transport). Backends without it answer 400, as Marathon does
// when the callback subscriber is not enabled.
type CallbackService interface {
	CallbackURLs(ctx context.Context) ([]string, error)
	// AddCallback registers callbackURL and returns the subscribe_event.
	AddCallback(ctx context.Context, callbackURL, clientIP string) (any, error)
	// RemoveCallback unregisters callbackURL and returns the
	// unsubscribe_event.
	RemoveCallback(ctx context.Context, callbackURL, clientIP string) (any, error)
}

// eventSubscriptions serves GET, POST and DELETE /v2/eventSubscriptions.
func (s *server) eventSubscriptions(w http.ResponseWriter, r *http.Request) {
	cs, ok := s.cfg.Apps.(CallbackService)
	if !ok {
		writeMessage(w, http.StatusBadRequest, "http event callback system is not running on this Marathon instance.")
		return
	}
	cb := r.URL.Query().Get("callbackUrl")
	var (
		v   any
		err error
	)
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		var urls []string
		urls, err = cs.CallbackURLs(r.Context())
		if urls == nil {
			urls = []string{}
		}
		v = map[string][]string{"callbackUrls": urls}
	case http.MethodPost, http.MethodDelete:
		if cb == "" {
			writeMessage(w, http.StatusBadRequest, "callbackUrl is required")
			return
		}
		if r.Method == http.MethodPost {
			v, err = cs.AddCallback(r.Context(), cb, clientIP(r))
		} else {
			v, err = cs.RemoveCallback(r.Context(), cb, clientIP(r))
		}
	default:
		s.methodNotAllowed(w)
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}
