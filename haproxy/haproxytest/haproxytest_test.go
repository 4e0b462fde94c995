package haproxytest_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/haproxy/haproxytest"
)

func TestFreePort(t *testing.T) {
	port := haproxytest.FreePort(t)
	require.Positive(t, port)
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	require.NoError(t, err, "the port is free")
	l.Close()
}

func TestStartServesTraffic(t *testing.T) {
	port := haproxytest.FreePort(t)
	p := haproxytest.Start(t, fmt.Sprintf(`defaults
  mode http
  timeout connect 1s
  timeout client 5s
  timeout server 5s
frontend fe
  bind 127.0.0.1:%d
  http-request return status 200 content-type text/plain string "hello from haproxy"
`, port))
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, "hello from haproxy", string(body))
	pids, err := p.PIDs(t.Context())
	require.NoError(t, err)
	assert.Len(t, pids, 2, "master and worker")
}

// TestInNetnsBindsPort80 runs inside a private network namespace, where the
// privileged port 80 is free and only this test uses it.
func TestInNetnsBindsPort80(t *testing.T) {
	if haproxytest.InNetns(t) {
		return
	}
	ns := os.Getenv(haproxytest.NetnsEnv)
	require.NotEmpty(t, ns, "running inside the namespace")

	l, err := net.Listen("tcp", "127.0.0.1:80")
	require.NoError(t, err, "port 80 is free inside %s", ns)
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, ns) }),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })

	resp, err := http.Get("http://127.0.0.1:80/")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, ns, string(body))
}
