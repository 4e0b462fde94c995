package marathon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/r3labs/sse/v2"
)

// oversizedName is the event name the frame limiter injects in place of an
// event that exceeded MaxEventSize, so the handler can tell it apart from
// ordinary garbage. No Marathon event has a name with a space.
const oversizedName = "switchyard oversized"

// eventsBuffer is the capacity of the channel Events returns.
const eventsBuffer = 64

// Events streams Marathon's /v2/events to the returned channel until ctx
// ends, then closes it; nothing else closes it.
//
// It asks for Accept: text/event-stream, plan-format=light and, when types
// is non-empty, one event_type parameter per type. Frames are read with
// r3labs/sse, whose buffer is raised to MaxEventSize. A dropped or refused
// stream is reconnected with jittered exponential backoff (500ms doubling
// to 30s, reset once a connection stayed up for 10s), moving on to the next
// URL at once whenever one fails; the backoff is waited only after every
// URL failed in a row. When a member answered 503 with a Retry-After of n
// seconds (a scheduler standby during a leader election says 1), that
// round's delay is at most n seconds, so the stream is back within about a
// second of the new leader being elected however long the election took.
// Every time a connection is established, a
// synthetic Event{Type: EventStreamAttached} is sent first, so the consumer
// must resync (re-read Apps) on it: events may have been missed while
// disconnected. The server's own event_stream_attached frame for that
// connection is absorbed. There is no read timeout, but a stream that
// carries no byte at all (not even a keepalive comment) for 5 minutes is
// reconnected, like marathon-lb does.
//
// Garbage frames (invalid JSON, no eventType, name and eventType
// disagreeing, larger than MaxEventSize) are logged at Warn and dropped; the
// stream goes on. A slow consumer slows the reader down (Marathon then
// drops the stream, and the resync after reconnecting repairs the gap).
// Events starts one goroutine, which ends when ctx does.
func (c *Client) Events(ctx context.Context, types []string) <-chan Event {
	out := make(chan Event, eventsBuffer)
	go c.runEvents(ctx, append([]string(nil), types...), out)
	return out
}

// runEvents is the reconnect loop behind Events.
func (c *Client) runEvents(ctx context.Context, types []string, out chan<- Event) {
	defer close(out)
	i := c.index()
	attempt := 0           // consecutive unhealthy rounds, drives the backoff
	failures := 0          // consecutive failed connection attempts, across URLs
	var hint time.Duration // shortest Retry-After of this round's 503s, 0 if none
	for ctx.Err() == nil {
		res := c.streamOnce(ctx, i, types, out)
		if ctx.Err() != nil {
			return
		}
		u := c.urls[i].Redacted()
		switch {
		case res.connected:
			failures = 0
			c.log.Info("event stream disconnected", "url", u, "duration", res.lived, "reason", res.reason())
			if res.lived >= c.healthyAfter {
				attempt = 0
				continue // reconnect at once after a healthy connection
			}
		default:
			c.log.Warn("event stream connect failed", "url", u, "err", res.err)
			if res.retryAfter > 0 && (hint == 0 || res.retryAfter < hint) {
				hint = res.retryAfter
			}
			failures++
			i = (i + 1) % len(c.urls)
			if failures%len(c.urls) != 0 {
				continue // try the next member before backing off
			}
		}
		d := c.backoff(attempt)
		if hint > 0 && hint < d {
			d = hint
		}
		hint = 0
		attempt++
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// backoff returns the jittered delay before reconnect attempt n (from 0):
// base·2ⁿ capped, then a random value in [d/2, d].
func (c *Client) backoff(n int) time.Duration {
	d := c.backoffCap
	if n < 30 {
		if e := c.backoffBase << n; e > 0 && e < d {
			d = e
		}
	}
	half := d / 2
	return half + rand.N(half+1)
}

// streamResult is what one connection attempt came to.
type streamResult struct {
	connected bool          // the server answered 200 with an event stream
	lived     time.Duration // how long the connection stayed up
	idle      bool          // closed by the idle watchdog
	// retryAfter is the Retry-After of a 503 answer (0 when absent).
	retryAfter time.Duration
	err        error // why it ended or failed (nil for a clean EOF)
}

func (r streamResult) reason() string {
	switch {
	case r.idle:
		return "no data for the idle timeout"
	case r.err != nil:
		return r.err.Error()
	default:
		return "closed by server"
	}
}

// streamURL returns member i's /v2/events URL with the query parameters.
func (c *Client) streamURL(i int, types []string) string {
	q := url.Values{}
	q.Set("plan-format", "light")
	for _, t := range types {
		q.Add("event_type", t)
	}
	return c.endpoint(i, "/v2/events?"+q.Encode())
}

// streamOnce makes one connection to member i and pumps its events to out
// until the connection ends or ctx is done.
func (c *Client) streamOnce(ctx context.Context, i int, types []string, out chan<- Event) streamResult {
	connCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var idle atomic.Bool
	watchdog := time.AfterFunc(c.idleTimeout, func() {
		idle.Store(true)
		cancel()
	})
	defer watchdog.Stop()

	log := c.log.With("url", c.urls[i].Redacted())
	var res streamResult
	var since time.Time
	hc := &http.Client{Transport: &bodyWrapper{
		base: c.streamTransport,
		wrap: func(body io.ReadCloser) io.ReadCloser {
			return newFrameLimiter(body, c.maxEventSize, func() { watchdog.Reset(c.idleTimeout) })
		},
	}}
	sc := sse.NewClient(c.streamURL(i, types), sse.ClientMaxBufferSize(c.maxEventSize+limiterSlack))
	sc.Connection = hc
	sc.ReconnectStrategy = noRetry{} // we drive reconnects ourselves
	if user, pass, ok := c.credentials(i); ok {
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		r.SetBasicAuth(user, pass)
		sc.Headers["Authorization"] = r.Header.Get("Authorization")
	}
	sc.Headers["User-Agent"] = "switchyard"
	sc.ResponseValidator = func(_ *sse.Client, resp *http.Response) error {
		if err := checkStreamResponse(resp); err != nil {
			res.retryAfter = retryAfter(resp)
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
			resp.Body.Close() // r3labs leaves it open when the validator fails
			return err
		}
		res.connected = true
		since = time.Now()
		c.current.Store(int64(i))
		log.Info("event stream connected")
		watchdog.Reset(c.idleTimeout)
		send(connCtx, out, attachedEvent(since))
		return nil
	}

	first := true
	err := sc.SubscribeRawWithContext(connCtx, func(msg *sse.Event) {
		name := string(msg.Event)
		wasFirst := first
		first = false
		if name == oversizedName {
			log.Warn("event dropped", "reason", fmt.Sprintf("larger than %d bytes", c.maxEventSize))
			return
		}
		ev, err := ParseEvent(name, msg.Data)
		if err != nil {
			log.Warn("event dropped", "reason", "unparsable", "err", err)
			return
		}
		if wasFirst && ev.Type == EventStreamAttached {
			return // this connection's own attach; the synthetic one stood for it
		}
		send(connCtx, out, ev)
	})
	if res.connected {
		res.lived = time.Since(since)
	}
	res.idle = idle.Load()
	if err != nil && !errors.Is(err, context.Canceled) {
		res.err = err
	}
	if !res.connected && res.err == nil {
		res.err = fmt.Errorf("connect: %w", context.Cause(connCtx))
		if res.idle {
			res.err = errors.New("connect: no response within the idle timeout")
		}
	}
	return res
}

// send delivers ev unless ctx ends first.
func send(ctx context.Context, out chan<- Event, ev Event) {
	select {
	case out <- ev:
	case <-ctx.Done():
	}
}

// attachedEvent is the synthetic event sent on every (re)connect.
func attachedEvent(at time.Time) Event {
	ts := at.UTC().Format("2006-01-02T15:04:05.000Z")
	data, _ := json.Marshal(StreamAttachedEvent{EventHeader: EventHeader{EventType: EventStreamAttached, Timestamp: ts}})
	return Event{Type: EventStreamAttached, Timestamp: ts, Data: data}
}

// checkStreamResponse accepts only a 200 text/event-stream answer.
func checkStreamResponse(resp *http.Response) error {
	if resp.StatusCode != http.StatusOK {
		return statusError(resp.Request.URL.Redacted(), resp)
	}
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != "text/event-stream" {
		return fmt.Errorf("GET %s: content type %q, want text/event-stream", resp.Request.URL.Redacted(), resp.Header.Get("Content-Type"))
	}
	return nil
}

// maxRetryAfter bounds the Retry-After honoured (the backoff cap applies
// as well).
const maxRetryAfter = time.Minute

// retryAfter returns the delay a 503 answer's Retry-After asks for, in
// its delta-seconds form (RFC 9110 §10.2.3), or 0 when there is none, it
// is an HTTP date, or the status is not 503.
func retryAfter(resp *http.Response) time.Duration {
	if resp.StatusCode != http.StatusServiceUnavailable {
		return 0
	}
	n, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After")))
	if err != nil || n <= 0 {
		return 0
	}
	return min(time.Duration(n)*time.Second, maxRetryAfter)
}

// noRetry is a backoff.BackOff (gopkg.in/cenkalti/backoff.v1) that never
// retries: r3labs/sse treats a clean EOF as success and would stop anyway,
// so the reconnect loop is ours.
type noRetry struct{}

func (noRetry) Reset()                     {}
func (noRetry) NextBackOff() time.Duration { return -1 } // backoff.Stop

// bodyWrapper is an http.RoundTripper that wraps the body of 200 answers.
type bodyWrapper struct {
	base http.RoundTripper
	wrap func(io.ReadCloser) io.ReadCloser
}

// RoundTrip implements http.RoundTripper.
func (b *bodyWrapper) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := b.base.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusOK {
		resp.Body = b.wrap(resp.Body)
	}
	return resp, err
}

// limiterSlack is the room r3labs/sse's buffer needs beyond MaxEventSize:
// the injected oversized marker and a frame terminator.
const limiterSlack = 256

// frameLimiter passes an SSE byte stream through unchanged, except that a
// frame (everything up to a blank line) longer than max bytes is cut: its
// first max bytes are followed by an "event:" line naming oversizedName and
// a blank line, and the rest of the frame is discarded. r3labs/sse would
// otherwise fail the whole connection on a frame larger than its buffer
// (bufio.ErrTooLong), losing the events after it. Line ends are CRLF, LF or
// CR, as in the SSE specification. touch is called after every read that
// returned data (it feeds the idle watchdog).
type frameLimiter struct {
	r     io.ReadCloser
	max   int
	touch func()

	n          int  // bytes of the current frame so far
	lineStart  bool // the last byte seen ended a line
	lastCR     bool // the last byte seen was CR (a following LF belongs to it)
	dropCRLF   bool // that CR was dropped, so its LF is too
	discarding bool // inside an oversized frame

	scratch []byte // read buffer
	in      []byte // unread part of scratch
	outBuf  []byte
	out     []byte // processed bytes not yet returned
	err     error  // sticky error from r
}

func newFrameLimiter(r io.ReadCloser, max int, touch func()) *frameLimiter {
	return &frameLimiter{r: r, max: max, touch: touch, lineStart: true, scratch: make([]byte, 32<<10)}
}

// Read implements io.Reader.
func (f *frameLimiter) Read(p []byte) (int, error) {
	for {
		if len(f.out) > 0 {
			n := copy(p, f.out)
			f.out = f.out[n:]
			return n, nil
		}
		if len(f.in) == 0 {
			if f.err != nil {
				return 0, f.err
			}
			n, err := f.r.Read(f.scratch)
			f.in, f.err = f.scratch[:n], err
			if n > 0 && f.touch != nil {
				f.touch()
			}
			if n == 0 && err == nil {
				continue
			}
		}
		f.process()
	}
}

// process moves all of f.in to f.out, applying the size limit.
func (f *frameLimiter) process() {
	out := f.outBuf[:0]
	for _, b := range f.in {
		switch {
		case b == '\n' && f.lastCR:
			f.lastCR = false
			if !f.dropCRLF {
				out = append(out, b)
			}
		case b == '\r' || b == '\n':
			f.lastCR = b == '\r'
			if f.lineStart { // blank line: the frame ends here
				f.n = 0
				f.dropCRLF = f.discarding
				if !f.discarding {
					out = append(out, b)
				}
				f.discarding = false
				continue
			}
			f.lineStart = true
			f.n++
			f.dropCRLF = f.discarding
			if !f.discarding {
				out = append(out, b)
			}
		default:
			wasLineStart := f.lineStart
			f.lastCR, f.lineStart = false, false
			f.n++
			switch {
			case f.discarding:
			case f.n > f.max:
				f.discarding = true
				if !wasLineStart {
					out = append(out, '\n')
				}
				out = append(out, "event:"+oversizedName+"\n\n"...)
			default:
				out = append(out, b)
			}
		}
	}
	f.in = nil
	f.outBuf = out
	f.out = out
}

// Close implements io.Closer.
func (f *frameLimiter) Close() error { return f.r.Close() }
