// Package httpapi serves Marathon's v2 REST API and event stream
// (/v2/apps, /v2/groups, /v2/tasks, /v2/deployments, /v2/info, /v2/leader,
// /v2/queue, /v2/events, /ping, /metrics) over small interfaces it declares itself, so
// any backend — our scheduler, or an in-memory fake — can sit behind it.
// The interfaces use only standard library and marathon types, so a
// backend satisfies them without importing this package.
//
// Backend errors that implement StatusError choose the HTTP status and the
// error body; any other error is a 500 with {"message": ...}.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard/switchyard/marathon"
)

// AppService manages app definitions.
type AppService interface {
	// ListApps returns every app as AppInfo with tasks, counts,
	// deployments and lastTaskFailure filled in; the handler strips what
	// the request did not embed.
	ListApps(ctx context.Context) ([]marathon.App, error)
	// GetApp returns one app as AppInfo (same embedding as ListApps).
	GetApp(ctx context.Context, id string) (marathon.App, error)
	// AppVersions lists the stored versions of an app.
	AppVersions(ctx context.Context, id string) ([]string, error)
	// AppVersion returns one stored definition of an app.
	AppVersion(ctx context.Context, id, version string) (marathon.App, error)
	// CreateApp stores a new, normalized and validated app and starts its
	// deployment; it returns the stored AppInfo with its deployment.
	// clientIP and uri describe the request for api_post_event.
	CreateApp(ctx context.Context, app marathon.App, force bool, clientIP, uri string) (marathon.App, error)
	// UpdateApp atomically replaces app id with update(current), where
	// current is nil when the app does not exist (then the app is
	// created and created is true). An error from update aborts the call
	// and is returned unchanged.
	UpdateApp(ctx context.Context, id string, update func(current *marathon.App) (marathon.App, error), force bool, clientIP, uri string) (res marathon.DeploymentResult, created bool, err error)
	// DeleteApp removes an app and starts the deployment that stops it.
	DeleteApp(ctx context.Context, id string, force bool) (marathon.DeploymentResult, error)
	// RestartApp rolls every task of an app.
	RestartApp(ctx context.Context, id string, force bool) (marathon.DeploymentResult, error)
}

// ReadinessService is optionally implemented by the AppService: it
// reports the readiness check results (spec §2.5) that embed=apps.readiness
// (app.readiness on GET /v2/apps/{id}) shows. Without it the list is
// always empty.
type ReadinessService interface {
	// ReadinessResults returns the current results of an app's readiness
	// checks, one per check and task being checked.
	ReadinessResults(ctx context.Context, appID string) ([]marathon.ReadinessCheckResult, error)
}

// TaskService lists and kills tasks.
type TaskService interface {
	// ListTasks returns the active tasks of one app, or of every app when
	// appID is empty.
	ListTasks(ctx context.Context, appID string) ([]marathon.Task, error)
	// KillTasks kills tasks. appID set and taskIDs nil: every task of the
	// app (only those on host unless host is "" or "*"). taskIDs set:
	// those tasks (unknown ids are skipped, except that a single id with
	// appID set must exist). With scale the apps' instances shrink by the
	// number killed and a deployment result is returned; otherwise the
	// killed tasks are returned and get replaced.
	KillTasks(ctx context.Context, appID string, taskIDs []string, host string, scale, force bool) ([]marathon.Task, *marathon.DeploymentResult, error)
}

// DeploymentService lists and cancels deployments.
type DeploymentService interface {
	ListDeployments(ctx context.Context) ([]marathon.Deployment, error)
	// CancelDeployment stops a deployment. Without force it starts a
	// rollback deployment and returns its result; with force it returns
	// nil (202).
	CancelDeployment(ctx context.Context, id string, force bool) (*marathon.DeploymentResult, error)
}

// EventSource is the event bus behind /v2/events.
type EventSource interface {
	// Subscribe registers a subscriber for remoteAddr. The channel
	// delivers every event published after the call, starting with this
	// stream's own event_stream_attached; it is closed when the subscriber
	// falls too far behind. cancel unsubscribes.
	Subscribe(remoteAddr string) (events <-chan marathon.Event, cancel func())
}

// ClusterService answers the cluster-level endpoints.
type ClusterService interface {
	// Info is the /v2/info body.
	Info(ctx context.Context) (any, error)
	// Leader returns the leader's host:port, or "" when there is none.
	Leader(ctx context.Context) (string, error)
	// Abdicate makes this node step down.
	Abdicate(ctx context.Context) error
	// Queue is the /v2/queue body.
	Queue(ctx context.Context) (any, error)
	// ResetDelay clears an app's launch backoff.
	ResetDelay(ctx context.Context, appID string) error
}

// StatusError is an error that knows its HTTP status and Marathon error
// body. Backends return such errors for 404, 409, 422 and similar answers.
type StatusError interface {
	error
	HTTPStatus() int
	ErrorResponse() marathon.ErrorResponse
}

// Config wires the handlers.
type Config struct {
	Apps        AppService
	Tasks       TaskService
	Deployments DeploymentService
	Events      EventSource
	Cluster     ClusterService
	// Registry receives the HTTP metrics and is served on /metrics. Nil
	// means a fresh registry.
	Registry *prometheus.Registry
	// Loggers serves /logging; nil shows no loggers and refuses changes.
	Loggers LoggerService
	// Keepalive is the interval of ": ping" comments on /v2/events
	// (default 10s).
	Keepalive time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// MaxBodyBytes bounds request bodies (default DefaultMaxBodyBytes):
	// a larger body is answered 413 and not read further.
	MaxBodyBytes int64
	// MaxEventStreams caps the open /v2/events streams (default
	// DefaultMaxEventStreams); beyond it a new stream gets 503.
	MaxEventStreams int
	// LeaderScheme is the scheme of the X-Marathon-Leader header
	// (default "http"; "https" when the leader serves HTTPS only).
	LeaderScheme string
}

const (
	// DefaultMaxBodyBytes is the default Config.MaxBodyBytes: a group of
	// a few thousand apps fits.
	DefaultMaxBodyBytes = 8 << 20
	// DefaultMaxEventStreams is the default Config.MaxEventStreams.
	DefaultMaxEventStreams = 1024
)

type server struct {
	cfg Config
	// openStreams counts /v2/events streams against MaxEventStreams.
	openStreams atomic.Int64
	log         *slog.Logger
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	streams     prometheus.Gauge
}

// New returns the API handler. Other paths answer 404 with a Marathon
// error body, so the result can be mounted at "/" of a mux that also
// routes /agentapi/ elsewhere.
func New(cfg Config) http.Handler {
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.Keepalive <= 0 {
		cfg.Keepalive = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxEventStreams <= 0 {
		cfg.MaxEventStreams = DefaultMaxEventStreams
	}
	if cfg.LeaderScheme == "" {
		cfg.LeaderScheme = "http"
	}
	s := &server{
		cfg: cfg,
		log: cfg.Logger,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "marathon_http_requests_total", Help: "HTTP API requests by route and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "marathon_http_request_duration_seconds", Help: "HTTP API request latency by route.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "marathon_event_streams", Help: "Open /v2/events streams.",
		}),
	}
	for _, c := range []prometheus.Collector{s.requests, s.latency, s.streams} {
		if err := cfg.Registry.Register(c); err != nil {
			s.log.Warn("register http metric", "err", err)
		}
	}
	mux := http.NewServeMux()
	// allowed collects the methods of each method-bound path, so that any
	// other method on a known path answers 405 (as Marathon does) rather
	// than 404 from the catch-all or a redirect to the subtree.
	allowed := map[string][]string{}
	names := map[string]string{}
	var paths []string
	route := func(pattern, name string, h http.HandlerFunc) {
		mux.Handle(pattern, s.instrument(name, h))
		if method, path, ok := strings.Cut(pattern, " "); ok {
			if _, seen := allowed[path]; !seen {
				paths = append(paths, path)
			}
			allowed[path] = append(allowed[path], method)
			names[path] = name
		}
	}
	route("GET /ping", "ping", s.ping)
	route("GET /metrics", "metrics", s.metrics)
	route("GET /metrics/prometheus", "metrics", s.metricsText)
	route("GET /v2/info", "info", s.info)
	route("GET /v2/leader", "leader", s.leader)
	route("DELETE /v2/leader", "leader", s.abdicate)
	route("GET /v2/apps", "apps", s.listApps)
	route("POST /v2/apps", "apps", s.createApp)
	route("PUT /v2/apps", "apps", s.putApps)
	route("PATCH /v2/apps", "apps", s.putApps)
	route("GET /v2/groups", "groups", s.getGroup)
	route("GET /v2/groups/", "groups", s.getGroup)
	route("POST /v2/groups", "groups", s.createGroup)
	route("POST /v2/groups/", "groups", s.createGroup)
	route("PUT /v2/groups", "groups", s.updateGroup)
	route("PUT /v2/groups/", "groups", s.updateGroup)
	route("DELETE /v2/groups", "groups", s.deleteGroup)
	route("DELETE /v2/groups/", "groups", s.deleteGroup)
	route("PATCH /v2/groups/", "groups", s.patchGroup)
	route("/v2/apps/", "app", s.appSubtree)
	route("GET /v2/tasks", "tasks", s.listTasks)
	route("POST /v2/tasks/delete", "tasks", s.deleteTasks)
	route("GET /v2/deployments", "deployments", s.listDeployments)
	route("GET /v2/deployments/{id}", "deployments", s.getDeployment)
	route("DELETE /v2/deployments/{id}", "deployments", s.cancelDeployment)
	route("GET /v2/queue", "queue", s.queue)
	route("DELETE /v2/queue/{id...}", "queue", s.resetDelay)
	route("GET /v2/events", "events", s.events)
	route("/v2/eventSubscriptions", "eventSubscriptions", s.eventSubscriptions)
	route("GET /logging", "logging", s.showLoggers)
	route("POST /logging", "logging", s.changeLogger)
	route("GET /v2/plugins", "plugins", s.plugins)
	route("/v2/plugins/", "plugins", s.pluginRequest)
	route("/v2/pods", "pods", s.notFoundRoute)
	route("/v2/pods/", "pods", s.notFoundRoute)
	route("/", "other", s.notFoundRoute)
	for _, path := range paths {
		methods := allowed[path]
		if slices.Contains(methods, http.MethodGet) {
			methods = append(methods, http.MethodHead)
		}
		allow := strings.Join(methods, ", ")
		mux.Handle(path, s.instrument(names[path], func(w http.ResponseWriter, r *http.Request) {
			// DELETE /v2/queue/{id}/delay: other paths below /v2/queue/
			// are unknown.
			if strings.HasPrefix(path, "/v2/queue/") && !strings.HasSuffix(r.URL.Path, "/delay") {
				s.notFoundRoute(w, r)
				return
			}
			w.Header().Set("Allow", allow)
			s.methodNotAllowed(w)
		}))
	}
	return mux
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and deadlines.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (s *server) instrument(name string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hdr := w.Header()
		hdr.Set("Cache-Control", "no-cache, no-store, must-revalidate")
		hdr.Set("Pragma", "no-cache")
		hdr.Set("Expires", "0")
		if s.cfg.Cluster != nil {
			if l, err := s.cfg.Cluster.Leader(r.Context()); err == nil && l != "" {
				hdr.Set("X-Marathon-Leader", s.cfg.LeaderScheme+"://"+l)
			}
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		}
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		h(rec, r)
		if rec.code == 0 {
			rec.code = http.StatusOK
		}
		s.requests.WithLabelValues(name, strconv.Itoa(rec.code)).Inc()
		if name != "events" {
			s.latency.WithLabelValues(name).Observe(time.Since(start).Seconds())
		}
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}

func writeMessage(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, marathon.ErrorResponse{Message: msg})
}

// writeError maps an error to Marathon's status and body.
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var br *BadRequestError
	var ve *ValidationError
	var se StatusError
	switch {
	case errors.As(err, &br):
		if br.Text != "" {
			writeJSON(w, http.StatusBadRequest, struct {
				Message string `json:"message"`
				Details string `json:"details"`
			}{br.Message, br.Text})
			return
		}
		writeJSON(w, http.StatusBadRequest, marathon.ErrorResponse{Message: br.Message, Details: br.Details})
	case errors.As(err, &ve):
		msg := ve.Message
		if msg == "" {
			msg = "Object is not valid"
		}
		writeJSON(w, http.StatusUnprocessableEntity, marathon.ErrorResponse{Message: msg, Details: ve.Details})
	case errors.As(err, &se):
		writeJSON(w, se.HTTPStatus(), se.ErrorResponse())
	case errors.Is(err, context.Canceled):
		writeMessage(w, http.StatusServiceUnavailable, "request cancelled")
	default:
		s.log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeMessage(w, http.StatusInternalServerError, err.Error())
	}
}

func (s *server) notFoundRoute(w http.ResponseWriter, r *http.Request) {
	writeMessage(w, http.StatusNotFound, "Not Found: "+r.URL.Path)
}

func boolParam(r *http.Request, name string, def bool) bool {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return def
	}
	return b
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// readBody reads the request body, which instrument bounded by
// MaxBodyBytes: a larger one is a 413 error.
func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, &bodyTooLargeError{limit: tooBig.Limit}
		}
		return nil, &BadRequestError{Message: "Failed to read the request body: " + err.Error()}
	}
	return b, nil
}

// bodyTooLargeError is a request body over Config.MaxBodyBytes (413).
type bodyTooLargeError struct{ limit int64 }

func (e *bodyTooLargeError) Error() string {
	return fmt.Sprintf("request body larger than %d bytes", e.limit)
}

func (e *bodyTooLargeError) HTTPStatus() int { return http.StatusRequestEntityTooLarge }

func (e *bodyTooLargeError) ErrorResponse() marathon.ErrorResponse {
	return marathon.ErrorResponse{Message: fmt.Sprintf("Request entity too large: the limit is %d bytes", e.limit)}
}

// ping serves /ping (spec §1.7): text "pong" (no newline) by default and
// for text/plain or */*, the JSON string "pong" when the client prefers
// JSON, and 204 without a body when it accepts neither.
func (s *server) ping(w http.ResponseWriter, r *http.Request) {
	ranges := parseAccept(r.Header.Values("Accept"))
	if len(ranges) > 0 {
		qText, _ := quality(ranges, "text/plain")
		qJSON, _ := quality(ranges, "application/json")
		switch {
		case qText == 0 && qJSON == 0:
			w.WriteHeader(http.StatusNoContent)
			return
		case qJSON > qText:
			writeJSON(w, http.StatusOK, "pong")
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "pong")
}

func (s *server) info(w http.ResponseWriter, r *http.Request) {
	v, err := s.cfg.Cluster.Info(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *server) leader(w http.ResponseWriter, r *http.Request) {
	l, err := s.cfg.Cluster.Leader(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if l == "" {
		writeMessage(w, http.StatusNotFound, "There is no leader")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"leader": l})
}

func (s *server) abdicate(w http.ResponseWriter, r *http.Request) {
	l, err := s.cfg.Cluster.Leader(r.Context())
	if err == nil && l == "" {
		writeMessage(w, http.StatusNotFound, "There is no leader")
		return
	}
	if err == nil {
		err = s.cfg.Cluster.Abdicate(r.Context())
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeMessage(w, http.StatusOK, "Leadership abdicated")
}

func (s *server) queue(w http.ResponseWriter, r *http.Request) {
	v, err := s.cfg.Cluster.Queue(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *server) resetDelay(w http.ResponseWriter, r *http.Request) {
	rest := r.PathValue("id")
	id, ok := strings.CutSuffix(rest, "/delay")
	if !ok {
		s.notFoundRoute(w, r)
		return
	}
	if err := s.cfg.Cluster.ResetDelay(r.Context(), marathon.CanonicalID(id)); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) listDeployments(w http.ResponseWriter, r *http.Request) {
	ds, err := s.cfg.Deployments.ListDeployments(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if ds == nil {
		ds = []marathon.Deployment{}
	}
	writeJSON(w, http.StatusOK, ds)
}

func (s *server) cancelDeployment(w http.ResponseWriter, r *http.Request) {
	force := boolParam(r, "force", false)
	res, err := s.cfg.Deployments.CancelDeployment(r.Context(), r.PathValue("id"), force)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if res == nil {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	w.Header().Set("Marathon-Deployment-Id", res.DeploymentID)
	writeJSON(w, http.StatusOK, res)
}
