package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/urfave/cli/v2"
)

// helloCommand is the sample app the demo deploys: a tiny HTTP server that
// answers a fixed text and names the task that served it, so round robin
// is visible from curl.
func helloCommand() *cli.Command {
	return &cli.Command{
		Name:  "hello",
		Usage: "serve a line of text over HTTP (the demo's sample app)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Value: ":" + envOr("PORT0", "8000"), Usage: "address to listen on"},
			&cli.StringFlag{Name: "text", Value: sampleText, Usage: "text to answer"},
		},
		Action: func(c *cli.Context) error {
			return serveHello(c.Context, c.String("listen"), c.String("text"), os.Getenv("MESOS_TASK_ID"))
		},
	}
}

func serveHello(ctx context.Context, addr, text, taskID string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("hello: %w", err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			if taskID != "" {
				w.Header().Set("X-Task-Id", taskID)
			}
			fmt.Fprintln(w, text)
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}()
	slog.Info("hello serving", "addr", ln.Addr().String(), "text", text)
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("hello: %w", err)
	}
	return nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
