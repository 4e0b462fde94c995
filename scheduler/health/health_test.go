package health

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
)

func intp(i int) *int { return &i }

func TestCheckFor(t *testing.T) {
	tests := []struct {
		name    string
		hc      marathon.HealthCheck
		ports   []int
		want    Check
		wantErr string
	}{
		{
			name:  "http defaults",
			hc:    marathon.HealthCheck{},
			ports: []int{31000},
			want:  Check{Kind: KindHTTP, Host: "h", Port: 31000, Path: "/", Interval: DefaultInterval, Timeout: DefaultTimeout},
		},
		{
			name: "https port index",
			hc: marathon.HealthCheck{Protocol: "MESOS_HTTPS", Path: "/health", PortIndex: intp(1), GracePeriodSeconds: 300,
				IntervalSeconds: 10, TimeoutSeconds: 5, MaxConsecutiveFailures: 3, IgnoreHTTP1xx: true},
			ports: []int{31000, 31001},
			want: Check{Kind: KindHTTPS, Host: "h", Port: 31001, Path: "/health", Grace: 300 * time.Second,
				Interval: 10 * time.Second, Timeout: 5 * time.Second, MaxConsecutiveFailures: 3, IgnoreHTTP1xx: true},
		},
		{
			name:  "tcp fixed port wins",
			hc:    marathon.HealthCheck{Protocol: "TCP", Port: intp(8080), PortIndex: intp(0), IntervalSeconds: 1, TimeoutSeconds: 1},
			ports: []int{31000},
			want:  Check{Kind: KindTCP, Host: "h", Port: 8080, Path: "/", Interval: time.Second, Timeout: time.Second},
		},
		{
			name: "command",
			hc:   marathon.HealthCheck{Protocol: "COMMAND", Command: &marathon.CommandCheck{Value: "true"}, IntervalSeconds: 2, TimeoutSeconds: 1},
			want: Check{Kind: KindCommand, Host: "h", Command: "true", Path: "/", Interval: 2 * time.Second, Timeout: time.Second},
		},
		{name: "command missing", hc: marathon.HealthCheck{Protocol: "COMMAND"}, wantErr: "without command"},
		{name: "port index out of range", hc: marathon.HealthCheck{PortIndex: intp(2)}, ports: []int{1}, wantErr: "out of range"},
		{name: "no ports", hc: marathon.HealthCheck{Protocol: "TCP"}, wantErr: "out of range"},
		{name: "unknown protocol", hc: marathon.HealthCheck{Protocol: "GOPHER"}, wantErr: "unknown health check protocol"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CheckFor(tt.hc, "h", tt.ports)
			if tt.wantErr != "" {
				assert.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestChanged(t *testing.T) {
	ts := "x"
	a := []marathon.HealthCheckResult{{Alive: true}}
	tests := []struct {
		name     string
		old, new []marathon.HealthCheckResult
		want     bool
	}{
		{"same", a, []marathon.HealthCheckResult{{Alive: true, LastSuccess: &ts}}, false},
		{"alive flip", a, []marathon.HealthCheckResult{{Alive: false}}, true},
		{"failures", []marathon.HealthCheckResult{{ConsecutiveFailures: 1}}, []marathon.HealthCheckResult{{ConsecutiveFailures: 2}}, true},
		{"length", nil, a, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Changed(tt.old, tt.new))
		})
	}
}

// recorder collects OnChange calls.
type recorder struct {
	mu   sync.Mutex
	seen [][]marathon.HealthCheckResult
}

func (r *recorder) on(res []marathon.HealthCheckResult) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, res)
}

func (r *recorder) last() []marathon.HealthCheckResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.seen) == 0 {
		return nil
	}
	return r.seen[len(r.seen)-1]
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

func startRunner(t *testing.T, checks ...Check) (*Runner, *recorder) {
	t.Helper()
	rec := &recorder{}
	r := NewRunner(Config{TaskID: "app.1", InstanceID: "app.marathon-1", Checks: checks, OnChange: rec.on})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return r, rec
}

func hostPort(t *testing.T, addr string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	n, err := strconv.Atoi(p)
	require.NoError(t, err)
	return h, n
}

func fast(k Kind, host string, port int) Check {
	return Check{Kind: k, Host: host, Port: port, Path: "/health", Interval: 50 * time.Millisecond, Timeout: time.Second}
}

func eventuallyAlive(t *testing.T, rec *recorder, alive bool, failures int) {
	t.Helper()
	require.Eventually(t, func() bool {
		l := rec.last()
		return len(l) > 0 && l[0].Alive == alive && l[0].ConsecutiveFailures >= failures
	}, 5*time.Second, 10*time.Millisecond, "want alive=%v failures=%d, last %+v", alive, failures, rec.last())
}

func TestHTTPFlips(t *testing.T) {
	for _, tls := range []bool{false, true} {
		t.Run("tls="+strconv.FormatBool(tls), func(t *testing.T) {
			var status atomic.Int32
			status.Store(200)
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/health" {
					w.WriteHeader(404)
					return
				}
				w.WriteHeader(int(status.Load()))
			})
			var srv *httptest.Server
			kind := KindHTTP
			if tls {
				srv, kind = httptest.NewTLSServer(h), KindHTTPS
			} else {
				srv = httptest.NewServer(h)
			}
			t.Cleanup(srv.Close)
			host, port := hostPort(t, srv.Listener.Addr().String())
			r, rec := startRunner(t, fast(kind, host, port))

			eventuallyAlive(t, rec, true, 0)
			first := rec.last()[0]
			require.NotNil(t, first.FirstSuccess)
			assert.Nil(t, first.LastFailure)
			assert.Equal(t, "app.1", first.TaskID)
			assert.Equal(t, "app.marathon-1", first.InstanceID)

			status.Store(500)
			eventuallyAlive(t, rec, false, 2)
			got := rec.last()[0]
			require.NotNil(t, got.LastFailureCause)
			assert.Contains(t, *got.LastFailureCause, "HTTP status 500")
			assert.Equal(t, *first.FirstSuccess, *got.FirstSuccess, "firstSuccess is set once")

			status.Store(302) // a redirect counts as success
			eventuallyAlive(t, rec, true, 0)
			assert.Equal(t, rec.last(), r.Results())
		})
	}
}

// reservedPort binds a TCP socket on 127.0.0.1 without listening: dials
// to its port are refused, and no other process can take the port while
// the test runs. listen turns it into a listener on the same port.
func reservedPort(t *testing.T) (port int, listen func()) {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { syscall.Close(fd) })
	require.NoError(t, syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	sa, err := syscall.Getsockname(fd)
	require.NoError(t, err)
	return sa.(*syscall.SockaddrInet4).Port, func() { require.NoError(t, syscall.Listen(fd, 16)) }
}

func TestTCP(t *testing.T) {
	port, listen := reservedPort(t)
	_, rec := startRunner(t, fast(KindTCP, "127.0.0.1", port))
	eventuallyAlive(t, rec, false, 2)
	assert.Contains(t, *rec.last()[0].LastFailureCause, "refused")
	listen()
	eventuallyAlive(t, rec, true, 0)
}

func TestCommand(t *testing.T) {
	dir := t.TempDir()
	c := Check{Kind: KindCommand, Command: `test -f "$MARKER"`, Interval: 50 * time.Millisecond, Timeout: time.Second}
	rec := &recorder{}
	r := NewRunner(Config{TaskID: "t", Checks: []Check{c}, Env: map[string]string{"MARKER": dir + "/ok"}, Dir: dir, OnChange: rec.on})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	eventuallyAlive(t, rec, false, 1)
	require.NoError(t, os.WriteFile(dir+"/ok", []byte("ok"), 0o644))
	eventuallyAlive(t, rec, true, 0)
}

func TestCommandTimeout(t *testing.T) {
	c := Check{Kind: KindCommand, Command: "sleep 10", Interval: 50 * time.Millisecond, Timeout: 100 * time.Millisecond}
	start := time.Now()
	_, rec := startRunner(t, c)
	eventuallyAlive(t, rec, false, 1)
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.Contains(t, *rec.last()[0].LastFailureCause, "timed out")
}

func TestGracePeriod(t *testing.T) {
	// Nothing listens on this port: every probe fails.
	port, _ := reservedPort(t)
	host := "127.0.0.1"

	inGrace := fast(KindTCP, host, port)
	inGrace.Grace = time.Hour
	noGrace := fast(KindTCP, host, port)
	r, rec := startRunner(t, inGrace, noGrace)

	require.Eventually(t, func() bool {
		l := rec.last()
		return len(l) == 2 && l[1].ConsecutiveFailures >= 3
	}, 5*time.Second, 10*time.Millisecond)
	res := r.Results()
	assert.Equal(t, marathon.HealthCheckResult{TaskID: "app.1", InstanceID: "app.marathon-1"}, res[0], "failures in the grace period are not counted")
	assert.False(t, res[1].Alive)
}

func TestGraceEndsWithFirstSuccess(t *testing.T) {
	var fail atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			w.WriteHeader(503)
		}
	}))
	t.Cleanup(srv.Close)
	host, port := hostPort(t, srv.Listener.Addr().String())
	c := fast(KindHTTP, host, port)
	c.Grace = time.Hour
	_, rec := startRunner(t, c)
	eventuallyAlive(t, rec, true, 0)
	fail.Store(true)
	eventuallyAlive(t, rec, false, 1)
}

func TestIgnoreHTTP1xx(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = http.ReadRequest(bufio.NewReader(c))
				_, _ = c.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n"))
			}()
		}
	}()
	host, port := hostPort(t, ln.Addr().String())

	ignore := fast(KindHTTP, host, port)
	ignore.IgnoreHTTP1xx = true
	count := fast(KindHTTP, host, port)
	r, rec := startRunner(t, ignore, count)
	require.Eventually(t, func() bool {
		l := rec.last()
		return len(l) == 2 && l[1].ConsecutiveFailures >= 2
	}, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, marathon.HealthCheckResult{TaskID: "app.1", InstanceID: "app.marathon-1"}, r.Results()[0])
	assert.Contains(t, *r.Results()[1].LastFailureCause, "101")
}

func TestCommandThroughExec(t *testing.T) {
	var mu sync.Mutex
	var ran []string
	healthy := false
	exec := func(_ context.Context, cmd string) error {
		mu.Lock()
		defer mu.Unlock()
		ran = append(ran, cmd)
		if !healthy {
			return errors.New("exit status 1")
		}
		return nil
	}
	rec := &recorder{}
	c := Check{Kind: KindCommand, Command: "pg_isready", Interval: 20 * time.Millisecond, Timeout: time.Second}
	r := NewRunner(Config{TaskID: "db.1", Checks: []Check{c}, Exec: exec, OnChange: rec.on})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	eventuallyAlive(t, rec, false, 1)
	assert.Contains(t, *rec.last()[0].LastFailureCause, "exit status 1")
	mu.Lock()
	healthy = true
	assert.Equal(t, "pg_isready", ran[0])
	mu.Unlock()
	eventuallyAlive(t, rec, true, 0)
}
