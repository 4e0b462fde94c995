package cliutil

import (
	"fmt"
	"log/slog"
	"strings"
)

// LevelUsage is the --log-level flag's help text, the same in every
// binary.
const LevelUsage = "log level: DEBUG, INFO, WARNING or ERROR (any case)"

// ParseLevel maps a --log-level word to a slog level. The words are
// marathon-lb's (Python's logging names), in any case; WARN, CRITICAL and
// FATAL are accepted too, and an empty string means INFO.
func ParseLevel(s string) (slog.Level, error) {
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
