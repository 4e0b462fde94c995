// Command testweb is a tiny static HTTP server used by the Docker tests in
// place of httpd: it answers a configured text, or serves a directory (for
// example a mounted volume holding index.html). It is built FROM scratch
// into the switchyard/testweb image by .ci/images.sh.
//
//	testweb --listen :80 --dir /usr/local/apache2/htdocs
//	testweb --listen :8000 --text "HELLO MESOS WORLD"
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
)

func main() {
	app := &cli.App{
		Name:  "testweb",
		Usage: "answer a fixed text or serve a directory over HTTP",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Value: ":80", EnvVars: []string{"TESTWEB_LISTEN"}, Usage: "address to listen on"},
			&cli.StringFlag{Name: "text", EnvVars: []string{"TESTWEB_TEXT"}, Usage: "text to answer (a newline is appended)"},
			&cli.StringFlag{Name: "dir", EnvVars: []string{"TESTWEB_DIR"}, Usage: "directory to serve (index.html for /); wins over --text"},
			&cli.DurationFlag{Name: "shutdown-delay", EnvVars: []string{"TESTWEB_SHUTDOWN_DELAY"},
				Usage: "keep serving this long after SIGTERM before closing the listener (lets load balancers drop the server first)"},
		},
		Action: func(c *cli.Context) error {
			ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
			defer stop()
			logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
			h, err := newHandler(c.String("text"), c.String("dir"))
			if err != nil {
				return err
			}
			return serve(ctx, logger, c.String("listen"), h, c.Duration("shutdown-delay"))
		},
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "testweb:", err)
		os.Exit(1)
	}
}

// newHandler returns the handler for the given text or directory.
func newHandler(text, dir string) (http.Handler, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/_health", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = fmt.Fprintln(w, "OK")
	})
	if dir != "" {
		st, err := os.Stat(dir)
		if err != nil {
			return nil, fmt.Errorf("serve directory: %w", err)
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("serve directory: %s is not a directory", dir)
		}
		mux.Handle("/", http.FileServer(http.Dir(dir)))
		return mux, nil
	}
	if text == "" {
		text = "HELLO MESOS WORLD"
	}
	body := text + "\n"
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = fmt.Fprint(w, body)
	})
	return mux, nil
}

// serve runs the server until ctx ends, keeps serving for delay (a task
// being stopped still gets requests until every load balancer has heard
// of it), then shuts down gracefully.
func serve(ctx context.Context, logger *slog.Logger, addr string, h http.Handler, delay time.Duration) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	logger.Info("testweb listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	if delay > 0 {
		logger.Info("testweb draining before shutdown", "duration", delay)
		select {
		case err := <-errc:
			return fmt.Errorf("serve: %w", err)
		case <-time.After(delay):
		}
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	logger.Info("testweb stopped")
	return nil
}
