package scheduler

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
)

// TestCallbackGetsEventsPublishedBeforeItsDelivererStarts: a change made
// right after POST /v2/eventSubscriptions returns reaches the callback,
// however late the delivery goroutine starts (here: only after the
// change).
func TestCallbackGetsEventsPublishedBeforeItsDelivererStarts(t *testing.T) {
	got := make(chan string, 100)
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			EventType string `json:"eventType"`
		}
		if json.NewDecoder(r.Body).Decode(&ev) == nil {
			got <- ev.EventType
		}
	}))
	t.Cleanup(cb.Close)

	s := newTestScheduler(t)
	ctx := context.Background()
	_, err := s.AddCallback(ctx, cb.URL, "127.0.0.1")
	require.NoError(t, err)
	_, err = s.CreateApp(ctx, hostApp("/early"), false, "", "")
	require.NoError(t, err)

	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); s.runCallbacks(runCtx) }()
	t.Cleanup(func() { cancel(); <-done })

	deadline := time.After(30 * time.Second)
	for {
		select {
		case typ := <-got:
			if typ == marathon.EventAPIPost {
				return
			}
		case <-deadline:
			t.Fatal("the api_post_event published right after the subscription never reached the callback")
		}
	}
}
