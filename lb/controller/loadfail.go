package controller

import (
	"context"
	"errors"
	"regexp"
	"strconv"
	"strings"

	"github.com/switchyard/switchyard/haproxy"
)

// Configurations HAProxy accepts (haproxy -c) but fails to load.
//
// haproxy -c does not bind the listening sockets, so a service port that
// another process holds shows only when HAProxy starts or reloads:
//
//	[ALERT] Binding [/etc/haproxy/haproxy.cfg:17] for frontend web_10002: cannot bind socket (Address already in use) for [0.0.0.0:10002]
//	[ALERT] [haproxy.main()] Some protocols failed to start their listeners! Exiting.
//
// A failed reload leaves the old worker serving; a failed start leaves no
// HAProxy. Either way the messages name the configuration line, which is
// blamed on an app port like a haproxy -c message (see isolate.go).

// bindingRE matches the location of HAProxy's bind failures: "Binding
// [<file>:<line>] for frontend <name>: <why>".
var bindingRE = regexp.MustCompile(`Binding \[[^\]]*:(\d+)\]\s*`)

// loadFailure returns HAProxy's messages when err says HAProxy failed to
// load a configuration (a failed start or reload, with its [ALERT] lines),
// or lb found, before a reload, that it would fail for a busy port
// (bindcheck.go), else nil: a timeout, a missing binary or a dead master are no verdict on
// the configuration.
func loadFailure(err error) []haproxy.Alert {
	var lines []string
	var re *haproxy.ReloadError
	var se *haproxy.StartError
	var be *bindBusyError
	switch {
	case errors.As(err, &be):
		return be.alerts
	case errors.As(err, &re):
		if re.Err != nil {
			return nil
		}
		lines = re.Lines
	case errors.As(err, &se):
		if se.Err == nil || errors.Is(se.Err, context.Canceled) || errors.Is(se.Err, context.DeadlineExceeded) {
			return nil
		}
		lines = se.Lines
	default:
		return nil
	}
	var out []haproxy.Alert
	for _, l := range lines {
		if !strings.HasPrefix(l, "[ALERT]") {
			continue
		}
		out = append(out, loadAlert(l))
	}
	return out
}

// loadAlert parses one of HAProxy's [ALERT] lines at start or reload.
func loadAlert(l string) haproxy.Alert {
	if m := bindingRE.FindStringSubmatchIndex(l); m != nil {
		if n, err := strconv.Atoi(l[m[2]:m[3]]); err == nil {
			// Keep "Binding for frontend x: ...", without the file name.
			text := strings.TrimSpace(l[m[0]:m[0]+len("Binding")] + " " + l[m[1]:])
			return haproxy.Alert{Line: n, Text: text}
		}
	}
	ce := haproxy.CheckError{Lines: []string{l}}
	return ce.Alerts()[0]
}

// probedOnly reports whether err is lb's own finding before a reload (no
// reload was tried, so trying the ports again is cheap).
func probedOnly(err error) bool {
	var be *bindBusyError
	return errors.As(err, &be)
}
