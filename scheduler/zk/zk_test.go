package zk_test

import (
	"testing"
	"time"

	gozk "github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/scheduler/zk"
	"github.com/switchyard/switchyard/scheduler/zk/zktest"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		raw     string
		want    zk.URL
		wantErr bool
	}{
		{raw: "zk://h1:2181,h2:2182,h3/switchyard", want: zk.URL{Servers: []string{"h1:2181", "h2:2182", "h3:2181"}, Path: "/switchyard"}},
		{raw: "zk://bob:s%40cret@h1:2181/a/b/", want: zk.URL{Servers: []string{"h1:2181"}, Path: "/a/b", User: "bob", Password: "s@cret"}},
		{raw: "zk://h1:2181/", wantErr: true},
		{raw: "zk://h1:2181", wantErr: true},
		{raw: "http://h1:2181/x", wantErr: true},
		{raw: "zk:///x", wantErr: true},
		{raw: "zk://bob@h1/x", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.raw, func(t *testing.T) {
			got, err := zk.ParseURL(tc.raw)
			if tc.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
	u, err := zk.ParseURL("zk://bob:pw@h1/x")
	require.NoError(t, err)
	assert.Equal(t, "zk://bob:***@h1:2181/x", u.String(), "no password in logs")
}

func TestDigestAuth(t *testing.T) {
	ens := zktest.Start(t, 1)
	u, err := zk.ParseURL("zk://bob:pw@" + ens.Servers()[0] + "/sy/root")
	require.NoError(t, err)
	conn, _, err := zk.Connect(u, 4*time.Second, nil, nil)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, zk.EnsurePath(conn, u.Path, u.ACL()))
	_, err = conn.Create(u.Path+"/secret", []byte("x"), 0, u.ACL())
	require.NoError(t, err)

	anon, _, err := gozk.Connect(ens.Servers(), 4*time.Second, gozk.WithLogInfo(false))
	require.NoError(t, err)
	defer anon.Close()
	_, _, err = anon.Get(u.Path + "/secret")
	assert.ErrorIs(t, err, gozk.ErrNoAuth, "others cannot read our nodes")
}
