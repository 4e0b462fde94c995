package marathontest_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/marathon/marathontest"
)

// get performs a GET with an optional Accept header and returns status and
// body.
func get(t *testing.T, url, accept string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	require.NoError(t, err)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestAppsEndpoint(t *testing.T) {
	t.Parallel()
	m := marathontest.New(t)
	web := marathontest.App("/prod/web", marathontest.WithServicePorts(10000),
		marathontest.WithHealthyTask("10.0.0.1", 31000), marathontest.WithUnhealthyTask("10.0.0.2", 31001))
	m.SetApps([]marathon.App{web, marathontest.App("db")})

	code, body := get(t, m.URL+"/v2/apps?embed=apps.tasks", "application/json")
	require.Equal(t, http.StatusOK, code)
	apps, err := marathon.DecodeApps([]byte(body))
	require.NoError(t, err)
	assert.Equal(t, m.Apps(), apps, "Apps() is what GET /v2/apps?embed=apps.tasks returns")
	require.Len(t, apps, 2)
	assert.Equal(t, [4]int{0, 2, 1, 1}, [4]int{apps[0].TasksStaged, apps[0].TasksRunning, apps[0].TasksHealthy, apps[0].TasksUnhealthy})
	assert.Equal(t, []marathon.DeploymentRef{}, apps[1].Deployments)

	code, body = get(t, m.URL+"/v2/apps", "")
	require.Equal(t, http.StatusOK, code)
	assert.NotContains(t, body, `"tasks"`, "no tasks without embed=apps.tasks")
	assert.Contains(t, body, `"tasksRunning":2`, "counts are always embedded")

	code, body = get(t, m.URL+"/v2/apps/prod/web", "")
	require.Equal(t, http.StatusOK, code)
	var one marathon.AppResponse
	require.NoError(t, json.Unmarshal([]byte(body), &one))
	assert.Equal(t, apps[0], one.App, "the single-app endpoint always embeds tasks")

	code, body = get(t, m.URL+"/v2/apps/nope", "")
	assert.Equal(t, http.StatusNotFound, code)
	assert.JSONEq(t, `{"message":"App '/nope' does not exist"}`, body)

	m.SetApps(nil)
	_, body = get(t, m.URL+"/v2/apps", "")
	assert.JSONEq(t, `{"apps":[]}`, body)
	assert.Equal(t, 3, m.AppsRequests(), "GET /v2/apps counted, /v2/apps/{id} not")
}

func TestStateIsCopied(t *testing.T) {
	t.Parallel()
	m := marathontest.New(t)
	app := marathontest.App("/a", marathontest.WithLabel("HAPROXY_GROUP", "external"), marathontest.WithTask("h", 1))
	m.SetApps([]marathon.App{app})
	app.Labels["HAPROXY_GROUP"] = "changed"
	app.Tasks[0].Host = "changed"
	got := m.Apps()
	assert.Equal(t, "external", got[0].Labels["HAPROXY_GROUP"], "SetApps deep-copies")
	assert.Equal(t, "h", got[0].Tasks[0].Host)
	got[0].Labels["HAPROXY_GROUP"] = "again"
	assert.Equal(t, "external", m.Apps()[0].Labels["HAPROXY_GROUP"], "Apps returns a copy")

	m.UpsertApp(marathontest.App("b"))
	m.UpsertApp(marathontest.App("/a", marathontest.WithLabel("HAPROXY_GROUP", "internal")))
	ids := []string{}
	for _, a := range m.Apps() {
		ids = append(ids, a.ID+"="+a.Labels["HAPROXY_GROUP"])
	}
	assert.Equal(t, []string{"/a=internal", "/b="}, ids, "upsert replaces in place and appends new ids")

	m.RemoveApp("a")
	m.RemoveApp("/missing")
	require.Len(t, m.Apps(), 1)
	assert.Equal(t, "/b", m.Apps()[0].ID)
}

func TestMiscEndpoints(t *testing.T) {
	t.Parallel()
	m := marathontest.New(t)
	code, body := get(t, m.URL+"/ping", "")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "pong", body)
	_, body = get(t, m.URL+"/ping", "application/json")
	assert.JSONEq(t, `"pong"`, body)

	code, body = get(t, m.URL+"/v2/info", "")
	assert.Equal(t, http.StatusOK, code)
	var info struct {
		Name    string `json:"name"`
		Elected bool   `json:"elected"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &info))
	assert.Equal(t, "marathon", info.Name)
	assert.True(t, info.Elected)

	code, _ = get(t, m.URL+"/v2/nothing", "")
	assert.Equal(t, http.StatusNotFound, code)
	code, body = get(t, m.URL+"/v2/events", "application/json")
	assert.Equal(t, http.StatusMethodNotAllowed, code, "events need Accept: text/event-stream")
	assert.Contains(t, body, "message")
}

func TestDownAndAuth(t *testing.T) {
	t.Parallel()
	m := marathontest.New(t)
	m.SetDown(true)
	for _, path := range []string{"/v2/apps", "/ping", "/v2/info", "/v2/events"} {
		code, _ := get(t, m.URL+path, "text/event-stream")
		assert.Equal(t, http.StatusServiceUnavailable, code, path)
	}
	m.SetDown(false)
	m.SetBasicAuth("u", "p")
	code, body := get(t, m.URL+"/v2/apps", "")
	assert.Equal(t, http.StatusUnauthorized, code)
	assert.JSONEq(t, `{"message":"Invalid username or password."}`, body)
	code, _ = get(t, strings.Replace(m.URL, "http://", "http://u:p@", 1)+"/v2/apps", "")
	assert.Equal(t, http.StatusOK, code)
}

// sseConn is a raw /v2/events connection read frame by frame.
type sseConn struct {
	t      *testing.T
	frames chan string
	cancel context.CancelFunc
}

func openStream(t *testing.T, m *marathontest.Server, query string) *sseConn {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.URL+"/v2/events"+query, nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "text/event-stream;charset=utf-8", resp.Header.Get("Content-Type"))
	c := &sseConn{t: t, frames: make(chan string, 100), cancel: cancel}
	go func() {
		defer resp.Body.Close()
		defer close(c.frames)
		r := bufio.NewReader(resp.Body)
		var frame strings.Builder
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			frame.WriteString(line)
			if line == "\r\n" {
				c.frames <- frame.String()
				frame.Reset()
			}
		}
	}()
	return c
}

// next returns the next frame, or "EOF" when the connection ended.
func (c *sseConn) next() string {
	c.t.Helper()
	select {
	case f, ok := <-c.frames:
		if !ok {
			return "EOF"
		}
		return f
	case <-time.After(10 * time.Second):
		c.t.Fatal("no frame within 10s")
		return ""
	}
}

// nextEvent skips keepalive comments.
func (c *sseConn) nextEvent() string {
	c.t.Helper()
	for {
		if f := c.next(); f != ": ping\r\n\r\n" {
			return f
		}
	}
}

// splitFrame checks the exact Marathon frame shape and returns its parts.
func splitFrame(t *testing.T, f string) (name string, data map[string]any) {
	t.Helper()
	lines := strings.Split(f, "\r\n")
	require.Len(t, lines, 4, "frame %q: event line, data line, blank line", f)
	require.True(t, strings.HasPrefix(lines[0], "event: "), "frame %q", f)
	require.True(t, strings.HasPrefix(lines[1], "data: "), "frame %q", f)
	require.Equal(t, []string{"", ""}, lines[2:], "frame %q", f)
	require.NoError(t, json.Unmarshal([]byte(strings.TrimPrefix(lines[1], "data: ")), &data), "frame %q", f)
	return strings.TrimPrefix(lines[0], "event: "), data
}

func TestEventStreamWireFormat(t *testing.T) {
	t.Parallel()
	m := marathontest.New(t)
	m.SetPingInterval(20 * time.Millisecond)
	all := openStream(t, m, "")
	name, data := splitFrame(t, all.next())
	assert.Equal(t, marathon.EventStreamAttached, name, "first frame")
	assert.Equal(t, marathon.EventStreamAttached, data["eventType"])
	assert.Equal(t, "127.0.0.1", data["remoteAddress"])
	assert.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`, data["timestamp"])
	assert.Equal(t, ": ping\r\n\r\n", all.next(), "keepalive comment")
	require.Equal(t, 1, m.StreamCount())

	filtered := openStream(t, m, "?event_type=status_update_event&plan-format=light")
	name, _ = splitFrame(t, all.nextEvent())
	assert.Equal(t, marathon.EventStreamAttached, name, "other streams see the new attach")
	require.Eventually(t, func() bool { return m.StreamCount() == 2 }, 10*time.Second, 5*time.Millisecond)

	m.Publish(marathon.EventAPIPost, marathon.APIPostEvent{URI: "/v2/apps/a"})
	m.Publish(marathon.EventStatusUpdate, map[string]any{"taskId": "t1", "timestamp": "2026-01-01T00:00:00.000Z"})
	name, data = splitFrame(t, all.nextEvent())
	assert.Equal(t, marathon.EventAPIPost, name)
	assert.Equal(t, marathon.EventAPIPost, data["eventType"], "eventType filled in a typed payload")
	assert.Equal(t, "/v2/apps/a", data["uri"])
	name, data = splitFrame(t, all.nextEvent())
	assert.Equal(t, marathon.EventStatusUpdate, name)
	assert.Equal(t, map[string]any{"taskId": "t1", "eventType": "status_update_event", "timestamp": "2026-01-01T00:00:00.000Z"}, data)

	name, data = splitFrame(t, filtered.nextEvent())
	assert.Equal(t, marathon.EventStatusUpdate, name, "filtered stream: no attach, no api_post_event")
	assert.Equal(t, "t1", data["taskId"])

	m.PublishRaw(marathon.EventStatusUpdate, []byte("{garbage"))
	assert.Equal(t, "event: status_update_event\r\ndata: {garbage\r\n\r\n", filtered.nextEvent())
	assert.Equal(t, "event: status_update_event\r\ndata: {garbage\r\n\r\n", all.nextEvent())

	filtered.cancel()
	name, _ = splitFrame(t, all.nextEvent())
	assert.Equal(t, marathon.EventStreamDetached, name, "others see the detach")

	m.DropStreams()
	assert.Equal(t, "EOF", all.nextEvent(), "DropStreams ends the connection")
	require.Eventually(t, func() bool { return m.StreamCount() == 0 }, 10*time.Second, 5*time.Millisecond)
}

func TestSetDownDropsStreams(t *testing.T) {
	t.Parallel()
	m := marathontest.New(t)
	c := openStream(t, m, "")
	c.nextEvent()
	m.SetDown(true)
	assert.Equal(t, "EOF", c.nextEvent())
}

func TestPublishBadPayloadReported(t *testing.T) {
	t.Parallel()
	rec := &recordingTB{TB: t}
	m := marathontest.New(rec)
	m.Publish(marathon.EventStatusUpdate, map[string]any{"bad": make(chan int)})
	assert.True(t, rec.failed, "an unencodable payload is reported to the test")
}

// recordingTB records Errorf instead of failing the test.
type recordingTB struct {
	testing.TB
	failed bool
}

func (r *recordingTB) Errorf(string, ...any) { r.failed = true }

func TestSlowStreamDroppedNotBlocking(t *testing.T) {
	t.Parallel()
	m := marathontest.New(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.URL+"/v2/events", nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close() // never read: a stuck consumer
	require.Equal(t, 1, m.StreamCount())

	payload := []byte(`{"eventType":"x","pad":"` + strings.Repeat("p", 16<<10) + `"}`)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 3000 { // ~48 MiB: more than socket buffers and the queue hold
			m.PublishRaw("x", payload)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Publish blocked on a stuck stream")
	}
	require.Eventually(t, func() bool { return m.StreamCount() == 0 }, 10*time.Second, 5*time.Millisecond,
		"the stuck stream is dropped once its queue overflows")
}
