package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/switchyard/switchyard/marathon"
)

// embed says which AppInfo parts a response carries.
type embed struct {
	tasks, counts, deployments, readiness, lastTaskFailure, taskStats bool
}

func parseEmbed(r *http.Request) embed {
	var e embed
	for _, v := range r.URL.Query()["embed"] {
		for _, part := range strings.Split(v, ",") {
			part = strings.TrimSpace(part)
			part = strings.TrimPrefix(part, "group.")
			part = strings.TrimPrefix(strings.TrimPrefix(part, "apps."), "app.")
			switch part {
			case "tasks":
				e.tasks, e.deployments = true, true
			case "counts":
				e.counts = true
			case "deployments":
				e.deployments = true
			case "readiness":
				e.readiness = true
			case "lastTaskFailure":
				e.lastTaskFailure = true
			case "taskStats":
				e.taskStats = true
			case "failures":
				e.tasks, e.lastTaskFailure, e.counts, e.deployments = true, true, true, true
			}
		}
	}
	return e
}

// definition is an app definition as emitted: env, fetch and uris are
// written as {} / [] when the app has none, as Marathon does (spec §2.2).
// They shadow the App fields, whose omitempty tags keep stored definitions
// (and the scheduler's change detection, which compares their JSON) as
// they were.
type definition struct {
	marathon.App
	Env   marathon.EnvVars `json:"env"`
	Fetch []marathon.Fetch `json:"fetch"`
	URIs  []string         `json:"uris"`
}

func newDefinition(a marathon.App) definition {
	d := definition{App: a, Env: a.Env, Fetch: a.Fetch, URIs: a.URIs}
	if d.Env == nil {
		d.Env = marathon.EnvVars{}
	}
	if d.Fetch == nil {
		d.Fetch = []marathon.Fetch{}
	}
	if d.URIs == nil {
		d.URIs = []string{}
	}
	if d.Labels == nil {
		d.Labels = map[string]string{}
	}
	return d
}

// bareApp is an app definition without any AppInfo addition (counts,
// deployments, tasks, lastTaskFailure): the body of GET
// /v2/apps/{id}/versions/{v} (spec §1.2). The nil pointers shadow and so
// hide the App fields of the same JSON names.
type bareApp struct {
	definition
	TasksStaged     *int                      `json:"tasksStaged,omitempty"`
	TasksRunning    *int                      `json:"tasksRunning,omitempty"`
	TasksHealthy    *int                      `json:"tasksHealthy,omitempty"`
	TasksUnhealthy  *int                      `json:"tasksUnhealthy,omitempty"`
	Deployments     *[]marathon.DeploymentRef `json:"deployments,omitempty"`
	Tasks           *[]marathon.Task          `json:"tasks,omitempty"`
	LastTaskFailure *marathon.TaskFailure     `json:"lastTaskFailure,omitempty"`
}

func renderBare(a marathon.App) bareApp {
	return bareApp{definition: newDefinition(a)}
}

// appOut is AppInfo as emitted: tasks and readiness results are pointers
// so that an embedded empty list is written as [] and an absent one is
// left out.
type appOut struct {
	definition
	Tasks                 *[]marathon.Task                 `json:"tasks,omitempty"`
	ReadinessCheckResults *[]marathon.ReadinessCheckResult `json:"readinessCheckResults,omitempty"`
	// TaskStats is written under both names: taskStats is what Marathon
	// up to 1.6 and go-marathon use, tasksStats the 1.9+ RAML name.
	TaskStats  *TaskStatsByVersion `json:"taskStats,omitempty"`
	TasksStats *TaskStatsByVersion `json:"tasksStats,omitempty"`
}

func render(a marathon.App, e embed) appOut {
	out := appOut{definition: newDefinition(a)}
	if e.taskStats {
		st := computeTaskStats(time.Now(), a.VersionInfo, a.Tasks)
		out.TaskStats, out.TasksStats = &st, &st
	}
	tasks := a.Tasks
	out.App.Tasks = nil
	if e.tasks {
		if tasks == nil {
			tasks = []marathon.Task{}
		}
		out.Tasks = &tasks
	}
	if !e.counts {
		out.TasksStaged, out.TasksRunning, out.TasksHealthy, out.TasksUnhealthy = 0, 0, 0, 0
	}
	if out.Deployments == nil || !e.deployments {
		out.Deployments = []marathon.DeploymentRef{}
	}
	if !e.lastTaskFailure {
		out.LastTaskFailure = nil
	}
	if e.readiness {
		out.ReadinessCheckResults = &[]marathon.ReadinessCheckResult{}
	}
	return out
}

// renderApp is render plus the readiness results of the app when the
// request embeds them and the backend reports them (ReadinessService).
func (s *server) renderApp(ctx context.Context, a marathon.App, e embed) appOut {
	out := render(a, e)
	rs, ok := s.cfg.Apps.(ReadinessService)
	if !e.readiness || !ok {
		return out
	}
	results, err := rs.ReadinessResults(ctx, a.ID)
	if err != nil {
		s.log.Warn("readiness results", "app_id", a.ID, "err", err)
		return out
	}
	if len(results) > 0 {
		out.ReadinessCheckResults = &results
	}
	return out
}

func (s *server) listApps(w http.ResponseWriter, r *http.Request) {
	apps, err := s.cfg.Apps.ListApps(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	e := parseEmbed(r)
	e.counts, e.deployments = true, true
	q := r.URL.Query()
	sel, err := parseSelector(q.Get("label"))
	if err != nil {
		writeMessage(w, http.StatusBadRequest, err.Error())
		return
	}
	idFilter, cmdFilter := strings.ToLower(q.Get("id")), strings.ToLower(q.Get("cmd"))
	out := make([]appOut, 0, len(apps))
	for _, a := range apps {
		if idFilter != "" && !strings.Contains(strings.ToLower(a.ID), idFilter) {
			continue
		}
		if cmdFilter != "" && !strings.Contains(strings.ToLower(a.Cmd), cmdFilter) {
			continue
		}
		if !sel.matches(a.Labels) {
			continue
		}
		out = append(out, s.renderApp(r.Context(), a, e))
	}
	writeJSON(w, http.StatusOK, struct {
		Apps []appOut `json:"apps"`
	}{out})
}

func (s *server) createApp(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	app, err := DecodeApp(body)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	created, err := s.cfg.Apps.CreateApp(r.Context(), app, boolParam(r, "force", false), clientIP(r), r.URL.Path)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if len(created.Deployments) > 0 {
		w.Header().Set("Marathon-Deployment-Id", created.Deployments[0].ID)
	}
	w.Header().Set("Location", created.ID)
	writeJSON(w, http.StatusCreated, render(created, embed{counts: true, deployments: true}))
}

// appSubtree routes /v2/apps/{id}[/tasks[/{taskId}]|/restart|/versions[/{v}]].
func (s *server) appSubtree(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/v2/apps/")
	segs := strings.Split(strings.Trim(rest, "/"), "/")
	n := len(segs)
	if hasDotSegment(strings.Join(segs, "/")) {
		s.writeError(w, r, &ValidationError{Details: []marathon.ErrorDetail{{Path: "/id", Errors: []string{msgDotSegment}}}})
		return
	}
	switch {
	case n >= 2 && segs[n-1] == "tasks":
		s.appTasks(w, r, idOf(segs[:n-1]))
	case n >= 3 && segs[n-2] == "tasks":
		s.appTask(w, r, idOf(segs[:n-2]), segs[n-1])
	case n >= 2 && segs[n-1] == "restart":
		if r.Method != http.MethodPost {
			s.methodNotAllowed(w)
			return
		}
		s.restartApp(w, r, idOf(segs[:n-1]))
	case n >= 2 && segs[n-1] == "versions":
		s.appVersions(w, r, idOf(segs[:n-1]))
	case n >= 3 && segs[n-2] == "versions":
		s.appVersion(w, r, idOf(segs[:n-2]), segs[n-1])
	case segs[n-1] == "*":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			s.methodNotAllowed(w)
			return
		}
		s.groupApps(w, r, idOf(segs[:n-1]))
	default:
		id := idOf(segs)
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			s.getApp(w, r, id)
		case http.MethodPut:
			s.putApp(w, r, id, boolParam(r, "partialUpdate", true), true)
		case http.MethodPatch:
			s.putApp(w, r, id, true, false)
		case http.MethodDelete:
			s.deleteApp(w, r, id)
		default:
			s.methodNotAllowed(w)
		}
	}
}

// groupApps serves GET /v2/apps/{groupId}/* (spec §1.2): every app under
// the group, embedded as on GET /v2/apps/{id}, as {"*":[...]}.
func (s *server) groupApps(w http.ResponseWriter, r *http.Request, gid string) {
	apps, err := s.appsInGroup(r, gid)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	e := parseEmbed(r)
	e.tasks, e.counts, e.deployments, e.lastTaskFailure = true, true, true, true
	out := make([]appOut, 0, len(apps))
	for _, a := range apps {
		out = append(out, s.renderApp(r.Context(), a, e))
	}
	writeJSON(w, http.StatusOK, map[string][]appOut{"*": out})
}

// appsInGroup returns the apps whose ids lie under group gid (all for
// "/"); a group other than "/" without apps does not exist (404).
func (s *server) appsInGroup(r *http.Request, gid string) ([]marathon.App, error) {
	apps, err := s.cfg.Apps.ListApps(r.Context())
	if err != nil {
		return nil, err
	}
	var in []marathon.App
	for _, a := range apps {
		if gid == "/" || strings.HasPrefix(a.ID, gid+"/") {
			in = append(in, a)
		}
	}
	if len(in) == 0 && gid != "/" {
		return nil, notFound("Group '" + gid + "' does not exist")
	}
	return in, nil
}

func idOf(segs []string) string { return canonicalAppID(strings.Join(segs, "/")) }

func (s *server) methodNotAllowed(w http.ResponseWriter) {
	writeMessage(w, http.StatusMethodNotAllowed, "HTTP method not allowed")
}

func (s *server) getApp(w http.ResponseWriter, r *http.Request, id string) {
	a, err := s.cfg.Apps.GetApp(r.Context(), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	e := parseEmbed(r)
	e.tasks, e.counts, e.deployments, e.lastTaskFailure = true, true, true, true
	writeJSON(w, http.StatusOK, struct {
		App appOut `json:"app"`
	}{s.renderApp(r.Context(), a, e)})
}

func (s *server) putApp(w http.ResponseWriter, r *http.Request, id string, partial, mayCreate bool) {
	body, err := readBody(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	patch, err := rawObject(body)
	if err != nil {
		s.writeError(w, r, badJSON(err))
		return
	}
	// A body with a version is a rollback to that stored definition.
	var rollback *marathon.App
	if v, ok := patch["version"]; ok {
		var version string
		if err := json.Unmarshal(v, &version); err != nil {
			s.writeError(w, r, badJSON(err))
			return
		}
		old, err := s.cfg.Apps.AppVersion(r.Context(), id, version)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		rollback = &old
	}
	update := func(cur *marathon.App) (marathon.App, error) {
		if cur == nil && !mayCreate {
			return marathon.App{}, notFound("App '" + id + "' does not exist")
		}
		if rollback != nil {
			a := *rollback
			a.ID = id
			return a, nil
		}
		if !partial {
			return MergeApp(id, nil, body)
		}
		return MergeApp(id, cur, body)
	}
	res, created, err := s.cfg.Apps.UpdateApp(r.Context(), id, update, boolParam(r, "force", false), clientIP(r), r.URL.Path)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Marathon-Deployment-Id", res.DeploymentID)
	code := http.StatusOK
	if created {
		code = http.StatusCreated
		w.Header().Set("Location", id)
	}
	writeJSON(w, code, res)
}

func (s *server) deleteApp(w http.ResponseWriter, r *http.Request, id string) {
	res, err := s.cfg.Apps.DeleteApp(r.Context(), id, boolParam(r, "force", true))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Marathon-Deployment-Id", res.DeploymentID)
	writeJSON(w, http.StatusOK, res)
}

func (s *server) restartApp(w http.ResponseWriter, r *http.Request, id string) {
	res, err := s.cfg.Apps.RestartApp(r.Context(), id, boolParam(r, "force", false))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Marathon-Deployment-Id", res.DeploymentID)
	writeJSON(w, http.StatusOK, res)
}

func (s *server) appVersions(w http.ResponseWriter, r *http.Request, id string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		s.methodNotAllowed(w)
		return
	}
	vs, err := s.cfg.Apps.AppVersions(r.Context(), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if vs == nil {
		vs = []string{}
	}
	writeJSON(w, http.StatusOK, map[string][]string{"versions": vs})
}

func (s *server) appVersion(w http.ResponseWriter, r *http.Request, id, version string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		s.methodNotAllowed(w)
		return
	}
	a, err := s.cfg.Apps.AppVersion(r.Context(), id, version)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, renderBare(a))
}

// selector is a parsed label selector (comma = AND).
type selector []func(map[string]string) bool

func (s selector) matches(labels map[string]string) bool {
	for _, f := range s {
		if !f(labels) {
			return false
		}
	}
	return true
}

// parseSelector parses Marathon's label selector (spec §1.2): key,
// key==v, key!=v, key in (a,b), key notin (a,b), separated by commas (AND).
// Names and values are made of [-A-Za-z0-9_.]; any other character,
// including a space, comma or parenthesis, is written backslash-escaped
// (a\ b).
func parseSelector(q string) (selector, error) {
	if strings.TrimSpace(q) == "" {
		return nil, nil
	}
	p := selParser{in: q}
	var sel selector
	for {
		f, err := p.selector()
		if err != nil {
			return nil, &BadRequestError{Message: "Invalid label selector: " + strings.TrimSpace(q) + " (" + err.Error() + ")"}
		}
		sel = append(sel, f)
		p.space()
		if p.done() {
			return sel, nil
		}
		if !p.take(",") {
			return nil, &BadRequestError{Message: "Invalid label selector: " + strings.TrimSpace(q) + " (expected ',' at offset " + strconv.Itoa(p.pos) + ")"}
		}
	}
}

// selParser is a cursor over a label selector.
type selParser struct {
	in  string
	pos int
}

func (p *selParser) done() bool { return p.pos >= len(p.in) }

func (p *selParser) space() {
	for !p.done() && (p.in[p.pos] == ' ' || p.in[p.pos] == '\t') {
		p.pos++
	}
}

// take consumes tok when the input continues with it.
func (p *selParser) take(tok string) bool {
	if strings.HasPrefix(p.in[p.pos:], tok) {
		p.pos += len(tok)
		return true
	}
	return false
}

// keyword consumes word when it is followed by a space or '('.
func (p *selParser) keyword(word string) bool {
	rest := p.in[p.pos:]
	if !strings.HasPrefix(rest, word) || len(rest) == len(word) {
		return false
	}
	switch rest[len(word)] {
	case ' ', '\t', '(':
		p.pos += len(word)
		return true
	}
	return false
}

// term reads a name or value with its escapes removed; it may be empty.
func (p *selParser) term() (string, error) {
	var b strings.Builder
	for !p.done() {
		c := p.in[p.pos]
		switch {
		case c == '\\':
			r, size := utf8.DecodeRuneInString(p.in[p.pos+1:])
			if size == 0 {
				return "", errors.New("dangling backslash")
			}
			b.WriteRune(r)
			p.pos += 1 + size
		case c == '-' || c == '_' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			b.WriteByte(c)
			p.pos++
		default:
			return b.String(), nil
		}
	}
	return b.String(), nil
}

// selector reads one requirement and returns its predicate.
func (p *selParser) selector() (func(map[string]string) bool, error) {
	p.space()
	start := p.pos
	key, err := p.term()
	if err != nil {
		return nil, err
	}
	if p.pos == start {
		return nil, fmt.Errorf("expected a label name at offset %d", p.pos)
	}
	p.space()
	switch {
	case p.take("=="):
		return p.equals(key, true)
	case p.take("!="):
		return p.equals(key, false)
	case p.keyword("in"):
		return p.set(key, true)
	case p.keyword("notin"):
		return p.set(key, false)
	}
	return func(l map[string]string) bool { _, ok := l[key]; return ok }, nil
}

// equals reads the value of key==v (eq) or key!=v.
func (p *selParser) equals(key string, eq bool) (func(map[string]string) bool, error) {
	p.space()
	val, err := p.term()
	if err != nil {
		return nil, err
	}
	return func(l map[string]string) bool {
		v, ok := l[key]
		if eq {
			return ok && v == val
		}
		return !ok || v != val
	}, nil
}

// set reads the "(a,b)" of key in (a,b) (in) or key notin (a,b).
func (p *selParser) set(key string, in bool) (func(map[string]string) bool, error) {
	p.space()
	if !p.take("(") {
		return nil, fmt.Errorf("expected '(' at offset %d", p.pos)
	}
	vals := map[string]bool{}
	for {
		p.space()
		v, err := p.term()
		if err != nil {
			return nil, err
		}
		vals[v] = true
		p.space()
		if p.take(")") {
			break
		}
		if !p.take(",") {
			return nil, fmt.Errorf("expected ',' or ')' at offset %d", p.pos)
		}
	}
	return func(l map[string]string) bool {
		v, ok := l[key]
		return ok && vals[v] == in || !ok && !in
	}, nil
}

// httpError is a StatusError made by the handlers themselves.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string   { return e.msg }
func (e *httpError) HTTPStatus() int { return e.code }
func (e *httpError) ErrorResponse() marathon.ErrorResponse {
	return marathon.ErrorResponse{Message: e.msg}
}

func notFound(msg string) error { return &httpError{code: http.StatusNotFound, msg: msg} }
