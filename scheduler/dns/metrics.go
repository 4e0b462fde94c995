package dns

import "github.com/prometheus/client_golang/prometheus"

// metrics are the DNS server's Prometheus metrics.
type metrics struct {
	queries        *prometheus.CounterVec
	rebuilds       prometheus.Counter
	rebuildSeconds prometheus.Histogram
	names          prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_dns_queries_total",
			Help: "DNS queries answered, by source (local, forward, bad) and rcode.",
		}, []string{"source", "rcode"}),
		rebuilds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchyard_dns_table_rebuilds_total",
			Help: "Times the DNS name table was rebuilt.",
		}),
		rebuildSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "switchyard_dns_table_rebuild_seconds",
			Help:    "Time to rebuild the DNS name table from the scheduler's state.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 8),
		}),
		names: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "switchyard_dns_names",
			Help: "Names in the DNS name table.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.queries, m.rebuilds, m.rebuildSeconds, m.names)
	}
	return m
}
