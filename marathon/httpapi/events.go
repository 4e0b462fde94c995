package httpapi

import (
	"bufio"
	"net/http"
	"slices"
	"strings"
	"time"
)

// writeTimeout bounds one write to an event stream: a client that does not
// read for this long is dropped rather than holding its handler forever.
const writeTimeout = 30 * time.Second

// events serves /v2/events: CRLF-framed SSE ("event:" line, one "data:"
// line, blank line), a ": ping" comment every Keepalive, optional
// event_type filters. The stream ends when the client goes away or falls
// too far behind (the event source closes its channel).
func (s *server) events(w http.ResponseWriter, r *http.Request) {
	accepts := false
	for _, a := range r.Header.Values("Accept") {
		if strings.Contains(a, "text/event-stream") {
			accepts = true
		}
	}
	if !accepts {
		writeMessage(w, http.StatusMethodNotAllowed, "The /v2/events endpoint serves text/event-stream only; send 'Accept: text/event-stream'.")
		return
	}
	var filter []string
	for _, v := range r.URL.Query()["event_type"] {
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				filter = append(filter, t)
			}
		}
	}
	if n := s.openStreams.Add(1); n > int64(s.cfg.MaxEventStreams) {
		s.openStreams.Add(-1)
		s.log.Warn("event stream refused: too many open streams", "limit", s.cfg.MaxEventStreams, "remote", r.RemoteAddr)
		w.Header().Set("Retry-After", "5")
		writeMessage(w, http.StatusServiceUnavailable, "Too many event streams are open; try again later.")
		return
	}
	defer s.openStreams.Add(-1)
	rc := http.NewResponseController(w)
	ch, cancel := s.cfg.Events.Subscribe(r.RemoteAddr)
	defer cancel()
	s.streams.Inc()
	defer s.streams.Dec()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream;charset=utf-8")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 16<<10)
	flush := func() bool {
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if err := bw.Flush(); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !flush() {
		return
	}
	ticker := time.NewTicker(s.cfg.Keepalive)
	defer ticker.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-ticker.C:
			_, _ = bw.WriteString(": ping\r\n\r\n")
			if !flush() {
				return
			}
		case ev, ok := <-ch:
			if !ok {
				s.log.Info("event stream dropped: client too slow", "remote", r.RemoteAddr)
				return
			}
			if len(filter) == 0 || slices.Contains(filter, ev.Type) {
				_, _ = bw.WriteString("event: ")
				_, _ = bw.WriteString(ev.Type)
				_, _ = bw.WriteString("\r\ndata: ")
				_, _ = bw.Write(ev.Data)
				_, _ = bw.WriteString("\r\n\r\n")
			}
			// Batch what is already queued into one flush.
			if len(ch) == 0 && bw.Buffered() > 0 && !flush() {
				return
			}
		}
	}
}
