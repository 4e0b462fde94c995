package marathon

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// LabelShutdownDelay is Switchyard's app label for how long a task keeps
// running after it is reported TASK_KILLING (so that load balancers stop
// sending it new requests) before it is sent SIGTERM. Its value is a
// number of seconds ("5", "2.5") or a Go duration ("5s", "1m30s"), at most
// MaxShutdownDelay. Without it the agent's --shutdown-delay applies.
// Marathon ignores the label; Switchyard's scheduler validates it.
const LabelShutdownDelay = "SWITCHYARD_SHUTDOWN_DELAY"

// MaxShutdownDelay bounds LabelShutdownDelay.
const MaxShutdownDelay = 10 * time.Minute

// ParseShutdownDelay parses a LabelShutdownDelay value.
func ParseShutdownDelay(v string) (time.Duration, error) {
	s := strings.TrimSpace(v)
	if s == "" {
		return 0, errors.New("empty value: expected seconds (5) or a duration (5s)")
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		secs, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil {
			return 0, fmt.Errorf("%q: expected seconds (5) or a duration (5s)", v)
		}
		if !(secs >= 0 && secs <= MaxShutdownDelay.Seconds()) { // NaN too
			return 0, fmt.Errorf("%q: expected 0 to %v", v, MaxShutdownDelay)
		}
		d = time.Duration(secs * float64(time.Second))
	}
	if d < 0 || d > MaxShutdownDelay {
		return 0, fmt.Errorf("%q: expected 0 to %v", v, MaxShutdownDelay)
	}
	return d, nil
}
