package controller

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/lb"
	"github.com/switchyard/switchyard/marathon/marathontest"
)

func TestNewRejectsIncompleteConfig(t *testing.T) {
	_, err := New(Config{ConfigPath: "/tmp/x.cfg"})
	require.Error(t, err, "no Marathon source")
	_, err = New(Config{Marathon: newFakeSource()})
	require.Error(t, err, "no config path")
	_, err = New(Config{Marathon: newFakeSource(), Dry: true})
	require.NoError(t, err, "--dry needs no config path")
}

// TestRunDry runs the whole controller (admin server, real model and
// templates) in --dry mode, which needs no HAProxy.
func TestRunDry(t *testing.T) {
	src := newFakeSource(marathontest.App("/web", marathontest.WithLabel("HAPROXY_GROUP", "external"),
		marathontest.WithServicePorts(10000), marathontest.WithTask("10.0.0.1", 31000)))
	var out syncWriter
	c, err := New(Config{
		Marathon: src, Dry: true, DryOutput: &out, ConfigPath: filepath.Join(t.TempDir(), "haproxy.cfg"),
		Options: lb.Options{Groups: []string{"external"}},
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()

	var cfg string
	require.Eventually(t, func() bool {
		if c.AdminAddr() == "" {
			return false
		}
		resp, err := http.Get("http://" + c.AdminAddr() + "/_haproxy_getconfig")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		cfg = string(b)
		return strings.Contains(cfg, "backend web_10000")
	}, 10*time.Second, 10*time.Millisecond)
	assert.Contains(t, cfg, "server admin "+c.AdminAddr(), "HAProxy forwards admin paths to this server")
	assert.Contains(t, out.String(), "backend web_10000", "--dry prints the configuration")
	assert.NoFileExists(t, filepath.Join(filepath.Dir(c.cfg.ConfigPath), "haproxy.cfg"), "--dry writes nothing")

	cancel()
	select {
	case err := <-errc:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}
