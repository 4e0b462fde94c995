package cliutil

import (
	"context"
	"io"
	"log/slog"
)

// NewTextLogger is the binaries' default logger: slog's text format to w
// at level, through MergeAttrs.
func NewTextLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(MergeAttrs(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})))
}

// NewFilteredLogger is NewTextLogger whose records all reach filter (for
// instance a registry of per-component levels that can change at run
// time), which decides what is logged.
func NewFilteredLogger(w io.Writer, filter func(slog.Handler) slog.Handler) *slog.Logger {
	// -8: below debug, so that even trace records reach filter.
	text := slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.Level(-8)})
	return slog.New(filter(MergeAttrs(text)))
}

// MergeAttrs wraps h so that an attribute given to Logger.With whose key
// the logger already carries (in the same group) does not appear twice:
// string values are joined with "/", so a "component=lb" logger's
// With("component", "haproxy") logs component=lb/haproxy; any other value
// replaces the earlier one. Attributes of a single log call are passed
// through as they are.
func MergeAttrs(h slog.Handler) slog.Handler {
	return &mergeHandler{base: h, out: h}
}

type mergeHandler struct {
	base  slog.Handler // h with everything up to the innermost group
	attrs []slog.Attr  // attributes added since then, merged by key
	out   slog.Handler // base.WithAttrs(attrs), built once
}

func (m *mergeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return m.out.Enabled(ctx, l)
}

func (m *mergeHandler) Handle(ctx context.Context, r slog.Record) error {
	return m.out.Handle(ctx, r)
}

func (m *mergeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	if len(as) == 0 {
		return m
	}
	merged := append([]slog.Attr(nil), m.attrs...)
	for _, a := range as {
		i := indexOf(merged, a.Key)
		switch {
		case i < 0 || a.Key == "":
			merged = append(merged, a)
		case merged[i].Value.Kind() == slog.KindString && a.Value.Kind() == slog.KindString:
			merged[i] = slog.String(a.Key, merged[i].Value.String()+"/"+a.Value.String())
		default:
			merged[i] = a
		}
	}
	return &mergeHandler{base: m.base, attrs: merged, out: m.base.WithAttrs(merged)}
}

func (m *mergeHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return m
	}
	g := m.out.WithGroup(name)
	return &mergeHandler{base: g, out: g}
}

func indexOf(as []slog.Attr, key string) int {
	for i, a := range as {
		if a.Key == key {
			return i
		}
	}
	return -1
}
