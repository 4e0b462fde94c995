package scheduler

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the scheduler's Prometheus metrics.
type metrics struct {
	launched       prometheus.Counter
	ended          *prometheus.CounterVec
	deployments    *prometheus.CounterVec
	droppedStreams prometheus.Counter
	gauges         []prometheus.Collector
}

func newMetrics(s *Scheduler) *metrics {
	m := &metrics{
		launched: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchyard_scheduler_tasks_launched_total", Help: "Tasks assigned to agents.",
		}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_scheduler_tasks_ended_total", Help: "Tasks that reached a terminal state, by state.",
		}, []string{"state"}),
		deployments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_scheduler_deployments_total", Help: "Deployments that ended, by result.",
		}, []string{"result"}),
		droppedStreams: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchyard_scheduler_event_streams_dropped_total", Help: "Event subscribers dropped for falling behind.",
		}),
	}
	gauge := func(name, help string, f func() float64) {
		m.gauges = append(m.gauges, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
	}
	gauge("switchyard_scheduler_apps", "Apps defined.", func() float64 { return float64(len(s.store.Apps())) })
	gauge("switchyard_scheduler_tasks", "Tasks not yet terminal.", func() float64 { return float64(len(s.store.Tasks())) })
	gauge("switchyard_scheduler_deployments_running", "Deployments in progress.", func() float64 { return float64(len(s.store.Deployments())) })
	gauge("switchyard_scheduler_agents_reachable", "Agents polling for assignments.", func() float64 {
		s.mu.Lock()
		defer s.mu.Unlock()
		n := 0
		for _, l := range s.live {
			if l.seen && !l.unreachable {
				n++
			}
		}
		return float64(n)
	})
	gauge("switchyard_scheduler_event_subscribers", "Open /v2/events subscribers.", func() float64 { return float64(s.bus.count()) })
	return m
}

func (m *metrics) register(r prometheus.Registerer) error {
	cs := append([]prometheus.Collector{m.launched, m.ended, m.deployments, m.droppedStreams}, m.gauges...)
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			return fmt.Errorf("register scheduler metrics: %w", err)
		}
	}
	return nil
}
