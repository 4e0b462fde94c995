package haproxy

import (
	"slices"
	"strings"
)

// dedupWindow is how many recent prefixed lines a copy may follow: the
// master and the workers share the pipe, so another process's lines can
// come between a message and its copy.
const dedupWindow = 16

// outputDedup drops the second copy of an HAProxy message. HAProxy prints
// some events (a proxy stopped, a server going DOWN, a backend without
// servers) twice: on stderr with a "[WARNING]" or "[ALERT]" prefix, then
// through its log line to stdout ("log stdout format raw") without one.
// Both reach the same pipe, so the copy would be logged again, at another
// level.
type outputDedup struct {
	recent []string // texts of the last prefixed lines not yet matched by a copy, oldest first
}

// repeated reports whether line is the unprefixed copy of a recent
// prefixed line, and remembers prefixed lines for later calls.
func (d *outputDedup) repeated(line string) bool {
	if rest, ok := cutLevel(line); ok {
		if len(d.recent) == dedupWindow {
			d.recent = slices.Delete(d.recent, 0, 1)
		}
		d.recent = append(d.recent, strings.TrimSuffix(rest, "."))
		return false
	}
	line = strings.TrimSuffix(line, ".")
	for i, prev := range d.recent {
		// The prefixed copy may name where it comes from: "[WARNING] CLI : Proxy x stopped".
		if line == prev || strings.HasSuffix(prev, " : "+line) {
			d.recent = slices.Delete(d.recent, i, i+1)
			return true
		}
	}
	return false
}

// cutLevel returns line without its "[ALERT] ", "[WARNING] " or
// "[NOTICE] " prefix (as cleanLine leaves it), and whether it had one.
func cutLevel(line string) (string, bool) {
	for _, p := range []string{"[ALERT]", "[WARNING]", "[NOTICE]"} {
		if rest, ok := strings.CutPrefix(line, p); ok {
			return strings.TrimSpace(rest), true
		}
	}
	return "", false
}
