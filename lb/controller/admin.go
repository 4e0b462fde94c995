package controller

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// adminHandler serves the endpoints HAProxy's stats listener forwards to
// lb, with marathon-lb's paths and answers.
func (c *Controller) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_haproxy_getconfig", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if st := c.status.Load(); st != nil {
			_, _ = w.Write(st.Config)
		}
	})
	mux.HandleFunc("GET /_haproxy_getvhostmap", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if st := c.status.Load(); st != nil {
			_, _ = w.Write(st.VhostMap)
		}
	})
	mux.HandleFunc("GET /_haproxy_getappmap", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if st := c.status.Load(); st != nil {
			_, _ = w.Write(st.AppMap)
		}
	})
	mux.HandleFunc("GET /_haproxy_getpids", func(w http.ResponseWriter, r *http.Request) {
		if c.applier == nil {
			http.Error(w, "not started", http.StatusServiceUnavailable)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		pids, err := c.applier.pids(ctx)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		s := make([]string, len(pids))
		for i, p := range pids {
			s[i] = strconv.Itoa(p)
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte(strings.Join(s, " ") + "\n"))
	})
	signal := func(s Signal, name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			c.Signal(s)
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = w.Write([]byte("Sent " + name + " signal to marathon-lb\n"))
		}
	}
	mux.HandleFunc("/_mlb_signal/hup", signal(SignalHUP, "SIGHUP"))
	mux.HandleFunc("/_mlb_signal/usr1", signal(SignalUSR1, "SIGUSR1"))
	mux.Handle("GET /metrics", promhttp.HandlerFor(c.gather, promhttp.HandlerOpts{}))
	return mux
}
