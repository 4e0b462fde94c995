package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/scheduler/agentapi"
	"github.com/switchyard/switchyard/scheduler/leader"
	"github.com/switchyard/switchyard/scheduler/schedulertest"
	"github.com/switchyard/switchyard/scheduler/zk/zktest"
)

// BenchmarkHAFailover measures a leader failover at 1,000 apps (2,000
// running tasks on 10 fake agents): three scheduler processes on a
// three-node ZooKeeper ensemble, session timeout 3 s, kill -9 of the
// leader. It reports the time from the kill to all schedulers naming the
// new leader (elected-s) and to the new leader answering GET /v2/apps with
// all 1,000 apps and 2,000 running tasks (serving-s). Each iteration
// restarts the killed scheduler as a standby; run it with -benchtime 1x
// (or a few x).
func BenchmarkHAFailover(b *testing.B) {
	const apps = 1000
	ens := zktest.Start(b, 3)
	ms := cluster(b, ens, 3, 3*time.Second)
	lead := waitLeader(b, ms, "")

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	b.Cleanup(func() { cancel(); wg.Wait() })
	masters, err := leader.ParseMasters(ms[0].url() + "," + ms[1].url() + "," + ms[2].url())
	if err != nil {
		b.Fatal(err)
	}
	for i := range 10 {
		client := agentapi.NewClient(ms[i%3].url(), &http.Client{Transport: &leader.FailoverTransport{Masters: masters}})
		a := schedulertest.NewFakeAgent(client, fmt.Sprintf("agent%02d", i))
		a.Resources = agentapi.Resources{CPUs: 1000, Mem: 1 << 20, Disk: 1 << 20, Ports: []agentapi.PortRange{{Begin: 20000, End: 40000}}}
		a.Wait = time.Second
		wg.Add(1)
		go func() { defer wg.Done(); _ = a.Run(ctx) }()
	}

	ids := make(chan int)
	var pwg sync.WaitGroup
	for range 8 {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			for i := range ids {
				code, body, _, err := call("POST", lead.url()+"/v2/apps", map[string]any{"id": fmt.Sprintf("/team%d/app%d", i%50, i),
					"cmd": "sleep 1000", "instances": 2, "cpus": 0.01, "mem": 8})
				if err != nil || code != http.StatusCreated {
					b.Errorf("POST app %d: %d %s %v", i, code, body, err)
				}
			}
		}()
	}
	for i := range apps {
		ids <- i
	}
	close(ids)
	pwg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	// complete reports whether base serves every app with 2 running tasks.
	complete := func(base string) bool {
		code, body, _, err := call("GET", base+"/v2/apps?embed=apps.tasks", nil)
		if err != nil || code != http.StatusOK {
			return false
		}
		var list struct{ Apps []marathon.App }
		if json.Unmarshal(body, &list) != nil || len(list.Apps) != apps {
			return false
		}
		for _, a := range list.Apps {
			running := 0
			for _, tk := range a.Tasks {
				if tk.State == marathon.TaskRunning {
					running++
				}
			}
			if running != 2 {
				return false
			}
		}
		return true
	}
	waitUntil := func(what string, cond func() bool) {
		deadline := time.Now().Add(5 * time.Minute)
		for !cond() {
			if time.Now().After(deadline) {
				b.Fatalf("%s: not within 5 minutes", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitUntil("2,000 tasks running", func() bool { return complete(lead.url()) })

	var elected, serving time.Duration
	for b.Loop() {
		killed := time.Now()
		lead.kill()
		next := waitLeader(b, ms, lead.addr)
		elected += time.Since(killed)
		waitUntil("new leader serves every app", func() bool { return complete(next.url()) })
		serving += time.Since(killed)
		startMaster(b, lead)
		waitUntil("old leader back as a standby", func() bool { return leaderOf(ms) == next.addr })
		lead = next
	}
	b.ReportMetric(elected.Seconds()/float64(b.N), "elected-s")
	b.ReportMetric(serving.Seconds()/float64(b.N), "serving-s")
}
