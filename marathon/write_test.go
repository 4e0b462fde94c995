package marathon_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
)

// recorded is one request a fake member saw.
type recorded struct {
	Method, Path, Query, Body, Auth, ContentType string
}

// fakeMember answers every request with code and body and records it.
func fakeMember(t *testing.T, code int, body string) (*httptest.Server, func() []recorded) {
	t.Helper()
	var mu sync.Mutex
	var seen []recorded
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		user, pass, _ := r.BasicAuth()
		mu.Lock()
		seen = append(seen, recorded{r.Method, r.URL.Path, r.URL.RawQuery, string(b), user + ":" + pass, r.Header.Get("Content-Type")})
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []recorded {
		mu.Lock()
		defer mu.Unlock()
		return append([]recorded(nil), seen...)
	}
}

func TestWriteCalls(t *testing.T) {
	deployment := `{"deploymentId":"d-1","version":"2026-01-01T00:00:00.000Z"}`
	tests := []struct {
		name      string
		code      int
		reply     string
		call      func(context.Context, *marathon.Client) (any, error)
		want      recorded
		wantValue any
		wantCode  int // expected *StatusError code, 0 = success
	}{
		{
			name: "get app", code: 200, reply: `{"app":{"id":"/web-blue","instances":2,"tasks":[{"id":"t1","host":"h","state":"TASK_RUNNING"}]}}`,
			call: func(ctx context.Context, c *marathon.Client) (any, error) {
				a, err := c.App(ctx, "web-blue")
				return []any{a.ID, a.Instances, len(a.Tasks)}, err
			},
			want:      recorded{Method: "GET", Path: "/v2/apps/web-blue", Query: "embed=app.tasks&embed=app.deployments"},
			wantValue: []any{"/web-blue", 2, 1},
		},
		{
			name: "get missing app", code: 404, reply: `{"message":"App '/nope' does not exist"}`,
			call: func(ctx context.Context, c *marathon.Client) (any, error) {
				_, err := c.App(ctx, "/nope")
				return nil, err
			},
			want: recorded{Method: "GET", Path: "/v2/apps/nope", Query: "embed=app.tasks&embed=app.deployments"}, wantCode: 404,
		},
		{
			name: "create raw definition", code: 201, reply: `{"id":"/web-green","instances":1}`,
			call: func(ctx context.Context, c *marathon.Client) (any, error) {
				a, err := c.CreateApp(ctx, json.RawMessage(`{"id":"/web-green","instances":1}`))
				return a.ID, err
			},
			want:      recorded{Method: "POST", Path: "/v2/apps", Body: `{"id":"/web-green","instances":1}`, ContentType: "application/json"},
			wantValue: "/web-green",
		},
		{
			name: "create invalid", code: 422, reply: `{"message":"Object is not valid","details":[]}`,
			call: func(ctx context.Context, c *marathon.Client) (any, error) {
				_, err := c.CreateApp(ctx, map[string]any{"id": "/Bad"})
				return nil, err
			},
			want: recorded{Method: "POST", Path: "/v2/apps", Body: `{"id":"/Bad"}`, ContentType: "application/json"}, wantCode: 422,
		},
		{
			name: "scale with force", code: 200, reply: deployment,
			call: func(ctx context.Context, c *marathon.Client) (any, error) {
				r, err := c.ScaleApp(ctx, "/g/web-blue", 3, true)
				return r.DeploymentID, err
			},
			want:      recorded{Method: "PUT", Path: "/v2/apps/g/web-blue", Query: "force=true", Body: `{"instances":3}`, ContentType: "application/json"},
			wantValue: "d-1",
		},
		{
			name: "scale locked", code: 409, reply: `{"message":"App is locked by one or more deployments."}`,
			call: func(ctx context.Context, c *marathon.Client) (any, error) {
				_, err := c.ScaleApp(ctx, "/web", 0, false)
				return nil, err
			},
			want: recorded{Method: "PUT", Path: "/v2/apps/web", Body: `{"instances":0}`, ContentType: "application/json"}, wantCode: 409,
		},
		{
			name: "delete", code: 200, reply: deployment,
			call: func(ctx context.Context, c *marathon.Client) (any, error) {
				r, err := c.DeleteApp(ctx, "/web-blue", false)
				return r.DeploymentID, err
			},
			want:      recorded{Method: "DELETE", Path: "/v2/apps/web-blue"},
			wantValue: "d-1",
		},
		{
			name: "kill tasks and scale", code: 200, reply: deployment,
			call: func(ctx context.Context, c *marathon.Client) (any, error) {
				return nil, c.KillTasks(ctx, []string{"a.1", "a.2"}, true)
			},
			want: recorded{Method: "POST", Path: "/v2/tasks/delete", Query: "scale=true", Body: `{"ids":["a.1","a.2"]}`, ContentType: "application/json"},
		},
		{
			name: "kill tasks without scale", code: 200, reply: `{"tasks":[]}`,
			call: func(ctx context.Context, c *marathon.Client) (any, error) {
				return nil, c.KillTasks(ctx, []string{"a.1"}, false)
			},
			want: recorded{Method: "POST", Path: "/v2/tasks/delete", Body: `{"ids":["a.1"]}`, ContentType: "application/json"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, seen := fakeMember(t, tc.code, tc.reply)
			c, err := marathon.NewClient(marathon.ClientConfig{URLs: []string{srv.URL}, Username: "u", Password: "p:w"})
			require.NoError(t, err)
			got, err := tc.call(context.Background(), c)
			if tc.wantCode != 0 {
				var se *marathon.StatusError
				require.ErrorAs(t, err, &se)
				assert.Equal(t, tc.wantCode, se.Code)
				assert.NotEmpty(t, se.Message)
				assert.Contains(t, err.Error(), tc.want.Method+" ")
			} else {
				require.NoError(t, err)
				assert.Equal(t, tc.wantValue, got)
			}
			reqs := seen()
			require.Len(t, reqs, 1)
			tc.want.Auth = "u:p:w"
			assert.Equal(t, tc.want, reqs[0])
		})
	}
}

func TestKillTasksEmptyIsNoop(t *testing.T) {
	srv, seen := fakeMember(t, 500, "")
	c, err := marathon.NewClient(marathon.ClientConfig{URLs: []string{srv.URL}})
	require.NoError(t, err)
	require.NoError(t, c.KillTasks(context.Background(), nil, true))
	assert.Empty(t, seen())
}

func TestWriteFailover(t *testing.T) {
	tests := []struct {
		name          string
		firstCode     int
		wantSecondHit bool
		wantErrCode   int
	}{
		{name: "503 fails over", firstCode: 503, wantSecondHit: true},
		{name: "502 fails over", firstCode: 502, wantSecondHit: true},
		{name: "409 is final", firstCode: 409, wantErrCode: 409},
		{name: "500 is final", firstCode: 500, wantErrCode: 500},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			first, seenFirst := fakeMember(t, tc.firstCode, `{"message":"nope"}`)
			second, seenSecond := fakeMember(t, 200, `{"deploymentId":"d-2","version":"v"}`)
			c, err := marathon.NewClient(marathon.ClientConfig{URLs: []string{first.URL, second.URL}})
			require.NoError(t, err)
			res, err := c.ScaleApp(context.Background(), "/web", 2, false)
			assert.Len(t, seenFirst(), 1)
			if tc.wantSecondHit {
				require.NoError(t, err)
				assert.Equal(t, "d-2", res.DeploymentID)
				assert.Len(t, seenSecond(), 1)
				assert.Equal(t, second.URL, c.URL(), "client sticks to the member that answered")
				return
			}
			var se *marathon.StatusError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, tc.wantErrCode, se.Code)
			assert.Empty(t, seenSecond())
		})
	}
}

func TestWriteFailoverOnNetworkError(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	live, seen := fakeMember(t, 201, `{"id":"/x"}`)
	c, err := marathon.NewClient(marathon.ClientConfig{URLs: []string{deadURL, live.URL}})
	require.NoError(t, err)
	app, err := c.CreateApp(context.Background(), map[string]any{"id": "/x"})
	require.NoError(t, err)
	assert.Equal(t, "/x", app.ID)
	assert.Len(t, seen(), 1)
}

func TestWriteContextCancelled(t *testing.T) {
	srv, _ := fakeMember(t, 200, `{}`)
	c, err := marathon.NewClient(marathon.ClientConfig{URLs: []string{srv.URL}})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = c.DeleteApp(ctx, "/x", true)
	assert.True(t, errors.Is(err, context.Canceled), "got %v", err)
}
