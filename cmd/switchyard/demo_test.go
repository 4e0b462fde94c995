package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/haproxy/haproxytest"
)

func TestParsePortRange(t *testing.T) {
	tests := []struct {
		in      string
		begin   int
		end     int
		wantErr bool
	}{
		{in: "31000-31999", begin: 31000, end: 31999},
		{in: " 1 - 2 ", begin: 1, end: 2},
		{in: "31000", wantErr: true},
		{in: "2-1", wantErr: true},
		{in: "0-10", wantErr: true},
		{in: "1-70000", wantErr: true},
		{in: "a-b", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parsePortRange(tt.in)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.begin, got.Begin)
			assert.Equal(t, tt.end, got.End)
		})
	}
}

// TestDemo runs README's first command (the switchyard binary with no
// arguments) in a private network namespace and checks what the README
// promises: the sample app answers through HAProxy on its servicePort,
// round robin over two tasks, on :80 by vhost, and the stats page works.
// Ctrl-C (SIGINT) stops everything, tasks included.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: skipped with -short")
	}
	if haproxytest.InNetns(t) {
		return
	}
	haproxytest.Binary(t)

	bin := filepath.Join(t.TempDir(), "switchyard")
	build := exec.Command("go", "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	dataDir := t.TempDir()
	// DNS on; no upstream is ever asked (nothing but our names is queried).
	cmd := exec.Command(bin, "--data-dir", dataDir, "--dns-addr", "127.0.0.1:18053", "--dns-resolvers", "127.0.0.1:1")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = &testLogWriter{t: t}
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGKILL)
	})

	banner := make(chan string, 1)
	go func() {
		var b strings.Builder
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			b.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "Ctrl-C") {
				banner <- b.String()
			}
		}
	}()
	select {
	case text := <-banner:
		assert.Contains(t, text, "curl http://127.0.0.1:10000/")
	case err := <-exited:
		t.Fatalf("switchyard exited before it was up: %v", err)
	case <-time.After(90 * time.Second):
		t.Fatal("switchyard printed no banner within 90 s")
	}

	client := &http.Client{Timeout: 2 * time.Second}
	get := func(url, host string) (int, string, string) {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
		require.NoError(t, err)
		if host != "" {
			req.Host = host
		}
		resp, err := client.Do(req)
		require.NoError(t, err, url)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), resp.Header.Get("X-Task-Id")
	}

	// Round robin over both tasks through the servicePort.
	tasks := map[string]bool{}
	for i := 0; i < 6; i++ {
		code, body, task := get("http://127.0.0.1:10000/", "")
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, "HELLO FROM SWITCHYARD\n", body)
		tasks[task] = true
	}
	assert.Len(t, tasks, 2, "requests should reach both tasks: %v", tasks)

	code, body, _ := get("http://127.0.0.1/", "hello.switchyard.local")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "HELLO FROM SWITCHYARD\n", body)
	code, _, _ = get("http://127.0.0.1/", "unknown.example.com")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	code, body, _ = get("http://127.0.0.1:9090/haproxy?stats", "")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "hello_10000")
	code, _, _ = get("http://127.0.0.1:8080/v2/apps/hello", "")
	assert.Equal(t, http.StatusOK, code)
	// Log levels change at run time, as with Marathon's /logging.
	code, body, _ = get("http://127.0.0.1:8080/logging", "")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `"ROOT":"INFO"`)
	assert.Contains(t, body, `"scheduler":"INFO (inherited)"`)
	resp, err := client.Post("http://127.0.0.1:8080/logging", "application/json",
		strings.NewReader(`{"logger":"scheduler","level":"debug"}`))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	code, body, _ = get("http://127.0.0.1:8080/logging", "")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `"scheduler":"DEBUG"`)

	// The sample app's healthy tasks are in DNS, as Mesos-DNS names them.
	var srvs []*mdns.SRV
	require.Eventually(t, func() bool {
		m := new(mdns.Msg)
		m.SetQuestion("_hello._tcp.marathon.mesos.", mdns.TypeSRV)
		r, _, err := (&mdns.Client{Timeout: time.Second}).Exchange(m, "127.0.0.1:18053")
		if err != nil {
			return false
		}
		srvs = srvs[:0]
		for _, rr := range r.Answer {
			srvs = append(srvs, rr.(*mdns.SRV))
		}
		return len(srvs) == 2
	}, 30*time.Second, 100*time.Millisecond)
	for _, s := range srvs {
		code, body, _ := get(fmt.Sprintf("http://127.0.0.1:%d/", s.Port), "")
		assert.Equal(t, http.StatusOK, code, "SRV port %d", s.Port)
		assert.Equal(t, "HELLO FROM SWITCHYARD\n", body)
	}
	code, body, _ = get("http://127.0.0.1:8080/v1/hosts/hello.marathon.mesos", "")
	assert.Equal(t, http.StatusOK, code)
	assert.JSONEq(t, `[{"host":"hello.marathon.mesos.","ip":"127.0.0.1"}]`, body)

	// Ctrl-C stops the demo and its tasks.
	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	select {
	case err := <-exited:
		assert.NoError(t, err, "switchyard should exit cleanly on SIGINT")
	case <-time.After(30 * time.Second):
		t.Fatal("switchyard did not exit within 30 s of SIGINT")
	}
	_, err = client.Get("http://127.0.0.1:10000/")
	assert.Error(t, err, "HAProxy should be gone after exit")
	out, _ = exec.Command("pgrep", "-f", bin+" hello").Output()
	assert.Empty(t, strings.TrimSpace(string(out)), "sample tasks should be stopped on exit")
}

// testLogWriter copies a subprocess's stderr into the test log.
type testLogWriter struct{ t *testing.T }

func (w *testLogWriter) Write(b []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if strings.Contains(line, "level=DEBUG") {
			continue
		}
		w.t.Log(line)
	}
	return len(b), nil
}

// TestDemoRefusesBusyPort: when another process holds the sample app's
// servicePort, the demo must say so and stop, not announce an app that
// HAProxy cannot serve (or mistake the other process for it).
func TestDemoRefusesBusyPort(t *testing.T) {
	haproxyBin := haproxytest.Binary(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port

	cfg := demoConfig{
		HTTPAddr:      "127.0.0.1:0",
		Group:         "webapps01",
		StatsPort:     haproxytest.FreePort(t),
		SamplePort:    busyPort,
		DontBindHTTP:  true,
		HAProxyBinary: haproxyBin,
		DataDir:       t.TempDir(),
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	err = runDemo(t.Context(), cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), fmt.Sprintf("port %d (the sample app's servicePort) is not free", busyPort))
	assert.Contains(t, err.Error(), "--sample-port")
}

func TestFindHAProxy(t *testing.T) {
	bin := haproxytest.Binary(t)
	got, err := findHAProxy(bin)
	require.NoError(t, err)
	assert.Equal(t, bin, got)

	_, err = findHAProxy(filepath.Join(t.TempDir(), "no-such-haproxy"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "make run")

	// The default name is found in /usr/sbin even when PATH lacks it, as
	// for a normal user on Debian.
	if _, serr := os.Stat("/usr/sbin/haproxy"); serr == nil {
		t.Setenv("PATH", "/usr/bin:/bin")
		got, err := findHAProxy("haproxy")
		require.NoError(t, err)
		assert.Equal(t, "/usr/sbin/haproxy", got)
	}
}
