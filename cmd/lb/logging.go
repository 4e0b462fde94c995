package main

import (
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"os"
	"strings"
)

// parseLevel maps marathon-lb's (Python) level names to slog levels.
func parseLevel(s string) (slog.Level, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "DEBUG":
		return slog.LevelDebug, nil
	case "INFO", "":
		return slog.LevelInfo, nil
	case "WARN", "WARNING":
		return slog.LevelWarn, nil
	case "ERROR", "CRITICAL", "FATAL":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("--log-level %q: want DEBUG, INFO, WARNING or ERROR", s)
}

// newLogger builds the process logger: JSON with --log-format json, text
// otherwise (marathon-lb's Python format strings have no equivalent), to
// the --syslog-socket when that socket exists, else to stderr. The
// returned function closes the syslog connection.
func newLogger(s *settings, stderr io.Writer) (*slog.Logger, func(), error) {
	level, err := parseLevel(s.logLevel)
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
	log := slog.New(h)
	if note != "" {
		log.Warn(note)
	}
	return log, closeFn, nil
}
