package haproxy

import (
	"errors"
	"strings"
)

// ErrSyntax is wrapped by every error [Parse] returns for input it cannot
// understand.
var ErrSyntax = errors.New("haproxy config syntax")

// ErrInvalidConfig is wrapped by the error [Check] returns when HAProxy
// rejects a configuration.
var ErrInvalidConfig = errors.New("haproxy rejected the configuration")

// CheckError carries HAProxy's own messages about a configuration it
// rejected. errors.Is(err, ErrInvalidConfig) is true for it.
type CheckError struct {
	// Lines are HAProxy's [ALERT] lines (all output lines when there are
	// none), with the pid prefix removed, e.g.
	// "[ALERT] config : parsing [/tmp/x.cfg:12] : unknown keyword 'foo' in 'backend' section".
	Lines []string
}

// Error implements error.
func (e *CheckError) Error() string {
	return ErrInvalidConfig.Error() + ": " + strings.Join(e.Lines, "; ")
}

// Unwrap makes errors.Is(err, ErrInvalidConfig) true.
func (e *CheckError) Unwrap() error { return ErrInvalidConfig }

// ErrNeedsReload is returned by Apply for a Change that must be reloaded.
var ErrNeedsReload = errors.New("change needs a reload")

// Errors returned by [Process] methods.
var (
	// ErrStartFailed is wrapped by the *StartError of a failed Start.
	ErrStartFailed = errors.New("haproxy failed to start")
	// ErrReloadFailed is wrapped by the *ReloadError of a failed Reload.
	ErrReloadFailed = errors.New("haproxy reload failed")
	// ErrNotRunning is returned when the master process is not running.
	ErrNotRunning = errors.New("haproxy is not running")
)

// StartError explains why HAProxy did not start, with its own words.
type StartError struct {
	Err   error    // how the process ended (exit status), or why we gave up
	Lines []string // HAProxy's [ALERT] lines (all its output when none)
}

// Error implements error.
func (e *StartError) Error() string {
	msg := ErrStartFailed.Error()
	if e.Err != nil {
		msg += " (" + e.Err.Error() + ")"
	}
	if len(e.Lines) > 0 {
		msg += ": " + strings.Join(e.Lines, "; ")
	}
	if h := e.Hint(); h != "" {
		msg += " (hint: " + h + ")"
	}
	return msg
}

// Hint suggests a fix for failures operators commonly hit, or returns "".
func (e *StartError) Hint() string {
	for _, l := range e.Lines {
		switch {
		case strings.Contains(l, "FD limit"), strings.Contains(l, "maxconn"), strings.Contains(l, "ulimit-n"):
			return "maxconn needs more open files than allowed: lower or remove 'maxconn' in the global section, or raise the open-files limit (ulimit -n)"
		case strings.Contains(l, "Address already in use"), strings.Contains(l, "cannot bind socket"):
			return "a bind address is already in use by another process"
		}
	}
	return ""
}

// Unwrap makes errors.Is(err, ErrStartFailed) true.
func (e *StartError) Unwrap() error { return ErrStartFailed }

// ReloadError explains why a reload failed; the previous worker keeps
// serving the previous configuration.
type ReloadError struct {
	Reason string   // the reason given to Reload
	Lines  []string // HAProxy's [ALERT] lines for this reload, if any
	Err    error    // underlying error, if any
}

// Error implements error.
func (e *ReloadError) Error() string {
	msg := ErrReloadFailed.Error() + " (" + e.Reason + ")"
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	if len(e.Lines) > 0 {
		msg += ": " + strings.Join(e.Lines, "; ")
	}
	return msg
}

// Unwrap makes errors.Is(err, ErrReloadFailed) true.
func (e *ReloadError) Unwrap() error { return ErrReloadFailed }
