package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"time"

	"github.com/switchyard/switchyard/scheduler/agentapi"
	"github.com/switchyard/switchyard/scheduler/leader"
	"github.com/switchyard/switchyard/scheduler/state"
	"github.com/switchyard/switchyard/scheduler/state/zkstore"
	"github.com/switchyard/switchyard/scheduler/zk"
)

// HeaderProxied marks a request a standby forwarded to the leader: a node
// that is not the leader any more answers it with 503 instead of
// forwarding it again.
const HeaderProxied = "X-Switchyard-Proxied-By"

// HeaderServedBy names the leader (its advertised host:port) that
// produced an agent API answer.
const HeaderServedBy = "X-Switchyard-Served-By"

// HAConfig configures a highly available scheduler (--zk).
type HAConfig struct {
	// Config is what each term's scheduler is built from (its
	// Scheduler.Store, Registry and OnAbdicate are set per term).
	Config
	// URL is the --zk URL (its path holds the state and the election).
	URL zk.URL
	// Elector takes part in the election; HA.Run runs it.
	Elector *leader.Elector
	// Advertise is this node's host:port (what the elector announces).
	Advertise string
	// Scheme is how standbys reach the leader: "http" (default) or
	// "https" (the leader's certificate must verify with the system's
	// roots, or set ProxyTransport).
	Scheme string
	// ProxyTransport carries the proxied requests (default
	// http.DefaultTransport).
	ProxyTransport http.RoundTripper
}

// HA serves the scheduler API on every node of a cluster: the elected
// leader runs the scheduler on the ZooKeeper state; a standby answers
// /ping and GET /v2/leader itself and proxies everything else to the
// leader (event streams included). See docs/ha.md.
type HA struct {
	cfg   HAConfig
	log   *slog.Logger
	proxy *httputil.ReverseProxy

	mu     sync.Mutex
	active *activeTerm
}

type activeTerm struct {
	term    *leader.Term
	handler http.Handler

	mu sync.Mutex
	// registered holds the agents that registered with this term's
	// scheduler. Others are answered "unknown agent" so they register
	// again with the tasks they run: the new leader reconciles from what
	// the agents report, not only from what the old leader had flushed.
	registered map[string]bool
}

func (a *activeTerm) knows(agentID string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.registered[agentID]
}

func (a *activeTerm) registeredAgent(agentID string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.registered[agentID] = true
}

// agentOf names the agent an assignments or status request is from ("" for
// other requests). It leaves r's body readable.
func agentOf(r *http.Request) string {
	switch r.URL.Path {
	case agentapi.PathAssignments:
		return r.URL.Query().Get("agentId")
	case agentapi.PathStatus:
		b, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
		_ = r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(b))
		var rep struct {
			AgentID string `json:"agentId"`
		}
		if err != nil || json.Unmarshal(b, &rep) != nil {
			return ""
		}
		return rep.AgentID
	}
	return ""
}

// NewHA returns the handler of an HA scheduler; HA.Run drives it.
func NewHA(cfg HAConfig) *HA {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Scheme == "" {
		cfg.Scheme = "http"
	}
	h := &HA{cfg: cfg, log: cfg.Logger}
	h.proxy = &httputil.ReverseProxy{
		Transport: cfg.ProxyTransport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			leaderAddr, _ := pr.In.Context().Value(leaderKey{}).(string)
			pr.Out.URL.Scheme = cfg.Scheme
			pr.Out.URL.Host = leaderAddr
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
			pr.Out.Header.Set(HeaderProxied, cfg.Advertise)
		},
		// Stream /v2/events and long polls as they come.
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			h.log.Debug("proxy to leader", "err", err)
			unavailable(w, "leader unavailable: "+err.Error())
		},
	}
	return h
}

type leaderKey struct{}

// Leading reports whether this node currently leads.
func (h *HA) Leading() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.active != nil && h.active.term.Valid()
}

func unavailable(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Retry-After", "1")
	w.WriteHeader(http.StatusServiceUnavailable)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

// ServeHTTP implements http.Handler.
func (h *HA) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	act := h.active
	h.mu.Unlock()
	if act != nil && act.term.Valid() {
		h.serveLeader(act, w, r)
		return
	}
	if r.URL.Path == "/ping" {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("pong\n"))
		return
	}
	leaderAddr, err := h.cfg.Elector.Leader()
	if err == nil && leaderAddr == h.cfg.Advertise {
		err = errors.New("no leader: this node's leadership ended and an election is in progress")
	}
	if err != nil {
		unavailable(w, err.Error())
		return
	}
	if r.Method == http.MethodGet && r.URL.Path == "/v2/leader" {
		w.Header().Set("X-Marathon-Leader", "http://"+leaderAddr)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"leader": leaderAddr})
		return
	}
	if by := r.Header.Get(HeaderProxied); by != "" {
		unavailable(w, fmt.Sprintf("not the leader (request proxied by %s); the leader is %s, retry", by, leaderAddr))
		return
	}
	h.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), leaderKey{}, leaderAddr)))
}

// serveLeader runs a request on the term's scheduler. The request ends
// when the term does (long polls, event streams), and an agent API answer
// (which may launch or kill tasks) is held back and replaced by a 503 if
// the term is no longer valid when it is ready. An agent must register
// with each new leader before it polls or reports (as Mesos agents
// re-register with a new master).
func (h *HA) serveLeader(act *activeTerm, w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(act.term.Context(), cancel)
	defer stop()
	r = r.WithContext(ctx)
	if !strings.HasPrefix(r.URL.Path, "/agentapi/") {
		act.handler.ServeHTTP(w, r)
		return
	}
	if id := agentOf(r); id != "" && !act.knows(id) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(agentapi.ErrorBody{Message: "unknown agent " + id + ": register again with the new leader"})
		return
	}
	buf := &bufferedWriter{header: http.Header{}}
	act.handler.ServeHTTP(buf, r)
	if r.URL.Path == agentapi.PathRegister && buf.code/100 == 2 {
		var resp agentapi.RegisterResponse
		if json.Unmarshal(buf.body.Bytes(), &resp) == nil && resp.AgentID != "" {
			act.registeredAgent(resp.AgentID)
		}
	}
	if !act.term.Valid() {
		h.log.Warn("agent API answer held back: not the leader any more", "path", r.URL.Path)
		unavailable(w, "not the leader any more")
		return
	}
	for k, v := range buf.header {
		w.Header()[k] = v
	}
	w.Header().Set(HeaderServedBy, h.cfg.Advertise)
	if buf.code == 0 {
		buf.code = http.StatusOK
	}
	w.WriteHeader(buf.code)
	_, _ = w.Write(buf.body.Bytes())
}

type bufferedWriter struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (b *bufferedWriter) Header() http.Header { return b.header }
func (b *bufferedWriter) WriteHeader(code int) {
	if b.code == 0 {
		b.code = code
	}
}
func (b *bufferedWriter) Write(p []byte) (int, error) {
	if b.code == 0 {
		b.code = http.StatusOK
	}
	return b.body.Write(p)
}

// Run takes part in the election until ctx ends: each time this node is
// elected it loads the state from ZooKeeper, runs the scheduler until the
// term ends, and then joins the election again as a standby.
func (h *HA) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = h.cfg.Elector.Run(ctx)
	}()
	for ctx.Err() == nil {
		term, err := h.cfg.Elector.Campaign(ctx)
		if err != nil {
			break
		}
		err = h.lead(ctx, term)
		term.Resign()
		if err != nil {
			h.log.Error("leading", "err", err)
			// Let another node try before joining again.
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
		if ctx.Err() == nil {
			h.log.Info("standing by")
		}
	}
	return nil
}

// lead runs one term.
func (h *HA) lead(ctx context.Context, term *leader.Term) error {
	start := time.Now()
	backend, err := zkstore.Open(zkstore.Config{Conn: h.cfg.Elector.Conn(), Root: h.cfg.URL.Path, ACL: h.cfg.URL.ACL(), Fence: term.Node()})
	if err != nil {
		return fmt.Errorf("open zookeeper state: %w", err)
	}
	st, err := state.OpenBackend(backend)
	if err != nil {
		return err
	}
	cfg := h.cfg.Config
	cfg.Registry = nil // a fresh registry per term: the scheduler's metrics register anew
	cfg.Scheduler.Store = st
	cfg.Scheduler.OnAbdicate = term.Resign
	if cfg.Scheduler.Leader == "" {
		cfg.Scheduler.Leader = h.cfg.Advertise
	}
	handler, sched, err := New(cfg)
	if err != nil {
		_ = st.Close()
		return err
	}
	h.log.Info("leading", "apps", len(st.Apps()), "tasks", len(st.Tasks()), "deployments", len(st.Deployments()),
		"load_seconds", time.Since(start).Seconds())
	h.mu.Lock()
	h.active = &activeTerm{term: term, handler: handler, registered: map[string]bool{}}
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.active = nil
		h.mu.Unlock()
	}()
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(term.Context(), cancel)
	defer stop()
	if err := sched.Run(runCtx); err != nil && !errors.Is(err, zkstore.ErrFenced) {
		return err
	}
	return nil
}
