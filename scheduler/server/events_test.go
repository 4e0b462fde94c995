package server_test

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
)

// frame is one decoded SSE frame.
type frame struct {
	event string
	data  string
	ping  bool
}

// stream reads raw CRLF frames from /v2/events.
type stream struct {
	t      *testing.T
	r      *bufio.Reader
	frames chan frame
}

func openStream(t *testing.T, e *env, query string) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/v2/events"+query, nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := e.srv.Client().Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream;charset=utf-8", resp.Header.Get("Content-Type"))
	s := &stream{t: t, r: bufio.NewReader(resp.Body), frames: make(chan frame, 1000)}
	errs := make(chan error, 1)
	go func() {
		defer close(s.frames)
		for {
			f, err := s.read()
			if err != nil {
				errs <- err
				return
			}
			s.frames <- f
		}
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-errs; err != nil && err != io.EOF && !strings.Contains(err.Error(), "context canceled") {
			t.Errorf("stream: %v", err)
		}
	})
	return s
}

// read decodes one frame and checks its CRLF framing.
func (s *stream) read() (frame, error) {
	var f frame
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return f, err
		}
		if !strings.HasSuffix(line, "\r\n") {
			return f, &badFrame{line}
		}
		line = strings.TrimSuffix(line, "\r\n")
		switch {
		case line == "":
			if f.event == "" && !f.ping {
				return f, &badFrame{"empty frame"}
			}
			return f, nil
		case line == ": ping":
			f.ping = true
		case strings.HasPrefix(line, "event: "):
			f.event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			if f.data != "" {
				return f, &badFrame{"two data lines"}
			}
			f.data = strings.TrimPrefix(line, "data: ")
		default:
			return f, &badFrame{line}
		}
	}
}

type badFrame struct{ line string }

func (b *badFrame) Error() string { return "bad SSE line: " + b.line }

// next returns the next event frame (skipping pings).
func (s *stream) next() frame {
	s.t.Helper()
	for {
		select {
		case f, ok := <-s.frames:
			require.True(s.t, ok, "stream ended")
			if f.ping {
				continue
			}
			var hdr marathon.EventHeader
			require.NoError(s.t, json.Unmarshal([]byte(f.data), &hdr), f.data)
			require.Equal(s.t, f.event, hdr.EventType, "event line matches eventType")
			require.NotEmpty(s.t, hdr.Timestamp)
			return f
		case <-time.After(10 * time.Second):
			s.t.Fatal("no event within 10s")
		}
	}
}

// until collects event types up to and including the first of want.
func (s *stream) until(want string, each func(frame)) []string {
	s.t.Helper()
	var types []string
	for {
		f := s.next()
		types = append(types, f.event)
		if each != nil {
			each(f)
		}
		if f.event == want {
			return types
		}
	}
}

func indexOf(types []string, t string) int {
	for i, x := range types {
		if x == t {
			return i
		}
	}
	return -1
}

func TestEventStream(t *testing.T) {
	e := newEnv(t, envOpts{agents: 1})
	s := openStream(t, e, "")
	first := s.next()
	assert.Equal(t, marathon.EventStreamAttached, first.event)

	createApp(e, map[string]any{"id": "/ev", "cmd": "sleep 1000", "instances": 1, "cpus": 0.1, "mem": 16, "labels": map[string]string{"HAPROXY_GROUP": "external"}})
	var runningSeen bool
	types := s.until(marathon.EventDeploymentSuccess, func(f frame) {
		switch f.event {
		case marathon.EventAPIPost:
			var ev marathon.APIPostEvent
			require.NoError(t, json.Unmarshal([]byte(f.data), &ev))
			assert.Equal(t, "/ev", ev.AppDefinition.ID)
			assert.Equal(t, "/v2/apps", ev.URI)
			assert.Equal(t, "external", ev.AppDefinition.Labels["HAPROXY_GROUP"])
		case marathon.EventStatusUpdate:
			var ev marathon.StatusUpdateEvent
			require.NoError(t, json.Unmarshal([]byte(f.data), &ev))
			if ev.TaskStatus == marathon.TaskRunning {
				runningSeen = true
				// The state GET returns already reflects the event.
				assert.Contains(t, e.running("/ev"), ev.TaskID)
				assert.Len(t, ev.Ports, 1)
			}
		}
	})
	assert.True(t, runningSeen)
	order := []string{marathon.EventAPIPost, marathon.EventGroupChangeSuccess, marathon.EventDeploymentInfo,
		marathon.EventStatusUpdate, marathon.EventDeploymentStepSuccess, marathon.EventDeploymentSuccess}
	// The first step (StartApplication) is a no-op with its own
	// deployment_info/step_success pair; the status updates belong to the
	// last step, so compare against the last step_success.
	last := -1
	for _, typ := range order {
		i := indexOf(types, typ)
		if typ == marathon.EventDeploymentStepSuccess {
			i = len(types) - 2
			require.Equal(t, typ, types[i])
		}
		require.GreaterOrEqual(t, i, 0, "%s missing in %v", typ, types)
		assert.Greater(t, i, last, "%s out of order in %v", typ, types)
		last = i
	}
	assert.Contains(t, types, marathon.EventInstanceChanged)

	// Delete: kills, then app_terminated_event, then deployment_success.
	e.doJSON("DELETE", "/v2/apps/ev", nil, http.StatusOK, nil)
	types = s.until(marathon.EventDeploymentSuccess, nil)
	killed, terminated := -1, indexOf(types, marathon.EventAppTerminated)
	for i, typ := range types {
		if typ == marathon.EventStatusUpdate {
			killed = i
		}
	}
	require.GreaterOrEqual(t, killed, 0, "%v", types)
	assert.Greater(t, terminated, killed, "%v", types)
	assert.Equal(t, len(types)-1, indexOf(types, marathon.EventDeploymentSuccess))
}

func TestEventStreamFilterAndKeepalive(t *testing.T) {
	e := newEnv(t, envOpts{agents: 1, keepalive: 50 * time.Millisecond})
	s := openStream(t, e, "?event_type=status_update_event&event_type=api_post_event&plan-format=light")
	createApp(e, map[string]any{"id": "/f", "cmd": "sleep 1000", "instances": 1, "cpus": 0.1, "mem": 16})
	seen := map[string]bool{}
	pings := 0
	deadline := time.After(10 * time.Second)
	for pings < 2 || !seen[marathon.EventStatusUpdate] {
		select {
		case f := <-s.frames:
			if f.ping {
				pings++
				continue
			}
			seen[f.event] = true
		case <-deadline:
			t.Fatalf("pings=%d seen=%v", pings, seen)
		}
	}
	for typ := range seen {
		assert.Contains(t, []string{marathon.EventStatusUpdate, marathon.EventAPIPost}, typ)
	}
	assert.True(t, seen[marathon.EventAPIPost])
}

func TestRollingRestartKeepsCapacity(t *testing.T) {
	e := newEnv(t, envOpts{agents: 2})
	createApp(e, map[string]any{"id": "/roll", "cmd": "sleep 1000", "instances": 3, "cpus": 0.1, "mem": 16,
		"healthChecks":    []map[string]any{{"protocol": "TCP"}},
		"upgradeStrategy": map[string]any{"minimumHealthCapacity": 1, "maximumOverCapacity": 0}})
	before := e.settled("/roll", 3)
	e.waitFor("healthy", func() bool { return e.app("/roll").TasksHealthy == 3 })
	s := openStream(t, e, "?event_type=status_update_event&event_type=deployment_success")
	e.doJSON("POST", "/v2/apps/roll/restart", nil, http.StatusOK, nil)
	// Track the set of healthy-or-running tasks through the events: with
	// {1, 0} at most one extra task exists and never fewer than 3 run.
	live := map[string]bool{}
	for _, id := range before {
		live[id] = true
	}
	minLive, maxLive := 3, 3
	s.until(marathon.EventDeploymentSuccess, func(f frame) {
		if f.event != marathon.EventStatusUpdate {
			return
		}
		var ev marathon.StatusUpdateEvent
		require.NoError(t, json.Unmarshal([]byte(f.data), &ev))
		switch ev.TaskStatus {
		case marathon.TaskStaging:
			live[ev.TaskID] = true
		case marathon.TaskKilled, marathon.TaskKilling:
			delete(live, ev.TaskID)
		}
		minLive, maxLive = min(minLive, len(live)), max(maxLive, len(live))
	})
	after := e.settled("/roll", 3)
	for _, id := range after {
		assert.NotContains(t, before, id)
	}
	assert.GreaterOrEqual(t, minLive, 3, "never below instances")
	assert.LessOrEqual(t, maxLive, 4, "at most one over capacity")
}

// A filtered-out event must not hold back the flush of a wanted one
// queued just before it (regression: events waited for the next ping).
func TestEventStreamFilteredFlush(t *testing.T) {
	e := newEnv(t, envOpts{keepalive: time.Hour})
	s := openStream(t, e, "?event_type=api_post_event")
	createApp(e, map[string]any{"id": "/ff", "cmd": "x", "instances": 0})
	select {
	case f := <-s.frames:
		assert.Equal(t, marathon.EventAPIPost, f.event)
	case <-time.After(3 * time.Second):
		t.Fatal("api_post_event not delivered promptly")
	}
}
