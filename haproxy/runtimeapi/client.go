// Package runtimeapi is a client for HAProxy's runtime API (the "CLI") over a
// unix socket: either the master CLI of a master-worker HAProxy (`-S path`) or
// a worker's `stats socket`.
//
// Commands sent through the master CLI reach a worker when prefixed with
// "@<relative pid>" or "@!<pid>"; see [Client.On]. The client holds no
// connection between calls and is safe for concurrent use.
package runtimeapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strings"
	"time"
)

// DefaultTimeout bounds one call when the caller's context has no deadline.
const DefaultTimeout = 10 * time.Second

// ErrBadCommand is returned for a command that cannot be sent safely (empty,
// or containing a line break that would smuggle in a second command).
var ErrBadCommand = errors.New("runtimeapi: bad command")

// CommandError is returned by the typed helpers when HAProxy answered with
// something other than the expected success message.
type CommandError struct {
	Command  string // the command as sent (including any "@" prefix)
	Response string // HAProxy's answer, trimmed
}

// Error implements error.
func (e *CommandError) Error() string {
	return fmt.Sprintf("runtime api %q: %s", e.Command, e.Response)
}

// Client talks to one HAProxy CLI unix socket. The zero value is not usable;
// create it with [New].
type Client struct {
	path   string
	target string // "@1", "@!1234" or "" (no prefix)
}

// New returns a client for the unix socket at socketPath. It does not connect.
func New(socketPath string) *Client {
	return &Client{path: socketPath}
}

// Path returns the socket path the client talks to.
func (c *Client) Path() string { return c.path }

// On returns a copy of c that prefixes every command with the master-CLI
// process selector target, for example "@1" (the current worker) or "@!1234"
// (a worker by pid, also reaching old workers). An empty target removes the
// prefix.
func (c *Client) On(target string) *Client {
	cp := *c
	cp.target = strings.TrimSpace(target)
	return &cp
}

func (c *Client) full(cmd string) (string, error) {
	cmd = strings.TrimSpace(cmd)
	if cmd == "" || strings.ContainsAny(cmd, "\r\n") {
		return "", fmt.Errorf("%w: %q", ErrBadCommand, cmd)
	}
	if c.target != "" {
		return c.target + " " + cmd, nil
	}
	return cmd, nil
}

func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.path)
	if err != nil {
		return nil, fmt.Errorf("runtime api: connect %s: %w", c.path, err)
	}
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		conn.Close()
		return nil, fmt.Errorf("runtime api: set deadline: %w", err)
	}
	return conn, nil
}

// watch closes conn when ctx is cancelled before stop is called, so a blocked
// read returns promptly.
func watch(ctx context.Context, conn net.Conn) (stop func()) {
	s := context.AfterFunc(ctx, func() { conn.Close() })
	return func() { s() }
}

// Execute sends one raw command (the "@" target of [Client.On] is prepended)
// on a fresh connection and returns HAProxy's whole answer. A command whose
// answer is an error message still returns a nil error: interpreting answers
// is up to the caller (or use the typed helpers).
func (c *Client) Execute(ctx context.Context, cmd string) (string, error) {
	full, err := c.full(cmd)
	if err != nil {
		return "", err
	}
	conn, err := c.dial(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	defer watch(ctx, conn)()
	if _, err := io.WriteString(conn, full+"\n"); err != nil {
		return "", fmt.Errorf("runtime api %q: write: %w", full, ctxErr(ctx, err))
	}
	if uc, ok := conn.(*net.UnixConn); ok {
		// Non-interactive mode: HAProxy answers and closes once it sees the end
		// of our input.
		_ = uc.CloseWrite()
	}
	out, err := io.ReadAll(conn)
	if err != nil {
		return string(out), fmt.Errorf("runtime api %q: read: %w", full, ctxErr(ctx, err))
	}
	return string(out), nil
}

// promptRE matches a whole last line that is a CLI prompt: "> " on the
// stats socket, "master> ", "master[ReloadFailed]> ", "master(xe)> " or
// "1234> " on the master CLI.
var promptRE = regexp.MustCompile(`^(?:master(?:\[[^\]\n]*\])?(?:\([a-z]*\))?|[0-9]+(?:\([a-z]*\))?)?> $`)

// ExecuteBatch runs several commands over a single connection in interactive
// ("prompt") mode and returns one answer per command, in order. It is much
// faster than one [Client.Execute] per command when applying many server
// changes, and unlike ';'-joined commands it keeps every answer separate.
// On error the answers received so far are returned.
func (c *Client) ExecuteBatch(ctx context.Context, cmds []string) ([]string, error) {
	fulls := make([]string, len(cmds))
	for i, cmd := range cmds {
		f, err := c.full(cmd)
		if err != nil {
			return nil, err
		}
		fulls[i] = f
	}
	if len(fulls) == 0 {
		return nil, nil
	}
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	defer watch(ctx, conn)()

	r := &promptReader{conn: conn}
	if _, err := io.WriteString(conn, "prompt\n"); err != nil {
		return nil, fmt.Errorf("runtime api: enter prompt mode: %w", ctxErr(ctx, err))
	}
	if _, err := r.next(); err != nil {
		return nil, fmt.Errorf("runtime api: enter prompt mode: %w", ctxErr(ctx, err))
	}
	outs := make([]string, 0, len(fulls))
	for _, f := range fulls {
		if _, err := io.WriteString(conn, f+"\n"); err != nil {
			return outs, fmt.Errorf("runtime api %q: write: %w", f, ctxErr(ctx, err))
		}
		out, err := r.next()
		if err != nil {
			return outs, fmt.Errorf("runtime api %q: read: %w", f, ctxErr(ctx, err))
		}
		outs = append(outs, out)
	}
	_, _ = io.WriteString(conn, "quit\n")
	return outs, nil
}

// promptReader splits an interactive CLI session into answers, each ending
// with a prompt.
type promptReader struct {
	conn net.Conn
	buf  []byte
}

func (r *promptReader) next() (string, error) {
	chunk := make([]byte, 32<<10)
	for {
		// Only the unfinished last line can be the prompt, so each check
		// costs the length of that line, not of the whole answer.
		nl := bytes.LastIndexByte(r.buf, '\n')
		if promptRE.Match(r.buf[nl+1:]) {
			out := string(r.buf[:nl+1])
			r.buf = r.buf[:0]
			return out, nil
		}
		n, err := r.conn.Read(chunk)
		r.buf = append(r.buf, chunk[:n]...)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return string(r.buf), fmt.Errorf("connection closed before prompt: %w", io.ErrUnexpectedEOF)
			}
			return string(r.buf), err
		}
	}
}

// ctxErr reports a connection error caused by the end of ctx (or by the
// deadline derived from it) as that context error.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
	}
	return err
}

// trimAnswer removes the trailing blank lines HAProxy appends to answers.
func trimAnswer(s string) string {
	return string(bytes.TrimSpace([]byte(s)))
}
