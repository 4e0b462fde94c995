package leader_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/scheduler/leader"
)

func TestFailoverTransport(t *testing.T) {
	var got []string
	standby := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"message":"no leader"}`, http.StatusServiceUnavailable)
	}))
	defer standby.Close()
	live := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, r.Method+" "+r.URL.Path+" "+string(b))
		_, _ = w.Write([]byte("ok"))
	}))
	defer live.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()

	masters, err := leader.ParseMasters(down.URL + "," + standby.URL + ", " + live.URL)
	require.NoError(t, err)
	hc := &http.Client{Transport: &leader.FailoverTransport{Masters: masters}}
	resp, err := hc.Post(down.URL+"/agentapi/v1/status", "application/json", bytes.NewReader([]byte(`{"a":1}`)))
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, "ok", string(b))
	assert.Equal(t, []string{`POST /agentapi/v1/status {"a":1}`}, got, "the body is replayed to the master that answers")

	// The next request goes straight to the master that answered.
	resp, err = hc.Get(down.URL + "/x")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Len(t, got, 2)

	_, err = leader.ParseMasters("http://a:1,b:2")
	assert.ErrorContains(t, err, `"b:2"`)
	_, err = leader.ParseMasters(" , ")
	assert.True(t, err != nil && strings.Contains(err.Error(), "no master"))
}

func TestFailoverTransportLeavesAHangingMaster(t *testing.T) {
	release := make(chan struct{})
	frozen := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer frozen.Close()
	defer close(release)
	live := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok"))
	}))
	defer live.Close()
	masters, err := leader.ParseMasters(frozen.URL + "," + live.URL)
	require.NoError(t, err)
	hc := &http.Client{Transport: &leader.FailoverTransport{Masters: masters, AttemptTimeout: 50 * time.Millisecond}}
	resp, err := hc.Get(frozen.URL + "/agentapi/v1/assignments?wait=10ms")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, "ok", string(b))
}
