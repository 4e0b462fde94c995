package leader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// FailoverTransport sends each request to one of several schedulers
// (agents' --master http://m1:8080,http://m2:8080): it keeps using the
// one that answered last, and moves on to the next on a connection error
// or a 503 (a standby that does not know the leader yet), retrying
// through the list until Patience runs out or the request's context
// ends. Any scheduler of an HA cluster serves: a standby proxies to the
// leader. Requests must be replayable (a nil body or GetBody set, as
// http.NewRequest does for in-memory bodies).
type FailoverTransport struct {
	// Masters are the schedulers' base URLs.
	Masters []*url.URL
	// Base does the requests (default http.DefaultTransport).
	Base http.RoundTripper
	// Patience bounds the retries of one request (default 60s).
	Patience time.Duration
	// AttemptTimeout bounds one attempt, plus the request's "wait" query
	// parameter (a long poll) when it has one, so a master that hangs (a
	// frozen process) is left for the next; 0: no bound but the request's
	// context.
	AttemptTimeout time.Duration

	mu  sync.Mutex
	cur int
}

// ParseMasters parses a comma-separated list of http(s) URLs.
func ParseMasters(list string) ([]*url.URL, error) {
	var out []*url.URL
	for _, raw := range strings.Split(list, ",") {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("master %q: want the scheduler's URL with its scheme, e.g. http://%s", raw, strings.TrimPrefix(raw, "//"))
		}
		out = append(out, u)
	}
	if len(out) == 0 {
		return nil, errors.New("no master URL")
	}
	return out, nil
}

// RoundTrip implements http.RoundTripper.
func (f *FailoverTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := f.Base
	if base == nil {
		base = http.DefaultTransport
	}
	patience := f.Patience
	if patience <= 0 {
		patience = 60 * time.Second
	}
	deadline := time.Now().Add(patience)
	f.mu.Lock()
	i := f.cur
	f.mu.Unlock()
	var lastErr error
	for attempt := 0; ; attempt++ {
		m := f.Masters[i%len(f.Masters)]
		actx, cancel := f.attemptContext(req)
		out := req.Clone(actx)
		out.URL.Scheme, out.URL.Host, out.Host = m.Scheme, m.Host, ""
		if req.Body != nil && req.GetBody != nil && attempt > 0 {
			b, err := req.GetBody()
			if err != nil {
				return nil, fmt.Errorf("replay request body: %w", err)
			}
			out.Body = b
		}
		resp, err := base.RoundTrip(out)
		if err == nil && resp.StatusCode != http.StatusServiceUnavailable {
			f.mu.Lock()
			f.cur = i % len(f.Masters)
			f.mu.Unlock()
			resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
			return resp, nil
		}
		f.mu.Lock()
		f.cur = (i + 1) % len(f.Masters) // the next request starts at the next one
		f.mu.Unlock()
		replayable := req.Body == nil || req.GetBody != nil
		if err == nil {
			lastErr = fmt.Errorf("%s: 503 Service Unavailable", m.Host)
			if !replayable || time.Now().After(deadline) {
				resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
				return resp, nil
			}
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			_ = resp.Body.Close()
		} else {
			lastErr = err
			if !replayable || req.Context().Err() != nil || time.Now().After(deadline) {
				cancel()
				return nil, err
			}
		}
		cancel()
		i++
		if i%len(f.Masters) == 0 {
			// Every master failed: wait a little before the next round.
			select {
			case <-req.Context().Done():
				return nil, errors.Join(req.Context().Err(), lastErr)
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
}

func (f *FailoverTransport) attemptContext(req *http.Request) (context.Context, context.CancelFunc) {
	if f.AttemptTimeout <= 0 {
		return context.WithCancel(req.Context())
	}
	d := f.AttemptTimeout
	if w, err := time.ParseDuration(req.URL.Query().Get("wait")); err == nil && w > 0 {
		d += w
	}
	return context.WithTimeout(req.Context(), d)
}

// cancelBody ends an attempt's context when its body is closed.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}
