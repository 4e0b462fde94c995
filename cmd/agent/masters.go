package main

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/switchyard/switchyard/scheduler/agent"
	"github.com/switchyard/switchyard/scheduler/leader"
)

// checkMasters checks each URL of a comma-separated --master list.
func checkMasters(raw string) ([]string, error) {
	var out []string
	for _, m := range strings.Split(raw, ",") {
		if strings.TrimSpace(m) == "" && strings.Contains(raw, ",") {
			continue
		}
		u, err := checkMaster(m)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

// followMasters makes an agent with several masters (the schedulers of an
// HA cluster) send each request to the one that answered last and move
// on to the next when it is down or answers 503; any of them serves, as
// a standby proxies to the leader.
func followMasters(cfg *agent.Config, masters []string) {
	if len(masters) < 2 {
		return
	}
	var us []*url.URL
	for _, m := range masters {
		u, _ := url.Parse(m) // checked by checkMaster
		us = append(us, u)
	}
	hc := &http.Client{}
	if cfg.HTTPClient != nil {
		*hc = *cfg.HTTPClient
	}
	// A frozen master is left after 5s beyond a long poll's wait.
	hc.Transport = &leader.FailoverTransport{Masters: us, Base: hc.Transport, AttemptTimeout: 5 * time.Second}
	cfg.HTTPClient = hc
}
