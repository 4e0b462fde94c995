package haproxy

import "strings"

// outputDedup drops the second copy of an HAProxy message. HAProxy prints
// some events (a proxy stopped, a server going DOWN, a backend without
// servers) twice: on stderr with a "[WARNING]" or "[ALERT]" prefix, then,
// right after, through its log line to stdout ("log stdout format raw")
// without one. Both reach the same pipe, so the copy would be logged again,
// at another level.
type outputDedup struct {
	last string // text of the last prefixed line, "" when the last line had no prefix
}

// repeated reports whether line is the unprefixed copy of the line just
// before it, and remembers line for the next call.
func (d *outputDedup) repeated(line string) bool {
	prev := d.last
	d.last = ""
	if rest, ok := cutLevel(line); ok {
		d.last = strings.TrimSuffix(rest, ".")
		return false
	}
	line = strings.TrimSuffix(line, ".")
	// The prefixed copy may name where it comes from: "[WARNING] CLI : Proxy x stopped".
	return prev != "" && (line == prev || strings.HasSuffix(prev, " : "+line))
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
