package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gozk "github.com/go-zookeeper/zk"

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/scheduler"
	"github.com/switchyard/switchyard/scheduler/agentapi"
	"github.com/switchyard/switchyard/scheduler/schedulertest"
	"github.com/switchyard/switchyard/scheduler/server"
	"github.com/switchyard/switchyard/scheduler/state"
	"github.com/switchyard/switchyard/scheduler/state/zkstore"
	"github.com/switchyard/switchyard/scheduler/zk"
	"github.com/switchyard/switchyard/scheduler/zk/zktest"
)

// schedCluster is a scheduler behind httptest with in-process agents.
type schedCluster struct {
	srv   *httptest.Server
	sched *scheduler.Scheduler
	stop  func()
}

func newSchedCluster(b *testing.B, dataDir string, agents int) *schedCluster {
	return newSchedClusterStore(b, dataDir, nil, agents)
}

// newSchedClusterStore is newSchedCluster on a given store (st non-nil:
// the ZooKeeper store).
func newSchedClusterStore(b *testing.B, dataDir string, st *state.Store, agents int) *schedCluster {
	b.Helper()
	h, sched, err := server.New(server.Config{
		Scheduler: scheduler.Config{DataDir: dataDir, Store: st, ReconcileInterval: 50 * time.Millisecond, AgentTimeout: time.Minute, Leader: "127.0.0.1:8080"},
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sched.Run(ctx) }()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.BaseContext = func(net.Listener) context.Context { return ctx }
	srv.Start()
	var wg sync.WaitGroup
	for i := range agents {
		a := schedulertest.NewFakeAgent(sched, fmt.Sprintf("agent%02d", i))
		a.Resources = agentapi.Resources{CPUs: 1000, Mem: 1 << 20, Disk: 1 << 20, Ports: []agentapi.PortRange{{Begin: 20000, End: 40000}}}
		a.Wait = time.Second
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = a.Run(ctx)
		}()
	}
	return &schedCluster{srv: srv, sched: sched, stop: func() {
		cancel()
		wg.Wait()
		srv.Close()
		if err := <-done; err != nil {
			b.Error(err)
		}
	}}
}

func (c *schedCluster) post(b *testing.B, path string, body any) {
	data, _ := json.Marshal(body)
	resp, err := c.srv.Client().Post(c.srv.URL+path, "application/json", bytes.NewReader(data))
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b.Fatalf("POST %s: %d", path, resp.StatusCode)
	}
}

// deployApps POSTs n apps with 2 instances each (8 clients in parallel)
// and waits until all 2n tasks are RUNNING.
func (c *schedCluster) deployApps(b *testing.B, n int) {
	var wg sync.WaitGroup
	ids := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ids {
				c.post(b, "/v2/apps", map[string]any{"id": fmt.Sprintf("/team%d/app%d", i%50, i), "cmd": "sleep 1000",
					"instances": 2, "cpus": 0.01, "mem": 8, "labels": map[string]string{"HAPROXY_GROUP": "external"}})
			}
		}()
	}
	for i := range n {
		ids <- i
	}
	close(ids)
	wg.Wait()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		tasks, err := c.sched.ListTasks(context.Background(), "")
		if err != nil {
			b.Fatal(err)
		}
		running := 0
		for _, t := range tasks {
			if t.State == marathon.TaskRunning {
				running++
			}
		}
		if running == 2*n {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d tasks running", running, 2*n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkSchedulerDeploy measures the time from POSTing 1,000 apps
// (2 instances each) to all 2,000 tasks RUNNING on 10 in-process agents,
// with the state in memory, in bbolt, and in a three-node ZooKeeper
// ensemble (as an HA leader writes it: fenced multi-ops).
func BenchmarkSchedulerDeploy(b *testing.B) {
	for _, store := range []string{"memory", "bbolt", "zk"} {
		b.Run(store, func(b *testing.B) {
			var ens *zktest.Ensemble
			if store == "zk" {
				ens = zktest.Start(b, 3)
			}
			n := 0
			for b.Loop() {
				dir := ""
				var st *state.Store
				switch store {
				case "bbolt":
					dir = b.TempDir()
				case "zk":
					n++
					st = zkState(b, ens, fmt.Sprintf("/bench%d", n))
				}
				c := newSchedClusterStore(b, dir, st, 10)
				start := time.Now()
				c.deployApps(b, 1000)
				b.ReportMetric(time.Since(start).Seconds(), "s/1000apps")
				c.stop()
			}
		})
	}
}

// zkState opens a ZooKeeper store under root, fenced by an ephemeral node
// like an elected leader's.
func zkState(b *testing.B, ens *zktest.Ensemble, root string) *state.Store {
	u, err := zk.ParseURL(ens.URL(root))
	if err != nil {
		b.Fatal(err)
	}
	conn, _, err := zk.Connect(u, 10*time.Second, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(conn.Close)
	if err := zk.EnsurePath(conn, root, u.ACL()); err != nil {
		b.Fatal(err)
	}
	// Sequential: a second store on the same root (a new leader) gets its
	// own fence.
	fence, err := conn.Create(root+"/fence-", nil, gozk.FlagEphemeral|gozk.FlagSequence, u.ACL())
	if err != nil {
		b.Fatal(err)
	}
	be, err := zkstore.Open(zkstore.Config{Conn: conn, Root: root, Fence: fence})
	if err != nil {
		b.Fatal(err)
	}
	st, err := state.OpenBackend(be)
	if err != nil {
		b.Fatal(err)
	}
	return st
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// BenchmarkSchedulerListApps measures GET /v2/apps?embed=apps.tasks with
// 1,000 apps and 2,000 running tasks, with the state in memory, in bbolt
// and in a three-node ZooKeeper ensemble; it reports p50 and p99 latency.
func BenchmarkSchedulerListApps(b *testing.B) {
	for _, store := range []string{"memory", "bbolt", "zk"} {
		b.Run(store, func(b *testing.B) {
			dir := ""
			var st *state.Store
			switch store {
			case "bbolt":
				dir = b.TempDir()
			case "zk":
				st = zkState(b, zktest.Start(b, 3), "/bench")
			}
			c := newSchedClusterStore(b, dir, st, 10)
			defer c.stop()
			c.deployApps(b, 1000)
			var lat []time.Duration
			size := 0
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				start := time.Now()
				resp, err := c.srv.Client().Get(c.srv.URL + "/v2/apps?embed=apps.tasks")
				if err != nil {
					b.Fatal(err)
				}
				n, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				lat = append(lat, time.Since(start))
				size = int(n)
			}
			b.ReportMetric(float64(percentile(lat, 0.5).Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(size)/1024, "KiB/resp")
		})
	}
}

// BenchmarkSchedulerZKLoad measures what a new HA leader does before it
// serves: reading the whole state (1,000 apps, 2,000 tasks, their
// versions and deployments) from a three-node ZooKeeper ensemble. A
// failover takes the session timeout plus the election plus this.
func BenchmarkSchedulerZKLoad(b *testing.B) {
	ens := zktest.Start(b, 3)
	c := newSchedClusterStore(b, "", zkState(b, ens, "/bench"), 10)
	c.deployApps(b, 1000)
	c.stop()
	apps := 0
	for b.Loop() {
		st := zkState(b, ens, "/bench")
		apps = len(st.Apps())
		_ = st.Close()
	}
	if apps != 1000 {
		b.Fatalf("loaded %d apps, want 1000", apps)
	}
}

// subscribe attaches n /v2/events subscribers (api_post_event only) that
// read until ctx ends and send the app id of every event they decode to
// seen (when seen is nil they just read). Wait on the result after
// cancelling ctx.
func (c *schedCluster) subscribe(ctx context.Context, b *testing.B, n int, seen chan<- string) *sync.WaitGroup {
	var wg sync.WaitGroup
	for range n {
		req, _ := http.NewRequestWithContext(ctx, "GET", c.srv.URL+"/v2/events?event_type=api_post_event", nil)
		req.Header.Set("Accept", "text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer resp.Body.Close()
			r := bufio.NewReader(resp.Body)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if data, ok := strings.CutPrefix(line, "data: "); ok && seen != nil {
					var ev marathon.APIPostEvent
					if json.Unmarshal([]byte(data), &ev) == nil {
						seen <- ev.AppDefinition.ID
					}
				}
			}
		}()
	}
	return &wg
}

// BenchmarkSchedulerListAppsUnderFanout compares GET /v2/apps?embed=apps.tasks
// latency at 1,000 apps with no event subscribers and with 100 of them
// attached while app changes keep publishing events (one POST every 10 ms):
// the event fan-out must not slow the API.
func BenchmarkSchedulerListAppsUnderFanout(b *testing.B) {
	for _, subscribers := range []int{0, 100} {
		b.Run(fmt.Sprintf("subscribers=%d", subscribers), func(b *testing.B) {
			c := newSchedCluster(b, "", 10)
			defer c.stop()
			c.deployApps(b, 1000)
			ctx, cancel := context.WithCancel(context.Background())
			wg := c.subscribe(ctx, b, subscribers, nil)
			churn := make(chan struct{})
			go func() {
				defer close(churn)
				t := time.NewTicker(10 * time.Millisecond)
				defer t.Stop()
				for i := 0; ; i++ {
					select {
					case <-ctx.Done():
						return
					case <-t.C:
					}
					body, _ := json.Marshal(map[string]any{"id": fmt.Sprintf("/churn%d", i), "cmd": "x", "instances": 0})
					req, _ := http.NewRequestWithContext(ctx, "POST", c.srv.URL+"/v2/apps", bytes.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					if resp, err := http.DefaultClient.Do(req); err == nil {
						resp.Body.Close()
					}
				}
			}()
			var lat []time.Duration
			b.ResetTimer()
			for b.Loop() {
				start := time.Now()
				resp, err := c.srv.Client().Get(c.srv.URL + "/v2/apps?embed=apps.tasks")
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			cancel()
			<-churn
			wg.Wait()
			b.ReportMetric(float64(percentile(lat, 0.5).Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
		})
	}
}

// BenchmarkSchedulerSSEFanout measures how long an app change takes to
// reach 100 /v2/events subscribers (api_post_event seen by all of them).
func BenchmarkSchedulerSSEFanout(b *testing.B) {
	const subscribers = 100
	c := newSchedCluster(b, "", 1)
	defer c.stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen := make(chan string, subscribers*16)
	wg := c.subscribe(ctx, b, subscribers, seen)
	i := 0
	b.ResetTimer()
	for b.Loop() {
		id := fmt.Sprintf("/fan%d", i)
		i++
		c.post(b, "/v2/apps", map[string]any{"id": id, "cmd": "x", "instances": 0})
		for got := 0; got < subscribers; {
			if <-seen == id {
				got++
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(subscribers*b.N)/b.Elapsed().Seconds(), "deliveries/s")
	cancel()
	wg.Wait()
}
