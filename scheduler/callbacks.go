package scheduler

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/switchyard/switchyard/marathon"
)

// Event types of the legacy HTTP callback API (Marathon ≤1.4).
const (
	eventSubscribe   = "subscribe_event"
	eventUnsubscribe = "unsubscribe_event"
)

// Callback delivery timing (spec §3.6): a POST may take 10 s; after the
// n-th consecutive failure a subscriber is skipped for 2^n seconds.
const (
	callbackTimeout    = 10 * time.Second
	callbackMaxBackoff = 10 * time.Minute
)

// subscriptionEvent is subscribe_event / unsubscribe_event, also the body
// of POST and DELETE /v2/eventSubscriptions.
type subscriptionEvent struct {
	marathon.EventHeader
	ClientIP    string `json:"clientIp"`
	CallbackURL string `json:"callbackUrl"`
}

func (e *subscriptionEvent) setHeader(h marathon.EventHeader) { e.EventHeader = h }

// CallbackURLs lists the registered event callback URLs.
func (s *Scheduler) CallbackURLs(context.Context) ([]string, error) {
	return s.store.Callbacks(), nil
}

func checkCallbackURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return &APIError{Status: http.StatusBadRequest, Body: marathon.ErrorResponse{
			Message: fmt.Sprintf("Invalid callbackUrl '%s': expected an http or https URL", raw)}}
	}
	return nil
}

// AddCallback registers an event callback URL (POST
// /v2/eventSubscriptions) and returns the subscribe_event.
func (s *Scheduler) AddCallback(_ context.Context, callbackURL, clientIP string) (any, error) {
	if err := checkCallbackURL(callbackURL); err != nil {
		return nil, err
	}
	ev := &subscriptionEvent{ClientIP: clientIP, CallbackURL: callbackURL}
	existed := false
	err := s.write(func() error {
		existed = slices.Contains(s.store.Callbacks(), callbackURL)
		s.store.PutCallback(callbackURL)
		s.bus.publish(eventSubscribe, ev)
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Subscribe a new callback now, for its deliverer to take over: every
	// event after this answer reaches it, however late the deliverer
	// starts.
	s.cbMu.Lock()
	if _, ok := s.cbSubs[callbackURL]; !ok && !existed {
		events, cancel := s.bus.subscribeQuiet()
		s.cbSubs[callbackURL] = cbSub{events: events, cancel: cancel}
	}
	s.cbMu.Unlock()
	s.callbacksChanged()
	return ev, nil
}

// cbSub is a bus subscription made for a callback URL before its
// deliverer runs.
type cbSub struct {
	events <-chan marathon.Event
	cancel func()
}

// takeCallbackSub returns (and forgets) the subscription made for u, if
// any.
func (s *Scheduler) takeCallbackSub(u string) (cbSub, bool) {
	s.cbMu.Lock()
	defer s.cbMu.Unlock()
	sub, ok := s.cbSubs[u]
	delete(s.cbSubs, u)
	return sub, ok
}

// RemoveCallback unregisters an event callback URL (DELETE
// /v2/eventSubscriptions) and returns the unsubscribe_event.
func (s *Scheduler) RemoveCallback(_ context.Context, callbackURL, clientIP string) (any, error) {
	ev := &subscriptionEvent{ClientIP: clientIP, CallbackURL: callbackURL}
	err := s.write(func() error {
		s.store.DeleteCallback(callbackURL)
		s.bus.publish(eventUnsubscribe, ev)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if sub, ok := s.takeCallbackSub(callbackURL); ok {
		sub.cancel()
	}
	s.callbacksChanged()
	return ev, nil
}

func (s *Scheduler) callbacksChanged() {
	select {
	case s.callbackWake <- struct{}{}:
	default:
	}
}

// runCallbacks keeps one delivery goroutine per registered callback URL
// until ctx ends, and waits for them.
func (s *Scheduler) runCallbacks(ctx context.Context) {
	client := &http.Client{Timeout: callbackTimeout}
	running := map[string]context.CancelFunc{}
	var wg sync.WaitGroup
	defer func() {
		for _, cancel := range running {
			cancel()
		}
		wg.Wait()
		s.cbMu.Lock()
		for u, sub := range s.cbSubs {
			sub.cancel()
			delete(s.cbSubs, u)
		}
		s.cbMu.Unlock()
	}()
	for {
		want := map[string]bool{}
		for _, u := range s.store.Callbacks() {
			want[u] = true
			if _, ok := running[u]; !ok {
				cctx, cancel := context.WithCancel(ctx)
				running[u] = cancel
				first, _ := s.takeCallbackSub(u)
				wg.Add(1)
				go func() {
					defer wg.Done()
					s.deliver(cctx, client, u, first)
				}()
			}
		}
		for u, cancel := range running {
			if !want[u] {
				cancel()
				delete(running, u)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-s.callbackWake:
		}
	}
}

// deliver POSTs every event to one callback URL. A failing subscriber is
// skipped for 2^n seconds after its n-th consecutive failure; one that
// falls behind is resubscribed (it loses the events in between).
func (s *Scheduler) deliver(ctx context.Context, client *http.Client, u string, first cbSub) {
	failures := 0
	var skipUntil time.Time
	for ctx.Err() == nil {
		events, cancel := first.events, first.cancel
		if events == nil {
			events, cancel = s.bus.subscribeQuiet()
		}
		first = cbSub{}
		for open := true; open; {
			select {
			case <-ctx.Done():
				cancel()
				return
			case ev, ok := <-events:
				if !ok {
					open = false
					continue
				}
				if time.Now().Before(skipUntil) {
					continue
				}
				if err := post(ctx, client, u, ev.Data); err != nil {
					failures++
					wait := min(time.Duration(1<<min(failures, 20))*time.Second, callbackMaxBackoff)
					skipUntil = time.Now().Add(wait)
					s.log.Warn("event callback failed", "url", u, "err", err, "skip", wait)
					continue
				}
				failures = 0
			}
		}
		cancel()
	}
}

func post(ctx context.Context, client *http.Client, u string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build callback request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("post event: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode >= 300 {
		return fmt.Errorf("post event: status %d", resp.StatusCode)
	}
	return nil
}
