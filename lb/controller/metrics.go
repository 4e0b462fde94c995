package controller

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the controller's Prometheus series, registered on the
// registry given in Config (never the global one).
type metrics struct {
	reloads            *prometheus.CounterVec
	runtimeUpdates     prometheus.Counter
	skippedApps        prometheus.Gauge
	invalidApps        prometheus.Gauge
	validationFailures prometheus.Counter
	loadFailures       prometheus.Counter
	configFailing      prometheus.Gauge
	lastApplyDuration  prometheus.Gauge
	syncErrors         prometheus.Counter
	syncs              prometheus.Counter
	incrementalSyncs   prometheus.Counter
	events             *prometheus.CounterVec
	haproxyRestarts    prometheus.Counter
}

// Reload reasons used as the "reason" label of reloads_total; kept to a
// small fixed set so the series stay bounded (the free-text reason is
// logged).
const (
	reloadInitial      = "initial"
	reloadStructural   = "config_change"
	reloadRuntimeError = "runtime_api_failed"
	reloadSignal       = "signal"
	reloadCerts        = "certificates_changed"
)

const metricsNamespace = "switchyard_lb"

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "reloads_total",
			Help: "HAProxy reloads (or reload command runs), by kind of reason.",
		}, []string{"reason"}),
		runtimeUpdates: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "runtime_updates_total",
			Help: "Server-only changes applied through the HAProxy runtime API without a reload.",
		}),
		skippedApps: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Name: "skipped_apps",
			Help: "App ports left out of the configuration in the last sync (bad labels, no ports, ...).",
		}),
		invalidApps: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Name: "invalid_apps",
			Help: "App ports left out in the last sync because haproxy -c rejects the configuration they produce " +
				"(label values or per-app template overrides HAProxy does not accept) or HAProxy fails to load it " +
				"(a service port another process holds); also counted in skipped_apps.",
		}),
		validationFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "validation_failures_total",
			Help: "Rendered configurations rejected by haproxy -c and therefore not applied.",
		}),
		loadFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "load_failures_total",
			Help: "Configurations HAProxy failed to load (start or reload: a service port another process holds, ...) " +
				"although haproxy -c accepted them; the previous worker keeps serving.",
		}),
		configFailing: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Name: "config_failing",
			Help: "1 while the configuration of Marathon's current state is not in effect because HAProxy rejects it " +
				"or fails to load it and no app port can be blamed (the last good or an empty configuration serves), else 0.",
		}),
		lastApplyDuration: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Name: "last_apply_duration_seconds",
			Help: "Duration of the last sync: Marathon read, render, validation and apply.",
		}),
		syncErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "sync_errors_total",
			Help: "Syncs that failed (Marathon unreachable, render or apply error); the last config keeps serving.",
		}),
		syncs: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "syncs_total",
			Help: "Sync passes run (each coalesces any number of events).",
		}),
		incrementalSyncs: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "incremental_syncs_total",
			Help: "Sync passes that applied task events from the events themselves, rendering only the apps they changed.",
		}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "events_total",
			Help: "Marathon events received, by type.",
		}, []string{"type"}),
		haproxyRestarts: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "haproxy_restarts_total",
			Help: "Times the HAProxy master exited on its own (killed, crashed, worker killed) and lb started it again.",
		}),
	}
	for _, c := range []prometheus.Collector{
		m.reloads, m.runtimeUpdates, m.skippedApps, m.invalidApps, m.validationFailures, m.loadFailures, m.configFailing,
		m.lastApplyDuration, m.syncErrors, m.syncs, m.incrementalSyncs, m.events, m.haproxyRestarts,
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}
