package controller

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/haproxy"
	"github.com/switchyard/switchyard/haproxy/haproxytest"
	"github.com/switchyard/switchyard/lb"
	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/marathon/marathontest"
)

// realCheck is an applier fixture whose validation runs the real haproxy
// -c, counting the runs.
type realCheck struct {
	*applierFixture
	c    *Controller
	st   *loopState
	src  *fakeSource
	logs *syncWriter
	runs int
}

func newRealCheck(t *testing.T, apps ...marathon.App) *realCheck {
	t.Helper()
	return newRealCheckOpts(t, lb.Options{}, apps...)
}

func newRealCheckOpts(t *testing.T, opts lb.Options, apps ...marathon.App) *realCheck {
	t.Helper()
	bin := haproxytest.Binary(t)
	rc := &realCheck{applierFixture: newApplierFixture(t, opts), src: newFakeSource(apps...), logs: &syncWriter{}}
	rc.a.check = func(ctx context.Context, cfg []byte) error {
		rc.runs++
		return haproxy.Check(ctx, bin, cfg)
	}
	c, err := newController(Config{
		Marathon: rc.src, Registry: prometheus.NewRegistry(),
		Logger: slog.New(slog.NewTextHandler(rc.logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	require.NoError(t, err)
	c.rend, c.applier = rc.rend, rc.a
	rc.a.m = c.metrics
	rc.c = c
	rc.st = &loopState{timer: time.NewTimer(time.Hour), flushTimer: time.NewTimer(time.Hour), skipped: map[skippedPort]bool{}}
	t.Cleanup(func() { rc.st.timer.Stop(); rc.st.flushTimer.Stop() })
	return rc
}

// sync re-reads the fake Marathon and applies, as the loop does.
func (rc *realCheck) sync(t *testing.T) {
	t.Helper()
	rc.st.needFetch = true
	rc.c.sync(t.Context(), rc.st)
	require.False(t, rc.st.pending, "sync asked to be retried: %s", rc.logs.String())
}

func (rc *realCheck) running() string { return string(rc.a.running().Config) }

// rejectedPorts returns the reasons of the ports HAProxy rejected in the
// last sync, by app id.
func (rc *realCheck) rejectedPorts() map[string]string {
	out := map[string]string{}
	for s := range rc.st.skipped {
		if s.Rejected {
			out[s.AppID] = s.Reason
		}
	}
	return out
}

// exposed builds an app in the served group with one task.
func exposed(id string, servicePort int, labels map[string]string) marathon.App {
	l := map[string]string{"HAPROXY_GROUP": "external"}
	for k, v := range labels {
		l[k] = v
	}
	return marathontest.App(id, marathontest.WithLabels(l), marathontest.WithServicePorts(servicePort),
		marathontest.WithTask("10.0.0.1", 20000+servicePort%10000))
}

// badApps are apps whose labels pass lb's checks but produce a
// configuration HAProxy rejects, each with the words HAProxy uses.
var badApps = []struct {
	name   string
	labels map[string]string
	fixed  map[string]string // the same app, repaired
	reason string
}{
	{
		name:   "bind options",
		labels: map[string]string{"HAPROXY_0_BIND_OPTIONS": "foo"},
		fixed:  map[string]string{"HAPROXY_0_BIND_OPTIONS": "tfo"},
		reason: "unknown keyword 'foo'",
	},
	{
		name:   "balance",
		labels: map[string]string{"HAPROXY_0_BALANCE": "uri bogus-algo"},
		fixed:  map[string]string{"HAPROXY_0_BALANCE": "uri whole"},
		reason: "bogus-algo",
	},
	{
		name:   "per-app backend head",
		labels: map[string]string{"HAPROXY_0_BACKEND_HEAD": "\nbackend {backend}\n  balance {balance}\n  mode {mode}\n  frobnicate yes\n"},
		fixed:  map[string]string{"HAPROXY_0_BACKEND_HEAD": "\nbackend {backend}\n  balance {balance}\n  mode {mode}\n  option tcplog\n"},
		reason: "unknown keyword 'frobnicate'",
	},
	{
		name: "vhost acl in the shared frontend",
		labels: map[string]string{"HAPROXY_0_VHOST": "bad.example.com",
			"HAPROXY_0_HTTP_FRONTEND_ACL": "  acl host_{cleanedUpHostname} hdr(host) -i {hostname}\n  use_backend {backend} iff host_{cleanedUpHostname}\n"},
		fixed: map[string]string{"HAPROXY_0_VHOST": "bad.example.com",
			"HAPROXY_0_HTTP_FRONTEND_ACL": "  acl host_{cleanedUpHostname} hdr(host) -i {hostname}\n  use_backend {backend} if host_{cleanedUpHostname}\n"},
		reason: "unexpected keyword 'iff'",
	},
}

func TestBadAppIsLeftOut(t *testing.T) {
	for _, tc := range badApps {
		t.Run(tc.name, func(t *testing.T) {
			good := exposed("/good", 10000, map[string]string{"HAPROXY_0_VHOST": "good.example.com"})
			rc := newRealCheck(t, good)
			require.NoError(t, rc.c.initial(t.Context(), rc.st))
			require.Contains(t, rc.running(), "backend good_10000")

			// A bad app arrives together with a change of the good one.
			good2 := exposed("/good", 10000, map[string]string{"HAPROXY_0_VHOST": "good.example.com,www.good.example.com"})
			rc.src.set(good2, exposed("/bad", 10001, tc.labels))
			rc.sync(t)
			assert.Contains(t, rc.running(), "www.good.example.com", "the good app's change is applied")
			assert.NotContains(t, rc.running(), "bad_10001", "the bad app is left out")
			reasons := rc.rejectedPorts()
			require.Contains(t, reasons, "/bad")
			assert.Contains(t, reasons["/bad"], tc.reason, "HAProxy's message is the reason")
			assert.Len(t, reasons, 1, "only the bad app is blamed")
			assert.Equal(t, 1.0, valueOf(t, rc.c.metrics.invalidApps))
			assert.Equal(t, 1.0, valueOf(t, rc.c.metrics.skippedApps))
			assert.Equal(t, rc.running(), rc.onDisk(t), "applied and written")
			logs := rc.logs.String()
			assert.Equal(t, 1, strings.Count(logs, "level=WARN msg=\"app port skipped\" app_id=/bad port_index=0"), logs)

			// Known bad: the next change costs one haproxy -c and logs
			// nothing new.
			runs := rc.runs
			rc.src.set(good2, exposed("/bad", 10001, tc.labels), exposed("/other", 10002, nil))
			rc.sync(t)
			assert.Contains(t, rc.running(), "backend other_10002")
			assert.Equal(t, runs+1, rc.runs, "the bad app is not checked again")
			assert.Equal(t, 1, strings.Count(rc.logs.String(), "app port skipped"), "logged once")

			// New templates (same text): the bad app is blamed afresh and
			// stays out; nothing else changes.
			before := rc.running()
			m, err := loadRenderer(lb.Options{MapDir: rc.a.mapDir}, "")
			require.NoError(t, err)
			rc.c.rend = m
			rc.sync(t)
			assert.Equal(t, before, rc.running())
			assert.Contains(t, rc.rejectedPorts(), "/bad")

			// Fixed: it comes back.
			rc.src.set(good2, exposed("/bad", 10001, tc.fixed), exposed("/other", 10002, nil))
			rc.sync(t)
			assert.Contains(t, rc.running(), "backend bad_10001", "the repaired app is applied")
			assert.Empty(t, rc.rejectedPorts())
			assert.Zero(t, valueOf(t, rc.c.metrics.invalidApps))
		})
	}
}

func TestBadAppsTogether(t *testing.T) {
	apps := []marathon.App{exposed("/good", 10000, map[string]string{"HAPROXY_0_VHOST": "good.example.com"})}
	for i, tc := range badApps {
		apps = append(apps, exposed(fmt.Sprintf("/bad%d", i), 10001+i, tc.labels))
	}
	rc := newRealCheck(t, apps...)
	require.NoError(t, rc.c.initial(t.Context(), rc.st), "a bad app does not keep lb from starting")
	assert.Contains(t, rc.running(), "backend good_10000")
	reasons := rc.rejectedPorts()
	require.Len(t, reasons, len(badApps), "each bad app blamed: %v", reasons)
	for i, tc := range badApps {
		assert.Contains(t, reasons[fmt.Sprintf("/bad%d", i)], tc.reason, tc.name)
		assert.NotContains(t, rc.running(), fmt.Sprintf("_%d\n", 10001+i))
	}
	assert.Equal(t, float64(len(badApps)), valueOf(t, rc.c.metrics.invalidApps))
}

// With --haproxy-map the candidate configurations read map files too.
func TestBadAppWithMaps(t *testing.T) {
	good := exposed("/good", 10000, map[string]string{"HAPROXY_0_VHOST": "good.example.com"})
	rc := newRealCheckOpts(t, lb.Options{HAProxyMap: true}, good)
	require.NoError(t, rc.c.initial(t.Context(), rc.st))
	bad := exposed("/bad", 10001, map[string]string{"HAPROXY_0_VHOST": "bad.example.com", "HAPROXY_0_BIND_OPTIONS": "foo"})
	rc.src.set(good, bad, exposed("/new", 10002, map[string]string{"HAPROXY_0_VHOST": "new.example.com"}))
	rc.sync(t)
	assert.Contains(t, rc.running(), "backend new_10002")
	assert.Contains(t, rc.rejectedPorts(), "/bad")
	b, err := os.ReadFile(filepath.Join(rc.a.mapDir, "domain2backend.map"))
	require.NoError(t, err)
	assert.Equal(t, "good.example.com good_10000\nnew.example.com new_10002\n", string(b), "the applied maps, without the bad app")
}

func TestGlobalTemplateFailureKeepsThePreviousConfig(t *testing.T) {
	apps := []marathon.App{
		exposed("/a", 10000, nil),
		exposed("/b", 10001, nil),
	}
	rc := newRealCheck(t, apps...)
	require.NoError(t, rc.c.initial(t.Context(), rc.st))
	before := rc.running()

	// A broken global template: every backend is rejected, so no app is
	// to blame.
	dir := t.TempDir()
	writeFile(t, dir+"/HAPROXY_BACKEND_HEAD", "\nbackend {backend}\n  balance {balance}\n  mode {mode}\n  frobnicate yes\n")
	m, err := loadRenderer(lb.Options{MapDir: rc.a.mapDir}, dir)
	require.NoError(t, err)
	rc.c.rend = m
	rc.src.set(append(apps, exposed("/c", 10002, nil))...)
	rc.sync(t)
	assert.Equal(t, before, rc.running(), "the previous configuration keeps serving")
	assert.Equal(t, before, rc.onDisk(t))
	assert.Empty(t, rc.rejectedPorts(), "no app blamed")
	assert.Equal(t, 1.0, valueOf(t, rc.c.metrics.validationFailures))
	assert.Contains(t, rc.logs.String(), "no app port to blame")

	// The same again is neither checked nor searched again.
	runs := rc.runs
	rc.sync(t)
	assert.Equal(t, runs, rc.runs)
}

func TestGroupTestingFindsBadPorts(t *testing.T) {
	tests := []struct {
		name string
		apps int
		bad  []int
	}{
		{name: "one of 8", apps: 8, bad: []int{5}},
		{name: "two of 16", apps: 16, bad: []int{0, 11}},
		{name: "three of 5", apps: 5, bad: []int{1, 2, 4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var apps []marathon.App
			for i := range tc.apps {
				var labels map[string]string
				if contains(tc.bad, i) {
					labels = badApps[i%len(badApps)].labels
				}
				apps = append(apps, exposed(fmt.Sprintf("/app%02d", i), 10000+i, labels))
			}
			rc := newRealCheck(t)
			s := newScreen(rc.rend, rc.a)
			r, err := s.render(apps)
			require.NoError(t, err)
			// Messages that name no line nor app: only group testing can
			// find the culprits.
			iso, err := s.isolate(t.Context(), r, &haproxy.CheckError{Lines: []string{"[ALERT] config : something is wrong"}})
			require.NoError(t, err)
			assert.Equal(t, "group testing", iso.how)
			var got []string
			for _, b := range iso.blamed {
				got = append(got, b.AppID)
			}
			var want []string
			for _, i := range tc.bad {
				want = append(want, fmt.Sprintf("/app%02d", i))
			}
			assert.Equal(t, want, got)
			assert.NoError(t, rc.a.probe(t.Context(), iso.next), "the rest is valid")
			bound := 1 + 2*len(tc.bad)*int(math.Ceil(math.Log2(float64(tc.apps)))) + len(tc.bad)
			assert.LessOrEqual(t, s.checks, bound, "checks")
		})
	}
}

func contains(xs []int, x int) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

// TestBadAppCostAt1000Apps measures the haproxy -c runs one bad app costs
// among 1,000, by the fast path and by group testing.
func TestBadAppCostAt1000Apps(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: thousands of haproxy -c runs' worth of config")
	}
	const n = 1000
	var apps []marathon.App
	for i := range n {
		apps = append(apps, exposed(fmt.Sprintf("/app%04d", i), 10000+i, nil))
	}
	bad := exposed("/bad", 9999, badApps[0].labels)

	rc := newRealCheck(t, apps...)
	require.NoError(t, rc.c.initial(t.Context(), rc.st))
	for i, tc := range badApps {
		vhost := fmt.Sprintf("new%d.example.com", i)
		good := exposed("/app0000", 10000, map[string]string{"HAPROXY_0_VHOST": vhost})
		runs, start := rc.runs, time.Now()
		rc.src.set(append([]marathon.App{good, exposed("/bad", 9999, tc.labels)}, apps[1:]...)...)
		rc.sync(t)
		require.Contains(t, rc.rejectedPorts(), "/bad")
		require.Contains(t, rc.running(), vhost)
		fast := rc.runs - runs
		t.Logf("fast path, %s: %d haproxy -c runs, %s, for 1 bad app among %d", tc.name, fast, time.Since(start), n+1)
		assert.Equal(t, 2, fast, "the failing check and the re-check")
	}

	s := newScreen(rc.rend, rc.a)
	r, err := s.render(append([]marathon.App{bad}, apps...))
	require.NoError(t, err)
	start := time.Now()
	iso, err := s.isolate(t.Context(), r, &haproxy.CheckError{Lines: []string{"[ALERT] config : something is wrong"}})
	require.NoError(t, err)
	require.Len(t, iso.blamed, 1)
	t.Logf("group testing: %d haproxy -c runs, %s, for 1 bad app among %d", s.checks, time.Since(start), n+1)
	assert.LessOrEqual(t, s.checks, 2+2*10, "about 2 log2(n)")
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
}
