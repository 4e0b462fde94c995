package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/switchyard/switchyard/marathon"
)

// OrphanLister is an optional TaskService ability: listing the tasks
// agents run that the scheduler has no record of (GET /v2/tasks?orphans,
// a Switchyard extension).
type OrphanLister interface {
	ListOrphans(ctx context.Context) ([]marathon.Task, error)
}

func (s *server) listTasks(w http.ResponseWriter, r *http.Request) {
	if ol, ok := s.cfg.Tasks.(OrphanLister); ok && r.URL.Query().Has("orphans") {
		tasks, err := ol.ListOrphans(r.Context())
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeTasks(w, tasks)
		return
	}
	tasks, err := s.cfg.Tasks.ListTasks(r.Context(), "")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if wantsText(r) {
		// The text form lists every app and its running tasks; the
		// status filter does not apply.
		apps, err := s.cfg.Apps.ListApps(r.Context())
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeTasksText(w, apps, tasks)
		return
	}
	var states []string
	q := r.URL.Query()
	for _, v := range append(q["status"], q["status[]"]...) {
		switch strings.ToLower(v) {
		case "running":
			states = append(states, marathon.TaskRunning)
		case "staging":
			states = append(states, marathon.TaskStaging)
		}
	}
	if len(states) > 0 {
		kept := tasks[:0:0]
		for _, t := range tasks {
			for _, st := range states {
				if t.State == st {
					kept = append(kept, t)
					break
				}
			}
		}
		tasks = kept
	}
	writeTasks(w, tasks)
}

func writeTasks(w http.ResponseWriter, tasks []marathon.Task) {
	if tasks == nil {
		tasks = []marathon.Task{}
	}
	writeJSON(w, http.StatusOK, marathon.TasksResponse{Tasks: tasks})
}

// validTaskID reports whether id has the <safeAppId>.<uuid> shape.
func validTaskID(id string) bool {
	i := strings.LastIndex(id, ".")
	return i > 0 && i < len(id)-1
}

func (s *server) deleteTasks(w http.ResponseWriter, r *http.Request) {
	scale, wipe := boolParam(r, "scale", false), boolParam(r, "wipe", false)
	if scale && wipe {
		writeMessage(w, http.StatusBadRequest, "You cannot use scale and wipe at the same time.")
		return
	}
	body, err := readBody(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req struct {
		IDs []string `json:"ids"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		s.writeError(w, r, badJSON(err))
		return
	}
	for _, id := range req.IDs {
		if !validTaskID(id) {
			writeMessage(w, http.StatusBadRequest, fmt.Sprintf("Invalid task id '%s'. [%s]", id, "expected <appId>.<uuid>"))
			return
		}
	}
	if req.IDs == nil {
		req.IDs = []string{}
	}
	s.kill(w, r, "", req.IDs, "", scale)
}

func (s *server) kill(w http.ResponseWriter, r *http.Request, appID string, ids []string, host string, scale bool) {
	killed, res, err := s.cfg.Tasks.KillTasks(r.Context(), appID, ids, host, scale, boolParam(r, "force", false))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if res != nil {
		w.Header().Set("Marathon-Deployment-Id", res.DeploymentID)
		writeJSON(w, http.StatusOK, res)
		return
	}
	writeTasks(w, killed)
}

func (s *server) appTasks(w http.ResponseWriter, r *http.Request, id string) {
	if gid, ok := strings.CutSuffix(id, "/*"); ok && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		s.groupTasks(w, r, marathon.CanonicalID(gid))
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		tasks, err := s.cfg.Tasks.ListTasks(r.Context(), id)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if wantsText(r) {
			app, err := s.cfg.Apps.GetApp(r.Context(), id)
			if err != nil {
				s.writeError(w, r, err)
				return
			}
			writeTasksText(w, []marathon.App{app}, tasks)
			return
		}
		writeTasks(w, tasks)
	case http.MethodDelete:
		scale, wipe := boolParam(r, "scale", false), boolParam(r, "wipe", false)
		if scale && wipe {
			writeMessage(w, http.StatusBadRequest, "You cannot use scale and wipe at the same time.")
			return
		}
		s.kill(w, r, id, nil, r.URL.Query().Get("host"), scale)
	default:
		s.methodNotAllowed(w)
	}
}

func (s *server) appTask(w http.ResponseWriter, r *http.Request, id, taskID string) {
	if r.Method != http.MethodDelete {
		s.methodNotAllowed(w)
		return
	}
	scale, wipe := boolParam(r, "scale", false), boolParam(r, "wipe", false)
	if scale && wipe {
		writeMessage(w, http.StatusBadRequest, "You cannot use scale and wipe at the same time.")
		return
	}
	killed, res, err := s.cfg.Tasks.KillTasks(r.Context(), id, []string{taskID}, "", scale, boolParam(r, "force", false))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if res != nil {
		w.Header().Set("Marathon-Deployment-Id", res.DeploymentID)
		writeJSON(w, http.StatusOK, res)
		return
	}
	if len(killed) == 0 {
		writeMessage(w, http.StatusNotFound, "Task '"+taskID+"' does not exist")
		return
	}
	writeJSON(w, http.StatusOK, map[string]marathon.Task{"task": killed[0]})
}

// groupTasks serves GET /v2/apps/{groupId}/*/tasks: the tasks of every
// app under the group (spec §1.2), in JSON or the text form.
func (s *server) groupTasks(w http.ResponseWriter, r *http.Request, gid string) {
	apps, err := s.appsInGroup(r, gid)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	all, err := s.cfg.Tasks.ListTasks(r.Context(), "")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	in := make(map[string]bool, len(apps))
	for _, a := range apps {
		in[a.ID] = true
	}
	var tasks []marathon.Task
	for _, t := range all {
		if in[t.AppID] {
			tasks = append(tasks, t)
		}
	}
	if wantsText(r) {
		writeTasksText(w, apps, tasks)
		return
	}
	writeTasks(w, tasks)
}
