package templates

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/lb"
)

// TestAdminAllow: with AdminAllow the admin backend denies the signal
// and config paths to other clients, and HAProxy accepts the result;
// without it the backend is unchanged (marathon-lb's open default).
func TestAdminAllow(t *testing.T) {
	cfg, _ := lb.Build(nil, lb.Options{AdminAddr: "127.0.0.1:1234", AdminAllow: []netip.Prefix{
		netip.MustParsePrefix("10.1.2.3/8"), netip.MustParsePrefix("::1/128"),
	}})
	out, err := Default().Render(cfg)
	require.NoError(t, err)
	assert.Contains(t, string(out.Config), "backend "+AdminBackend+"\n  mode http\n"+
		"  acl switchyard_admin_allowed src 10.0.0.0/8 ::1/128\n"+
		"  http-request deny deny_status 403 if { path_beg /_mlb_signal/ } !switchyard_admin_allowed\n"+
		"  http-request deny deny_status 403 if { path /_haproxy_getconfig } !switchyard_admin_allowed\n"+
		"  server admin 127.0.0.1:1234\n")
	haproxyCheck(t, out)

	cfg, _ = lb.Build(nil, lb.Options{AdminAddr: "127.0.0.1:1234"})
	out, err = Default().Render(cfg)
	require.NoError(t, err)
	assert.NotContains(t, string(out.Config), "switchyard_admin_allowed")
}
