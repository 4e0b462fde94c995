package zkstore_test

import (
	"bytes"
	"testing"
	"time"

	gozk "github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/scheduler/state"
	"github.com/switchyard/switchyard/scheduler/state/zkstore"
	"github.com/switchyard/switchyard/scheduler/zk"
	"github.com/switchyard/switchyard/scheduler/zk/zktest"
)

func connect(t *testing.T, ens *zktest.Ensemble) *gozk.Conn {
	u, err := zk.ParseURL(ens.URL("/x"))
	require.NoError(t, err)
	conn, _, err := zk.Connect(u, 4*time.Second, nil, nil)
	require.NoError(t, err)
	t.Cleanup(conn.Close)
	return conn
}

func load(t *testing.T, b *zkstore.Backend) map[string][]byte {
	out := map[string][]byte{}
	require.NoError(t, b.Load(func(bucket, key string, v []byte) error {
		out[bucket+"|"+key] = v
		return nil
	}))
	return out
}

func TestLargeRecords(t *testing.T) {
	ens := zktest.Start(t, 1)
	conn := connect(t, ens)
	b, err := zkstore.Open(zkstore.Config{Conn: conn, Root: "/big"})
	require.NoError(t, err)
	// 3 MB: ZooKeeper refuses a node (or request) over ~1 MB.
	huge := bytes.Repeat([]byte("0123456789abcdef"), 3<<20/16)
	require.NoError(t, b.Commit([]state.Op{
		{Bucket: "deployments", Key: "d1", Value: huge},
		{Bucket: "apps", Key: "/a", Value: []byte(`{}`)},
	}))
	fresh, err := zkstore.Open(zkstore.Config{Conn: conn, Root: "/big"})
	require.NoError(t, err)
	got := load(t, fresh)
	assert.Equal(t, huge, got["deployments|d1"])
	assert.Equal(t, []byte(`{}`), got["apps|/a"])

	// Overwrite from the fresh backend (another leader), then delete.
	require.NoError(t, fresh.Commit([]state.Op{{Bucket: "deployments", Key: "d1", Value: huge[:2<<20]}}))
	assert.Equal(t, huge[:2<<20], load(t, b)["deployments|d1"])
	require.NoError(t, b.Commit([]state.Op{{Bucket: "deployments", Key: "d1"}}))
	_, ok := load(t, fresh)["deployments|d1"]
	assert.False(t, ok)
	keys, err := fresh.Keys("deployments")
	require.NoError(t, err)
	assert.Empty(t, keys, "no chunk is left behind")
}

func TestFence(t *testing.T) {
	ens := zktest.Start(t, 1)
	conn := connect(t, ens)
	_, err := conn.Create("/fence", nil, gozk.FlagEphemeral, gozk.WorldACL(gozk.PermAll))
	require.NoError(t, err)
	b, err := zkstore.Open(zkstore.Config{Conn: conn, Root: "/f", Fence: "/fence"})
	require.NoError(t, err)
	require.NoError(t, b.Commit([]state.Op{{Bucket: "apps", Key: "/a", Value: []byte(`1`)}}))
	require.NoError(t, conn.Delete("/fence", -1))
	err = b.Commit([]state.Op{{Bucket: "apps", Key: "/a", Value: []byte(`2`)}, {Bucket: "apps", Key: "/b", Value: []byte(`2`)}})
	require.ErrorIs(t, err, zkstore.ErrFenced)
	assert.Equal(t, map[string][]byte{"apps|/a": []byte(`1`)}, load(t, b), "nothing of a fenced batch is written")
}

func TestFailedBatchIsRetried(t *testing.T) {
	ens := zktest.Start(t, 1)
	conn := connect(t, ens)
	b, err := zkstore.Open(zkstore.Config{Conn: conn, Root: "/r"})
	require.NoError(t, err)
	require.NoError(t, b.Commit([]state.Op{{Bucket: "apps", Key: "/a", Value: []byte(`1`)}}))
	// Someone else removes the node: our create-or-set guess is wrong.
	require.NoError(t, conn.Delete("/r/state/apps/%2Fa", -1))
	require.Error(t, b.Commit([]state.Op{{Bucket: "apps", Key: "/a", Value: []byte(`2`)}}))
	require.NoError(t, b.Commit([]state.Op{{Bucket: "apps", Key: "/a", Value: []byte(`2`)}}), "the retry re-reads what exists")
	assert.Equal(t, []byte(`2`), load(t, b)["apps|/a"])
}
