package marathon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/marathon/marathontest"
)

// waitTimeout bounds every wait for an event in these tests.
const waitTimeout = 10 * time.Second

// fastClient returns a client whose reconnects happen within milliseconds.
func fastClient(t *testing.T, cfg marathon.ClientConfig) *marathon.Client {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	c := newClient(t, cfg)
	marathon.SetStreamTuning(c, 10*time.Millisecond, 50*time.Millisecond, time.Hour, 5*time.Minute)
	return c
}

// next returns the next event, failing the test after waitTimeout.
func next(t *testing.T, ch <-chan marathon.Event) marathon.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		require.True(t, ok, "event channel closed early")
		return ev
	case <-time.After(waitTimeout):
		t.Fatal("no event within", waitTimeout)
		return marathon.Event{}
	}
}

// waitFor polls cond until it holds or waitTimeout passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, waitTimeout, 5*time.Millisecond, what)
}

func statusUpdate(taskID string) marathon.StatusUpdateEvent {
	return marathon.StatusUpdateEvent{TaskID: taskID, TaskStatus: marathon.TaskRunning, AppID: "/web", Host: "10.0.0.1", Ports: []int{31000}}
}

// decodeStatus decodes a status_update_event's taskId.
func decodeStatus(t *testing.T, ev marathon.Event) string {
	t.Helper()
	require.Equal(t, marathon.EventStatusUpdate, ev.Type, "event %s", ev.Data)
	var su marathon.StatusUpdateEvent
	require.NoError(t, json.Unmarshal(ev.Data, &su))
	return su.TaskID
}

func TestEventsReconnectsAndResyncs(t *testing.T) {
	t.Parallel()
	m := marathontest.New(t)
	c := fastClient(t, marathon.ClientConfig{URLs: []string{m.URL}})
	events := c.Events(t.Context(), []string{marathon.EventStatusUpdate})

	for round := range 3 {
		ev := next(t, events)
		require.Equal(t, marathon.EventStreamAttached, ev.Type, "round %d starts with the synthetic attached event", round)
		assert.NotEmpty(t, ev.Timestamp)
		assert.True(t, json.Valid(ev.Data))
		// The server registers a stream before it answers, so the client's
		// attached event means this round's stream is there.
		m.Publish(marathon.EventStatusUpdate, statusUpdate("t"+string(rune('0'+round))))
		m.Publish(marathon.EventAPIPost, marathon.APIPostEvent{}) // filtered out by the server
		ev = next(t, events)
		assert.Equal(t, "t"+string(rune('0'+round)), decodeStatus(t, ev))
		assert.NotEmpty(t, ev.Timestamp, "Publish fills the timestamp")

		m.DropStreams()
	}
}

func TestEventsQueryAndHeaders(t *testing.T) {
	t.Parallel()
	reqs := make(chan *http.Request, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case reqs <- r.Clone(context.Background()):
		default:
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	c := fastClient(t, marathon.ClientConfig{URLs: []string{srv.URL}, Username: "lb", Password: "pw"})
	types := []string{marathon.EventAPIPost, marathon.EventHealthStatusChanged, marathon.EventStatusUpdate}
	events := c.Events(ctx, types)
	assert.Equal(t, marathon.EventStreamAttached, next(t, events).Type)

	r := <-reqs
	assert.Equal(t, "/v2/events", r.URL.Path)
	assert.Equal(t, url.Values{"event_type": types, "plan-format": {"light"}}, r.URL.Query())
	assert.Equal(t, "text/event-stream", r.Header.Get("Accept"))
	user, pass, ok := r.BasicAuth()
	assert.True(t, ok, "basic auth header sent on the stream")
	assert.Equal(t, [2]string{"lb", "pw"}, [2]string{user, pass})

	cancel()
	select {
	case _, ok := <-events:
		assert.False(t, ok, "no event expected after cancel")
	case <-time.After(waitTimeout):
		t.Fatal("channel not closed after cancel")
	}
}

func TestEventsNoTypesMeansNoFilter(t *testing.T) {
	t.Parallel()
	m := marathontest.New(t)
	c := fastClient(t, marathon.ClientConfig{URLs: []string{m.URL}})
	events := c.Events(t.Context(), nil)
	require.Equal(t, marathon.EventStreamAttached, next(t, events).Type)
	waitFor(t, "stream registered", func() bool { return m.StreamCount() == 1 })
	m.Publish(marathon.EventAppTerminated, map[string]any{"appId": "/web"})
	ev := next(t, events)
	assert.Equal(t, marathon.EventAppTerminated, ev.Type, "the server's own attach frame is absorbed, other types pass")
	var term marathon.AppTerminatedEvent
	require.NoError(t, json.Unmarshal(ev.Data, &term))
	assert.Equal(t, "/web", term.AppID)
	assert.Equal(t, marathon.EventAppTerminated, term.EventType)
}

func TestEventsFailoverBetweenURLs(t *testing.T) {
	t.Parallel()
	a, b := marathontest.New(t), marathontest.New(t)
	a.SetDown(true)
	c := fastClient(t, marathon.ClientConfig{URLs: []string{a.URL, b.URL}})
	events := c.Events(t.Context(), []string{marathon.EventStatusUpdate})
	require.Equal(t, marathon.EventStreamAttached, next(t, events).Type)
	waitFor(t, "connected to b", func() bool { return b.StreamCount() == 1 })
	assert.Equal(t, b.URL, c.URL())

	// b goes down, a comes back: the stream moves over and resyncs.
	a.SetDown(false)
	b.SetDown(true)
	require.Equal(t, marathon.EventStreamAttached, next(t, events).Type)
	waitFor(t, "connected to a", func() bool { return a.StreamCount() == 1 })
	a.Publish(marathon.EventStatusUpdate, statusUpdate("from-a"))
	assert.Equal(t, "from-a", decodeStatus(t, next(t, events)))
}

func TestEventsRetriesAfterErrors(t *testing.T) {
	t.Parallel()
	m := marathontest.New(t)
	var calls atomic.Int32
	// The first two attempts get a 500 and a non-SSE 200; the third is
	// proxied to the fake Marathon.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch calls.Add(1) {
		case 1:
			http.Error(w, `{"message":"boom"}`, http.StatusInternalServerError)
		case 2:
			_, _ = w.Write([]byte("<html>not a stream</html>"))
		default:
			http.Redirect(w, r, m.URL+r.URL.RequestURI(), http.StatusFound)
		}
	}))
	t.Cleanup(srv.Close)
	c := fastClient(t, marathon.ClientConfig{URLs: []string{srv.URL}})
	events := c.Events(t.Context(), []string{marathon.EventStatusUpdate})
	require.Equal(t, marathon.EventStreamAttached, next(t, events).Type)
	assert.Equal(t, int32(3), calls.Load(), "two failures, then a redirect followed to the leader")
	waitFor(t, "stream registered", func() bool { return m.StreamCount() == 1 })
	m.Publish(marathon.EventStatusUpdate, statusUpdate("ok"))
	assert.Equal(t, "ok", decodeStatus(t, next(t, events)))
}

func TestEventsSkipsGarbage(t *testing.T) {
	t.Parallel()
	m := marathontest.New(t)
	var logs syncBuffer
	c := fastClient(t, marathon.ClientConfig{
		URLs:         []string{m.URL},
		MaxEventSize: 64 << 10,
		Logger:       slog.New(slog.NewTextHandler(&logs, nil)),
	})
	events := c.Events(t.Context(), nil)
	require.Equal(t, marathon.EventStreamAttached, next(t, events).Type)
	waitFor(t, "stream registered", func() bool { return m.StreamCount() == 1 })

	huge := []byte(`{"eventType":"api_post_event","pad":"` + strings.Repeat("x", 100<<10) + `"}`)
	m.PublishRaw(marathon.EventStatusUpdate, []byte(`{"eventType":"status_update_event"`)) // truncated JSON
	m.PublishRaw(marathon.EventStatusUpdate, []byte(`{"taskId":"no type"}`))
	m.PublishRaw(marathon.EventAPIPost, []byte(`{"eventType":"status_update_event"}`)) // disagrees
	m.PublishRaw(marathon.EventAPIPost, huge)                                          // oversized
	m.PublishRaw("", []byte("not json\r\ndata: at all"))
	m.PublishRaw(marathon.EventStatusUpdate, []byte{0xff, 0xfe, 0})
	m.Publish(marathon.EventStatusUpdate, statusUpdate("good"))

	ev := next(t, events)
	assert.Equal(t, "good", decodeStatus(t, ev), "the good event after the garbage arrives, on the same connection")
	assert.Equal(t, 1, m.StreamCount())
	out := logs.String()
	assert.Equal(t, 6, strings.Count(out, "event dropped"), "each bad frame logged once:\n%s", out)
	assert.Contains(t, out, "larger than 65536 bytes")
}

func TestEventsBigEventDelivered(t *testing.T) {
	t.Parallel()
	m := marathontest.New(t)
	c := fastClient(t, marathon.ClientConfig{URLs: []string{m.URL}})
	events := c.Events(t.Context(), []string{marathon.EventAPIPost})
	require.Equal(t, marathon.EventStreamAttached, next(t, events).Type)
	waitFor(t, "stream registered", func() bool { return m.StreamCount() == 1 })

	labels := map[string]string{}
	for i := range 2000 {
		labels["HAPROXY_LABEL_"+strconv.Itoa(i)+strings.Repeat("_k", 20)] = strings.Repeat("v", 60)
	}
	app := marathontest.App("/big", marathontest.WithLabels(labels), marathontest.WithServicePorts(10000))
	post := marathon.APIPostEvent{ClientIP: "10.0.0.1", URI: "/v2/apps/big", AppDefinition: app}
	m.Publish(marathon.EventAPIPost, post)

	ev := next(t, events)
	require.Equal(t, marathon.EventAPIPost, ev.Type)
	assert.Greater(t, len(ev.Data), 200<<10, "event is over 200 KiB")
	var got marathon.APIPostEvent
	require.NoError(t, json.Unmarshal(ev.Data, &got))
	assert.Equal(t, app, got.AppDefinition)
}

func TestEventsIdleTimeoutReconnects(t *testing.T) {
	t.Parallel()
	var conns atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conns.Add(1)
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-r.Context().Done() // silent: not even a keepalive
	}))
	t.Cleanup(srv.Close)
	c := fastClient(t, marathon.ClientConfig{URLs: []string{srv.URL}})
	marathon.SetStreamTuning(c, 10*time.Millisecond, 50*time.Millisecond, time.Hour, 200*time.Millisecond)
	events := c.Events(t.Context(), nil)
	require.Equal(t, marathon.EventStreamAttached, next(t, events).Type)
	require.Equal(t, marathon.EventStreamAttached, next(t, events).Type, "a silent stream is reconnected")
	assert.GreaterOrEqual(t, conns.Load(), int32(2))
}

func TestEventsKeepalivesKeepIdleStreamOpen(t *testing.T) {
	t.Parallel()
	var conns atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conns.Add(1)
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ { // 60 pings 20ms apart (1.2s), then one event
			select {
			case <-r.Context().Done():
				return
			case <-tick.C:
			}
			frame := ": ping\r\n\r\n" // our keepalive
			if i%2 == 1 {
				frame = "\r\n" // Jetty's (Marathon's) keepalive: a bare CRLF
			}
			if i == 60 { // LF-only frame, after longer than the idle timeout
				frame = "event: app_terminated_event\ndata: {\"eventType\":\"app_terminated_event\",\"appId\":\"/x\"}\n\n"
			}
			if _, err := io.WriteString(w, frame); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	}))
	t.Cleanup(srv.Close)
	c := fastClient(t, marathon.ClientConfig{URLs: []string{srv.URL}})
	// Each ping comes well within the 1s idle timeout; all of them together
	// take longer than it.
	marathon.SetStreamTuning(c, 10*time.Millisecond, 50*time.Millisecond, time.Hour, time.Second)
	events := c.Events(t.Context(), nil)
	require.Equal(t, marathon.EventStreamAttached, next(t, events).Type)
	ev := next(t, events)
	assert.Equal(t, marathon.EventAppTerminated, ev.Type, "comments produce no event")
	assert.Equal(t, int32(1), conns.Load(), "comments reset the idle timer: 1.2s of pings, one connection")
}

func TestEventsChannelClosedOnCancelWhileDown(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		http.Error(w, `{"message":"no leader"}`, http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	c := fastClient(t, marathon.ClientConfig{URLs: []string{srv.URL}})
	ctx, cancel := context.WithCancel(t.Context())
	events := c.Events(ctx, nil)
	waitFor(t, "several refused attempts", func() bool { return calls.Load() >= 3 })
	cancel()
	select {
	case ev, ok := <-events:
		assert.False(t, ok, "nothing but close expected while down, got %+v", ev)
	case <-time.After(waitTimeout):
		t.Fatal("channel not closed after cancel")
	}
}

func TestFrameLimiter(t *testing.T) {
	t.Parallel()
	const max = 16
	cut := "event:" + marathon.OversizedName + "\n\n"
	tests := []struct {
		name, in, want string
	}{
		{name: "small frames pass", in: "event: a\r\ndata:1\r\n\r\n: ping\r\n\r\n", want: "event: a\r\ndata:1\r\n\r\n: ping\r\n\r\n"},
		{name: "CRLF oversized then good", in: "data: 0123456789abcdef\r\n\r\ndata: ok\r\n\r\n", want: "data: 0123456789\n" + cut + "data: ok\r\n\r\n"},
		{name: "LF oversized", in: "data: 0123456789abcdefghij\n\ndata: ok\n\n", want: "data: 0123456789\n" + cut + "data: ok\n\n"},
		{name: "CR only", in: "data: 0123456789abcdefghij\r\rdata: ok\r\r", want: "data: 0123456789\n" + cut + "data: ok\r\r"},
		{name: "cut at a line start", in: "event: abcdefgh\r\ndata: {}\r\n\r\nx", want: "event: abcdefgh\r\n" + cut + "x"},
		{name: "exactly max", in: "data: 0123456789\n\n", want: "data: 0123456789\n\n"},
		{name: "unterminated tail", in: "data: 0123456789abcdefghij", want: "data: 0123456789\n" + cut},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, wrap := range []func(io.Reader) io.Reader{
				func(r io.Reader) io.Reader { return r },
				iotest.OneByteReader,
				iotest.DataErrReader,
			} {
				l := marathon.NewFrameLimiter(io.NopCloser(wrap(strings.NewReader(tt.in))), max)
				got, err := io.ReadAll(l)
				require.NoError(t, err, "input %q", tt.in)
				assert.Equal(t, tt.want, string(got), "input %q", tt.in)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for the logger's and the test's
// goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestBackoffBounds(t *testing.T) {
	t.Parallel()
	c := newClient(t, marathon.ClientConfig{URLs: []string{"http://m"}})
	tests := []struct {
		attempt  int
		min, max time.Duration
	}{
		{attempt: 0, min: 250 * time.Millisecond, max: 500 * time.Millisecond},
		{attempt: 1, min: 500 * time.Millisecond, max: time.Second},
		{attempt: 3, min: 2 * time.Second, max: 4 * time.Second},
		{attempt: 6, min: 15 * time.Second, max: 30 * time.Second}, // 32s capped at 30s
		{attempt: 100, min: 15 * time.Second, max: 30 * time.Second},
	}
	for _, tt := range tests {
		seen := map[time.Duration]bool{}
		for range 50 {
			d := marathon.Backoff(c, tt.attempt)
			seen[d] = true
			assert.GreaterOrEqual(t, d, tt.min, "attempt %d", tt.attempt)
			assert.LessOrEqual(t, d, tt.max, "attempt %d", tt.attempt)
		}
		assert.Greater(t, len(seen), 1, "attempt %d: delays are jittered", tt.attempt)
	}

	// --max-backoff moves the cap.
	capped := newClient(t, marathon.ClientConfig{URLs: []string{"http://m"}, MaxBackoff: 2 * time.Second})
	for _, n := range []int{3, 10, 100} {
		d := marathon.Backoff(capped, n)
		assert.GreaterOrEqual(t, d, time.Second, "attempt %d", n)
		assert.LessOrEqual(t, d, 2*time.Second, "attempt %d", n)
	}
}

// TestEventsFailoverDuringElection plays a scheduler leader failover: the
// member the stream is on dies (connection refused), the two standbys
// answer 503 with Retry-After: 1 while the election runs, then one of them
// serves the stream again. The backoff is an hour here, so only the
// standbys' Retry-After can bring the stream back within waitTimeout.
func TestEventsFailoverDuringElection(t *testing.T) {
	t.Parallel()
	leader := marathontest.New(t)
	dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, leader.URL+r.URL.RequestURI(), http.StatusFound)
	}))
	t.Cleanup(dead.Close)

	var elected atomic.Bool
	var refusals atomic.Int32
	newLeader := marathontest.New(t)
	standby := func() *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !elected.Load() {
				refusals.Add(1)
				w.Header().Set("Retry-After", "1")
				http.Error(w, `{"message":"leader unavailable"}`, http.StatusServiceUnavailable)
				return
			}
			http.Redirect(w, r, newLeader.URL+r.URL.RequestURI(), http.StatusFound)
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	b, c := standby(), standby()

	cl := newClient(t, marathon.ClientConfig{
		URLs:   []string{dead.URL, b.URL, c.URL},
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	// Backoff from an hour; any stream that connected was healthy.
	marathon.SetStreamTuning(cl, time.Hour, 2*time.Hour, 0, 5*time.Minute)
	events := cl.Events(t.Context(), []string{marathon.EventStatusUpdate})
	require.Equal(t, marathon.EventStreamAttached, next(t, events).Type)
	waitFor(t, "stream on the first leader", func() bool { return leader.StreamCount() == 1 })

	// The leader dies: its stream ends and its address refuses connections.
	dead.Close()
	leader.DropStreams()
	// Two full rounds of refusals (each member once per round) before the
	// election ends.
	waitFor(t, "two rounds refused", func() bool { return refusals.Load() >= 4 })
	elected.Store(true)

	require.Equal(t, marathon.EventStreamAttached, next(t, events).Type, "stream back after the election")
	waitFor(t, "stream on the new leader", func() bool { return newLeader.StreamCount() == 1 })
	newLeader.Publish(marathon.EventStatusUpdate, statusUpdate("after-failover"))
	assert.Equal(t, "after-failover", decodeStatus(t, next(t, events)))
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		code   int
		header string
		want   time.Duration
	}{
		{name: "seconds", code: http.StatusServiceUnavailable, header: "1", want: time.Second},
		{name: "spaces", code: http.StatusServiceUnavailable, header: " 5 ", want: 5 * time.Second},
		{name: "capped", code: http.StatusServiceUnavailable, header: "86400", want: time.Minute},
		{name: "absent", code: http.StatusServiceUnavailable},
		{name: "zero", code: http.StatusServiceUnavailable, header: "0"},
		{name: "negative", code: http.StatusServiceUnavailable, header: "-3"},
		{name: "http date ignored", code: http.StatusServiceUnavailable, header: "Wed, 21 Oct 2015 07:28:00 GMT"},
		{name: "not a 503", code: http.StatusTooManyRequests, header: "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := &http.Response{StatusCode: tt.code, Header: http.Header{}}
			if tt.header != "" {
				resp.Header.Set("Retry-After", tt.header)
			}
			assert.Equal(t, tt.want, marathon.RetryAfter(resp))
		})
	}
}
