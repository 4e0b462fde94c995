package server

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestServeShutdown(t *testing.T) {
	const grace = 20 * time.Second
	streaming := make(chan struct{})
	release := make(chan struct{})
	mux := http.NewServeMux()
	// A stream that only ends with its request's context, like /v2/events.
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		close(streaming)
		<-r.Context().Done()
	})
	// A request in flight at shutdown must still complete.
	slowStarted := make(chan struct{}, 1)
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		slowStarted <- struct{}{}
		<-release
		_, _ = io.WriteString(w, "done")
	})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, ln, mux, grace) }()
	base := "http://" + ln.Addr().String()

	resp, err := http.Get(base + "/stream")
	require.NoError(t, err)
	defer resp.Body.Close()
	<-streaming

	// A connection that never sends a request.
	idle, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer idle.Close()

	slow := make(chan string, 1)
	go func() {
		r, err := http.Get(base + "/slow")
		if err != nil {
			slow <- "error: " + err.Error()
			return
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		slow <- string(b)
	}()
	<-slowStarted

	start := time.Now()
	cancel()
	// The stream ends with the context and the unused connection is
	// closed, so only the slow request holds the shutdown.
	_, err = io.ReadAll(resp.Body)
	require.NoError(t, err, "the stream should end cleanly")
	buf := make([]byte, 1)
	require.NoError(t, idle.SetReadDeadline(time.Now().Add(grace/2)))
	_, err = idle.Read(buf)
	assert.ErrorIs(t, err, io.EOF, "a connection that sent no request should be closed, not kept for Shutdown's 5 s")

	select {
	case err := <-served:
		t.Fatalf("Serve returned (%v) while a request was still in flight", err)
	default:
	}
	close(release)
	assert.Equal(t, "done", <-slow)
	select {
	case err := <-served:
		require.NoError(t, err)
	case <-time.After(grace / 2):
		t.Fatal("Serve did not return after the last request finished")
	}
	assert.Less(t, time.Since(start), grace/2)

	_, err = http.Get(base + "/slow")
	assert.Error(t, err, "the listener should be closed")
}

func TestServeCutsAfterGrace(t *testing.T) {
	mux := http.NewServeMux()
	started := make(chan struct{})
	mux.HandleFunc("/stuck", func(w http.ResponseWriter, r *http.Request) {
		close(started)
		select {} // ignores its context
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, ln, mux, 200*time.Millisecond) }()
	got := make(chan error, 1)
	go func() {
		r, err := http.Get("http://" + ln.Addr().String() + "/stuck")
		if err == nil {
			_, err = io.ReadAll(r.Body)
			r.Body.Close()
		}
		got <- err
	}()
	<-started
	cancel()
	select {
	case err := <-served:
		require.NoError(t, err, "a grace that runs out is not an error")
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its grace")
	}
	assert.Error(t, <-got, "the stuck request's connection should have been cut")
}
