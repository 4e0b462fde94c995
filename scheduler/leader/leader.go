// Package leader elects one scheduler of several through ZooKeeper, as
// Marathon does: each candidate holds an ephemeral sequential node under
// <root>/leader whose data is its advertised host:port, and the lowest
// node leads.
//
// Leadership is a Term. A term ends, and its context is cancelled, as soon
// as leadership may be lost: the ZooKeeper connection drops or the session
// expires, the leader's own node is gone, the caller resigns
// (DELETE /v2/leader), or the term's lease lapses. The lease is renewed by
// a read of the leader's node every SessionTimeout/6 and lasts
// 2/3 SessionTimeout from when that read was sent: ZooKeeper cannot
// expire the session (and let another candidate lead) earlier than
// SessionTimeout after it last heard from us, so a leader that checks
// Term.Valid before each action never acts after it could have been
// replaced, even if it was frozen (SIGSTOP) and resumes later.
package leader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	gozk "github.com/go-zookeeper/zk"

	"github.com/switchyard/switchyard/scheduler/zk"
)

// ErrNoLeader is returned by Leader while no leader is known (ZooKeeper
// unreachable or has no quorum, or the election is in progress).
var ErrNoLeader = errors.New("no leader: ZooKeeper is unreachable or has no quorum, or an election is in progress")

const memberPrefix = "member_"

// Config configures an Elector.
type Config struct {
	// URL is the --zk URL; members live under URL.Path + "/leader".
	URL zk.URL
	// SessionTimeout is the ZooKeeper session timeout (default 10s).
	SessionTimeout time.Duration
	// Advertise is the host:port other nodes proxy to when we lead.
	Advertise string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Elector takes part in the election. Create it with New, call Run, and
// Campaign for each term.
type Elector struct {
	cfg  Config
	log  *slog.Logger
	conn *gozk.Conn
	dir  string

	mu       sync.Mutex
	state    gozk.State
	changed  chan struct{} // closed and replaced on every session event or leader change
	leader   string        // cached leader address ("" unknown)
	leaderOK bool
	node     string    // our member node ("" none)
	lostAt   time.Time // when the connection last dropped
	term     *Term
}

// New connects to ZooKeeper (in the background: it retries until the
// ensemble answers).
func New(cfg Config) (*Elector, error) {
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	e := &Elector{cfg: cfg, log: cfg.Logger, dir: cfg.URL.Path + "/leader", changed: make(chan struct{})}
	conn, _, err := zk.Connect(cfg.URL, cfg.SessionTimeout, cfg.Logger, e.onEvent)
	if err != nil {
		return nil, err
	}
	e.conn = conn
	return e, nil
}

// Conn is the ZooKeeper session (the state store shares it).
func (e *Elector) Conn() *gozk.Conn { return e.conn }

// SessionTimeout is the configured session timeout.
func (e *Elector) SessionTimeout() time.Duration { return e.cfg.SessionTimeout }

// Close ends the session (our node goes at once) and any term.
func (e *Elector) Close() {
	e.mu.Lock()
	t := e.term
	e.mu.Unlock()
	if t != nil {
		t.end("elector closed")
	}
	e.conn.Close()
}

// onEvent runs on the client's goroutines for every session event. A
// term ends at once when the session is known to be lost; a mere
// disconnection (one ZooKeeper server went away; the client moves to
// another within the session) is left to the lease.
func (e *Elector) onEvent(ev gozk.Event) {
	if ev.Type != gozk.EventSession {
		return
	}
	e.mu.Lock()
	if ev.State != gozk.StateHasSession && e.state == gozk.StateHasSession {
		e.lostAt = time.Now()
	}
	e.state = ev.State
	t := e.term
	if ev.State == gozk.StateExpired {
		e.leaderOK = false
	}
	e.signalLocked()
	e.mu.Unlock()
	if t != nil && (ev.State == gozk.StateExpired || ev.State == gozk.StateAuthFailed) {
		t.end("zookeeper " + ev.State.String())
	}
}

func (e *Elector) signalLocked() {
	close(e.changed)
	e.changed = make(chan struct{})
}

func (e *Elector) wait() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.changed
}

// Leader returns the current leader's advertised host:port. While the
// connection to ZooKeeper is down the last known leader is kept for up to
// the session timeout (the client reconnects to another server).
func (e *Elector) Leader() (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.leaderOK || (e.state != gozk.StateHasSession && time.Since(e.lostAt) > e.cfg.SessionTimeout) {
		return "", ErrNoLeader
	}
	return e.leader, nil
}

// Run keeps the cached leader (Leader) current until ctx ends.
func (e *Elector) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		ch := e.wait()
		var watch <-chan gozk.Event
		if e.connected() {
			if err := zk.EnsurePath(e.conn, e.dir, e.cfg.URL.ACL()); err != nil {
				e.log.Debug("leader dir", "err", err)
			} else {
				children, _, w, err := e.conn.ChildrenW(e.dir)
				if err == nil {
					var addr string
					var ok bool
					addr, ok, err = e.lookup(children)
					if err == nil {
						watch = w
						e.setLeader(addr, ok)
					}
				}
				if err != nil {
					e.log.Debug("watch leader", "err", err)
				}
			}
		}
		if watch == nil {
			// Retry soon (errors) or on the next session event.
			select {
			case <-ctx.Done():
			case <-ch:
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		select {
		case <-ctx.Done():
		case <-ch:
		case <-watch:
		}
	}
	return nil
}

func (e *Elector) expired() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.state == gozk.StateExpired
}

func (e *Elector) connected() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.state == gozk.StateHasSession
}

// lookup reads the lowest member's address ("" and false if none).
func (e *Elector) lookup(children []string) (string, bool, error) {
	for _, c := range sortMembers(children) {
		data, _, err := e.conn.Get(e.dir + "/" + c)
		if err == nil {
			return string(data), true, nil
		}
		if !errors.Is(err, gozk.ErrNoNode) {
			return "", false, fmt.Errorf("read leader: %w", err)
		}
	}
	return "", false, nil
}

func (e *Elector) setLeader(addr string, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.leader == addr && e.leaderOK == ok {
		return
	}
	e.log.Info("leader", "leader", addr, "known", ok)
	e.leader, e.leaderOK = addr, ok
	e.signalLocked()
}

// seq is a member node's sequence number (its last 10 digits).
func seq(name string) string {
	if len(name) < 10 {
		return name
	}
	return name[len(name)-10:]
}

func sortMembers(children []string) []string {
	var out []string
	for _, c := range children {
		if strings.Contains(c, memberPrefix) {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return seq(out[i]) < seq(out[j]) })
	return out
}

// Campaign joins the election (a new member node; the node of an earlier
// term is deleted first) and blocks until this node leads or ctx ends. The returned term ends when leadership may be
// lost; call Term.Resign when done with it.
func (e *Elector) Campaign(ctx context.Context) (*Term, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		t, err := e.campaign(ctx)
		if err == nil {
			return t, nil
		}
		e.log.Info("election", "err", err)
		select {
		case <-ctx.Done():
		case <-e.wait():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (e *Elector) campaign(ctx context.Context) (*Term, error) {
	if !e.connected() {
		return nil, errors.New("no zookeeper session")
	}
	e.mu.Lock()
	node := e.node
	e.mu.Unlock()
	if node != "" {
		// A node of an earlier term: leave, and join at the back.
		if err := e.conn.Delete(node, -1); err != nil && !errors.Is(err, gozk.ErrNoNode) {
			return nil, fmt.Errorf("leave election: %w", err)
		}
		e.forget(node)
		node = ""
	}
	if node == "" {
		if err := zk.EnsurePath(e.conn, e.dir, e.cfg.URL.ACL()); err != nil {
			return nil, err
		}
		p, err := e.conn.CreateProtectedEphemeralSequential(e.dir+"/"+memberPrefix, []byte(e.cfg.Advertise), e.cfg.URL.ACL())
		if err != nil {
			return nil, fmt.Errorf("join election: %w", err)
		}
		node = p
		e.mu.Lock()
		e.node = p
		e.mu.Unlock()
		e.log.Info("joined election", "node", p)
	}
	name := node[strings.LastIndex(node, "/")+1:]
	for {
		sent := time.Now()
		children, _, err := e.conn.Children(e.dir)
		if err != nil {
			return nil, fmt.Errorf("list members: %w", err)
		}
		members := sortMembers(children)
		i := sort.SearchStrings(seqs(members), seq(name))
		if i >= len(members) || members[i] != name {
			e.forget(node)
			return nil, errors.New("our member node is gone")
		}
		if i == 0 {
			return e.startTerm(node, sent), nil
		}
		// Wait for the member before us to go.
		ok, _, w, err := e.conn.ExistsW(e.dir + "/" + members[i-1])
		if err != nil {
			return nil, fmt.Errorf("watch member: %w", err)
		}
		if !ok {
			continue
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-w:
		case <-e.wait():
			if e.expired() {
				return nil, errors.New("zookeeper session expired")
			}
		}
	}
}

func seqs(members []string) []string {
	out := make([]string, len(members))
	for i, m := range members {
		out[i] = seq(m)
	}
	return out
}

func (e *Elector) forget(node string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.node == node {
		e.node = ""
	}
}

func (e *Elector) startTerm(node string, leaseFrom time.Time) *Term {
	ctx, cancel := context.WithCancelCause(context.Background())
	t := &Term{e: e, node: node, ctx: ctx, cancel: cancel, started: time.Now()}
	lease := e.cfg.SessionTimeout * 2 / 3
	t.until = leaseFrom.Add(lease)
	t.timer = time.AfterFunc(time.Until(t.until), func() { t.end("lease lapsed") })
	e.mu.Lock()
	e.term = t
	e.mu.Unlock()
	if !e.connected() {
		t.end("zookeeper disconnected")
	}
	go t.renew(e.cfg.SessionTimeout/6, lease)
	e.log.Info("elected leader", "node", node)
	return t
}

// Term is one period of leadership.
type Term struct {
	e       *Elector
	node    string
	ctx     context.Context
	cancel  context.CancelCauseFunc
	started time.Time

	mu    sync.Mutex
	until time.Time
	timer *time.Timer
}

// Context ends when the term ends.
func (t *Term) Context() context.Context { return t.ctx }

// Node is our member node: it exists exactly while our session lives,
// so ZooKeeper writes checked against it are fenced.
func (t *Term) Node() string { return t.node }

// Valid reports whether we still lead: the term has not ended and its
// lease has not lapsed. Check it right before every action.
func (t *Term) Valid() bool {
	if t.ctx.Err() != nil {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return time.Now().Before(t.until)
}

func (t *Term) end(reason string) {
	if t.ctx.Err() != nil {
		return
	}
	t.e.log.Warn("leadership ended", "reason", reason)
	t.cancel(errors.New(reason))
	t.mu.Lock()
	t.timer.Stop()
	t.mu.Unlock()
}

// Resign ends the term and gives up our member node, so another
// candidate leads; Campaign joins again at the back of the line.
func (t *Term) Resign() {
	t.end("resigned")
	e := t.e
	if err := e.conn.Delete(t.node, -1); err != nil && !errors.Is(err, gozk.ErrNoNode) {
		// Campaign deletes it before joining again.
		e.log.Warn("leave election", "err", err)
	} else {
		e.forget(t.node)
	}
	e.mu.Lock()
	if e.term == t {
		e.term = nil
	}
	e.mu.Unlock()
}

func (t *Term) renew(every, lease time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-tick.C:
		}
		sent := time.Now()
		ok, _, err := t.e.conn.Exists(t.node)
		switch {
		case err != nil:
			// Disconnected: the lease runs out unless a renewal
			// succeeds on another server in time.
			t.e.log.Debug("lease renewal", "err", err)
			continue
		case !ok:
			t.end("our member node is gone")
			return
		}
		t.mu.Lock()
		if until := sent.Add(lease); until.After(t.until) {
			t.until = until
			t.timer.Reset(time.Until(until))
		}
		t.mu.Unlock()
	}
}
