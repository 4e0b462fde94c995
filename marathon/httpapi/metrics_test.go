package httpapi

import (
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWantsPromText(t *testing.T) {
	tests := []struct {
		accept string
		want   bool
	}{
		{"", false},
		{"*/*", false},
		{"application/json", false},
		{"application/json, text/plain", true},
		{"application/json;q=0.9, text/plain;q=0.5", false},
		{"text/plain;version=0.0.4", true},
		{"text/*", true},
		{"application/openmetrics-text;version=1.0.0", true},
		{"application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1", true},
		{"application/json, */*;q=0.1", false},
		{"text/plain;q=0.5, */*", false},
		{"text/plain;q=0, */*", false},
		{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", false},
		{"application/*", false},
		{"garbage;;", false},
	}
	for _, tc := range tests {
		t.Run(tc.accept, func(t *testing.T) {
			assert.Equal(t, tc.want, wantsPromText([]string{tc.accept}))
		})
	}
}

func TestQuality(t *testing.T) {
	tests := []struct {
		accept, mediaType string
		q                 float64
		match             int
	}{
		{"", "text/plain", 0, matchNone},
		{"*/*;q=0.3", "text/plain", 0.3, matchAny},
		{"text/*;q=0.4, */*", "text/plain", 0.4, matchType},
		{"text/plain;q=0, text/*", "text/plain", 0, matchFull},
		{"Text/Plain;Q=0.7", "text/plain", 0.7, matchFull},
		{"application/json;q=0.2, application/json;q=0.6", "application/json", 0.6, matchFull},
		{"image/png", "application/json", 0, matchNone},
		{"*/json", "application/json", 0, matchNone},
		{"text/plain;q=2", "text/plain", 0, matchNone},
	}
	for _, tc := range tests {
		t.Run(tc.accept+" "+tc.mediaType, func(t *testing.T) {
			q, m := quality(parseAccept([]string{tc.accept}), tc.mediaType)
			assert.Equal(t, tc.q, q)
			assert.Equal(t, tc.match, m)
		})
	}
}

func TestBucketQuantile(t *testing.T) {
	b := func(upper float64, cum uint64) *dto.Bucket {
		return &dto.Bucket{UpperBound: &upper, CumulativeCount: &cum}
	}
	// 10 samples: 4 in (0,1], 4 in (1,2], 2 in (2,+Inf).
	buckets := []*dto.Bucket{b(1, 4), b(2, 8), b(4, 8)}
	assert.InDelta(t, 0.5, bucketQuantile(0.2, 10, buckets), 1e-9)
	assert.InDelta(t, 1.25, bucketQuantile(0.5, 10, buckets), 1e-9)
	assert.InDelta(t, 4, bucketQuantile(0.99, 10, buckets), 1e-9, "beyond the last bound: the last finite bound")
	assert.Zero(t, bucketQuantile(0.5, 0, buckets))
}

func TestMetricsNegotiation(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "test_things_total", Help: "h"})
	c.Add(3)
	frac := prometheus.NewCounter(prometheus.CounterOpts{Name: "test_cpu_seconds_total", Help: "h"})
	frac.Add(2.6)
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "test_level", Help: "h"})
	g.Set(7.5)
	cv := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "test_by_code_total", Help: "h"}, []string{"route", "code"})
	cv.WithLabelValues("apps", "200").Add(2)
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "test_seconds", Help: "h", Buckets: []float64{1, 2, 4}})
	for _, v := range []float64{0.5, 1.5, 1.5, 3} {
		h.Observe(v)
	}
	reg.MustRegister(c, frac, g, cv, h)
	srv := httptest.NewServer(New(Config{Apps: &fakeBackend{}, Cluster: &fakeBackend{}, Registry: reg, Keepalive: time.Hour,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}))
	t.Cleanup(srv.Close)

	get := func(t *testing.T, path, accept string) (string, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		require.NoError(t, err)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.Header.Get("Content-Type"), string(b)
	}

	textCases := []struct{ name, path, accept string }{
		{"text", "/metrics", "text/plain"},
		{"openmetrics", "/metrics", "application/openmetrics-text;version=1.0.0"},
		{"prometheus scraper", "/metrics", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"},
		{"prometheus path ignores json", "/metrics/prometheus", "application/json"},
	}
	for _, tc := range textCases {
		t.Run(tc.name, func(t *testing.T) {
			ct, body := get(t, tc.path, tc.accept)
			assert.Contains(t, ct, "text/plain")
			assert.Contains(t, body, "test_things_total 3\n")
			assert.Contains(t, body, `test_by_code_total{code="200",route="apps"} 2`)
		})
	}

	for _, accept := range []string{"", "*/*", "application/json"} {
		t.Run("json for accept "+accept, func(t *testing.T) {
			ct, body := get(t, "/metrics", accept)
			assert.Contains(t, ct, "application/json")
			assert.True(t, json.Valid([]byte(body)))
			assert.Contains(t, body, `"test_things_total":{"count":3}`, "counters are integers")
		})
	}

	t.Run("json", func(t *testing.T) {
		ct, body := get(t, "/metrics", "application/json")
		assert.Contains(t, ct, "application/json")
		var m struct {
			Version  string                                `json:"version"`
			Gauges   map[string]struct{ Value float64 }    `json:"gauges"`
			Counters map[string]map[string]json.RawMessage `json:"counters"`
			Hists    map[string]map[string]json.RawMessage `json:"histograms"`
			Meters   map[string]any                        `json:"meters"`
			Timers   map[string]any                        `json:"timers"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &m))
		assert.Equal(t, metricsVersion, m.Version)
		assert.Equal(t, 7.5, m.Gauges["test_level"].Value)
		assert.Equal(t, "3", string(m.Counters["test_things_total"]["count"]))
		assert.Equal(t, "2", string(m.Counters[`test_by_code_total{code="200",route="apps"}`]["count"]))
		assert.Equal(t, "3", string(m.Counters["test_cpu_seconds_total"]["count"]), "an int64 count, rounded")
		require.Contains(t, m.Hists, "test_seconds")
		// Dropwizard's histogram members, and only those.
		var keys []string
		for k := range m.Hists["test_seconds"] {
			keys = append(keys, k)
		}
		assert.ElementsMatch(t, []string{"count", "min", "max", "mean", "p50", "p75", "p95", "p98", "p99", "p999", "stddev"}, keys)
		assert.JSONEq(t, "4", string(m.Hists["test_seconds"]["count"]))
		assert.JSONEq(t, "1.625", string(m.Hists["test_seconds"]["mean"]))
		assert.JSONEq(t, "0", string(m.Hists["test_seconds"]["min"]), "lower edge of the first non-empty bucket")
		assert.JSONEq(t, "4", string(m.Hists["test_seconds"]["max"]), "upper edge of the last non-empty bucket")
		var sd float64
		require.NoError(t, json.Unmarshal(m.Hists["test_seconds"]["stddev"], &sd))
		assert.InDelta(t, math.Sqrt(3.1875/4), sd, 1e-9, "samples at bucket midpoints 0.5, 1.5, 1.5, 3")
		assert.JSONEq(t, "1.5", string(m.Hists["test_seconds"]["p50"]), "2 of 4 samples by 1.5: rank 2 is the middle of (1,2]")
		assert.NotNil(t, m.Meters)
		assert.NotNil(t, m.Timers)
		// The HTTP API's own metrics come from the same registry.
		assert.Contains(t, m.Counters, `marathon_http_requests_total{code="200",route="metrics"}`)
	})
}
