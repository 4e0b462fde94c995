package marathon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// maxReplyBody bounds the body of a single-app or deployment reply.
const maxReplyBody = 64 << 20

// App returns one app with its tasks, deployments and last task failure
// embedded (GET /v2/apps/{id}). A missing app is a *StatusError with Code
// 404.
func (c *Client) App(ctx context.Context, id string) (App, error) {
	var out AppResponse
	if err := c.call(ctx, http.MethodGet, "/v2/apps"+escapeID(id)+"?embed=app.tasks&embed=app.deployments", nil, &out, http.StatusOK); err != nil {
		return App{}, fmt.Errorf("get app %s: %w", CanonicalID(id), err)
	}
	return out.App, nil
}

// CreateApp posts a new app (POST /v2/apps) and returns the app Marathon
// created. def is marshalled as JSON: an App, or a raw definition
// (json.RawMessage, map) when fields App does not model must be kept.
func (c *Client) CreateApp(ctx context.Context, def any) (App, error) {
	body, err := json.Marshal(def)
	if err != nil {
		return App{}, fmt.Errorf("create app: encode: %w", err)
	}
	var out App
	if err := c.call(ctx, http.MethodPost, "/v2/apps", body, &out, http.StatusCreated, http.StatusOK); err != nil {
		return App{}, fmt.Errorf("create app: %w", err)
	}
	return out, nil
}

// ScaleApp sets an app's instances (PUT /v2/apps/{id} {"instances":n});
// force overrides a deployment in progress (?force=true).
func (c *Client) ScaleApp(ctx context.Context, id string, instances int, force bool) (DeploymentResult, error) {
	if instances < 0 {
		return DeploymentResult{}, fmt.Errorf("scale app %s: negative instances %d", CanonicalID(id), instances)
	}
	body, _ := json.Marshal(struct {
		Instances int `json:"instances"`
	}{instances})
	var out DeploymentResult
	if err := c.call(ctx, http.MethodPut, "/v2/apps"+escapeID(id)+forceQuery("?", force), body, &out, http.StatusOK, http.StatusCreated); err != nil {
		return DeploymentResult{}, fmt.Errorf("scale app %s to %d: %w", CanonicalID(id), instances, err)
	}
	return out, nil
}

// DeleteApp destroys an app and kills its tasks (DELETE /v2/apps/{id});
// force overrides a deployment in progress.
func (c *Client) DeleteApp(ctx context.Context, id string, force bool) (DeploymentResult, error) {
	var out DeploymentResult
	if err := c.call(ctx, http.MethodDelete, "/v2/apps"+escapeID(id)+forceQuery("?", force), nil, &out, http.StatusOK); err != nil {
		return DeploymentResult{}, fmt.Errorf("delete app %s: %w", CanonicalID(id), err)
	}
	return out, nil
}

// KillTasks kills tasks by id (POST /v2/tasks/delete {"ids":[...]}). With
// scale the apps' instances shrink by the number killed, so the tasks are
// not replaced (Marathon then answers with a deployment). An empty ids is
// a no-op.
func (c *Client) KillTasks(ctx context.Context, ids []string, scale bool) error {
	if len(ids) == 0 {
		return nil
	}
	body, _ := json.Marshal(struct {
		IDs []string `json:"ids"`
	}{ids})
	q := "/v2/tasks/delete"
	if scale {
		q += "?scale=true"
	}
	if err := c.call(ctx, http.MethodPost, q, body, nil, http.StatusOK); err != nil {
		return fmt.Errorf("kill %d tasks (scale=%t): %w", len(ids), scale, err)
	}
	return nil
}

// escapeID returns the canonical id with each path segment escaped.
func escapeID(id string) string {
	segs := strings.Split(strings.Trim(id, "/"), "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return "/" + strings.Join(segs, "/")
}

func forceQuery(sep string, force bool) string {
	if force {
		return sep + "force=true"
	}
	return ""
}

// retryable reports whether a write may be sent to the next member: only
// when no member answered it (network error) or the member said it cannot
// serve now (502/503/504, e.g. no leader). A 4xx or 500 is final, so a
// POST is never applied twice by two members that both accepted it.
func retryable(err error) bool {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Code == http.StatusBadGateway || se.Code == http.StatusServiceUnavailable || se.Code == http.StatusGatewayTimeout
	}
	return true
}

// call sends one REST request with the client's failover: the current
// member first, then each other member while the failure is retryable;
// it sticks to the member that answered. A 2xx status not in want, or a
// body that does not decode into out (when out is non-nil), is an error.
func (c *Client) call(ctx context.Context, method, pathAndQuery string, body []byte, out any, want ...int) error {
	start := c.index()
	var errs []error
	for k := range c.urls {
		i := (start + k) % len(c.urls)
		err := c.callOne(ctx, i, method, pathAndQuery, body, out, want)
		if err == nil {
			c.current.Store(int64(i))
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		errs = append(errs, err)
		if !retryable(err) {
			c.current.Store(int64(i))
			return err
		}
		c.log.Warn("marathon member failed", "url", c.urls[i].Redacted(), "method", method, "err", err)
	}
	if len(errs) == 1 {
		return errs[0]
	}
	return fmt.Errorf("all %d Marathon URLs failed: %w", len(c.urls), errors.Join(errs...))
}

func (c *Client) callOne(ctx context.Context, i int, method, pathAndQuery string, body []byte, out any, want []int) error {
	req, err := c.newRequest(ctx, i, pathAndQuery, "application/json")
	if err != nil {
		return err
	}
	req.Method = method
	if body != nil {
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		req.ContentLength = int64(len(body))
		req.Header.Set("Content-Type", "application/json")
	}
	where := method + " " + c.urls[i].Redacted() + strings.SplitN(pathAndQuery, "?", 2)[0]
	resp, err := c.rest.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	defer resp.Body.Close()
	ok := false
	for _, code := range want {
		ok = ok || resp.StatusCode == code
	}
	if !ok {
		se, _ := statusError(c.urls[i].Redacted()+pathAndQuery, resp).(*StatusError)
		return &writeStatusError{StatusError: se, method: method}
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBody+1))
	if err != nil {
		return fmt.Errorf("%s: read body: %w", where, err)
	}
	if len(b) > maxReplyBody {
		return fmt.Errorf("%s: body larger than %d bytes", where, maxReplyBody)
	}
	if out == nil || len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s: decode body: %w", where, err)
	}
	return nil
}

// writeStatusError is a *StatusError whose message names the method
// (StatusError's own Error says GET). errors.As finds the *StatusError.
type writeStatusError struct {
	*StatusError
	method string
}

func (e *writeStatusError) Error() string {
	return e.method + strings.TrimPrefix(e.StatusError.Error(), "GET")
}

func (e *writeStatusError) Unwrap() error { return e.StatusError }
