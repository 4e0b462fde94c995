package templates

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/haproxy/haproxytest"
	"github.com/switchyard/switchyard/lb"
	. "github.com/switchyard/switchyard/lb/lbtest"
	"github.com/switchyard/switchyard/marathon"
)

// echoServer serves "<name> <request path>" on 127.0.0.1 and returns its
// port.
func echoServer(t *testing.T, name string) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s %s", name, r.URL.Path)
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().(*net.TCPAddr).Port
}

// TestSharedVhostTrafficE2E sends requests through a real HAProxy running
// the rendered configuration, in a private network namespace (it binds :80).
//   - Two apps share shop.example.com with paths /a and /b and their own
//     users (issue 7 item 1): bob's password must not open /a.
//   - HAPROXY_0_HTTP_BACKEND_PROXYPASS_PATH=/test/ strips "/test/" and
//     leaves /testing alone (item 11).
func TestSharedVhostTrafficE2E(t *testing.T) {
	if haproxytest.InNetns(t) {
		return
	}
	// Hashes made with "openssl passwd -5 -salt alicesalt alicepw" and
	// "... -salt bobsalt bobpw".
	const (
		aliceHash = "$5$alicesalt$Zz50XY3Trif7Q5Z3aJW2GzsXEJxWR3PeLzQfsAmODzA"
		bobHash   = "$5$bobsalt$AiHaqfKibRIwSvN7JZs1Qktjb9dwT2ORO2mBiNyKmv."
	)
	portA, portB, portP := echoServer(t, "a"), echoServer(t, "b"), echoServer(t, "pp")
	apps := []marathon.App{
		App("a", Group("external"), PortDefinitions(10000), Tasks(Task("127.0.0.1", portA)),
			Labels("HAPROXY_0_VHOST", "shop.example.com", "HAPROXY_0_PATH", "/a", "HAPROXY_0_AUTH", "Shop:alice:"+aliceHash)),
		App("b", Group("external"), PortDefinitions(10001), Tasks(Task("127.0.0.1", portB)),
			Labels("HAPROXY_0_VHOST", "shop.example.com", "HAPROXY_0_PATH", "/b", "HAPROXY_0_AUTH", "Shop:bob:"+bobHash)),
		App("pp", Group("external"), PortDefinitions(10002), Tasks(Task("127.0.0.1", portP)),
			Labels("HAPROXY_0_VHOST", "pp.example.com", "HAPROXY_0_HTTP_BACKEND_PROXYPASS_PATH", "/test/")),
	}
	cfg, skipped := lb.Build(apps, lb.Options{Groups: []string{"external"}})
	require.Empty(t, skipped)
	out, err := Default().Render(cfg)
	require.NoError(t, err)
	require.Empty(t, out.Skipped)
	haproxytest.Start(t, string(out.Config))

	client := &http.Client{Timeout: 10 * time.Second}
	get := func(host, path, user, pass string) (int, string, error) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://127.0.0.1:80"+path, nil)
		if err != nil {
			return 0, "", err
		}
		req.Host = host
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	// HAProxy has started; wait until its workers answer on :80.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		_, _, err := get("shop.example.com", "/", "", "")
		assert.NoError(c, err)
	}, 20*time.Second, 50*time.Millisecond)

	for _, tc := range []struct {
		name, host, path, user, pass string
		status                       int
		body                         string
	}{
		{"alice on /a", "shop.example.com", "/a/x", "alice", "alicepw", 200, "a /a/x"},
		{"bob on /a", "shop.example.com", "/a/x", "bob", "bobpw", 401, ""},
		{"nobody on /a", "shop.example.com", "/a/x", "", "", 401, ""},
		{"alice with a wrong password", "shop.example.com", "/a/x", "alice", "bobpw", 401, ""},
		{"bob on /b", "shop.example.com", "/b/y", "bob", "bobpw", 200, "b /b/y"},
		{"alice on /b", "shop.example.com", "/b/y", "alice", "alicepw", 401, ""},
		{"proxypass strips /test/", "pp.example.com", "/test/foo", "", "", 200, "pp /foo"},
		{"proxypass leaves /testing", "pp.example.com", "/testing", "", "", 200, "pp /testing"},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			status, body, err := get(tc.host, tc.path, tc.user, tc.pass)
			require.NoError(t, err)
			assert.Equal(t, tc.status, status)
			if tc.body != "" {
				assert.Equal(t, tc.body, body)
			}
		})
	}
}
