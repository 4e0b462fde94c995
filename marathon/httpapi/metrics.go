package httpapi

import (
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

// metricsVersion is the "version" of Marathon's (Dropwizard) JSON metrics.
const metricsVersion = "4.0.0"

// metrics serves /metrics: the Prometheus text exposition when the client
// asks for it (text/plain or OpenMetrics, as Prometheus scrapers do), and
// Marathon's JSON form otherwise, also for no Accept header and */*
// (spec §1.7, decision D6).
func (s *server) metrics(w http.ResponseWriter, r *http.Request) {
	if wantsPromText(r.Header.Values("Accept")) {
		s.metricsText(w, r)
		return
	}
	s.metricsJSON(w, r)
}

// metricsText serves the Prometheus exposition (/metrics/prometheus).
func (s *server) metricsText(w http.ResponseWriter, r *http.Request) {
	promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

// wantsPromText reports whether the Accept header values name a text
// exposition format (text/plain, text/* or OpenMetrics) themselves and
// rank it at least as high as application/json. Wildcards alone (*/*,
// application/*) do not ask for text.
func wantsPromText(accept []string) bool {
	ranges := parseAccept(accept)
	var qText float64
	for _, mt := range []string{"text/plain", "application/openmetrics-text"} {
		q, match := quality(ranges, mt)
		explicit := match == matchFull || match == matchType && mt == "text/plain"
		if explicit {
			qText = max(qText, q)
		}
	}
	qJSON, _ := quality(ranges, "application/json")
	return qText > 0 && qText >= qJSON
}

// jsonMetrics is Marathon's /metrics JSON body.
type jsonMetrics struct {
	Version    string                    `json:"version"`
	Gauges     map[string]jsonGauge      `json:"gauges"`
	Counters   map[string]jsonCounter    `json:"counters"`
	Histograms map[string]jsonHistogram  `json:"histograms"`
	Meters     map[string]map[string]any `json:"meters"`
	Timers     map[string]map[string]any `json:"timers"`
}

type jsonGauge struct {
	Value float64 `json:"value"`
}

// jsonCounter is a Dropwizard counter: an integer count.
type jsonCounter struct {
	Count int64 `json:"count"`
}

// jsonHistogram is a Prometheus histogram or summary in Dropwizard's
// histogram shape (count, min, max, mean, stddev and percentiles).
// Prometheus keeps no samples, so for histograms min, max, the
// percentiles and stddev are estimated from the buckets; a summary gives
// its own quantiles (min and max are its 0 and 1 quantiles when it has
// them) and no stddev.
type jsonHistogram struct {
	Count  int64   `json:"count"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	Mean   float64 `json:"mean"`
	P50    float64 `json:"p50"`
	P75    float64 `json:"p75"`
	P95    float64 `json:"p95"`
	P98    float64 `json:"p98"`
	P99    float64 `json:"p99"`
	P999   float64 `json:"p999"`
	Stddev float64 `json:"stddev"`
}

// metricsJSON serves the registry's gathered metrics in Marathon's JSON
// form. Labelled series are keyed name{label="value",...}.
func (s *server) metricsJSON(w http.ResponseWriter, r *http.Request) {
	families, err := s.cfg.Registry.Gather()
	if err != nil && len(families) == 0 {
		s.writeError(w, r, err)
		return
	}
	if err != nil {
		s.log.Warn("gather metrics", "err", err)
	}
	writeJSON(w, http.StatusOK, buildJSONMetrics(families))
}

func buildJSONMetrics(families []*dto.MetricFamily) jsonMetrics {
	out := jsonMetrics{
		Version:    metricsVersion,
		Gauges:     map[string]jsonGauge{},
		Counters:   map[string]jsonCounter{},
		Histograms: map[string]jsonHistogram{},
		Meters:     map[string]map[string]any{},
		Timers:     map[string]map[string]any{},
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			name := seriesName(f.GetName(), m.GetLabel())
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out.Counters[name] = jsonCounter{Count: int64(math.Round(finite(m.GetCounter().GetValue())))}
			case dto.MetricType_GAUGE:
				out.Gauges[name] = jsonGauge{Value: finite(m.GetGauge().GetValue())}
			case dto.MetricType_UNTYPED:
				out.Gauges[name] = jsonGauge{Value: finite(m.GetUntyped().GetValue())}
			case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
				out.Histograms[name] = fromHistogram(m.GetHistogram())
			case dto.MetricType_SUMMARY:
				out.Histograms[name] = fromSummary(m.GetSummary())
			}
		}
	}
	return out
}

// seriesName is name, or name{k="v",...} with the labels sorted by name.
func seriesName(name string, labels []*dto.LabelPair) string {
	if len(labels) == 0 {
		return name
	}
	parts := make([]string, 0, len(labels))
	for _, l := range labels {
		parts = append(parts, l.GetName()+"="+strconv.Quote(l.GetValue()))
	}
	sort.Strings(parts)
	return name + "{" + strings.Join(parts, ",") + "}"
}

// finite maps NaN and infinities (which JSON cannot carry) to 0.
func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

func fromHistogram(h *dto.Histogram) jsonHistogram {
	count := h.GetSampleCount()
	out := jsonHistogram{Count: int64(count)}
	if count == 0 {
		return out
	}
	out.Mean = finite(h.GetSampleSum() / float64(count))
	q := func(phi float64) float64 { return finite(bucketQuantile(phi, count, h.GetBucket())) }
	out.P50, out.P75, out.P95, out.P98, out.P99, out.P999 = q(0.5), q(0.75), q(0.95), q(0.98), q(0.99), q(0.999)
	// min and max: the edges of the lowest and highest non-empty buckets
	// (the last finite bound for samples above it); stddev: each sample
	// taken at its bucket's midpoint.
	lower, prev, first := 0.0, uint64(0), true
	var sq float64
	for _, b := range h.GetBucket() {
		upper, cum := b.GetUpperBound(), b.GetCumulativeCount()
		n := cum - prev
		if n > 0 {
			top := upper
			if math.IsInf(upper, 1) {
				top = lower
			}
			if first {
				out.Min, first = lower, false
			}
			out.Max = top
			d := (lower+top)/2 - out.Mean
			sq += float64(n) * d * d
		}
		lower, prev = upper, cum
	}
	if rest := count - prev; rest > 0 {
		// Samples above the last bucket (the +Inf bucket is implicit).
		if first {
			out.Min = lower
		}
		out.Max = lower
		d := lower - out.Mean
		sq += float64(rest) * d * d
	}
	out.Stddev = finite(math.Sqrt(sq / float64(count)))
	return out
}

// bucketQuantile estimates the phi-quantile by linear interpolation inside
// the bucket that holds it (as PromQL's histogram_quantile does). A
// quantile in the +Inf bucket is the highest finite upper bound.
func bucketQuantile(phi float64, count uint64, buckets []*dto.Bucket) float64 {
	if count == 0 || len(buckets) == 0 {
		return 0
	}
	rank := phi * float64(count)
	lower, prevCount := 0.0, 0.0
	for _, b := range buckets {
		upper, cum := b.GetUpperBound(), float64(b.GetCumulativeCount())
		if cum >= rank {
			if math.IsInf(upper, 1) {
				return lower
			}
			if cum == prevCount {
				return upper
			}
			return lower + (upper-lower)*(rank-prevCount)/(cum-prevCount)
		}
		lower, prevCount = upper, cum
	}
	return lower
}

func fromSummary(s *dto.Summary) jsonHistogram {
	out := jsonHistogram{Count: int64(s.GetSampleCount())}
	if out.Count > 0 {
		out.Mean = finite(s.GetSampleSum() / float64(out.Count))
	}
	for _, q := range s.GetQuantile() {
		v := finite(q.GetValue())
		switch q.GetQuantile() {
		case 0:
			out.Min = v
		case 0.5:
			out.P50 = v
		case 0.75:
			out.P75 = v
		case 0.95:
			out.P95 = v
		case 0.98:
			out.P98 = v
		case 0.99:
			out.P99 = v
		case 0.999:
			out.P999 = v
		case 1:
			out.Max = v
		}
	}
	return out
}
