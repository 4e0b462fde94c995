package haproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
)

// pidPrefixRE matches HAProxy's "[ALERT]    (1234) : " message prefix.
var pidPrefixRE = regexp.MustCompile(`^\[(ALERT|WARNING|NOTICE)\]\s+\(\d+\)\s*:\s*`)

// cleanLine trims a HAProxy output line and shortens its prefix to
// "[ALERT] ".
func cleanLine(line string) string {
	line = strings.TrimSpace(line)
	if m := pidPrefixRE.FindStringSubmatch(line); m != nil {
		return "[" + m[1] + "] " + line[len(m[0]):]
	}
	return line
}

// alertLines keeps the [ALERT] lines of HAProxy's output, or every non-empty
// line when there is none.
func alertLines(out string) []string {
	var alerts, all []string
	for _, l := range strings.Split(out, "\n") {
		l = cleanLine(l)
		if l == "" {
			continue
		}
		all = append(all, l)
		if strings.HasPrefix(l, "[ALERT]") {
			alerts = append(alerts, l)
		}
	}
	if len(alerts) > 0 {
		return alerts
	}
	return all
}

// Check validates cfg with `haproxy -c -f <tmpfile>`. Files the
// configuration refers to (certificates, maps, error files) must already be
// on disk. binary "" means "haproxy" from PATH. The returned error is a
// *CheckError holding HAProxy's messages when the configuration is invalid,
// or a plain error when HAProxy could not be run.
func Check(ctx context.Context, binary string, cfg []byte) error {
	if binary == "" {
		binary = "haproxy"
	}
	f, err := os.CreateTemp("", "haproxy-check-*.cfg")
	if err != nil {
		return fmt.Errorf("check config: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(cfg); err != nil {
		f.Close()
		return fmt.Errorf("check config: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("check config: %w", err)
	}
	cmd := exec.CommandContext(ctx, binary, "-c", "-f", f.Name())
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err = cmd.Run()
	if err == nil {
		return nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ctx.Err() == nil {
		lines := alertLines(out.String())
		if len(lines) == 0 {
			lines = []string{ee.Error()}
		}
		return &CheckError{Lines: lines}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("check config: %w", ctx.Err())
	}
	return fmt.Errorf("check config: run %s: %w", binary, err)
}
