package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"

	"github.com/switchyard/switchyard/marathon"
)

// GroupService is an optional AppService extension for the write side of
// /v2/groups (POST, PUT, DELETE). Backends without it answer 405.
//
// Without GroupTreeService groups are not stored on their own: a group
// is every proper prefix of an app id, so a group exists while it holds
// an app (spec §2.1).
type GroupService interface {
	// UpdateGroup atomically replaces the apps under group id (ids
	// starting with id+"/"; every app for "/") with update(current),
	// current being those apps sorted by id (empty when the group does
	// not exist). Apps left out of the result are removed, the others
	// created or updated, in one deployment. An error from update aborts
	// the call and is returned unchanged. With dryRun nothing changes and
	// only the planned steps are returned. App ids that clash with group
	// ids are a 422; apps locked by a deployment a 409 unless force.
	UpdateGroup(ctx context.Context, id string, update func(current []marathon.App) ([]marathon.App, error), force, dryRun bool, clientIP, uri string) (marathon.DeploymentResult, []marathon.DeploymentStep, error)
}

// Messages of group writes.
const (
	msgGroupExists  = "Group %s is already created. Use PUT to change this group."
	msgNotChild     = "Identifier is not child of '%s'. Hint: use relative paths."
	msgEmptyGroup   = "A group without apps cannot be created: groups are derived from app ids here."
	msgTopLevel     = "enforceRole can only be set on top-level groups."
	msgScaleByAlone = "scaleBy and version cannot be combined with each other or with apps or groups."
)

// groupPath returns the canonical group id of a /v2/groups[/{id}] path.
func groupPath(r *http.Request) string {
	return marathon.CanonicalID(strings.TrimPrefix(r.URL.Path, "/v2/groups"))
}

// resolveID resolves id against the group base: an absolute id stays as
// it is, a relative one is appended to base; "." and ".." segments are
// resolved away.
func resolveID(base, id string) string {
	full := id
	if !strings.HasPrefix(id, "/") {
		full = base + "/" + id
	}
	var out []string
	for _, seg := range strings.Split(full, "/") {
		switch seg {
		case "", ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, seg)
		}
	}
	return "/" + strings.Join(out, "/")
}

// prefixed returns err with every detail path prefixed by prefix
// (ValidationError and BadRequestError; others unchanged).
func prefixed(prefix string, err error) error {
	fix := func(ds []marathon.ErrorDetail) []marathon.ErrorDetail {
		out := make([]marathon.ErrorDetail, len(ds))
		for i, d := range ds {
			d.Path = prefix + strings.TrimSuffix(d.Path, "/")
			if d.Path == "" {
				d.Path = "/"
			}
			out[i] = d
		}
		return out
	}
	var ve *ValidationError
	if errors.As(err, &ve) {
		return &ValidationError{Details: fix(ve.Details)}
	}
	var be *BadRequestError
	if errors.As(err, &be) && be.Text == "" {
		return &BadRequestError{Message: be.Message, Details: fix(be.Details)}
	}
	return err
}

// groupBody is a decoded group (or group update) body; absent members
// stay nil.
type groupBody struct {
	ID      *string
	Apps    []json.RawMessage
	HasApps bool
	Groups  []json.RawMessage
	HasSubs bool
	ScaleBy *float64
	Version *string
	// EnforceRole is only valid on top-level groups.
	EnforceRole *bool
}

// decodeGroup decodes a group body; path locates it in the request for
// error details.
func decodeGroup(data []byte, path string) (groupBody, error) {
	raw, err := rawObject(data)
	if err != nil {
		return groupBody{}, prefixed(path, badJSON(err))
	}
	var g groupBody
	field := func(key string, v any) error {
		if err := json.Unmarshal(raw[key], v); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				return &BadRequestError{Message: "Invalid JSON", Details: []marathon.ErrorDetail{{Path: path + "/" + key, Errors: []string{expected(te.Type)}}}}
			}
			return prefixed(path, badJSON(err))
		}
		return nil
	}
	if _, ok := raw["id"]; ok {
		g.ID = new(string)
		if err := field("id", g.ID); err != nil {
			return groupBody{}, err
		}
	}
	if _, ok := raw["apps"]; ok {
		g.HasApps = true
		if err := field("apps", &g.Apps); err != nil {
			return groupBody{}, err
		}
	}
	if _, ok := raw["groups"]; ok {
		g.HasSubs = true
		if err := field("groups", &g.Groups); err != nil {
			return groupBody{}, err
		}
	}
	if _, ok := raw["scaleBy"]; ok {
		g.ScaleBy = new(float64)
		if err := field("scaleBy", g.ScaleBy); err != nil {
			return groupBody{}, err
		}
	}
	if _, ok := raw["version"]; ok {
		g.Version = new(string)
		if err := field("version", g.Version); err != nil {
			return groupBody{}, err
		}
	}
	if v, ok := raw["enforceRole"]; ok && string(v) != "null" {
		g.EnforceRole = new(bool)
		if err := field("enforceRole", g.EnforceRole); err != nil {
			return groupBody{}, err
		}
	}
	return g, nil
}

// applyGroup returns the apps and stored groups group gid holds after
// body is applied to current and currentGroups (the apps and stored
// groups under gid now): a present "apps" replaces the group's direct
// apps (full definitions, relative ids resolved against gid), a present
// "groups" replaces its subgroups (each applied recursively); absent
// members keep what is there. Every group the body names is stored (so
// it exists even empty). path locates the body in the request.
func applyGroup(gid string, body groupBody, path string, current []marathon.App, currentGroups []marathon.GroupMeta) ([]marathon.App, []marathon.GroupMeta, error) {
	var out []marathon.App
	var groups []marathon.GroupMeta
	var verr ValidationError
	if gid != "/" {
		self := marathon.GroupMeta{ID: gid}
		for _, g := range currentGroups {
			if g.ID == gid {
				self = g
			}
		}
		if body.EnforceRole != nil {
			if parentOf(gid) != "/" {
				verr.add(strings.TrimSuffix(path, "/")+"/enforceRole", msgTopLevel)
			}
			self.EnforceRole = *body.EnforceRole
		}
		groups = append(groups, self)
	}
	if body.HasApps {
		seen := map[string]bool{}
		for i, item := range body.Apps {
			ipath := fmt.Sprintf("%s/apps(%d)", path, i)
			m, err := rawObject(item)
			if err != nil {
				return nil, nil, prefixed(ipath, badJSON(err))
			}
			var rel string
			if v, ok := m["id"]; ok {
				if err := json.Unmarshal(v, &rel); err != nil {
					return nil, nil, &BadRequestError{Message: "Invalid JSON", Details: []marathon.ErrorDetail{{Path: ipath + "/id", Errors: []string{"error.expected.jsstring"}}}}
				}
			}
			if strings.Trim(rel, "/") == "" {
				verr.add(ipath+"/id", "must not be empty")
				continue
			}
			if hasDotSegment(strings.Trim(rel, "/")) {
				verr.add(ipath+"/id", msgDotSegment)
				continue
			}
			id := resolveID(gid, rel)
			if parentOf(id) != gid {
				verr.add(ipath+"/id", fmt.Sprintf(msgNotChild, gid))
				continue
			}
			if seen[id] {
				verr.add(ipath+"/id", "Application ids must be unique: "+id)
				continue
			}
			seen[id] = true
			b, _ := json.Marshal(id)
			m["id"] = b
			// Dependencies are relative to the group too.
			if v, ok := m["dependencies"]; ok {
				var deps []string
				if err := json.Unmarshal(v, &deps); err == nil {
					for j := range deps {
						deps[j] = resolveID(gid, deps[j])
					}
					m["dependencies"], _ = json.Marshal(deps)
				}
			}
			app, err := decodeRaw(m)
			if err != nil {
				var ve *ValidationError
				if errors.As(prefixed(ipath, err), &ve) {
					verr.Details = append(verr.Details, ve.Details...)
					continue
				}
				return nil, nil, prefixed(ipath, err)
			}
			out = append(out, app)
		}
	} else {
		for _, a := range current {
			if parentOf(a.ID) == gid {
				out = append(out, a)
			}
		}
	}
	if body.HasSubs {
		seen := map[string]bool{}
		for i, item := range body.Groups {
			spath := fmt.Sprintf("%s/groups(%d)", path, i)
			sub, err := decodeGroup(item, spath)
			if err != nil {
				return nil, nil, err
			}
			if sub.ID == nil || strings.Trim(*sub.ID, "/") == "" {
				verr.add(spath+"/id", "must not be empty")
				continue
			}
			sid := resolveID(gid, *sub.ID)
			if parentOf(sid) != gid {
				verr.add(spath+"/id", fmt.Sprintf(msgNotChild, gid))
				continue
			}
			if seen[sid] {
				verr.add(spath+"/id", "Group ids must be unique: "+sid)
				continue
			}
			seen[sid] = true
			var subCurrent []marathon.App
			for _, a := range current {
				if strings.HasPrefix(a.ID, sid+"/") {
					subCurrent = append(subCurrent, a)
				}
			}
			var subGroups []marathon.GroupMeta
			for _, g := range currentGroups {
				if inside(sid, g.ID) {
					subGroups = append(subGroups, g)
				}
			}
			apps, gs, err := applyGroup(sid, sub, spath, subCurrent, subGroups)
			if err != nil {
				var ve *ValidationError
				if errors.As(err, &ve) {
					verr.Details = append(verr.Details, ve.Details...)
					continue
				}
				return nil, nil, err
			}
			out = append(out, apps...)
			groups = append(groups, gs...)
		}
	} else {
		for _, a := range current {
			if parentOf(a.ID) != gid {
				out = append(out, a)
			}
		}
		for _, g := range currentGroups {
			if g.ID != gid {
				groups = append(groups, g)
			}
		}
	}
	if len(verr.Details) > 0 {
		return nil, nil, &verr
	}
	return out, groups, nil
}

// treeUpdate computes a group's apps and stored groups from the current
// ones (see GroupTreeService.UpdateGroupTree).
type treeUpdate func(apps []marathon.App, groups []marathon.GroupMeta) ([]marathon.App, []marathon.GroupMeta, error)

// updateTree applies update with the backend's UpdateGroupTree, or, for
// a backend without stored groups, with UpdateGroup (no current groups;
// the groups update returns are dropped, and when creates is set a group
// that had and gets no app is a 422, as it could not exist).
func (s *server) updateTree(r *http.Request, gs GroupService, id string, update treeUpdate, creates bool, dryRun bool) (marathon.DeploymentResult, []marathon.DeploymentStep, error) {
	force := boolParam(r, "force", false)
	if ts, ok := gs.(GroupTreeService); ok {
		return ts.UpdateGroupTree(r.Context(), id, update, force, dryRun, clientIP(r), r.URL.Path)
	}
	return gs.UpdateGroup(r.Context(), id, func(current []marathon.App) ([]marathon.App, error) {
		apps, _, err := update(current, nil)
		if err == nil && creates && len(current) == 0 && len(apps) == 0 {
			err = &ValidationError{Details: []marathon.ErrorDetail{{Path: "/apps", Errors: []string{msgEmptyGroup}}}}
		}
		return apps, err
	}, force, dryRun, clientIP(r), r.URL.Path)
}

// parentOf returns the group directly holding id ("/" at top level).
func parentOf(id string) string {
	i := strings.LastIndex(id, "/")
	if i <= 0 {
		return "/"
	}
	return id[:i]
}

// groupWriter returns the GroupService or answers 405.
func (s *server) groupWriter(w http.ResponseWriter) (GroupService, bool) {
	gs, ok := s.cfg.Apps.(GroupService)
	if !ok {
		s.methodNotAllowed(w)
	}
	return gs, ok
}

// groupRequest is the common start of the group write handlers: the
// backend's GroupService (405 without one) and the decoded, non-empty body.
// On failure it has answered the request and returns ok false.
func (s *server) groupRequest(w http.ResponseWriter, r *http.Request) (gs GroupService, body groupBody, ok bool) {
	gs, ok = s.groupWriter(w)
	if !ok {
		return gs, body, false
	}
	data, err := readBody(r)
	if err != nil {
		s.writeError(w, r, err)
		return gs, body, false
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		s.writeError(w, r, badJSON(errEmptyBody))
		return gs, body, false
	}
	if body, err = decodeGroup(data, ""); err != nil {
		s.writeError(w, r, err)
		return gs, body, false
	}
	return gs, body, true
}

// createGroup serves POST /v2/groups and POST /v2/groups/{id}: the body's
// id (relative to the path) names a new group; 409 when it exists.
func (s *server) createGroup(w http.ResponseWriter, r *http.Request) {
	gs, body, ok := s.groupRequest(w, r)
	if !ok {
		return
	}
	gid := groupPath(r)
	if body.ID != nil {
		gid = resolveID(gid, *body.ID)
	}
	if gid == "/" {
		writeMessage(w, http.StatusConflict, fmt.Sprintf(msgGroupExists, gid))
		return
	}
	var verr ValidationError
	validateID(gid, &verr)
	if len(verr.Details) > 0 {
		s.writeError(w, r, &verr)
		return
	}
	update := func(current []marathon.App, groups []marathon.GroupMeta) ([]marathon.App, []marathon.GroupMeta, error) {
		if len(current) > 0 || len(groups) > 0 {
			return nil, nil, &httpError{code: http.StatusConflict, msg: fmt.Sprintf(msgGroupExists, gid)}
		}
		return applyGroup(gid, body, "", nil, nil)
	}
	res, _, err := s.updateTree(r, gs, gid, update, true, false)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Marathon-Deployment-Id", res.DeploymentID)
	w.Header().Set("Location", gid)
	writeJSON(w, http.StatusCreated, res)
}

// updateGroup serves PUT /v2/groups[/{id}]: a group body replaces the
// apps and subgroups it names (creating the group when absent: 201);
// {"scaleBy": f} scales every app under the group to ceil(instances×f);
// {"version": v} rolls the group back to its apps and groups at group
// version v (404 when the backend does not store group versions).
// dryRun=true answers {"steps": [...]} without deploying.
func (s *server) updateGroup(w http.ResponseWriter, r *http.Request) {
	gs, body, ok := s.groupRequest(w, r)
	if !ok {
		return
	}
	gid := groupPath(r)
	if gid != "/" {
		var verr ValidationError
		validateID(gid, &verr)
		if len(verr.Details) > 0 {
			s.writeError(w, r, &verr)
			return
		}
	}
	if (body.ScaleBy != nil || body.Version != nil) && (body.ScaleBy != nil && body.Version != nil || body.HasApps || body.HasSubs) {
		s.writeError(w, r, &ValidationError{Details: []marathon.ErrorDetail{{Path: "/", Errors: []string{msgScaleByAlone}}}})
		return
	}
	var rollbackApps []marathon.App
	var rollbackGroups []marathon.GroupMeta
	if body.Version != nil {
		ts, ok := gs.(GroupTreeService)
		if !ok {
			writeMessage(w, http.StatusNotFound, fmt.Sprintf("Group '%s' does not exist in version %s (group versions are not stored; roll back each app instead)", gid, *body.Version))
			return
		}
		var err error
		if rollbackApps, rollbackGroups, err = ts.GroupVersion(r.Context(), gid, *body.Version); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	if f := body.ScaleBy; f != nil && (math.IsNaN(*f) || math.IsInf(*f, 0) || *f < 0) {
		s.writeError(w, r, &ValidationError{Details: []marathon.ErrorDetail{{Path: "/scaleBy", Errors: []string{"must be a finite number >= 0"}}}})
		return
	}
	created := false
	update := func(current []marathon.App, groups []marathon.GroupMeta) ([]marathon.App, []marathon.GroupMeta, error) {
		exists := gid == "/" || len(current) > 0 || len(groups) > 0
		switch {
		case body.ScaleBy != nil:
			if !exists {
				return nil, nil, notFound("Group '" + gid + "' does not exist")
			}
			out := make([]marathon.App, len(current))
			for i, a := range current {
				a.Instances = int(math.Ceil(float64(a.Instances) * *body.ScaleBy))
				out[i] = a
			}
			return out, groups, nil
		case body.Version != nil:
			created = !exists
			return rollbackApps, rollbackGroups, nil
		}
		created = !exists
		return applyGroup(gid, body, "", current, groups)
	}
	dryRun := boolParam(r, "dryRun", false)
	res, steps, err := s.updateTree(r, gs, gid, update, gid != "/", dryRun)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if dryRun {
		if steps == nil {
			steps = []marathon.DeploymentStep{}
		}
		writeJSON(w, http.StatusOK, map[string][]marathon.DeploymentStep{"steps": steps})
		return
	}
	w.Header().Set("Marathon-Deployment-Id", res.DeploymentID)
	code := http.StatusOK
	if created {
		code = http.StatusCreated
		w.Header().Set("Location", gid)
	}
	writeJSON(w, code, res)
}

// deleteGroup serves DELETE /v2/groups[/{id}]: every app under the group
// is stopped and removed in one deployment; 404 for an unknown group.
func (s *server) deleteGroup(w http.ResponseWriter, r *http.Request) {
	gs, ok := s.groupWriter(w)
	if !ok {
		return
	}
	gid := groupPath(r)
	update := func(current []marathon.App, groups []marathon.GroupMeta) ([]marathon.App, []marathon.GroupMeta, error) {
		if len(current) == 0 && len(groups) == 0 && gid != "/" {
			return nil, nil, notFound("Group '" + gid + "' does not exist")
		}
		return nil, nil, nil
	}
	res, _, err := s.updateTree(r, gs, gid, update, false, false)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Marathon-Deployment-Id", res.DeploymentID)
	writeJSON(w, http.StatusOK, res)
}

// patchGroup serves PATCH /v2/groups/{id} (Marathon 1.10): {"enforceRole":
// b} sets enforceRole of a top-level group (absent means false); 200 with
// an empty body. Backends without GroupTreeService answer 405.
func (s *server) patchGroup(w http.ResponseWriter, r *http.Request) {
	ts, ok := s.cfg.Apps.(GroupTreeService)
	if !ok {
		s.methodNotAllowed(w)
		return
	}
	data, err := readBody(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		s.writeError(w, r, badJSON(errEmptyBody))
		return
	}
	body, err := decodeGroup(data, "")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	enforce := body.EnforceRole != nil && *body.EnforceRole
	if err := ts.PatchGroup(r.Context(), groupPath(r), enforce); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}
