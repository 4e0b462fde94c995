package agentapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/scheduler/agentapi"
)

// strictScheduler fails the fuzz test when the handlers pass it a request
// they should have refused.
type strictScheduler struct {
	t     *testing.T
	token string
}

func (s *strictScheduler) Register(_ context.Context, req agentapi.RegisterRequest) (agentapi.RegisterResponse, error) {
	if req.Hostname == "" {
		s.t.Fatalf("register without hostname reached the scheduler: %+v", req)
	}
	if req.AgentID != "" && req.AgentToken != s.token {
		return agentapi.RegisterResponse{}, agentapi.ErrForbidden
	}
	return agentapi.RegisterResponse{AgentID: "a1", AgentToken: s.token}, nil
}

func (s *strictScheduler) AuthenticateAgent(_ context.Context, id, token string) error {
	if id == "" {
		s.t.Fatal("authentication of an empty agent id")
	}
	if id != "a1" {
		return agentapi.ErrUnknownAgent
	}
	if token != s.token {
		return agentapi.ErrForbidden
	}
	return nil
}

func (s *strictScheduler) Assignments(_ context.Context, id string, _ uint64, wait time.Duration) (agentapi.AssignmentList, error) {
	if id != "a1" || wait < 0 || wait > agentapi.MaxWait {
		s.t.Fatalf("assignments reached the scheduler for %q, wait %s", id, wait)
	}
	return agentapi.AssignmentList{}, nil
}

func (s *strictScheduler) ReportStatus(_ context.Context, rep agentapi.StatusReport) error {
	if rep.AgentID != "a1" {
		s.t.Fatalf("status of unauthenticated agent %q reached the scheduler", rep.AgentID)
	}
	for _, st := range rep.Statuses {
		if st.TaskID == "" || st.State == "" {
			s.t.Fatalf("status without task id or state reached the scheduler: %+v", st)
		}
	}
	return nil
}

// FuzzHandlers throws arbitrary register and status bodies, agent ids and
// credentials at the agent API: it must never panic, answer only with the
// documented codes, and pass the scheduler only authenticated, well-formed
// requests.
func FuzzHandlers(f *testing.F) {
	seeds := []struct {
		op             uint8
		body, id, auth string
		token          string
	}{
		{0, `{"hostname":"n"}`, "", "Bearer s", ""},
		{0, `{"hostname":"n","agentId":"a1","agentToken":"t"}`, "", "Bearer s", ""},
		{0, `{"hostname":"n","agentId":"a1"}`, "", "Bearer s", ""},
		{0, `{"hostname":"","tasks":[{"taskId":"x"}]}`, "", "Bearer s", ""},
		{0, `{"hostname":"n"}`, "", "", ""},
		{0, `{"hostname":"n","resources":{"cpus":1e999}}`, "", "Bearer s", ""},
		{1, `{"agentId":"a1","statuses":[{"taskId":"t1","state":"TASK_RUNNING"}]}`, "", "Bearer s", "t"},
		{1, `{"agentId":"a1","statuses":[{"taskId":"t1","state":"TASK_KILLED"}]}`, "", "Bearer s", "forged"},
		{1, `{"agentId":"a2","statuses":[{"taskId":"t1"}]}`, "", "Bearer s", "t"},
		{1, `{"agentId":"a1","statuses":null}`, "", "Bearer wrong", "t"},
		{1, `{"agentId":"a1"} trailing`, "", "Bearer s", "t"},
		{2, "", "a1", "Bearer s", "t"},
		{2, "", "a1", "Bearer s", ""},
		{2, "", "", "Bearer s", "t"},
		{2, "", "a1&index=-1", "Bearer s", "t"},
	}
	for _, s := range seeds {
		f.Add(s.op, s.body, s.id, s.auth, s.token)
	}
	allowed := map[int]bool{200: true, 204: true, 400: true, 401: true, 403: true, 404: true, 413: true}
	f.Fuzz(func(t *testing.T, op uint8, body, id, auth, token string) {
		h := agentapi.NewHandler(&strictScheduler{t: t, token: "t"}, agentapi.HandlerConfig{Secrets: []string{"s"}, Logger: quietLog()})
		hdr := map[string]string{"Authorization": auth, agentapi.HeaderAgentToken: token}
		var method, path string
		switch op % 3 {
		case 0:
			method, path = "POST", agentapi.PathRegister
		case 1:
			method, path = "POST", agentapi.PathStatus
		default:
			method, path, body = "GET", agentapi.PathAssignments+"?wait=1ms&agentId="+url.QueryEscape(id), ""
		}
		rec := do(h, method, path, body, "192.0.2.1:9", hdr)
		if !allowed[rec.Code] {
			t.Fatalf("%s %s answered %d: %s", method, path, rec.Code, rec.Body)
		}
		if rec.Code == http.StatusNoContent {
			return
		}
		scheme, secret, _ := strings.Cut(auth, " ")
		if rec.Code < 300 && (!strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(secret) != "s") {
			t.Fatalf("request with Authorization %q admitted", auth)
		}
		var v map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
			t.Fatalf("answer %d is not a JSON object: %v: %q", rec.Code, err, rec.Body)
		}
	})
}
