package dns

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/switchyard/switchyard/marathon"
)

// bigSnapshot is 1,000 apps (in 50 groups) with 3 running tasks each on
// 10 agents, every task with two host ports.
func bigSnapshot() Snapshot {
	var snap Snapshot
	for i := range 10 {
		snap.Agents = append(snap.Agents, Agent{ID: fmt.Sprintf("agent-S%d", i), Hostname: fmt.Sprintf("agent%d", i),
			IPs: []netip.Addr{netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)})}})
	}
	port := 20000
	for i := range 1000 {
		app := marathon.App{ID: fmt.Sprintf("/team%d/app%d", i%50, i), PortDefinitions: []marathon.PortDefinition{{Name: "http"}, {}}}
		for j := range 3 {
			app.Tasks = append(app.Tasks, running(fmt.Sprintf("team%d_app%d.%d", i%50, i, j), fmt.Sprintf("agent-S%d", (i+j)%10), port, port+1))
			port += 2
		}
		snap.Apps = append(snap.Apps, app)
	}
	snap.Leader, snap.LeaderPort = ips("10.0.0.100"), 8080
	return snap
}

// BenchmarkTableBuild is the cost of one task change on the name table:
// every change rebuilds the whole table (1,000 apps, 3,000 tasks).
func BenchmarkTableBuild(b *testing.B) {
	snap := bigSnapshot()
	var names int
	b.ReportAllocs()
	for b.Loop() {
		t := build("mesos.", "marathon", snap, nil)
		names = len(t.names)
	}
	b.ReportMetric(float64(names), "names")
}

// BenchmarkRebuild is one rebuild as the server does it after an event:
// read the source, resolve, build, swap (the source here costs nothing;
// see bench/dns_test.go for the real scheduler).
func BenchmarkRebuild(b *testing.B) {
	src := newFakeSource(bigSnapshot())
	s, err := New(Config{Logger: quietLogger(), LookupHost: fakeLookup})
	if err != nil {
		b.Fatal(err)
	}
	f := &following{resolved: map[string][]netip.Addr{}}
	b.ReportAllocs()
	for b.Loop() {
		s.rebuild(context.Background(), src, f)
	}
}

// BenchmarkQueries sends queries over UDP on loopback from 32 clients
// (A, SRV and unknown names of 1,000 apps) and reports queries/s and the
// p50/p99 round trip. Client and server share the machine.
func BenchmarkQueries(b *testing.B) {
	s := startServer(b, Config{}, newFakeSource(bigSnapshot()))
	for _, clients := range []int{4, 8, 32} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) { benchQueries(b, s, clients) })
	}
}

// BenchmarkServeDNS is the handler alone (no sockets): one A query.
func BenchmarkServeDNS(b *testing.B) {
	s := newFuzzServer(b)
	req := question("web.marathon.mesos.", mdns.TypeA)
	w := &recorder{remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}}
	b.ReportAllocs()
	for b.Loop() {
		w.msgs = w.msgs[:0]
		s.ServeDNS(w, req)
	}
}

func benchQueries(b *testing.B, s *Server, clients int) {
	names := make([]string, 0, 3000)
	types := make([]uint16, 0, 3000)
	for i := range 1000 {
		app := fmt.Sprintf("app%d-team%d", i, i%50)
		names = append(names, app+".marathon.mesos.", "_"+app+"._tcp.marathon.mesos.", "no"+app+".marathon.mesos.")
		types = append(types, mdns.TypeA, mdns.TypeSRV, mdns.TypeA)
	}
	var next atomic.Int64
	lat := make([][]time.Duration, clients)
	var wg sync.WaitGroup
	var failed atomic.Int64
	b.ResetTimer()
	start := time.Now()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := mdns.Dial("udp", s.Addr())
			if err != nil {
				failed.Add(1)
				return
			}
			defer conn.Close()
			m := new(mdns.Msg)
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				k := int(i) % len(names)
				m.SetQuestion(names[k], types[k])
				t0 := time.Now()
				_ = conn.SetDeadline(t0.Add(2 * time.Second))
				if err := conn.WriteMsg(m); err != nil {
					failed.Add(1)
					continue
				}
				r, err := conn.ReadMsg()
				if err != nil || r.Id != m.Id {
					failed.Add(1)
					continue
				}
				lat[c] = append(lat[c], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) == 0 {
		b.Fatal("no answers")
	}
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "queries/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(all[(len(all)-1)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(failed.Load()), "failed")
}
