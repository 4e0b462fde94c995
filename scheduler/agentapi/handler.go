package agentapi

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"
)

// Long-poll bounds of the assignments endpoint.
const (
	// DefaultWait is the long-poll duration when the request has no wait.
	DefaultWait = 5 * time.Second
	// MaxWait caps the long-poll duration an agent may ask for.
	MaxWait = 30 * time.Second
	// maxBodyBytes bounds request bodies read by the handlers.
	maxBodyBytes = 8 << 20
)

// ErrUnknownAgent is returned by a Scheduler for an agent id it does not
// know; the handlers answer 404 so the agent re-registers.
var ErrUnknownAgent = errors.New("agentapi: unknown agent")

// ErrorBody is the JSON body of every error answer.
type ErrorBody struct {
	Message string `json:"message"`
}

// NewHandler returns the agent-facing HTTP handler serving PathRegister,
// PathAssignments and PathStatus over s, admitting agents as cfg says.
// Bad bodies and parameters get 400, a missing or wrong cluster secret
// 401, a refused peer or agent credential 403 (ErrForbidden), an unknown
// agent 404, other scheduler errors 500. It is safe for concurrent use.
func NewHandler(s Scheduler, cfg HandlerConfig) http.Handler {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	h := &handler{s: s, cfg: cfg, log: log}
	for _, sec := range cfg.Secrets {
		if sec != "" {
			h.secrets = append(h.secrets, sha256.Sum256([]byte(sec)))
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+PathRegister, h.register)
	mux.HandleFunc("GET "+PathAssignments, h.assignments)
	mux.HandleFunc("POST "+PathStatus, h.status)
	return mux
}

type handler struct {
	s       Scheduler
	cfg     HandlerConfig
	log     *slog.Logger
	secrets [][sha256.Size]byte // hashes of cfg.Secrets, compared in constant time
}

func (h *handler) register(w http.ResponseWriter, r *http.Request) {
	if !h.admit(w, r) {
		return
	}
	var req RegisterRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if req.Hostname == "" {
		writeError(w, http.StatusBadRequest, errors.New("hostname is required"))
		return
	}
	if !h.certNamesHost(w, r, req.Hostname) {
		return
	}
	resp, err := h.s.Register(r.Context(), req)
	if err != nil {
		writeSchedulerError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (h *handler) assignments(w http.ResponseWriter, r *http.Request) {
	if !h.admit(w, r) {
		return
	}
	q := r.URL.Query()
	agentID := q.Get("agentId")
	if agentID == "" {
		writeError(w, http.StatusBadRequest, errors.New("agentId is required"))
		return
	}
	var index uint64
	if v := q.Get("index"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("bad index %q", v))
			return
		}
		index = n
	}
	wait, err := parseWait(q.Get("wait"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if err := h.s.AuthenticateAgent(r.Context(), agentID, r.Header.Get(HeaderAgentToken)); err != nil {
		writeSchedulerError(w, err)
		return
	}
	list, err := h.s.Assignments(r.Context(), agentID, index, wait)
	if err != nil {
		writeSchedulerError(w, err)
		return
	}
	if list.Tasks == nil {
		list.Tasks = []Assignment{}
	}
	writeJSON(w, http.StatusOK, list)
}

func (h *handler) status(w http.ResponseWriter, r *http.Request) {
	if !h.admit(w, r) {
		return
	}
	var rep StatusReport
	if err := decodeBody(w, r, &rep); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if rep.AgentID == "" {
		writeError(w, http.StatusBadRequest, errors.New("agentId is required"))
		return
	}
	for i, st := range rep.Statuses {
		if st.TaskID == "" || st.State == "" {
			writeError(w, http.StatusBadRequest, fmt.Errorf("statuses[%d]: taskId and state are required", i))
			return
		}
	}
	if err := h.s.AuthenticateAgent(r.Context(), rep.AgentID, r.Header.Get(HeaderAgentToken)); err != nil {
		writeSchedulerError(w, err)
		return
	}
	if err := h.s.ReportStatus(r.Context(), rep); err != nil {
		writeSchedulerError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// parseWait parses the wait parameter: a Go duration ("5s") or a number
// of seconds. Empty means DefaultWait; values above MaxWait are capped.
func parseWait(v string) (time.Duration, error) {
	if v == "" {
		return DefaultWait, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		secs, err2 := strconv.ParseFloat(v, 64)
		if err2 != nil || math.IsNaN(secs) {
			return 0, fmt.Errorf("bad wait %q: %w", v, err)
		}
		if secs > MaxWait.Seconds() {
			return MaxWait, nil
		}
		d = time.Duration(secs * float64(time.Second))
	}
	if d < 0 {
		return 0, fmt.Errorf("bad wait %q: negative", v)
	}
	return min(d, MaxWait), nil
}

func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode body: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("decode body: trailing data after JSON value")
	}
	return nil
}

func writeSchedulerError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrForbidden):
		writeError(w, http.StatusForbidden, err)
		return
	case errors.Is(err, ErrUnknownAgent):
		writeError(w, http.StatusNotFound, err)
		return
	}
	writeError(w, http.StatusInternalServerError, err)
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, ErrorBody{Message: err.Error()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
