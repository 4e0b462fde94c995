package httpapi

import (
	"bytes"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func TestParseCredentials(t *testing.T) {
	got, err := ParseCredentials("admin:s3cr:et, ro:pw")
	require.NoError(t, err)
	assert.Equal(t, []Credential{{"admin", "s3cr:et"}, {"ro", "pw"}}, got)
	for _, bad := range []string{"", ",", "nocolon", ":pw", "user:"} {
		_, err := ParseCredentials(bad)
		assert.Error(t, err, bad)
	}
}

func TestReadCredentialsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "creds")
	require.NoError(t, os.WriteFile(path, []byte("# users\nadmin:a,b:c\n\n  ops:pw  \n"), 0o600))
	got, err := ReadCredentialsFile(path)
	require.NoError(t, err)
	assert.Equal(t, []Credential{{"admin", "a,b:c"}, {"ops", "pw"}}, got)

	require.NoError(t, os.WriteFile(path, []byte("ok:pw\nbroken\n"), 0o600))
	_, err = ReadCredentialsFile(path)
	assert.ErrorContains(t, err, "line 2")
	_, err = ReadCredentialsFile(filepath.Join(t.TempDir(), "missing"))
	assert.Error(t, err)
}

func TestParseBasic(t *testing.T) {
	enc := base64.StdEncoding.EncodeToString
	tests := []struct {
		header, user, pass string
		ok                 bool
	}{
		{basic("u", "p"), "u", "p", true},
		{"basic " + enc([]byte("u:p:q")), "u", "p:q", true},
		{"BASIC   " + enc([]byte(":")), "", "", true},
		{"Basic " + enc([]byte("nocolon")), "", "", false},
		{"Bearer " + enc([]byte("u:p")), "", "", false},
		{"Basic", "", "", false},
		{"Basic ", "", "", false},
		{"Basic !!!", "", "", false},
		{"Basic " + base64.RawStdEncoding.EncodeToString([]byte("u:pp")), "", "", false},
		{"", "", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.header, func(t *testing.T) {
			user, pass, ok := ParseBasic(tc.header)
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.user, user)
			assert.Equal(t, tc.pass, pass)
		})
	}
}

func newAuthHandler(logs *bytes.Buffer) http.Handler {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	return Authenticate(AuthConfig{
		Users:    []Credential{{"admin", "pw"}, {"other", "x:y"}},
		ReadOnly: []Credential{{"lb", "ro"}},
		Logger:   slog.New(slog.NewTextHandler(logs, nil)),
	}, ok)
}

func TestAuthenticate(t *testing.T) {
	tests := []struct {
		name, method, path, auth string
		want                     int
		log                      string
	}{
		{"no credentials", "GET", "/v2/apps", "", 401, "reason=\"no credentials\""},
		{"bad password", "POST", "/v2/apps", basic("admin", "nope"), 401, "reason=\"bad user or password\""},
		{"unknown user", "GET", "/v2/apps", basic("mallory", "pw"), 401, "user=mallory"},
		{"password of another user", "GET", "/v2/apps", basic("admin", "x:y"), 401, "bad user or password"},
		{"malformed header", "GET", "/v2/info", "Basic ???", 401, "malformed Authorization header"},
		{"other scheme", "GET", "/v2/info", "Bearer abc", 401, "malformed"},
		{"admin reads", "GET", "/v2/apps", basic("admin", "pw"), 418, ""},
		{"admin writes", "DELETE", "/v2/apps/x", basic("admin", "pw"), 418, ""},
		{"password with colon", "PUT", "/v2/apps/x", basic("other", "x:y"), 418, ""},
		{"read-only reads", "GET", "/v2/events", basic("lb", "ro"), 418, ""},
		{"read-only HEAD", "HEAD", "/v2/apps", basic("lb", "ro"), 418, ""},
		{"read-only writes", "POST", "/v2/apps", basic("lb", "ro"), 403, "read-only user"},
		{"read-only abdicates", "DELETE", "/v2/leader", basic("lb", "ro"), 403, "read-only user"},
		{"ping is open", "GET", "/ping", "", 418, ""},
		{"leader is open", "GET", "/v2/leader", "", 418, ""},
		{"abdicate needs auth", "DELETE", "/v2/leader", "", 401, "path=/v2/leader"},
		{"POST ping needs auth", "POST", "/ping", "", 401, ""},
		{"metrics need auth", "GET", "/metrics", "", 401, ""},
		{"agent api is exempt", "POST", "/agentapi/v1/register", "", 418, ""},
		{"agent api prefix lookalike", "GET", "/agentapix", "", 401, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			h := newAuthHandler(&logs)
			req := httptest.NewRequest(tc.method, tc.path, nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			assert.Equal(t, tc.want, rec.Code)
			if tc.want == 401 {
				assert.Equal(t, `Basic realm="Mesosphere", charset="UTF-8"`, rec.Header().Get("WWW-Authenticate"))
				assert.Contains(t, rec.Body.String(), `"message"`)
			}
			if tc.log != "" {
				assert.Contains(t, logs.String(), tc.log)
			}
			if tc.want == 418 {
				assert.Empty(t, logs.String())
			}
			assert.NotContains(t, logs.String(), "pw", "passwords are never logged")
		})
	}
}

func TestAuthenticateWithoutUsersIsIdentity(t *testing.T) {
	h := http.RedirectHandler("/x", http.StatusFound)
	assert.Same(t, h, Authenticate(AuthConfig{}, h))
}

// FuzzAuthenticate sends arbitrary Authorization headers: a request is let
// through exactly when the header parses to a configured user and its
// password, and ParseBasic never panics nor accepts a non-Basic scheme.
func FuzzAuthenticate(f *testing.F) {
	for _, s := range []string{
		basic("admin", "pw"), basic("lb", "ro"), basic("admin", "pw\x00"), "Basic", "Basic  " + base64.StdEncoding.EncodeToString([]byte("admin:pw")),
		"basic YWRtaW46cHc=", "Basic YWRtaW46cHc", "Basic YWRtaW46cHc==", "Basic ====", "Digest x", "Basic \t" + "YWRtaW46cHc=",
		"Basic " + strings.Repeat("A", 5000),
	} {
		f.Add(s, "GET")
		f.Add(s, "POST")
	}
	var logs bytes.Buffer
	h := newAuthHandler(&logs)
	f.Fuzz(func(t *testing.T, header, method string) {
		user, pass, ok := ParseBasic(header)
		if ok {
			scheme, _, _ := strings.Cut(header, " ")
			require.True(t, strings.EqualFold(scheme, "basic"))
		} else {
			require.Empty(t, user)
			require.Empty(t, pass)
		}
		if method != "GET" {
			method = "POST"
		}
		req := httptest.NewRequest(method, "/v2/apps", nil)
		req.Header.Set("Authorization", header)
		rec := httptest.NewRecorder()
		logs.Reset()
		h.ServeHTTP(rec, req)
		full := ok && ((user == "admin" && pass == "pw") || (user == "other" && pass == "x:y"))
		ro := ok && user == "lb" && pass == "ro"
		switch {
		case full, ro && method == "GET":
			require.Equal(t, http.StatusTeapot, rec.Code)
		case ro:
			require.Equal(t, http.StatusForbidden, rec.Code)
		default:
			require.Equal(t, http.StatusUnauthorized, rec.Code)
			require.NotEmpty(t, rec.Header().Get("WWW-Authenticate"))
		}
	})
}

// BenchmarkAuthenticate is the middleware's cost per request with three
// users: parse the header, hash, compare against every user.
func BenchmarkAuthenticate(b *testing.B) {
	h := newAuthHandler(&bytes.Buffer{})
	req := httptest.NewRequest("GET", "/v2/apps", nil)
	req.Header.Set("Authorization", basic("other", "x:y"))
	rec := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(rec, req)
	}
	if rec.Code != http.StatusTeapot {
		b.Fatal(rec.Code)
	}
}

// TestAuthLogBudget: a password guesser cannot flood the log; after the
// burst, lines come at the refill rate and say how many were suppressed.
func TestAuthLogBudget(t *testing.T) {
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	h := Authenticate(AuthConfig{
		Users:    []Credential{{"admin", "pw"}},
		Logger:   slog.New(slog.NewTextHandler(&logs, nil)),
		Registry: reg,
	}, http.NotFoundHandler()).(*authenticator)
	now := time.Unix(1000, 0)
	h.budget.now = func() time.Time { return now }
	guess := func() {
		req := httptest.NewRequest("GET", "/v2/apps", nil)
		req.Header.Set("Authorization", basic("admin", "guess"))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		require.Equal(t, http.StatusUnauthorized, rec.Code)
	}
	for range 100 {
		guess()
	}
	assert.Equal(t, logBurst, strings.Count(logs.String(), "api authentication failed"))
	now = now.Add(time.Second)
	logs.Reset()
	for range 100 {
		guess()
	}
	assert.Equal(t, logPerSecond, strings.Count(logs.String(), "api authentication failed"))
	assert.Contains(t, logs.String(), "suppressed=80", "the first line after the burst counts the dropped ones")
	mfs, err := reg.Gather()
	require.NoError(t, err)
	require.Len(t, mfs, 1)
	assert.Equal(t, "marathon_http_auth_rejections_total", mfs[0].GetName())
	require.Len(t, mfs[0].GetMetric(), 1)
	assert.Equal(t, 200.0, mfs[0].GetMetric()[0].GetCounter().GetValue())
	assert.Equal(t, "bad_credentials", mfs[0].GetMetric()[0].GetLabel()[0].GetValue())
}
