package controller

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/switchyard/switchyard/haproxy"
	"github.com/switchyard/switchyard/lb"
	"github.com/switchyard/switchyard/marathon"
)

// Isolating the app ports HAProxy rejects.
//
// lb checks label values for syntax only, so an app with, say,
// HAPROXY_0_BIND_OPTIONS=foo passes lb.Build but makes haproxy -c reject
// the whole configuration, which would block every other app's changes.
// marathon-lb validates apps one at a time; we validate the whole
// configuration (one haproxy -c when all is well) and only when HAProxy
// rejects it look for the app ports to blame, leave them out, and validate
// again:
//
//  1. Fast path: HAProxy names the lines it rejects; the section holding
//     a line names the service (its frontend, backend or userlist), and a
//     line of a shared frontend (marathon_http_in, ...) is matched against
//     what each service contributes to that frontend.
//  2. Fallback, when no line can be blamed on a service or the fast path
//     has not converged: group testing. Configurations with half of the
//     services are checked, recursively, down to the single bad ports:
//     about 2·k·log2(n) haproxy -c runs for k bad ports among n.
//  3. When nothing can be blamed (a broken global template, or every
//     service fails), the previous configuration keeps serving, as before.
//
// Blamed services are remembered by a key of their model (serviceKey) and
// left out of later renders without checking them again, until their
// labels change (or the templates are reloaded).
//
// Some failures show only when HAProxy loads a configuration (starts or
// reloads), never in haproxy -c: above all a service port that another
// process holds ("cannot bind socket"). HAProxy names the line of the bind
// it failed, so the fast path blames those the same way (loadFailure); group
// testing is not possible there (each test would be a reload). Before a
// reload, lb itself binds the new ports, and blames the busy ones without
// reloading (bindcheck.go). A port blamed at load time may load fine later
// (the other process lets the port go), so it is left out only for a
// while: it is tried again, with the next change or on its own, after
// loadRetryMin, then after twice as long with each failure, up to
// loadRetryCheapMax while lb finds it busy itself and loadRetryMax after a
// failed reload (which costs more: see bindcheck.go).

// Bounds on the isolation of one render.
const (
	maxFastRounds = 3 // fast-path rounds before group testing
	maxRounds     = 5 // isolation rounds in all
)

// Retry delays of a port blamed for a load failure: the first, and the
// longest after a failed reload or after lb found the port busy itself.
const (
	loadRetryMin      = 5 * time.Second
	loadRetryMax      = 5 * time.Minute
	loadRetryCheapMax = time.Minute
)

// rejectedReason prefixes the reason logged for a port HAProxy rejects;
// loadFailedReason for one HAProxy fails to load.
const (
	rejectedReason   = "HAProxy rejects its configuration: "
	loadFailedReason = "HAProxy fails to load its configuration: "
)

// screen renders the apps leaving out the app ports HAProxy is known to
// reject, and finds new ones when a configuration fails validation. It is
// used by the loop goroutine only, and tied to one renderer: a new one is
// made when the templates change.
type screen struct {
	m   *modelRenderer
	p   prober
	now func() time.Time

	// bad maps serviceKey of each port HAProxy rejected to HAProxy's
	// message. Entries of ports gone from the model are dropped.
	bad map[[sha256.Size]byte]badPort
	// gaveUp is the hash of the last configuration in which nothing
	// could be blamed, so it is not searched again.
	gaveUp [sha256.Size]byte

	// The model of the last render, updated as ports are left out.
	cfg     *lb.Config
	skipped []skippedPort
	rounds  int  // isolation rounds since the last render
	grouped bool // group testing done since the last render
	checks  int  // haproxy -c runs made by isolate, in all
}

// portRef names an app port.
type portRef struct {
	app   string
	index int
}

// badPort is a port HAProxy rejected and why.
type badPort struct {
	port portRef
	msg  string
	// load: blamed for a load failure, left out only until retryAt;
	// fails counts such failures in a row (for the backoff), trying is
	// set while the last render tries the port again.
	load    bool
	retryAt time.Time
	fails   int
	trying  bool
}

// reason is the skipped-port reason of b.
func (b *badPort) reason() string {
	if b.load {
		return loadFailedReason + b.msg
	}
	return rejectedReason + b.msg
}

func newScreen(m *modelRenderer, p prober) *screen {
	return &screen{m: m, p: p, now: time.Now, bad: map[[sha256.Size]byte]badPort{}}
}

// render builds and renders apps without the ports known to be rejected.
func (s *screen) render(apps []marathon.App) (rendered, error) {
	cfg, skipped := s.m.build(apps)
	s.rounds, s.grouped = 0, false
	if len(s.bad) > 0 {
		// Only the ports blamed before need a key.
		suspects := make(map[portRef]bool, len(s.bad))
		for _, b := range s.bad {
			suspects[b.port] = true
		}
		keep := make([]lb.Service, 0, len(cfg.Services))
		seen := make(map[[sha256.Size]byte]bool)
		now := s.now()
		for _, svc := range cfg.Services {
			if !suspects[portRef{svc.AppID, svc.PortIndex}] {
				keep = append(keep, svc)
				continue
			}
			k := serviceKey(&svc)
			if b, ok := s.bad[k]; ok {
				seen[k] = true
				if b.load && !now.Before(b.retryAt) {
					b.trying = true // its time has come: try it again
					s.bad[k] = b
					keep = append(keep, svc)
					continue
				}
				b.trying = false
				s.bad[k] = b
				skipped = append(skipped, skippedOf(&svc, &b))
				continue
			}
			keep = append(keep, svc)
		}
		for k := range s.bad {
			if !seen[k] {
				delete(s.bad, k)
			}
		}
		cfg = &lb.Config{Options: cfg.Options, Services: keep}
	}
	s.cfg, s.skipped = cfg, skipped
	return s.m.renderModel(cfg, skipped)
}

// loaded is told that HAProxy loaded the configuration of the last render
// (or of isolate since): the ports it tried again are fine now.
func (s *screen) loaded() {
	for k, b := range s.bad {
		if b.trying {
			delete(s.bad, k)
		}
	}
}

// nextRetry returns when the first port left out for a load failure is due
// to be tried again (zero when there is none).
func (s *screen) nextRetry() time.Time {
	var next time.Time
	for _, b := range s.bad {
		if b.load && !b.trying && (next.IsZero() || b.retryAt.Before(next)) {
			next = b.retryAt
		}
	}
	return next
}

// isolation is the outcome of one isolate call.
type isolation struct {
	// next is the configuration without the newly blamed ports; valid
	// only when blamed is not empty.
	next   rendered
	blamed []skippedPort
	// how is "lines" (fast path) or "group testing".
	how string
	// why says why nothing was blamed; empty when this configuration
	// was already searched (nothing new to say).
	why string
}

// isolate looks for the ports responsible for HAProxy rejecting failed,
// the configuration of the last render (ce holds HAProxy's messages). It
// returns the configuration without them, or an empty blamed list (and
// why) when none can be blamed. err is set only when haproxy -c could not
// be run at all.
func (s *screen) isolate(ctx context.Context, failed rendered, ce *haproxy.CheckError) (isolation, error) {
	return s.isolateAlerts(ctx, failed, ce.Alerts(), false, false)
}

// isolateLoad is isolate for a configuration HAProxy failed to load
// (alerts from its start or reload): only the fast path applies, and the
// ports blamed are left out for a while only.
// cheap: no reload was tried (bindcheck.go), so the ports blamed may be
// tried again sooner.
func (s *screen) isolateLoad(ctx context.Context, failed rendered, alerts []haproxy.Alert, cheap bool) (isolation, error) {
	return s.isolateAlerts(ctx, failed, alerts, true, cheap)
}

func (s *screen) isolateAlerts(ctx context.Context, failed rendered, alerts []haproxy.Alert, load, cheap bool) (isolation, error) {
	if s.cfg == nil {
		return isolation{why: "nothing rendered"}, nil
	}
	if hashRendered(failed) == s.gaveUp {
		return isolation{}, nil
	}
	s.rounds++
	if s.rounds > maxRounds {
		return isolation{why: "too many rounds"}, nil
	}
	cands := s.candidates(failed)
	if len(cands) == 0 {
		s.gaveUp = hashRendered(failed)
		return isolation{why: "no app port in the configuration"}, nil
	}
	if s.rounds <= maxFastRounds {
		blamed := s.attribute(failed.Config, cands, alerts)
		if len(blamed) == len(cands) {
			if !load {
				s.gaveUp = hashRendered(failed)
			}
			return isolation{why: "every app port is blamed (a global template?)"}, nil
		}
		if len(blamed) > 0 {
			return s.exclude(cands, blamed, "lines", load, cheap)
		}
	}
	if load {
		// Group testing would take a reload per test.
		return isolation{why: "HAProxy's messages name no app port"}, nil
	}
	if s.grouped {
		s.gaveUp = hashRendered(failed)
		return isolation{why: "still rejected after group testing"}, nil
	}
	s.grouped = true
	// Group testing assumes the configuration without any app is valid.
	empty, err := s.m.renderModel(&lb.Config{Options: s.cfg.Options}, nil)
	if err != nil {
		return isolation{}, err
	}
	s.checks++
	if err := s.p.probe(ctx, empty); err != nil {
		if rejected(err) == nil {
			return isolation{}, err
		}
		s.gaveUp = hashRendered(failed)
		return isolation{why: "rejected even without any app (a global template?)"}, nil
	}
	idx := make([]int, len(cands))
	for i := range idx {
		idx[i] = i
	}
	blamed := map[int]string{}
	if err := s.group(ctx, cands, idx, nil, blamed); err != nil {
		return isolation{}, err
	}
	if len(blamed) == 0 || len(blamed) == len(cands) {
		s.gaveUp = hashRendered(failed)
		return isolation{why: fmt.Sprintf("group testing blamed %d of %d app ports", len(blamed), len(cands))}, nil
	}
	return s.exclude(cands, blamed, "group testing", false, false)
}

// candidates are the services of the last render that are in failed (the
// templates may have left some out).
func (s *screen) candidates(failed rendered) []lb.Service {
	out := map[portRef]bool{}
	for _, sk := range failed.Skipped {
		out[portRef{sk.AppID, sk.PortIndex}] = true
	}
	var cands []lb.Service
	for _, svc := range s.cfg.Services {
		if !out[portRef{svc.AppID, svc.PortIndex}] {
			cands = append(cands, svc)
		}
	}
	return cands
}

// exclude leaves the blamed candidates out of the model, remembers them,
// and renders again. load: blamed for a load failure (see badPort);
// cheap: see isolateLoad.
func (s *screen) exclude(cands []lb.Service, blamed map[int]string, how string, load, cheap bool) (isolation, error) {
	res := isolation{how: how}
	gone := map[string]bool{}
	for _, i := range slices.Sorted(maps.Keys(blamed)) {
		svc := &cands[i]
		k := serviceKey(svc)
		b := badPort{port: portRef{svc.AppID, svc.PortIndex}, msg: blamed[i], load: load}
		if load {
			b.fails = s.bad[k].fails + 1
			limit := loadRetryMax
			if cheap {
				limit = loadRetryCheapMax
			}
			b.retryAt = s.now().Add(min(loadRetryMin<<min(b.fails-1, 16), limit))
		}
		s.bad[k] = b
		gone[svc.Backend] = true
		p := skippedOf(svc, &b)
		res.blamed = append(res.blamed, p)
		s.skipped = append(s.skipped, p)
	}
	keep := make([]lb.Service, 0, len(s.cfg.Services))
	for _, svc := range s.cfg.Services {
		if !gone[svc.Backend] {
			keep = append(keep, svc)
		}
	}
	s.cfg = &lb.Config{Options: s.cfg.Options, Services: keep}
	next, err := s.m.renderModel(s.cfg, s.skipped)
	if err != nil {
		return isolation{}, err
	}
	res.next = next
	return res, nil
}

// quotedRE finds the 'quoted' names in HAProxy's messages ("Proxy 'x': ...");
// proxyRE the unquoted ones of its start and reload messages ("Starting
// frontend x: cannot bind socket").
var (
	quotedRE = regexp.MustCompile(`'([^'\s]+)'`)
	proxyRE  = regexp.MustCompile(`(?:frontend|proxy|listener) ([^\s:'\]]+)`)
)

// attribute blames HAProxy's alerts about cfg on candidates, by index,
// with the messages that blame each.
func (s *screen) attribute(cfg []byte, cands []lb.Service, alerts []haproxy.Alert) map[int]string {
	secs := sectionsOf(cfg)
	byName := make(map[string]int, 2*len(cands))
	for i, svc := range cands {
		byName[svc.Backend] = i
		byName["user_"+svc.Backend] = i
	}
	var solo [][]byte // each candidate rendered alone, made when needed
	soloLines := map[string][]map[string]bool{}
	shared := func(name, text string) []int {
		if solo == nil {
			solo = make([][]byte, len(cands))
			for i := range cands {
				if r, err := s.m.renderModel(&lb.Config{Options: s.cfg.Options, Services: cands[i : i+1]}, nil); err == nil {
					solo[i] = r.Config
				}
			}
		}
		ls, ok := soloLines[name]
		if !ok {
			ls = make([]map[string]bool, len(cands))
			for i := range cands {
				ls[i] = sectionLines(solo[i], name)
			}
			soloLines[name] = ls
		}
		var out []int
		for i := range cands {
			if ls[i][text] {
				out = append(out, i)
			}
		}
		return out
	}
	msgs := map[int][]string{}
	blame := func(i int, text string) {
		if !slices.Contains(msgs[i], text) {
			msgs[i] = append(msgs[i], text)
		}
	}
	for _, a := range alerts {
		if generic(a.Text) {
			continue
		}
		if a.Line > 0 {
			sec, ok := sectionAt(secs, a.Line)
			if !ok {
				continue
			}
			if i, ok := byName[sec.name]; ok {
				blame(i, a.Text)
				continue
			}
			if sec.kind != "frontend" && sec.kind != "listen" && sec.kind != "backend" {
				continue
			}
			text := strings.TrimSpace(lineAt(cfg, a.Line))
			if text == "" {
				continue
			}
			for _, i := range shared(sec.name, text) {
				blame(i, a.Text)
			}
			continue
		}
		names := quotedRE.FindAllStringSubmatch(a.Text, -1)
		names = append(names, proxyRE.FindAllStringSubmatch(a.Text, -1)...)
		for _, m := range names {
			if i, ok := byName[m[1]]; ok {
				blame(i, a.Text)
			}
		}
	}
	out := make(map[int]string, len(msgs))
	for i, m := range msgs {
		out[i] = strings.Join(m, "; ")
	}
	return out
}

// group finds the bad services among cands[idx] by group testing. known is
// the check result of exactly cands[idx] when already known (nil: not
// checked, or inferred to fail).
func (s *screen) group(ctx context.Context, cands []lb.Service, idx []int, known *haproxy.CheckError, blamed map[int]string) error {
	if len(idx) == 1 {
		ce := known
		if ce == nil {
			var err error
			if ce, err = s.checkSubset(ctx, cands, idx); err != nil || ce == nil {
				return err
			}
		}
		blamed[idx[0]] = message(ce)
		return nil
	}
	a, b := idx[:len(idx)/2], idx[len(idx)/2:]
	ceA, err := s.checkSubset(ctx, cands, a)
	if err != nil {
		return err
	}
	if ceA != nil {
		if err := s.group(ctx, cands, a, ceA, blamed); err != nil {
			return err
		}
		ceB, err := s.checkSubset(ctx, cands, b)
		if err != nil || ceB == nil {
			return err
		}
		return s.group(ctx, cands, b, ceB, blamed)
	}
	// The first half passes, so the failure is in the second one.
	return s.group(ctx, cands, b, nil, blamed)
}

// checkSubset checks the configuration with only cands[idx]: nil when
// HAProxy accepts it, its messages when it rejects it, err when it cannot
// be checked.
func (s *screen) checkSubset(ctx context.Context, cands []lb.Service, idx []int) (*haproxy.CheckError, error) {
	svcs := make([]lb.Service, len(idx))
	for j, i := range idx {
		svcs[j] = cands[i]
	}
	r, err := s.m.renderModel(&lb.Config{Options: s.cfg.Options, Services: svcs}, nil)
	if err != nil {
		return nil, err
	}
	s.checks++
	err = s.p.probe(ctx, r)
	if err == nil {
		return nil, nil
	}
	if ce := rejected(err); ce != nil {
		return ce, nil
	}
	return nil, err
}

// rejected returns HAProxy's messages when err says it rejected a
// configuration, else nil.
func rejected(err error) *haproxy.CheckError {
	var ce *haproxy.CheckError
	if errors.As(err, &ce) {
		return ce
	}
	return nil
}

// generic reports whether an alert is HAProxy's summary rather than a
// message about one line.
func generic(text string) bool {
	return strings.HasPrefix(text, "Error(s) found in configuration file") ||
		strings.HasPrefix(text, "Fatal errors found in configuration")
}

// message is the operator's reason for a rejected port: HAProxy's
// messages, the summaries left out.
func message(ce *haproxy.CheckError) string {
	var parts []string
	for _, a := range ce.Alerts() {
		if !generic(a.Text) && !slices.Contains(parts, a.Text) {
			parts = append(parts, a.Text)
		}
	}
	if len(parts) == 0 {
		return strings.Join(ce.Lines, "; ")
	}
	return strings.Join(parts, "; ")
}

func skippedOf(svc *lb.Service, b *badPort) skippedPort {
	return skippedPort{AppID: svc.AppID, PortIndex: svc.PortIndex, Reason: b.reason(), Rejected: true}
}

// serviceKey identifies what a service renders to, its servers aside: a
// port HAProxy rejected stays left out while only its tasks change, and is
// tried again once its labels change. (A configuration line that depends
// on one task only is unlikely: server lines come from the same template
// for every task.)
func serviceKey(svc *lb.Service) [sha256.Size]byte {
	c := *svc
	hasServers := len(c.Servers) > 0
	c.Servers = nil
	b, err := json.Marshal(&c)
	if err != nil {
		// Cannot happen for lb.Service (plain data); fall back to %#v.
		b = fmt.Appendf(nil, "%#v", c)
	}
	if hasServers {
		b = append(b, 1)
	}
	return sha256.Sum256(b)
}
