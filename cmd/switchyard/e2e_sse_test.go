//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// e2eEvent is one server-sent event as read off the wire.
type e2eEvent struct {
	Type string         // the `event:` line
	Data map[string]any // the `data:` JSON
	At   time.Time      // when it was read
}

// str returns a string field of the payload ("" when absent).
func (e e2eEvent) str(key string) string {
	s, _ := e.Data[key].(string)
	return s
}

// e2eStream reads /v2/events the way `curl -N` would and keeps every
// event. Protocol problems are recorded, never t.Fatal'ed from the reader
// goroutine; check them with problems().
type e2eStream struct {
	mu       sync.Mutex
	events   []e2eEvent // guarded by mu
	problems []string   // guarded by mu
	lfOnly   int        // guarded by mu: lines ended by LF without CR
	comments int        // guarded by mu: ": ..." lines
	closed   bool       // guarded by mu: the stream ended
	cancel   context.CancelFunc
}

// e2eSubscribe opens the event stream with the given query (may be "").
// The stream is closed when owner (t or a parent test) cleans up.
func e2eSubscribe(t *testing.T, owner testing.TB, hc *http.Client, base, query string) *e2eStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	url := base + "/v2/events"
	if query != "" {
		url += "?" + query
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/event-stream")
	res, err := hc.Do(req)
	if err != nil {
		cancel()
		require.NoError(t, err, "GET /v2/events")
	}
	if res.StatusCode != http.StatusOK {
		res.Body.Close()
		cancel()
		t.Fatalf("GET /v2/events: HTTP %d", res.StatusCode)
	}
	require.Contains(t, res.Header.Get("Content-Type"), "text/event-stream")
	s := &e2eStream{cancel: cancel}
	owner.Cleanup(s.close)
	go s.read(res)
	return s
}

func (s *e2eStream) close() { s.cancel() }

func (s *e2eStream) problem(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.problems) < 50 {
		s.problems = append(s.problems, fmt.Sprintf(format, args...))
	}
}

func (s *e2eStream) read(res *http.Response) {
	defer res.Body.Close()
	br := bufio.NewReaderSize(res.Body, 1<<20)
	var typ string
	var data []string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			s.mu.Lock()
			s.closed = true
			s.mu.Unlock()
			return
		}
		s.mu.Lock()
		if !strings.HasSuffix(line, "\r\n") {
			s.lfOnly++
		}
		s.mu.Unlock()
		line = strings.TrimRight(line, "\r\n")
		switch {
		case line == "":
			if typ == "" && len(data) == 0 {
				continue // keepalive
			}
			s.dispatch(typ, data)
			typ, data = "", nil
		case strings.HasPrefix(line, ":"):
			s.mu.Lock()
			s.comments++
			s.mu.Unlock()
		case strings.HasPrefix(line, "event:"):
			typ = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		default:
			s.problem("unexpected line %q", line)
		}
	}
}

func (s *e2eStream) dispatch(typ string, data []string) {
	if typ == "" {
		s.problem("data without an event: line: %q", data)
		return
	}
	if len(data) != 1 {
		s.problem("event %s has %d data lines, want 1", typ, len(data))
		return
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(data[0]), &m); err != nil {
		s.problem("event %s: data is not a JSON object: %v: %s", typ, err, data[0])
		return
	}
	if et, _ := m["eventType"].(string); et != typ {
		s.problem("event %s carries eventType %q", typ, et)
	}
	if ts, _ := m["timestamp"].(string); ts == "" {
		s.problem("event %s has no timestamp", typ)
	} else if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
		s.problem("event %s: timestamp %q: %v", typ, ts, err)
	}
	s.mu.Lock()
	s.events = append(s.events, e2eEvent{Type: typ, Data: m, At: time.Now()})
	s.mu.Unlock()
}

// snapshot returns the events read so far.
func (s *e2eStream) snapshot() []e2eEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]e2eEvent(nil), s.events...)
}

// find returns the events of type typ matching pred (nil = all).
func (s *e2eStream) find(typ string, pred func(e2eEvent) bool) []e2eEvent {
	var out []e2eEvent
	for _, e := range s.snapshot() {
		if e.Type == typ && (pred == nil || pred(e)) {
			out = append(out, e)
		}
	}
	return out
}

// waitFor polls until an event of type typ matching pred was read.
func (s *e2eStream) waitFor(t *testing.T, timeout time.Duration, typ string, pred func(e2eEvent) bool) e2eEvent {
	t.Helper()
	var got e2eEvent
	e2eEventually(t, timeout, 50*time.Millisecond, "event "+typ, func() (bool, string) {
		if es := s.find(typ, pred); len(es) > 0 {
			got = es[0]
			return true, ""
		}
		return false, fmt.Sprintf("%d events read, none matching", len(s.snapshot()))
	})
	return got
}

// stats returns the protocol problems and counters.
func (s *e2eStream) stats() (problems []string, lfOnly, comments int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.problems...), s.lfOnly, s.comments
}
