// Package loglevel keeps the log levels of a process's loggers and changes
// them at run time, as Marathon's /logging endpoint does with Logback.
//
// A logger is named by the "component" attribute its slog.Logger carries
// (log.With("component", "scheduler"); nested ones join with "/":
// "lb/haproxy"); the root logger, "ROOT", covers
// every record whose logger has no level of its own. Levels are Marathon's
// words: trace, debug, info, warn, error (trace is logged as debug).
package loglevel

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Root is the name of the logger every other one inherits from.
const Root = "ROOT"

// LevelTrace sits below slog's debug, as Logback's TRACE below DEBUG. A
// handler wrapped by Registry.Handler should let it through.
const LevelTrace = slog.LevelDebug - 4

// Registry holds the level of each named logger. The zero value is not
// usable; call New.
type Registry struct {
	mu     sync.Mutex
	root   slog.Level
	levels map[string]slog.Level // explicitly set, by name
	known  map[string]bool       // names seen on loggers
	timers map[string]*time.Timer
}

// New returns a registry whose root logger has the given level.
func New(root slog.Level) *Registry {
	return &Registry{root: root, levels: map[string]slog.Level{}, known: map[string]bool{}, timers: map[string]*time.Timer{}}
}

// ParseLevel reads one of Marathon's level words (any case; "warning" is
// accepted for warn).
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "trace":
		return LevelTrace, nil
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown log level %q (want trace, debug, info, warn or error)", s)
}

// levelName is Logback's upper-case name of l.
func levelName(l slog.Level) string {
	switch {
	case l <= LevelTrace:
		return "TRACE"
	case l <= slog.LevelDebug:
		return "DEBUG"
	case l <= slog.LevelInfo:
		return "INFO"
	case l <= slog.LevelWarn:
		return "WARN"
	}
	return "ERROR"
}

// Loggers returns every known logger's level as Marathon shows it: "INFO",
// or "INFO (inherited)" for one that follows the root logger.
func (r *Registry) Loggers() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]string{Root: levelName(r.root)}
	for name := range r.known {
		if l, ok := r.levels[name]; ok {
			out[name] = levelName(l)
		} else {
			out[name] = levelName(r.root) + " (inherited)"
		}
	}
	for name, l := range r.levels {
		out[name] = levelName(l)
	}
	return out
}

// Set changes a logger's level (Root: the default of all others). With
// d > 0 the previous setting comes back after d, as Marathon's
// durationSeconds.
func (r *Registry) Set(name, level string, d time.Duration) error {
	l, err := ParseLevel(level)
	if err != nil {
		return err
	}
	if strings.TrimSpace(name) == "" {
		return fmt.Errorf("logger name is empty")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	prev, hadPrev := r.levels[name]
	if name == Root {
		prev, hadPrev = r.root, true
		r.root = l
	} else {
		r.levels[name] = l
		r.known[name] = true
	}
	if t := r.timers[name]; t != nil {
		t.Stop()
		delete(r.timers, name)
	}
	if d > 0 {
		r.timers[name] = time.AfterFunc(d, func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			delete(r.timers, name)
			switch {
			case name == Root:
				r.root = prev
			case hadPrev:
				r.levels[name] = prev
			default:
				delete(r.levels, name)
			}
		})
	}
	return nil
}

// Close stops pending level resets.
func (r *Registry) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, t := range r.timers {
		t.Stop()
		delete(r.timers, name)
	}
}

func (r *Registry) enabled(name string, l slog.Level) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	min := r.root
	if name != "" {
		r.known[name] = true
		if ll, ok := r.levels[name]; ok {
			min = ll
		}
	}
	return l >= min
}

// Handler wraps h so that records are filtered by the registry's level for
// the logger's "component" (h itself should let every level through).
func (r *Registry) Handler(h slog.Handler) slog.Handler {
	return &handler{reg: r, next: h}
}

type handler struct {
	reg  *Registry
	next slog.Handler
	name string
}

func (h *handler) Enabled(_ context.Context, l slog.Level) bool { return h.reg.enabled(h.name, l) }

func (h *handler) Handle(ctx context.Context, rec slog.Record) error {
	return h.next.Handle(ctx, rec)
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	name := h.name
	for _, a := range attrs {
		if a.Key == "component" {
			// Nested components name a logger as the log line shows
			// them: "lb/haproxy".
			if name != "" {
				name += "/"
			}
			name += a.Value.String()
		}
	}
	if name != h.name {
		h.reg.mu.Lock()
		h.reg.known[name] = true
		h.reg.mu.Unlock()
	}
	return &handler{reg: h.reg, next: h.next.WithAttrs(attrs), name: name}
}

func (h *handler) WithGroup(g string) slog.Handler {
	return &handler{reg: h.reg, next: h.next.WithGroup(g), name: h.name}
}
