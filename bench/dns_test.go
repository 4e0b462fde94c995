package bench

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/scheduler/dns"
	"github.com/switchyard/switchyard/scheduler/server"
)

// BenchmarkDNSTaskChange measures, with 1,000 apps and 2,000 running
// tasks on a real scheduler, the time from killing one task to the DNS
// server no longer answering with it (kill -> agent -> TASK_KILLED status
// event -> ListApps -> new table), the part of it after the status event,
// and the scheduler's ListApps, which every rebuild reads. Earlier kills'
// relaunches are still settling, so rebuilds fall in bursts (MinInterval).
func BenchmarkDNSTaskChange(b *testing.B) {
	c := newSchedCluster(b, "", 10)
	defer c.stop()
	c.deployApps(b, 1000)
	reg := prometheus.NewRegistry()
	d, err := dns.New(dns.Config{Addr: "127.0.0.1:0", Registry: reg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		LookupHost: func(context.Context, string) ([]netip.Addr, error) { return nil, nil }})
	if err != nil {
		b.Fatal(err)
	}
	if err := d.Listen(); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, server.DNSSource(c.sched)) }()
	defer func() {
		cancel()
		<-done
	}()
	<-d.Ready()

	var listApps []time.Duration
	for range 20 {
		start := time.Now()
		if _, err := c.sched.ListApps(ctx); err != nil {
			b.Fatal(err)
		}
		listApps = append(listApps, time.Since(start))
	}

	// killedAt records when each TASK_KILLED status event is published.
	events, unsubscribe := c.sched.Subscribe("bench")
	defer unsubscribe()
	var mu sync.Mutex
	killedAt := map[string]time.Time{}
	go func() {
		for ev := range events {
			if ev.Type != marathon.EventStatusUpdate {
				continue
			}
			var st marathon.StatusUpdateEvent
			if json.Unmarshal(ev.Data, &st) == nil && st.TaskStatus == marathon.TaskKilled {
				mu.Lock()
				killedAt[st.TaskID] = time.Now()
				mu.Unlock()
			}
		}
	}()

	client := &mdns.Client{Net: "udp", Timeout: 2 * time.Second}
	srvPorts := func(name string) map[uint16]bool {
		m := new(mdns.Msg)
		m.SetQuestion(name, mdns.TypeSRV)
		r, _, err := client.Exchange(m, d.Addr())
		if err != nil {
			b.Fatal(err)
		}
		out := map[uint16]bool{}
		for _, rr := range r.Answer {
			out[rr.(*mdns.SRV).Port] = true
		}
		return out
	}
	// back-to-back: the next kill follows at once, while the last one's
	// relaunch is still publishing events (rebuilds are paced); spaced:
	// 100 ms of quiet before each kill (one change on a quiet cluster).
	for _, mode := range []struct {
		name  string
		quiet time.Duration
	}{{"back-to-back", 0}, {"spaced", 100 * time.Millisecond}} {
		b.Run(mode.name, func(b *testing.B) {
			rebuildsBefore, rebuildSecondsBefore := rebuildStats(b, reg)
			var lat, afterEvent []time.Duration
			for b.Loop() {
				i := rand.IntN(1000)
				appID := "/team" + itoa(i%50) + "/app" + itoa(i)
				name := "_app" + itoa(i) + "-team" + itoa(i%50) + "._tcp.marathon.mesos."
				tasks, err := c.sched.ListTasks(ctx, appID)
				if err != nil || len(tasks) == 0 || len(tasks[0].Ports) == 0 {
					b.Fatalf("tasks of %s: %v %v", appID, tasks, err)
				}
				victim := tasks[0]
				port := uint16(victim.Ports[0])
				for !srvPorts(name)[port] { // wait until DNS shows it (a relaunch from an earlier round)
					time.Sleep(time.Millisecond)
				}
				time.Sleep(mode.quiet)
				start := time.Now()
				if _, _, err := c.sched.KillTasks(ctx, appID, []string{victim.ID}, "", false, false); err != nil {
					b.Fatal(err)
				}
				for srvPorts(name)[port] {
					time.Sleep(200 * time.Microsecond)
				}
				gone := time.Now()
				lat = append(lat, gone.Sub(start))
				mu.Lock()
				if at, ok := killedAt[victim.ID]; ok {
					afterEvent = append(afterEvent, gone.Sub(at))
				}
				mu.Unlock()
			}
			if len(afterEvent) > 0 {
				b.ReportMetric(float64(percentile(afterEvent, 0.5).Microseconds())/1000, "event-to-dns-p50-ms")
				b.ReportMetric(float64(percentile(afterEvent, 0.99).Microseconds())/1000, "event-to-dns-p99-ms")
			}
			b.ReportMetric(float64(percentile(lat, 0.5).Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(percentile(listApps, 0.5).Microseconds())/1000, "listapps-p50-ms")
			n, secs := rebuildStats(b, reg)
			if n > rebuildsBefore {
				b.ReportMetric((secs-rebuildSecondsBefore)/(n-rebuildsBefore)*1000, "rebuild-mean-ms")
				b.ReportMetric((n-rebuildsBefore)/float64(b.N), "rebuilds/change")
			}
		})
	}
}

// rebuildStats reads the DNS server's rebuild count and total seconds.
func rebuildStats(b *testing.B, reg *prometheus.Registry) (count, seconds float64) {
	mfs, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "switchyard_dns_table_rebuild_seconds" {
			h := mf.GetMetric()[0].GetHistogram()
			return float64(h.GetSampleCount()), h.GetSampleSum()
		}
	}
	return 0, 0
}

func itoa(i int) string { return strconv.Itoa(i) }
