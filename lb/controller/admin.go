package controller

import (
	"cmp"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/switchyard/switchyard/lb"
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
	mux.HandleFunc("GET /_switchyard/skipped", c.serveSkipped)
	mux.Handle("GET /metrics", promhttp.HandlerFor(c.gather, promhttp.HandlerOpts{}))
	return mux
}

// skippedEntry is one app port of GET /_switchyard/skipped.
type skippedEntry struct {
	AppID     string `json:"appId"`
	PortIndex int    `json:"portIndex"`
	Reason    string `json:"reason"`
	// RejectedByHAProxy: the labels passed lb's checks but HAProxy
	// rejected the configuration the port produced (haproxy -c).
	RejectedByHAProxy bool `json:"rejectedByHAProxy"`
	// Filtered: left out by policy (another group, no running task,
	// strict mode), not because of bad input. Listed only with ?all=true.
	Filtered bool `json:"filtered,omitempty"`
}

// serveSkipped answers which app ports the current configuration leaves
// out and why: the question "why is my app not routed?" without reading
// the logs. By default only ports left out for bad input are listed;
// ?all=true adds those left out by policy.
func (c *Controller) serveSkipped(w http.ResponseWriter, r *http.Request) {
	all, _ := strconv.ParseBool(r.URL.Query().Get("all"))
	entries := []skippedEntry{}
	if p := c.skipped.Load(); p != nil {
		for _, s := range *p {
			if s.Filtered && !all {
				continue
			}
			entries = append(entries, skippedEntry{
				AppID: s.AppID, PortIndex: s.PortIndex, Reason: s.Reason,
				RejectedByHAProxy: s.Rejected, Filtered: s.Filtered,
			})
		}
	}
	slices.SortFunc(entries, func(a, b skippedEntry) int {
		return cmp.Or(strings.Compare(a.AppID, b.AppID), cmp.Compare(a.PortIndex, b.PortIndex))
	})
	out := map[string]any{"skipped": entries}
	if e := c.configErr.Load(); e != nil {
		// The configuration of the current apps is not in effect and no
		// app port can be blamed: say why.
		out["configError"] = *e
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(out)
}

// logAdminPolicy says once, at startup, who may use the admin paths of
// the stats port that change or reveal lb's state.
func (c *Controller) logAdminPolicy() {
	port := c.cfg.Options.StatsPort
	if port == 0 {
		port = lb.DefaultStatsPort
	}
	allow := c.cfg.Options.AdminAllow
	if len(allow) == 0 {
		c.log.Info("admin endpoints /_mlb_signal/* and /_haproxy_getconfig on the stats port are open to everyone who can reach it, as in marathon-lb; limit them with --admin-allow", "stats_port", port)
		return
	}
	nets := make([]string, len(allow))
	for i, p := range allow {
		nets[i] = p.Masked().String()
	}
	c.log.Info("admin endpoints /_mlb_signal/* and /_haproxy_getconfig on the stats port are limited to --admin-allow; others get 403", "stats_port", port, "allow", strings.Join(nets, ","))
}
