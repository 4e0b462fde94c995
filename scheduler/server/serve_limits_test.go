package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon/marathontest/tlstest"
)

// serveForTest serves h with opts on a loopback port until the test ends.
func serveForTest(t *testing.T, h http.Handler, opts ServeOptions) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- ServeWith(ctx, ln, h, opts) }()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-served)
	})
	return ln.Addr().String()
}

// echoBody answers the length of the body it read, or 400.
var echoBody = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	fmt.Fprint(w, len(b))
})

func TestServeCutsSlowBodies(t *testing.T) {
	addr := serveForTest(t, echoBody, ServeOptions{ReadTimeout: 200 * time.Millisecond})
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	// Promise 100 bytes, send 3, then nothing.
	_, err = io.WriteString(conn, "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
	require.NoError(t, err)
	// Safety net only: the server must answer and close long before.
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(20*time.Second)))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	_, err = io.ReadAll(resp.Body)
	require.NoError(t, err)
	_, err = conn.Read(make([]byte, 1))
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "the server closes the connection")
	assert.ErrorIs(t, err, io.EOF)

	// A body sent in time is read in full, on a fresh connection.
	resp, err = http.Post("http://"+addr+"/x", "text/plain", strings.NewReader("hello"))
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, "5", string(b))
}

func TestServeClosesSilentConnections(t *testing.T) {
	addr := serveForTest(t, echoBody, ServeOptions{ReadHeaderTimeout: 100 * time.Millisecond, IdleTimeout: 100 * time.Millisecond})
	for name, send := range map[string]string{
		"half a header":          "GET / HTTP/1.1\r\nHost:",
		"idle after one request": "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			require.NoError(t, err)
			defer conn.Close()
			_, err = io.WriteString(conn, send)
			require.NoError(t, err)
			require.NoError(t, conn.SetReadDeadline(time.Now().Add(20*time.Second)))
			_, err = io.Copy(io.Discard, conn)
			var ne net.Error
			assert.False(t, errors.As(err, &ne) && ne.Timeout(), "closed by the server, not by our safety deadline: %v", err)
		})
	}
}

// TestServeStreamOutlivesTimeouts: a stream that writes with its own
// deadlines, as /v2/events does, lives on past every server timeout, and
// its request context is not cancelled by them.
func TestServeStreamOutlivesTimeouts(t *testing.T) {
	const lines = 40
	short := 50 * time.Millisecond
	stream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		ticker := time.NewTicker(short / 5)
		defer ticker.Stop()
		for i := 0; ; i++ {
			select {
			case <-r.Context().Done():
				return
			case <-ticker.C:
			}
			_ = rc.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := fmt.Fprintf(w, "line %d\n", i); err != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
		}
	})
	addr := serveForTest(t, stream, ServeOptions{ReadHeaderTimeout: short, ReadTimeout: short, WriteTimeout: short, IdleTimeout: short})
	resp, err := http.Get("http://" + addr + "/events")
	require.NoError(t, err)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	n := 0
	for n < lines && sc.Scan() {
		n++
	}
	require.NoError(t, sc.Err())
	assert.Equal(t, lines, n, "the stream ran for %d times the timeouts", lines/5)
}

func TestServeTLSAndRotation(t *testing.T) {
	dir := t.TempDir()
	first := tlstest.SelfSigned(t, dir, "api")
	cfg, err := TLSConfig(first.CertFile, first.KeyFile, nil)
	require.NoError(t, err)
	addr := serveForTest(t, echoBody, ServeOptions{TLS: cfg})

	get := func(pool *tlstest.Cert) (*http.Response, error) {
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool.Pool}, DisableKeepAlives: true}}
		return client.Get("https://" + addr + "/")
	}
	resp, err := get(&first)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 0, resp.TLS.PeerCertificates[0].SerialNumber.Cmp(first.Serial))

	// Plain HTTP to the TLS port is refused (net/http answers 400).
	resp, err = http.Get("http://" + addr + "/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)

	// A rotated certificate is served to new connections.
	rotated := tlstest.SelfSigned(t, t.TempDir(), "api2")
	for _, f := range [][2]string{{rotated.CertFile, first.CertFile}, {rotated.KeyFile, first.KeyFile}} {
		b, err := os.ReadFile(f[0])
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(f[1], b, 0o600))
	}
	resp, err = get(&rotated)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 0, resp.TLS.PeerCertificates[0].SerialNumber.Cmp(rotated.Serial))

	_, err = TLSConfig(first.CertFile, first.KeyFile+".missing", nil)
	assert.Error(t, err)
}
