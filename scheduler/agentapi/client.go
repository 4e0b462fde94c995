package agentapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// StatusError is returned by Client calls the scheduler answered with a
// non-success status. It wraps ErrUnknownAgent for 404 answers and
// ErrForbidden for 403 answers.
type StatusError struct {
	Code    int
	Message string
}

// Error implements error.
func (e *StatusError) Error() string {
	return fmt.Sprintf("agentapi: scheduler answered %d: %s", e.Code, e.Message)
}

// Unwrap lets errors.Is(err, ErrUnknownAgent) match a 404 answer and
// errors.Is(err, ErrForbidden) a 403.
func (e *StatusError) Unwrap() error {
	switch e.Code {
	case http.StatusNotFound:
		return ErrUnknownAgent
	case http.StatusForbidden:
		return ErrForbidden
	}
	return nil
}

// Client calls the agent-facing API of a scheduler. It is safe for
// concurrent use.
type Client struct {
	base   string
	hc     *http.Client
	secret string

	mu    sync.Mutex
	token string // guarded by mu: the agent's own token
}

// ClientOption configures a Client.
type ClientOption func(*Client)

// WithSecret makes the client present the cluster secret on every
// request.
func WithSecret(secret string) ClientOption {
	return func(c *Client) { c.secret = secret }
}

// NewClient returns a client for the scheduler at baseURL
// ("http://host:8080"). A nil httpClient means a client without a global
// timeout (long polls are bounded by their wait and the caller's context).
// A malformed baseURL makes every call fail with a clear error.
func NewClient(baseURL string, httpClient *http.Client, opts ...ClientOption) *Client {
	if httpClient == nil {
		httpClient = &http.Client{}
	}
	c := &Client{base: strings.TrimRight(baseURL, "/"), hc: httpClient}
	for _, o := range opts {
		o(c)
	}
	return c
}

// SetAgentToken sets the agent token sent with assignments and status
// requests (the one the scheduler gave at registration).
func (c *Client) SetAgentToken(token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.token = token
}

func (c *Client) agentToken() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.token
}

// Register announces the agent and returns the id the scheduler gave it.
// The client keeps the agent token of the answer for its later requests,
// and sends the one it has when req names an agent id but no token.
func (c *Client) Register(ctx context.Context, req RegisterRequest) (RegisterResponse, error) {
	if req.AgentID != "" && req.AgentToken == "" {
		req.AgentToken = c.agentToken()
	}
	var resp RegisterResponse
	if err := c.do(ctx, http.MethodPost, PathRegister, nil, req, &resp); err != nil {
		return RegisterResponse{}, fmt.Errorf("register: %w", err)
	}
	if resp.AgentToken != "" {
		c.SetAgentToken(resp.AgentToken)
	}
	return resp, nil
}

// AuthenticateAgent lets a Client stand for a Scheduler (tests drive a
// fake agent over HTTP with it): the scheduler checks the agent token on
// every request, so there is nothing to check here.
func (c *Client) AuthenticateAgent(context.Context, string, string) error { return nil }

// Assignments long-polls the agent's desired task set: it returns once the
// scheduler's index passes index, or after wait with the current set.
func (c *Client) Assignments(ctx context.Context, agentID string, index uint64, wait time.Duration) (AssignmentList, error) {
	q := url.Values{}
	q.Set("agentId", agentID)
	q.Set("index", strconv.FormatUint(index, 10))
	q.Set("wait", wait.String())
	var list AssignmentList
	if err := c.do(ctx, http.MethodGet, PathAssignments, q, nil, &list); err != nil {
		return AssignmentList{}, fmt.Errorf("assignments: %w", err)
	}
	return list, nil
}

// ReportStatus sends task status changes; a nil error means the scheduler
// accepted them.
func (c *Client) ReportStatus(ctx context.Context, report StatusReport) error {
	if err := c.do(ctx, http.MethodPost, PathStatus, nil, report, nil); err != nil {
		return fmt.Errorf("report status: %w", err)
	}
	return nil
}

func (c *Client) do(ctx context.Context, method, path string, q url.Values, in, out any) error {
	u, err := url.Parse(c.base + path)
	if err != nil {
		return fmt.Errorf("scheduler url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("scheduler url %q: scheme must be http or https", c.base)
	}
	if q != nil {
		u.RawQuery = q.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.secret != "" {
		req.Header.Set("Authorization", "Bearer "+c.secret)
	}
	if tok := c.agentToken(); tok != "" && path != PathRegister {
		req.Header.Set(HeaderAgentToken, tok)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		var eb ErrorBody
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &eb) == nil && eb.Message != "" {
			msg = eb.Message
		}
		return &StatusError{Code: resp.StatusCode, Message: msg}
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	return nil
}
