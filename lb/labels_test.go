package lb

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSplitPortLabel(t *testing.T) {
	tests := []struct {
		key  string
		n    int
		name string
		ok   bool
	}{
		{"HAPROXY_0_VHOST", 0, "VHOST", true},
		{"HAPROXY_12_BACKEND_HEAD", 12, "BACKEND_HEAD", true},
		{"HAPROXY_GROUP", 0, "", false},
		{"HAPROXY_0_", 0, "", false},
		{"HAPROXY__VHOST", 0, "", false},
		{"HAPROXY_0VHOST", 0, "", false},
		{"haproxy_0_VHOST", 0, "", false},
		{"HAPROXY_123456_VHOST", 0, "", false},
		{"HAPROXY_DEPLOYMENT_GROUP", 0, "", false},
	}
	for _, tc := range tests {
		n, name, ok := splitPortLabel(tc.key)
		assert.Equal(t, tc.ok, ok, tc.key)
		if tc.ok {
			assert.Equal(t, tc.n, n, tc.key)
			assert.Equal(t, tc.name, name, tc.key)
		}
	}
}

// TestApplyPortLabels checks each setting label: its parsed value, or that
// a bad value is an error naming the label.
func TestApplyPortLabels(t *testing.T) {
	tests := []struct {
		name   string
		labels map[string]string
		check  func(t *testing.T, s Service)
		err    string
	}{
		{name: "vhost list", labels: map[string]string{"VHOST": " a.example.com, b.example.com ,,"},
			check: func(t *testing.T, s Service) { assert.Equal(t, []string{"a.example.com", "b.example.com"}, s.VHosts) }},
		{name: "vhost injection", labels: map[string]string{"VHOST": "a.com\nbind :6666"}, err: "HAPROXY_0_VHOST"},
		{name: "vhost bad char", labels: map[string]string{"VHOST": "a b.com"}, err: "not a valid host name"},
		{name: "vhost empty", labels: map[string]string{"VHOST": " , "}, err: "no host name"},
		{name: "port", labels: map[string]string{"PORT": " 8080 "},
			check: func(t *testing.T, s Service) { assert.Equal(t, 8080, s.ServicePort) }},
		{name: "port not numeric", labels: map[string]string{"PORT": "eighty"}, err: "HAPROXY_0_PORT"},
		{name: "port out of range", labels: map[string]string{"PORT": "70000"}, err: "1-65535"},
		{name: "mode upper case", labels: map[string]string{"MODE": "HTTP"},
			check: func(t *testing.T, s Service) { assert.Equal(t, ModeHTTP, s.Mode) }},
		{name: "mode bad", labels: map[string]string{"MODE": "udp"}, err: "not http or tcp"},
		{name: "balance", labels: map[string]string{"BALANCE": "leastconn"},
			check: func(t *testing.T, s Service) { assert.Equal(t, "leastconn", s.Balance) }},
		{name: "balance hdr", labels: map[string]string{"BALANCE": "hdr(host)"},
			check: func(t *testing.T, s Service) { assert.Equal(t, "hdr(host)", s.Balance) }},
		{name: "balance with param", labels: map[string]string{"BALANCE": "url_param  userid"},
			check: func(t *testing.T, s Service) { assert.Equal(t, "url_param userid", s.Balance) }},
		{name: "balance unknown", labels: map[string]string{"BALANCE": "fastest"}, err: "unknown balance"},
		{name: "balance injection", labels: map[string]string{"BALANCE": "roundrobin\n  server x 1.2.3.4:1"}, err: "control character"},
		{name: "balance bad parens", labels: map[string]string{"BALANCE": "leastconn(x)"}, err: "takes no argument"},
		{name: "sticky", labels: map[string]string{"STICKY": "True"},
			check: func(t *testing.T, s Service) { assert.True(t, s.Sticky) }},
		{name: "sticky bad", labels: map[string]string{"STICKY": "maybe"}, err: "not a boolean"},
		{name: "redirect", labels: map[string]string{"REDIRECT_TO_HTTPS": "yes"},
			check: func(t *testing.T, s Service) { assert.True(t, s.RedirectToHTTPS) }},
		{name: "hsts", labels: map[string]string{"USE_HSTS": "1"},
			check: func(t *testing.T, s Service) { assert.True(t, s.UseHSTS) }},
		{name: "auth", labels: map[string]string{"AUTH": "My Realm:bob:$6$s$h:with:colons"},
			check: func(t *testing.T, s Service) {
				assert.Equal(t, &Auth{Realm: "My Realm", User: "bob", Password: "$6$s$h:with:colons"}, s.Auth)
			}},
		{name: "auth short", labels: map[string]string{"AUTH": "realm:bob"}, err: "realm:user:encrypted-password"},
		{name: "auth quote", labels: map[string]string{"AUTH": "a\"b:bob:x"}, err: "quotes"},
		{name: "path", labels: map[string]string{"PATH": "/api  /v2"},
			check: func(t *testing.T, s Service) { assert.Equal(t, "/api /v2", s.Path) }},
		{name: "path relative", labels: map[string]string{"PATH": "api"}, err: "beginning with /"},
		{name: "path ignoring case", labels: map[string]string{"PATH": "-i /multiple  /paths"},
			check: func(t *testing.T, s Service) { assert.Equal(t, "-i /multiple /paths", s.Path) }},
		{name: "path flag only", labels: map[string]string{"PATH": "-i"}, err: "empty path"},
		{name: "path other flag", labels: map[string]string{"PATH": "-m reg /x"}, err: "beginning with /"},
		{name: "vhost lowercased", labels: map[string]string{"VHOST": "WWW.Example.com, api.example.COM"},
			check: func(t *testing.T, s Service) {
				assert.Equal(t, []string{"www.example.com", "api.example.com"}, s.VHosts)
			}},
		{name: "bind addr", labels: map[string]string{"BIND_ADDR": "10.0.0.42"},
			check: func(t *testing.T, s Service) { assert.Equal(t, "10.0.0.42", s.BindAddr) }},
		{name: "bind addr bad", labels: map[string]string{"BIND_ADDR": "10.0.0.42 ssl"}, err: "bind address"},
		{name: "bind options", labels: map[string]string{"BIND_OPTIONS": " ciphers AES128+EECDH force-tlsv12 "},
			check: func(t *testing.T, s Service) { assert.Equal(t, "ciphers AES128+EECDH force-tlsv12", s.BindOptions) }},
		{name: "bind options newline", labels: map[string]string{"BIND_OPTIONS": "ssl\r\nbind :1"}, err: "control character"},
		{name: "bind options comment", labels: map[string]string{"BIND_OPTIONS": "ssl # x"}, err: "'#'"},
		{name: "ssl cert", labels: map[string]string{"SSL_CERT": "/etc/ssl/x.pem"},
			check: func(t *testing.T, s Service) { assert.Equal(t, "/etc/ssl/x.pem", s.SSLCert) }},
		{name: "ssl cert spaces", labels: map[string]string{"SSL_CERT": "/a.pem crt /b.pem"}, err: "single word"},
		{name: "weight", labels: map[string]string{"BACKEND_WEIGHT": "-5"},
			check: func(t *testing.T, s Service) { assert.Equal(t, -5, s.BackendWeight) }},
		{name: "weight bad", labels: map[string]string{"BACKEND_WEIGHT": "heavy"}, err: "integer"},
		{name: "proxypass", labels: map[string]string{"HTTP_BACKEND_PROXYPASS_PATH": "/p"},
			check: func(t *testing.T, s Service) { assert.Equal(t, "/p", s.ProxyPath) }},
		{name: "revproxy bad", labels: map[string]string{"HTTP_BACKEND_REVPROXY_PATH": "/p {x}"}, err: "single word"},
		{name: "redir url", labels: map[string]string{"HTTP_BACKEND_REDIR": "https://example.com/home"},
			check: func(t *testing.T, s Service) { assert.Equal(t, "https://example.com/home", s.RedirPath) }},
		{name: "networks", labels: map[string]string{"BACKEND_NETWORK_ALLOWED_ACL": "10.0.0.0/8 192.168.1.1 ::1"},
			check: func(t *testing.T, s Service) {
				assert.Equal(t, []string{"10.0.0.0/8", "192.168.1.1", "::1"}, s.NetworkAllowed)
			}},
		{name: "networks bad", labels: map[string]string{"BACKEND_NETWORK_ALLOWED_ACL": "10.0.0.0/33"}, err: "not a network"},
		{name: "healthcheck port index", labels: map[string]string{"BACKEND_HEALTHCHECK_PORT_INDEX": "2"},
			check: func(t *testing.T, s Service) { assert.Equal(t, 2, s.HealthCheckPortIndex) }},
		{name: "healthcheck port index bad", labels: map[string]string{"BACKEND_HEALTHCHECK_PORT_INDEX": "-1"}, err: "integer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := Service{PortIndex: 0, Balance: DefaultBalance, BindAddr: DefaultBindAddr, HealthCheckPortIndex: -1}
			err := applyPortLabels(&s, &portLabels{raw: tc.labels})
			if tc.err != "" {
				require.Error(t, err, "labels %v", tc.labels)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err, "labels %v", tc.labels)
			tc.check(t, s)
		})
	}
}

func TestGroupPortLabels(t *testing.T) {
	pls := groupPortLabels(map[string]string{
		"HAPROXY_GROUP":          "external",
		"HAPROXY_0_VHOST":        "a.com",
		"HAPROXY_0_BACKEND_HEAD": "backend {backend}\n",
		"HAPROXY_1_PORT":         "80",
		"HAPROXY_1_lowercase":    "ignored",
		"OTHER":                  "x",
	})
	require.Len(t, pls, 2)
	assert.Equal(t, map[string]string{"VHOST": "a.com"}, pls[0].raw)
	assert.Equal(t, map[string]string{"HAPROXY_BACKEND_HEAD": "backend {backend}\n"}, pls[0].templates)
	assert.Equal(t, map[string]string{"PORT": "80"}, pls[1].raw)
	assert.Empty(t, pls[1].templates)
}

func TestLabelsDoc(t *testing.T) {
	docs := Labels()
	names := make(map[string]bool)
	for _, d := range docs {
		assert.NotEmpty(t, d.Description, d.Name)
		names[d.Name] = true
	}
	// Every label of the spec (names.md) is documented.
	for _, n := range []string{
		"HAPROXY_{n}_AUTH", "HAPROXY_{n}_BACKEND_HEALTHCHECK_PORT_INDEX", "HAPROXY_{n}_BACKEND_NETWORK_ALLOWED_ACL",
		"HAPROXY_{n}_BACKEND_WEIGHT", "HAPROXY_{n}_BALANCE", "HAPROXY_{n}_BIND_ADDR", "HAPROXY_{n}_BIND_OPTIONS",
		"HAPROXY_{n}_ENABLED", "HAPROXY_{n}_GROUP", "HAPROXY_{n}_HTTP_BACKEND_PROXYPASS_PATH",
		"HAPROXY_{n}_HTTP_BACKEND_REVPROXY_PATH", "HAPROXY_{n}_MODE", "HAPROXY_{n}_PATH", "HAPROXY_{n}_PORT",
		"HAPROXY_{n}_REDIRECT_TO_HTTPS", "HAPROXY_{n}_SSL_CERT", "HAPROXY_{n}_STICKY", "HAPROXY_{n}_USE_HSTS",
		"HAPROXY_{n}_VHOST", "HAPROXY_GROUP", "HAPROXY_DEPLOYMENT_GROUP", "HAPROXY_DEPLOYMENT_ALT_PORT",
		"HAPROXY_DEPLOYMENT_COLOUR", "HAPROXY_DEPLOYMENT_STARTED_AT", "HAPROXY_DEPLOYMENT_TARGET_INSTANCES",
	} {
		assert.True(t, names[n], "label %s is documented", n)
	}
}
