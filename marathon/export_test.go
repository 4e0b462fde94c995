package marathon

import (
	"io"
	"net/http"
	"time"
)

// SetStreamTuning shortens the event stream's delays for tests.
func SetStreamTuning(c *Client, backoffBase, backoffCap, healthyAfter, idleTimeout time.Duration) {
	c.backoffBase, c.backoffCap, c.healthyAfter, c.idleTimeout = backoffBase, backoffCap, healthyAfter, idleTimeout
}

// NewFrameLimiter exposes the frame limiter to tests.
func NewFrameLimiter(r io.ReadCloser, max int) io.ReadCloser { return newFrameLimiter(r, max, nil) }

// OversizedName is the marker event name of a cut frame.
const OversizedName = oversizedName

// Backoff exposes the reconnect delay for attempt n.
func Backoff(c *Client, n int) time.Duration { return c.backoff(n) }

// RetryAfter exposes the Retry-After parsing of stream answers.
func RetryAfter(resp *http.Response) time.Duration { return retryAfter(resp) }
