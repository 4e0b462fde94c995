package ui_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/scheduler"
	"github.com/switchyard/switchyard/scheduler/agent"
	"github.com/switchyard/switchyard/scheduler/agent/driver"
	"github.com/switchyard/switchyard/scheduler/agent/driver/process"
	"github.com/switchyard/switchyard/scheduler/agentapi"
	"github.com/switchyard/switchyard/scheduler/server"
)

// waitTimeout bounds every wait for a condition in the browser.
const waitTimeout = 45 * time.Second

// cluster is a real scheduler (server.New behind httptest) with one real
// agent running tasks through the process driver.
type cluster struct {
	t   testing.TB
	url string
	// user and password, when set, go with every API call.
	user, password string
}

func startCluster(t testing.TB) *cluster {
	t.Helper()
	return startClusterWith(t, nil)
}

// startClusterWith starts a cluster whose HTTP handler is wrap(handler)
// (wrap nil: the handler as is).
func startClusterWith(t testing.TB, wrap func(http.Handler) http.Handler) *cluster {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	if testing.Verbose() && os.Getenv("UI_TEST_LOGS") != "" {
		logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	}
	h, sched, err := server.New(server.Config{
		Scheduler: scheduler.Config{
			DataDir:           t.TempDir(),
			AgentTimeout:      5 * time.Second,
			ReconcileInterval: 50 * time.Millisecond,
		},
		EventKeepalive: time.Second,
		Logger:         logger,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	schedDone := make(chan error, 1)
	go func() { schedDone <- sched.Run(ctx) }()
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.BaseContext = func(net.Listener) context.Context { return ctx }
	srv.Start()

	pd := process.New(process.Config{PollInterval: 50 * time.Millisecond})
	base := freePortRange(t)
	a, err := agent.New(agent.Config{
		SchedulerURL: srv.URL,
		Hostname:     "127.0.0.1",
		Address:      "127.0.0.1",
		Resources:    agentapi.Resources{CPUs: 4, Mem: 4096, Disk: 1024, Ports: []agentapi.PortRange{{Begin: base, End: base + 40}}},
		Attributes:   map[string]string{"rack": "r1"},
		DataDir:      t.TempDir(),
		Drivers:      map[string]driver.Driver{"process": pd},
		PollWait:     time.Second,
		RetryMin:     50 * time.Millisecond,
		RetryMax:     500 * time.Millisecond,
		// Tests run as root; the tasks run as the test's user.
		AllowRootTasks: true,
		Logger:         logger,
	})
	require.NoError(t, err)
	agentCtx, stopAgent := context.WithCancel(context.Background())
	agentDone := make(chan error, 1)
	go func() { agentDone <- a.Run(agentCtx) }()
	var once sync.Once
	t.Cleanup(func() {
		once.Do(func() {
			stopAgent()
			<-agentDone
			hs, _ := pd.ListTasks(context.Background())
			for _, h := range hs {
				_ = pd.DestroyTask(context.Background(), h.TaskID, true)
			}
			cancel()
			srv.Close()
			<-schedDone
		})
	})
	return &cluster{t: t, url: srv.URL}
}

// freePortRange finds 41 consecutive ports nobody listens on now.
func freePortRange(t testing.TB) int {
	t.Helper()
	for base := 33000; base < 60000; base += 97 {
		ok := true
		for p := base; p <= base+40 && ok; p++ {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				ok = false
				continue
			}
			_ = ln.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free port range")
	return 0
}

func (c *cluster) call(method, path string, body any) (int, []byte) {
	c.t.Helper()
	var r io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		require.NoError(c.t, err)
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, c.url+path, r)
	require.NoError(c.t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if c.user != "" {
		req.SetBasicAuth(c.user, c.password)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	return resp.StatusCode, data
}

func (c *cluster) app(id string) (marathon.App, bool) {
	c.t.Helper()
	code, data := c.call("GET", "/v2/apps"+id+"?embed=app.tasks", nil)
	if code == http.StatusNotFound {
		return marathon.App{}, false
	}
	require.Equal(c.t, http.StatusOK, code, string(data))
	var r marathon.AppResponse
	require.NoError(c.t, json.Unmarshal(data, &r))
	return r.App, true
}

// chromiumPath finds Debian's chromium (or another Chrome). Without one the
// browser tests fail, naming the package to install, unless -short.
func chromiumPath(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless_shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if testing.Short() {
		t.Skip("no chromium on PATH (-short)")
	}
	t.Fatal("the web UI tests need a Chromium browser and none is on PATH: install Debian's package " +
		"`chromium` (apt-get install -y chromium, or .ci/prereqs.sh test), or run with -short to skip them")
	return ""
}

// browser is a headless Chromium tab.
type browser struct {
	t     testing.TB
	ctx   context.Context
	shots string
	n     int
}

func newBrowser(t testing.TB) *browser {
	t.Helper()
	path := chromiumPath(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // we run as root
		chromedp.Flag("disable-gpu", true),
		chromedp.WindowSize(1400, 1000),
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	require.NoError(t, chromedp.Do(ctx), "start chromium (%s)", path)
	return &browser{t: t, ctx: ctx, shots: t.ArtifactDir()}
}

// run runs actions with a deadline, failing the test on error.
func (b *browser) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, waitTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.screenshot("failed-" + strings.NewReplacer(" ", "-", "/", "_").Replace(what))
		fctx, fcancel := context.WithTimeout(b.ctx, 5*time.Second)
		defer fcancel()
		msg, _ := chromedp.Run(fctx, chromedp.Evaluate[string](`document.querySelector('#flash').textContent`))
		b.t.Fatalf("%s: %v (last message on the page: %q)", what, err, msg)
	}
}

// waitJS polls a JavaScript expression until it is truthy.
func (b *browser) waitJS(what, expr string) {
	b.t.Helper()
	poll := chromedp.Poll[any](expr, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(waitTimeout))
	b.run("wait for "+what, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := poll(ctx, t)
		return err
	}))
}

// eval evaluates a JavaScript expression and decodes its value into out
// (nil: ignore it).
func (b *browser) eval(expr string, out any) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, waitTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](expr, chromedp.EvalAwaitPromise))
	require.NoError(b.t, err, "evaluate %s", expr)
	if out != nil {
		require.NoError(b.t, json.Unmarshal(v, out), "evaluate %s: %s", expr, v)
	}
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, waitTimeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	require.NoError(b.t, err, "text of %s", sel)
	return s
}

// screenshot writes the page as NN-name.png into the test's artifact dir.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	b.n++
	p := filepath.Join(b.shots, fmt.Sprintf("%02d-%s.png", b.n, name))
	if err := os.WriteFile(p, buf, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	b.t.Logf("screenshot: %s", p)
}

// click clicks the first element matching sel once there is one. The
// query and the click are one step in the page, so a live re-render cannot
// replace the element in between.
func (b *browser) click(sel string) chromedp.Action[chromedp.Void] {
	poll := chromedp.Poll[any](`(e => e ? (e.click(), true) : false)(document.querySelector(`+strconv.Quote(sel)+`))`,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(waitTimeout))
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := poll(ctx, t)
		return err
	})
}

// hash moves the single page to another view (no reload).
func (b *browser) hash(h string) chromedp.Action[chromedp.Void] {
	return b.js(`location.hash = ` + strconv.Quote(h))
}

// set sets a form field's value and fires its event in one step, so a
// live re-render cannot swap the field in between.
func (b *browser) set(sel, value, event string) chromedp.Action[chromedp.Void] {
	return b.js(`(e => { e.value = ` + strconv.Quote(value) + `; e.dispatchEvent(new Event(` + strconv.Quote(event) + `)); })(document.querySelector(` + strconv.Quote(sel) + `))`)
}

// js evaluates a JavaScript expression as a step, ignoring its value.
func (b *browser) js(expr string) chromedp.Action[chromedp.Void] {
	eval := chromedp.Evaluate[any](expr)
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := eval(ctx, t)
		return err
	})
}

func (b *browser) confirm() {
	b.t.Helper()
	b.run("confirm dialog", chromedp.WaitVisible(chromedp.CSS("#dlg-ok")), b.click("#dlg-ok"))
}

// taskIDs lists the task ids on the app page.
func (b *browser) taskIDs() []string {
	b.t.Helper()
	var ids []string
	b.eval(`Array.from(document.querySelectorAll('#tasks-table tr.task-row')).map(r => r.dataset.task)`, &ids)
	return ids
}

// TestBrowser drives the UI in headless Chromium against a real scheduler
// and agent: every change made through the UI must show up without a
// page reload, carried by /v2/events.
func TestBrowser(t *testing.T) {
	if testing.Short() {
		chromiumPath(t) // skips with -short when chromium is missing
	}
	c := startCluster(t)
	b := newBrowser(t)

	// A browser asking for "/" lands on the UI.
	b.run("open /", chromedp.Navigate(c.url+"/"), chromedp.WaitVisible(chromedp.CSS("#apps-table")))
	var loc string
	b.eval(`location.pathname`, &loc)
	assert.Equal(t, "/ui/", loc)
	// A marker that a reload would wipe.
	b.eval(`window.__noReload = true`, nil)
	b.waitJS("event stream", `document.querySelector('#live').textContent === 'live'`)
	b.screenshot("apps-empty")

	// Create an app from the form: an HTTP server with a health check.
	b.run("open create form", b.click("#nav-create"), chromedp.WaitVisible(chromedp.CSS("#app-form")))
	b.run("fill form",
		chromedp.SetValue(chromedp.CSS("#ff-id"), "/e2e/web"),
		chromedp.SetValue(chromedp.CSS("#ff-cmd"), "exec python3 -m http.server $PORT0 --bind 127.0.0.1"),
		chromedp.SetValue(chromedp.CSS("#ff-instances"), "1"),
		chromedp.SetValue(chromedp.CSS("#ff-cpus"), "0.1"),
		chromedp.SetValue(chromedp.CSS("#ff-mem"), "64"),
		chromedp.SetValue(chromedp.CSS("#ff-ports"), "0"),
		chromedp.SetValue(chromedp.CSS("#ff-labels"), "HAPROXY_GROUP=external\nHAPROXY_0_VHOST=web.example.com"),
		chromedp.SetValue(chromedp.CSS("#ff-hc"), "HTTP"),
		chromedp.SetValue(chromedp.CSS("#ff-hcPath"), "/"),
	)
	b.screenshot("create-form")
	b.run("submit form", b.click("#form-submit"))
	b.waitJS("app page", `location.hash === '#/app/e2e/web'`)
	b.waitJS("app running and healthy", `document.querySelector('#app-status') && document.querySelector('#app-status').textContent === 'Running'
		&& document.querySelectorAll('#tasks-table tr.task-row[data-state="TASK_RUNNING"]').length === 1
		&& document.querySelector('#tasks-table .status-Running') !== null
		&& document.querySelector('.health .h-healthy') !== null`)
	app, ok := c.app("/e2e/web")
	require.True(t, ok)
	require.Len(t, app.Tasks, 1)
	links := b.text("#tasks-table tr.task-row td:nth-child(3)")
	assert.Equal(t, fmt.Sprintf("127.0.0.1:%d", app.Tasks[0].Ports[0]), strings.TrimSpace(links), "host:port of the task")
	b.screenshot("app-running-healthy")

	// The list shows the folder, then the app with its labels.
	b.run("back to list", b.click(`#crumbs a[href="#/apps"]`))
	b.waitJS("folder row", `document.querySelector('tr.group-row[data-group="/e2e"]') !== null`)
	b.run("open folder", b.click(`tr.group-row[data-group="/e2e"] a`))
	b.waitJS("app row", `(r => r && r.querySelector('.status').textContent === 'Running' && r.querySelector('.running').textContent === '1 / 1')(document.querySelector('tr.app-row[data-app="/e2e/web"]'))`)
	row := b.text(`tr.app-row[data-app="/e2e/web"]`)
	assert.Contains(t, row, "external")
	assert.Contains(t, row, "web.example.com")
	assert.Contains(t, row, fmt.Sprint(app.PortDefinitions[0].Port))
	assert.Contains(t, b.text("#crumbs"), "e2e")
	b.screenshot("apps-folder")

	// Scale to 3 from the app page.
	b.run("open app", b.click(`tr.app-row[data-app="/e2e/web"] a`), chromedp.WaitVisible(chromedp.CSS("#act-scale")))
	b.run("scale", b.click("#act-scale"), chromedp.WaitVisible(chromedp.CSS("#dlg-input")),
		chromedp.SetValue(chromedp.CSS("#dlg-input"), "3"))
	b.confirm()
	b.waitJS("3 running", `document.querySelectorAll('#tasks-table tr.task-row[data-state="TASK_RUNNING"]').length === 3
		&& document.querySelector('#app-running').textContent.startsWith('3 of 3')`)
	b.screenshot("app-scaled-3")

	// Kill one task: a replacement takes its place.
	before := b.taskIDs()
	require.Len(t, before, 3)
	killed := before[0]
	b.run("select task", b.click(`#tasks-table tr.task-row[data-task="`+killed+`"] input.sel`))
	b.run("kill", b.click("#kill"))
	b.confirm()
	b.waitJS("replacement running", `(rows => rows.length === 3 && !rows.some(r => r.dataset.task === '`+killed+`')
		&& rows.every(r => r.dataset.state === 'TASK_RUNNING'))(Array.from(document.querySelectorAll('#tasks-table tr.task-row')))`)
	after := b.taskIDs()
	assert.NotContains(t, after, killed)
	assert.Subset(t, after, before[1:])
	app, _ = c.app("/e2e/web")
	assert.Equal(t, 3, app.Instances, "a plain kill keeps the instance count")

	// Kill and scale: one task fewer, and one instance fewer (once the
	// scale above is deployed: it holds the app until its tasks are
	// healthy, and the UI would offer to force it).
	b.waitJS("no deployment", `document.querySelector('#dep-count').hidden`)
	victim := after[0]
	b.run("select task", b.click(`#tasks-table tr.task-row[data-task="`+victim+`"] input.sel`))
	b.run("kill and scale", b.click("#kill-scale"))
	b.confirm()
	b.waitJS("2 of 2", `document.querySelector('#app-running').textContent.startsWith('2 of 2')
		&& document.querySelectorAll('#tasks-table tr.task-row').length === 2
		&& !document.querySelector('#tasks-table tr.task-row[data-task="`+victim+`"]')`)
	app, _ = c.app("/e2e/web")
	assert.Equal(t, 2, app.Instances)

	// Edit JSON: add a label, save, and see it in the configuration.
	b.run("edit", b.click("#act-edit"))
	b.waitJS("editor filled", `document.querySelector('#json-text') && document.querySelector('#json-text').value.includes('"/e2e/web"')`)
	b.eval(`(t => { const d = JSON.parse(t.value); d.labels.TEAM = 'ui'; t.value = JSON.stringify(d, null, 2); return true })(document.querySelector('#json-text'))`, nil)
	b.run("save", b.click("#json-submit"))
	b.waitJS("config shows the label", `location.hash === '#/app/e2e/web?tab=config'
		&& document.querySelector('#config-json') && document.querySelector('#config-json').textContent.includes('"TEAM": "ui"')`)
	app, _ = c.app("/e2e/web")
	assert.Equal(t, "ui", app.Labels["TEAM"])
	b.run("tasks tab", b.click("#tab-tasks"))
	b.waitJS("redeployed", `document.querySelector('#dep-count').hidden && document.querySelector('#app-running').textContent.startsWith('2 of 2')
		&& document.querySelectorAll('#tasks-table tr.task-row[data-state="TASK_RUNNING"]').length === 2`)

	// The form shows the API's 422 beside its field too.
	b.run("open create form", b.hash("#/create"), chromedp.WaitVisible(chromedp.CSS("#app-form")),
		chromedp.SetValue(chromedp.CSS("#ff-id"), "/e2e/Bad_Name"),
		chromedp.SetValue(chromedp.CSS("#ff-cmd"), "sleep 100"),
		b.click("#form-submit"))
	b.waitJS("id error", `document.querySelector('#fe-id').textContent.includes('/id')
		&& document.querySelector('#ff-id').classList.contains('invalid')`)

	// A failing app: its task's message shows in the debug view.
	code, body := c.call("POST", "/v2/apps", map[string]any{"id": "/e2e/failing", "cmd": "echo boom >&2; exit 3", "instances": 1, "cpus": 0.1, "mem": 16})
	require.Equal(t, http.StatusCreated, code, string(body))
	b.run("open debug", b.hash("#/app/e2e/failing?tab=debug"))
	b.waitJS("failure message", `document.querySelector('#failure-message') && document.querySelector('#failure-message').textContent.includes('exited with status 3')`)
	b.waitJS("queue entry", `document.querySelector('#queue-delay') !== null`)
	b.screenshot("app-debug")
	b.run("reset delay", b.click("#reset-delay"))
	b.waitJS("delay reset flash", `document.querySelector('#flash').textContent.startsWith('Delay reset')`)
	code, body = c.call("DELETE", "/v2/apps/e2e/failing?force=true", nil)
	require.Equal(t, http.StatusOK, code, string(body))

	// Invalid JSON: the 422 detail shows beside the offending field.
	b.run("open json editor", b.hash("#/create"), b.click("#mode-json"),
		chromedp.WaitVisible(chromedp.CSS("#json-text")),
		chromedp.SetValue(chromedp.CSS("#json-text"), "{\n  \"id\": \"/e2e/bad\",\n  \"cmd\": \"sleep 100\",\n  \"cpus\": 0.1,\n  \"mem\": 16,\n  \"instances\": -2\n}"),
		b.click("#json-submit"))
	b.waitJS("422 detail", `document.querySelector('#json-notes .err-line') !== null`)
	var note struct {
		Line int    `json:"line"`
		Text string `json:"text"`
	}
	b.eval(`(n => ({line: +n.dataset.line, text: n.textContent}))(document.querySelector('#json-notes .err-line'))`, &note)
	assert.Equal(t, 6, note.Line, "the note sits on the line of \"instances\"")
	assert.Contains(t, note.Text, "/instances")
	_, exists := c.app("/e2e/bad")
	assert.False(t, exists)
	b.screenshot("json-422")

	// Roll back: apply the first version (1 instance) from the history.
	b.run("open config", b.hash("#/app/e2e/web?tab=config"))
	b.waitJS("versions", `document.querySelectorAll('#versions-table tr.version-row').length >= 2`)
	var oldest string
	b.eval(`(r => r[r.length-1].dataset.version)(document.querySelectorAll('#versions-table tr.version-row'))`, &oldest)
	b.run("show version", b.click(`.view-version[data-version="`+oldest+`"]`))
	b.waitJS("version json", `document.querySelector('#version-json') && document.querySelector('#version-json').textContent.includes('"instances": 1')`)
	b.screenshot("app-config-versions")
	// The scale above may still be deploying (its tasks must turn
	// healthy); the UI shows that, and a user waits for it.
	b.waitJS("no deployment", `document.querySelector('#dep-count').hidden`)
	b.run("apply version", b.click(`.apply-version[data-version="`+oldest+`"]`))
	b.confirm()
	b.run("tasks tab", b.click("#tab-tasks"))
	b.waitJS("back to 1 instance", `document.querySelector('#app-running') && document.querySelector('#app-running').textContent.startsWith('1 of 1')
		&& document.querySelectorAll('#tasks-table tr.task-row').length === 1`)
	app, _ = c.app("/e2e/web")
	assert.Equal(t, 1, app.Instances)

	// A deployment that cannot finish (no agent has 100 CPUs) shows its
	// steps; rolling it back removes the app it was creating.
	b.waitJS("no deployment", `document.querySelector('#dep-count').hidden`)
	code, body = c.call("POST", "/v2/apps", map[string]any{"id": "/e2e/huge", "cmd": "sleep 100", "instances": 1, "cpus": 100, "mem": 16})
	require.Equal(t, http.StatusCreated, code, string(body))
	b.run("huge app", b.hash("#/app/e2e/huge"))
	b.waitJS("deploying", `document.querySelector('#app-status') && document.querySelector('#app-status').textContent === 'Waiting'
		&& document.querySelector('#app-deploying a') !== null`)
	b.run("deployments", b.click("#app-deploying a"))
	b.waitJS("deployment row", `Array.from(document.querySelectorAll('tr.deployment-row')).some(r => r.textContent.includes('/e2e/huge'))`)
	assert.Contains(t, b.text("#deployments-table"), "StartApplication")
	assert.Equal(t, "1", b.text("#dep-count"))
	b.screenshot("deployments")
	b.run("rollback", b.click("tr.deployment-row .rollback"))
	b.confirm()
	b.waitJS("deployments done", `document.querySelector('#no-deployments') !== null`)
	_, exists = c.app("/e2e/huge")
	assert.False(t, exists, "rolling back a create removes the app")

	// Stopping a deployment abandons it and leaves the app as it is.
	code, body = c.call("POST", "/v2/apps", map[string]any{"id": "/e2e/huge2", "cmd": "sleep 100", "instances": 1, "cpus": 100, "mem": 16})
	require.Equal(t, http.StatusCreated, code, string(body))
	b.waitJS("deployment row", `Array.from(document.querySelectorAll('tr.deployment-row')).some(r => r.textContent.includes('/e2e/huge2'))`)
	b.run("stop", b.click("tr.deployment-row .stop"))
	b.confirm()
	b.waitJS("deployments done", `document.querySelector('#no-deployments') !== null`)
	_, exists = c.app("/e2e/huge2")
	assert.True(t, exists, "a stopped deployment leaves its app")
	code, body = c.call("DELETE", "/v2/apps/e2e/huge2?force=true", nil)
	require.Equal(t, http.StatusOK, code, string(body))

	// Agents: the one agent, its attributes and the web task.
	b.run("agents", b.hash("#/agents"))
	b.waitJS("agent row", `(r => r && r.textContent.includes('/e2e/web') && r.textContent.includes('rack:r1'))(document.querySelector('tr.agent-row'))`)
	agentRow := b.text("tr.agent-row")
	assert.Contains(t, agentRow, "yes", "reachable")
	assert.Contains(t, agentRow, "0.1 / 4", "CPU used / total")
	b.screenshot("agents")

	// Suspend, then resume with 2 instances.
	b.run("open app", b.hash("#/app/e2e/web"), chromedp.WaitVisible(chromedp.CSS("#act-suspend")))
	b.run("suspend", b.click("#act-suspend"))
	b.confirm()
	b.waitJS("suspended", `document.querySelector('#app-status').textContent === 'Suspended'
		&& document.querySelectorAll('#tasks-table tr.task-row').length === 0`)
	b.run("resume", b.click("#act-resume"), chromedp.WaitVisible(chromedp.CSS("#dlg-input")), chromedp.SetValue(chromedp.CSS("#dlg-input"), "2"))
	b.confirm()
	b.waitJS("resumed", `document.querySelector('#app-status').textContent === 'Running'
		&& document.querySelectorAll('#tasks-table tr.task-row[data-state="TASK_RUNNING"]').length === 2`)

	// Search and filters on the list (all apps, flat).
	code, body = c.call("POST", "/v2/apps", map[string]any{"id": "/other/idle", "cmd": "sleep 100", "instances": 0, "cpus": 0.1, "mem": 16,
		"labels": map[string]string{"HAPROXY_GROUP": "internal"}})
	require.Equal(t, http.StatusCreated, code, string(body))
	shown := `Array.from(document.querySelectorAll('#apps-table tr.app-row')).map(r => r.dataset.app).join(',')`
	b.run("list", b.hash("#/apps"))
	b.waitJS("both folders", `document.querySelectorAll('#apps-table tr.group-row').length === 2`)
	b.run("filter suspended", b.set("#f-status", "Suspended", "change"))
	b.waitJS("only the idle app", shown+` === '/other/idle'`)
	b.run("filter group", b.set("#f-status", "", "change"),
		b.set("#f-group", "external", "change"))
	b.waitJS("only the web app", shown+` === '/e2e/web'`)
	b.run("search", b.set("#f-group", "", "change"),
		b.set("#f-q", "idle", "input"))
	b.waitJS("search hit", shown+` === '/other/idle'`)
	b.run("search a label value", b.set("#f-q", "web.example", "input"))
	b.waitJS("label search hit", shown+` === '/e2e/web'`)
	b.run("clear", b.set("#f-q", "", "input"))
	b.waitJS("folders again", `document.querySelectorAll('#apps-table tr.group-row').length === 2`)

	// Destroy the app.
	b.run("open app", b.hash("#/app/e2e/web"), chromedp.WaitVisible(chromedp.CSS("#act-destroy")))
	b.run("destroy", b.click("#act-destroy"))
	b.confirm()
	b.waitJS("back on the list", `location.hash.startsWith('#/apps') && document.querySelector('#apps-table') !== null
		&& document.querySelector('tr.app-row[data-app="/e2e/web"]') === null`)
	_, exists = c.app("/e2e/web")
	assert.False(t, exists)
	b.screenshot("apps-after-destroy")

	// Nothing above reloaded the page (Navigate to a new hash does not),
	// and the updates came over the event stream.
	var state struct {
		NoReload bool `json:"noReload"`
		Events   int  `json:"events"`
	}
	b.eval(`({noReload: window.__noReload === true, events: window.__switchyard.events})`, &state)
	assert.True(t, state.NoReload, "the page was reloaded")
	assert.Positive(t, state.Events, "no event arrived over /v2/events")
}

// TestBrowserBasicAuth: with HTTP basic auth in front of the API (and the
// UI), the browser's credentials carry the page, its API calls and the
// event stream.
func TestBrowserBasicAuth(t *testing.T) {
	if testing.Short() {
		chromiumPath(t)
	}
	const user, password = "admin", "s3cret"
	c := startClusterWith(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, p, ok := r.BasicAuth()
			// Agents authenticate on their own API (cluster secret).
			if !strings.HasPrefix(r.URL.Path, "/agentapi/") && (!ok || u != user || p != password) {
				w.Header().Set("WWW-Authenticate", `Basic realm="switchyard"`)
				http.Error(w, `{"message":"Unauthorized"}`, http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	code, _ := c.call("GET", "/v2/apps", nil)
	require.Equal(t, http.StatusUnauthorized, code, "the API refuses calls without credentials")
	c.user, c.password = user, password

	b := newBrowser(t)
	authURL := strings.Replace(c.url, "http://", "http://"+user+":"+password+"@", 1)
	b.run("open /ui/", chromedp.Navigate(authURL+"/ui/"), chromedp.WaitVisible(chromedp.CSS("#apps-table")))
	b.waitJS("event stream", `document.querySelector('#live').textContent === 'live'`)

	code, body := c.call("POST", "/v2/apps", map[string]any{"id": "/auth/sleeper", "cmd": "sleep 1000", "instances": 1, "cpus": 0.1, "mem": 16})
	require.Equal(t, http.StatusCreated, code, string(body))
	b.waitJS("app row, live", `document.querySelector('tr.group-row[data-group="/auth"]') !== null`)
	b.run("open app", b.hash("#/app/auth/sleeper"))
	b.waitJS("running", `document.querySelectorAll('#tasks-table tr.task-row[data-state="TASK_RUNNING"]').length === 1`)
	b.run("agents", b.hash("#/agents"))
	b.waitJS("agent row", `(r => r && r.textContent.includes('/auth/sleeper'))(document.querySelector('tr.agent-row'))`)
	var events int
	b.eval(`window.__switchyard.events`, &events)
	assert.Positive(t, events, "events arrived over the authenticated stream")
	b.screenshot("agents-basic-auth")
}
