package httpapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// LoggerService changes log levels at run time (/logging). Levels are
// Marathon's words (trace, debug, info, warn, error).
type LoggerService interface {
	// Loggers maps each logger's name to its level as Logback prints it
	// ("INFO", or "INFO (inherited)").
	Loggers() map[string]string
	// Set changes a logger's level; with d > 0 the previous level comes
	// back after d.
	Set(name, level string, d time.Duration) error
}

// loggerChange is the body of POST /logging (Marathon's LoggerChange).
type loggerChange struct {
	Level           string `json:"level"`
	Logger          string `json:"logger"`
	DurationSeconds *int   `json:"durationSeconds,omitempty"`
}

var loggerLevels = []string{"trace", "debug", "info", "warn", "error"}

// showLoggers serves GET /logging: every logger and its level.
func (s *server) showLoggers(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Loggers == nil {
		writeJSON(w, http.StatusOK, map[string]string{})
		return
	}
	writeJSON(w, http.StatusOK, s.cfg.Loggers.Loggers())
}

// changeLogger serves POST /logging: set one logger's level, for
// durationSeconds or for good; the answer echoes the change.
func (s *server) changeLogger(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var c loggerChange
	if err := json.Unmarshal(body, &c); err != nil {
		s.writeError(w, r, badJSON(err))
		return
	}
	ve := &ValidationError{}
	if strings.TrimSpace(c.Logger) == "" {
		ve.add("/logger", "must not be empty")
	}
	valid := false
	for _, l := range loggerLevels {
		valid = valid || c.Level == l
	}
	if !valid {
		ve.add("/level", "must be one of "+strings.Join(loggerLevels, ", "))
	}
	if c.DurationSeconds != nil && *c.DurationSeconds <= 0 {
		ve.add("/durationSeconds", "must be greater than 0")
	}
	if len(ve.Details) > 0 {
		s.writeError(w, r, ve)
		return
	}
	if s.cfg.Loggers == nil {
		writeMessage(w, http.StatusServiceUnavailable, "log levels cannot be changed here")
		return
	}
	var d time.Duration
	if c.DurationSeconds != nil {
		d = time.Duration(*c.DurationSeconds) * time.Second
	}
	if err := s.cfg.Loggers.Set(c.Logger, c.Level, d); err != nil {
		ve.add("/level", err.Error())
		s.writeError(w, r, ve)
		return
	}
	s.log.Info("log level changed", "logger", c.Logger, "level", c.Level, "duration", d)
	writeJSON(w, http.StatusOK, c)
}

// plugins serves GET /v2/plugins: Switchyard loads no Marathon plugins.
func (s *server) plugins(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"plugins": []any{}})
}

// pluginRequest answers requests for a plugin's own paths
// (/v2/plugins/{id}/...): there is no such plugin.
func (s *server) pluginRequest(w http.ResponseWriter, r *http.Request) {
	id, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/v2/plugins/"), "/")
	writeMessage(w, http.StatusNotFound, "No plugin with this pluginId: "+id)
}
