package scheduler

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/scheduler/agentapi"
)

// syncBuffer is a bytes.Buffer safe for a logger and a test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestUnplaceableAppIsExplained: an app no agent can take is logged once
// per reason, with what the roomiest agent has free, and /v2/queue shows
// Marathon's processedOffersSummary reject funnel for it.
func TestUnplaceableAppIsExplained(t *testing.T) {
	var logs syncBuffer
	s, err := New(Config{Leader: "h:8080", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	for _, h := range []string{"h1", "h2"} {
		_, err := s.Register(ctx, agentapi.RegisterRequest{Hostname: h, Resources: agentapi.Resources{CPUs: 1, Mem: 512}})
		require.NoError(t, err)
	}
	app := hostApp("/big")
	app.Instances, app.CPUs, app.Mem = 1, 4, 64
	_, err = s.CreateApp(ctx, app, false, "", "")
	require.NoError(t, err)
	for range 3 {
		s.reconcile()
	}
	lines := 0
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "app cannot be placed") {
			lines++
			assert.Contains(t, l, "app_id=/big")
			assert.Contains(t, l, "reason=InsufficientCpus")
			assert.Contains(t, l, "free_cpus=1")
			assert.Contains(t, l, "free_mem=512")
			assert.Contains(t, l, "needs_cpus=4")
		}
	}
	assert.Equal(t, 1, lines, "logged once per app and reason")

	q, err := s.Queue(ctx)
	require.NoError(t, err)
	b, err := json.Marshal(q)
	require.NoError(t, err)
	var body struct {
		Queue []struct {
			ProcessedOffersSummary struct {
				ProcessedOffersCount    int `json:"processedOffersCount"`
				UnusedOffersCount       int `json:"unusedOffersCount"`
				RejectSummaryLastOffers []struct {
					Reason    string `json:"reason"`
					Declined  int    `json:"declined"`
					Processed int    `json:"processed"`
				} `json:"rejectSummaryLastOffers"`
			} `json:"processedOffersSummary"`
		} `json:"queue"`
	}
	require.NoError(t, json.Unmarshal(b, &body))
	require.Len(t, body.Queue, 1)
	sum := body.Queue[0].ProcessedOffersSummary
	assert.Equal(t, 2, sum.ProcessedOffersCount)
	assert.Equal(t, 2, sum.UnusedOffersCount)
	got := map[string][2]int{}
	for _, r := range sum.RejectSummaryLastOffers {
		got[r.Reason] = [2]int{r.Declined, r.Processed}
	}
	assert.Equal(t, [2]int{0, 2}, got["UnfulfilledConstraint"])
	assert.Equal(t, [2]int{2, 2}, got["InsufficientCpus"])
	assert.Equal(t, [2]int{0, 0}, got["InsufficientMemory"], "no offer gets past the CPU check")
	assert.Equal(t, "UnfulfilledRole", sum.RejectSummaryLastOffers[0].Reason)
}
