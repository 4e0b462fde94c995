package main

import (
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"os"
	"strings"

	"github.com/switchyard/switchyard/cmd/internal/cliutil"
)

// newLogger builds the process logger: JSON with --log-format json, text
// otherwise (marathon-lb's Python format strings have no equivalent), to
// the --syslog-socket when that socket exists, else to stderr. A
// sub-logger's attribute does not repeat its parent's (cliutil.MergeAttrs).
// The returned function closes the syslog connection.
func newLogger(s *settings, stderr io.Writer) (*slog.Logger, func(), error) {
	level, err := cliutil.ParseLevel(s.logLevel)
	if err != nil {
		return nil, nil, err
	}
	out := stderr
	closeFn := func() {}
	var note string
	if sock := s.syslogSocket; sock != "" && sock != "/dev/null" {
		if fi, err := os.Stat(sock); err == nil && fi.Mode()&os.ModeSocket != 0 {
			w, err := syslog.Dial("unixgram", sock, syslog.LOG_INFO|syslog.LOG_DAEMON, "lb")
			if err == nil {
				out = w
				closeFn = func() { _ = w.Close() }
			} else {
				note = fmt.Sprintf("cannot log to syslog socket %s (%v); logging to stderr", sock, err)
			}
		} else if s.syslogSocketSet {
			note = fmt.Sprintf("syslog socket %s not found; logging to stderr", sock)
		}
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	if strings.EqualFold(s.logFormat, "json") {
		h = slog.NewJSONHandler(out, opts)
	} else {
		h = slog.NewTextHandler(out, opts)
	}
	log := slog.New(cliutil.MergeAttrs(h))
	if note != "" {
		log.Warn(note)
	}
	return log, closeFn, nil
}
