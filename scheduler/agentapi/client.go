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
	"time"
)

// StatusError is returned by Client calls the scheduler answered with a
// non-success status. It wraps ErrUnknownAgent for 404 answers.
type StatusError struct {
	Code    int
	Message string
}

// Error implements error.
func (e *StatusError) Error() string {
	return fmt.Sprintf("agentapi: scheduler answered %d: %s", e.Code, e.Message)
}

// Unwrap lets errors.Is(err, ErrUnknownAgent) match a 404 answer.
func (e *StatusError) Unwrap() error {
	if e.Code == http.StatusNotFound {
		return ErrUnknownAgent
	}
	return nil
}

// Client calls the agent-facing API of a scheduler. It is safe for
// concurrent use.
type Client struct {
	base string
	hc   *http.Client
}

// NewClient returns a client for the scheduler at baseURL
// ("http://host:8080"). A nil httpClient means a client without a global
// timeout (long polls are bounded by their wait and the caller's context).
// A malformed baseURL makes every call fail with a clear error.
func NewClient(baseURL string, httpClient *http.Client) *Client {
	if httpClient == nil {
		httpClient = &http.Client{}
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), hc: httpClient}
}

// Register announces the agent and returns the id the scheduler gave it.
func (c *Client) Register(ctx context.Context, req RegisterRequest) (RegisterResponse, error) {
	var resp RegisterResponse
	if err := c.do(ctx, http.MethodPost, PathRegister, nil, req, &resp); err != nil {
		return RegisterResponse{}, fmt.Errorf("register: %w", err)
	}
	return resp, nil
}

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
