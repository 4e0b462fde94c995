// Package marathontest is a fake Marathon for tests: an httptest.Server
// that serves GET /v2/apps, GET /v2/apps/{id}, /ping, /v2/info and the
// /v2/events SSE stream in Marathon's exact wire format, backed by an
// in-memory app list the test sets, plus small fixture builders for apps
// and tasks. Events are not derived from app changes: a test changes the
// apps, then publishes the events it wants the client to see (Marathon
// itself guarantees that GET already reflects an event when it is sent).
package marathontest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard/switchyard/marathon"
)

// streamQueue is how many frames may wait for one slow stream before the
// server drops it, like Marathon's --event_stream_max_outstanding_messages.
const streamQueue = 1024

// Server is a fake Marathon. All methods are safe for concurrent use.
type Server struct {
	// URL is the base URL of the server, e.g. http://127.0.0.1:40123.
	URL string

	srv *httptest.Server
	t   testing.TB // nil for NewServer

	mu           sync.Mutex
	pingInterval time.Duration
	apps         []marathon.App
	down         bool
	user, pass   string
	streams      map[*stream]struct{}
	appsRequests int
	closed       bool
}

// stream is one connected /v2/events client.
type stream struct {
	types  map[string]bool // nil: every type
	frames chan []byte
	done   chan struct{} // closed to drop the connection
	once   sync.Once
	abort  func() // unblocks a write stuck on a client that stopped reading
}

func (st *stream) drop() {
	st.once.Do(func() {
		close(st.done)
		st.abort()
	})
}

func (st *stream) wants(eventType string) bool {
	return st.types == nil || eventType == "" || st.types[eventType]
}

// New starts a fake Marathon with no apps; t.Cleanup closes it. Encoding
// failures in Publish are reported with t.Errorf.
func New(t testing.TB) *Server {
	t.Helper()
	s := NewServer()
	s.t = t
	t.Cleanup(s.Close)
	return s
}

// NewServer starts a fake Marathon outside a test (benchmarks, demos).
// The caller must Close it.
func NewServer() *Server {
	s := &Server{streams: map[*stream]struct{}{}, pingInterval: time.Second}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v2/apps", s.handleApps)
	mux.HandleFunc("GET /v2/apps/{id...}", s.handleApp)
	mux.HandleFunc("GET /v2/events", s.handleEvents)
	mux.HandleFunc("GET /v2/info", s.handleInfo)
	mux.HandleFunc("GET /ping", s.handlePing)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, marathon.ErrorResponse{Message: "Not found: " + r.URL.Path})
	})
	s.srv = httptest.NewServer(s.gate(mux))
	s.URL = s.srv.URL
	return s
}

// Close drops every stream and shuts the server down.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.DropStreams()
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// gate applies the common headers, SetDown and SetBasicAuth.
func (s *Server) gate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
		h.Set("Pragma", "no-cache")
		h.Set("Expires", "0")
		s.mu.Lock()
		down, user, pass := s.down, s.user, s.pass
		if r.URL.Path == "/v2/apps" {
			s.appsRequests++
		}
		s.mu.Unlock()
		if down {
			writeJSON(w, http.StatusServiceUnavailable, marathon.ErrorResponse{Message: "marathontest: server is down"})
			return
		}
		if user != "" {
			u, p, ok := r.BasicAuth()
			if !ok || u != user || p != pass {
				writeJSON(w, http.StatusUnauthorized, marathon.ErrorResponse{Message: "Invalid username or password."})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// SetApps replaces the whole app list with a deep copy of apps. Stored
// apps get the read-only fields Marathon computes (task counts, a non-null
// deployments list), so Apps() equals what a client decodes from
// GET /v2/apps?embed=apps.tasks (minus lastTaskFailure, which needs its own
// embed).
func (s *Server) SetApps(apps []marathon.App) {
	c := deepCopy(apps)
	for i := range c {
		fillInfo(&c[i])
	}
	s.mu.Lock()
	s.apps = c
	s.mu.Unlock()
}

// UpsertApp adds app, or replaces the app with the same canonical id.
func (s *Server) UpsertApp(app marathon.App) {
	c := deepCopy([]marathon.App{app})[0]
	fillInfo(&c)
	id := marathon.CanonicalID(c.ID)
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.apps {
		if marathon.CanonicalID(s.apps[i].ID) == id {
			s.apps[i] = c
			return
		}
	}
	s.apps = append(s.apps, c)
}

// RemoveApp deletes the app with that id (with or without leading slash),
// if there is one.
func (s *Server) RemoveApp(id string) {
	id = marathon.CanonicalID(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apps = slices.DeleteFunc(s.apps, func(a marathon.App) bool { return marathon.CanonicalID(a.ID) == id })
}

// Apps returns a deep copy of the current app list.
func (s *Server) Apps() []marathon.App {
	s.mu.Lock()
	defer s.mu.Unlock()
	return deepCopy(s.apps)
}

// SetDown makes every request answer 503 (and drops the open streams) while
// down is true, as a Marathon without leader does.
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
	if down {
		s.DropStreams()
	}
}

// SetBasicAuth makes every request require these basic-auth credentials
// (401 otherwise); an empty user turns the check off.
func (s *Server) SetBasicAuth(user, pass string) {
	s.mu.Lock()
	s.user, s.pass = user, pass
	s.mu.Unlock()
}

// SetPingInterval changes how often new streams get a ": ping" keepalive
// comment (default 1s); d <= 0 turns keepalives off for new streams.
func (s *Server) SetPingInterval(d time.Duration) {
	s.mu.Lock()
	s.pingInterval = d
	s.mu.Unlock()
}

// StreamCount returns how many /v2/events clients are connected now. A
// stream is registered before its response headers are sent, so a client
// that has seen its stream open (marathon.Client's synthetic
// event_stream_attached) is reached by every later Publish.
func (s *Server) StreamCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.streams)
}

// AppsRequests returns how many GET /v2/apps requests arrived, including
// those refused because the server was down or auth failed.
func (s *Server) AppsRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.appsRequests
}

// DropStreams closes every open /v2/events connection; clients are
// expected to reconnect.
func (s *Server) DropStreams() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for st := range s.streams {
		st.drop()
	}
}

// Publish sends payload as one event of type eventType to every connected
// stream whose event_type filter admits it. payload is JSON-encoded; when
// the result is an object, a missing or empty "eventType" is set to
// eventType and a missing or empty "timestamp" to the current time, so
// Publish(marathon.EventAppTerminated, map[string]any{"appId": "/web"}) and
// typed payloads whose EventHeader was left empty both produce
// Marathon-shaped events. A payload that cannot be encoded is reported to
// the test (New) and dropped.
func (s *Server) Publish(eventType string, payload any) {
	data, err := eventJSON(eventType, payload)
	if err != nil {
		if s.t != nil {
			s.t.Errorf("marathontest: publish %s: %v", eventType, err)
		}
		return
	}
	s.broadcast(eventType, frame(eventType, data))
}

// PublishRaw sends data verbatim as one frame ("event: eventName" unless
// the name is empty, then "data: " + data), for robustness tests: data may
// be invalid JSON, disagree with eventName, be huge, or even contain line
// breaks. The event_type filters apply to eventName; a frame without a name
// goes to every stream.
func (s *Server) PublishRaw(eventName string, data []byte) {
	s.broadcast(eventName, frame(eventName, data))
}

// broadcast queues a frame on every stream that wants it; a stream whose
// queue is full is dropped (never blocks).
func (s *Server) broadcast(eventType string, f []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.broadcastLocked(eventType, f, nil)
}

func (s *Server) broadcastLocked(eventType string, f []byte, skip *stream) {
	for st := range s.streams {
		if st == skip || !st.wants(eventType) {
			continue
		}
		select {
		case st.frames <- f:
		default:
			st.drop()
		}
	}
}

// eventJSON encodes payload and fills eventType and timestamp.
func eventJSON(eventType string, payload any) ([]byte, error) {
	data, err := json.Marshal(payload)
	if err != nil {
		return nil, err
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(data, &obj) != nil || obj == nil {
		return data, nil // not an object: send as is
	}
	fill := func(key, value string) {
		if v, ok := obj[key]; !ok || string(v) == `""` || string(v) == "null" {
			obj[key], _ = json.Marshal(value)
		}
	}
	fill("eventType", eventType)
	fill("timestamp", Timestamp(time.Now()))
	return json.Marshal(obj)
}

// Timestamp formats t as Marathon does: ISO-8601 UTC with milliseconds.
func Timestamp(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// frame renders one SSE frame in Marathon's format: CRLF line ends, an
// "event:" line and a single "data:" line.
func frame(eventName string, data []byte) []byte {
	var b bytes.Buffer
	if eventName != "" {
		b.WriteString("event: " + eventName + "\r\n")
	}
	b.WriteString("data: ")
	b.Write(data)
	b.WriteString("\r\n\r\n")
	return b.Bytes()
}

func (s *Server) handleApps(w http.ResponseWriter, r *http.Request) {
	embed := embeds(r.URL.Query())
	withTasks := embed["tasks"] || embed["failures"]
	apps := s.Apps()
	for i := range apps {
		if !withTasks {
			apps[i].Tasks = nil
		}
		if !embed["lasttaskfailure"] && !embed["failures"] {
			apps[i].LastTaskFailure = nil
		}
	}
	if apps == nil {
		apps = []marathon.App{}
	}
	writeJSON(w, http.StatusOK, marathon.AppsResponse{Apps: apps})
}

func (s *Server) handleApp(w http.ResponseWriter, r *http.Request) {
	id := marathon.CanonicalID(r.PathValue("id"))
	for _, a := range s.Apps() {
		if marathon.CanonicalID(a.ID) == id {
			writeJSON(w, http.StatusOK, marathon.AppResponse{App: a})
			return
		}
	}
	writeJSON(w, http.StatusNotFound, marathon.ErrorResponse{Message: fmt.Sprintf("App '%s' does not exist", id)})
}

// embeds returns the lower-cased embed values without their "apps."/"app."
// prefix.
func embeds(q url.Values) map[string]bool {
	m := map[string]bool{}
	for _, v := range q["embed"] {
		v = strings.ToLower(v)
		v = strings.TrimPrefix(strings.TrimPrefix(v, "apps."), "app.")
		m[v] = true
	}
	return m
}

// fillInfo sets the read-only AppInfo fields Marathon always shows on read:
// counts derived from the tasks, and a non-null deployments list.
func fillInfo(a *marathon.App) {
	a.TasksStaged, a.TasksRunning, a.TasksHealthy, a.TasksUnhealthy = 0, 0, 0, 0
	for _, t := range a.Tasks {
		switch t.State {
		case "", marathon.TaskStaging: // TASK_STARTING counts in neither, as in Marathon
			a.TasksStaged++
		case marathon.TaskRunning:
			a.TasksRunning++
		}
		if len(t.HealthCheckResults) == 0 {
			continue
		}
		healthy := true
		for _, h := range t.HealthCheckResults {
			healthy = healthy && h.Alive
		}
		if healthy {
			a.TasksHealthy++
		} else {
			a.TasksUnhealthy++
		}
	}
	if a.Deployments == nil {
		a.Deployments = []marathon.DeploymentRef{}
	}
}

func (s *Server) handlePing(w http.ResponseWriter, r *http.Request) {
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		writeJSON(w, http.StatusOK, "pong")
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("pong"))
}

func (s *Server) handleInfo(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	writeJSON(w, http.StatusOK, map[string]any{
		"name":        "marathon",
		"version":     "1.10.0",
		"buildref":    "marathontest",
		"elected":     true,
		"leader":      host,
		"frameworkId": "marathontest-framework",
		"http_config": map[string]any{"http_port": 8080, "https_port": 8443},
		"marathon_config": map[string]any{
			"master":         "local",
			"framework_name": "marathon",
			"hostname":       "localhost",
			"ha":             true,
			"checkpoint":     true,
			"local_port_min": 10000,
			"local_port_max": 20000,
			"features":       []string{},
		},
		"zookeeper_config": map[string]any{},
	})
}

// handleEvents serves /v2/events: 405 without Accept: text/event-stream,
// then one frame per event, a ": ping" comment every pingInterval, and the
// connection's own event_stream_attached first.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	if !strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
		writeJSON(w, http.StatusMethodNotAllowed, marathon.ErrorResponse{Message: "HTTP 405 Method Not Allowed"})
		return
	}
	rc := http.NewResponseController(w)
	st := &stream{
		frames: make(chan []byte, streamQueue),
		done:   make(chan struct{}),
		// An expired write deadline makes the blocked Write fail at once.
		abort: func() { _ = rc.SetWriteDeadline(time.Now()) },
	}
	if types := r.URL.Query()["event_type"]; len(types) > 0 {
		st.types = map[string]bool{}
		for _, t := range types {
			st.types[t] = true
		}
	}
	attached, _ := eventJSON(marathon.EventStreamAttached, marathon.StreamAttachedEvent{RemoteAddress: remoteIP(r)})
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		writeJSON(w, http.StatusServiceUnavailable, marathon.ErrorResponse{Message: "marathontest: server closed"})
		return
	}
	if st.wants(marathon.EventStreamAttached) {
		st.frames <- frame(marathon.EventStreamAttached, attached)
	}
	s.broadcastLocked(marathon.EventStreamAttached, frame(marathon.EventStreamAttached, attached), st)
	s.streams[st] = struct{}{}
	pingInterval := s.pingInterval
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.streams, st)
		detached, _ := eventJSON(marathon.EventStreamDetached, marathon.StreamAttachedEvent{RemoteAddress: remoteIP(r)})
		s.broadcastLocked(marathon.EventStreamDetached, frame(marathon.EventStreamDetached, detached), nil)
		s.mu.Unlock()
	}()

	w.Header().Set("Content-Type", "text/event-stream;charset=utf-8")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return
	}
	var pings <-chan time.Time
	if pingInterval > 0 {
		ticker := time.NewTicker(pingInterval)
		defer ticker.Stop()
		pings = ticker.C
	}
	for {
		var out []byte
		select {
		case <-r.Context().Done():
			return
		case <-st.done:
			return
		case <-pings:
			out = []byte(": ping\r\n\r\n")
		case out = <-st.frames:
		}
		if _, err := w.Write(out); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

func remoteIP(r *http.Request) string {
	host := r.RemoteAddr
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	return strings.Trim(host, "[]")
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// deepCopy copies apps through JSON, so that no slice, map or pointer is
// shared with the caller.
func deepCopy(apps []marathon.App) []marathon.App {
	if apps == nil {
		return nil
	}
	data, err := json.Marshal(apps)
	if err != nil {
		return nil // cannot happen: App holds only JSON-encodable fields
	}
	var c []marathon.App
	if err := json.Unmarshal(data, &c); err != nil {
		return nil
	}
	return c
}
