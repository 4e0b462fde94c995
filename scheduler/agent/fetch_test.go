package agent_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/scheduler/agentapi"
)

// artifactServer serves a few artifacts; other paths are 404.
func artifactServer(t *testing.T) string {
	t.Helper()
	var tgz bytes.Buffer
	zw := gzip.NewWriter(&tgz)
	tw := tar.NewWriter(zw)
	body := []byte("from the archive\n")
	require.NoError(t, tw.WriteHeader(&tar.Header{Name: "app/data.txt", Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}))
	_, err := tw.Write(body)
	require.NoError(t, err)
	require.NoError(t, tw.Close())
	require.NoError(t, zw.Close())
	files := map[string][]byte{
		"/greeting.txt": []byte("hello from fetch\n"),
		"/tool":         []byte("#!/bin/sh\necho tool ran\n"),
		"/app.tar.gz":   tgz.Bytes(),
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// A command task finds its fetch and uris artifacts in its working
// directory; a fetch failure fails the task before anything runs, with
// the URI and the reason in the message.
func TestTaskArtifactsFetched(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	base := artifactServer(t)
	f, url := newFakeScheduler(t)
	dataDir := t.TempDir()
	runAgent(t, url, dataDir)
	f.assign(
		agentapi.Assignment{
			TaskID: "web.1", AppID: "/web",
			Cmd: `cat greeting.txt > out && ./bin/tool >> out && cat app/data.txt >> out && cat "$MESOS_SANDBOX/greeting.txt" >> out`,
			Fetch: []marathon.Fetch{
				{URI: base + "/greeting.txt"},
				{URI: base + "/tool", Executable: true, DestPath: "bin/tool"},
			},
			URIs: []string{base + "/app.tar.gz"},
		},
		agentapi.Assignment{
			TaskID: "broken.1", AppID: "/broken", Cmd: "touch ran",
			Fetch: []marathon.Fetch{{URI: base + "/greeting.txt"}, {URI: base + "/missing.tgz", Extract: true}},
		},
	)

	f.waitState(t, "web.1", marathon.TaskFinished)
	out, err := os.ReadFile(filepath.Join(dataDir, "sandbox", "web.1", "out"))
	require.NoError(t, err)
	assert.Equal(t, "hello from fetch\ntool ran\nfrom the archive\nhello from fetch\n", string(out))

	failed := f.waitState(t, "broken.1", marathon.TaskFailed)
	assert.Equal(t, "failed to start: fetch "+base+"/missing.tgz: HTTP 404 Not Found", failed.Message)
	assert.NotContains(t, f.states("broken.1"), marathon.TaskRunning)
	_, err = os.Stat(filepath.Join(dataDir, "sandbox", "broken.1", "ran"))
	assert.ErrorIs(t, err, os.ErrNotExist, "the command must not run")
}

// Docker tasks get their artifacts in the sandbox too, before the driver
// starts them.
func TestDockerTaskArtifactsFetched(t *testing.T) {
	base := artifactServer(t)
	f, url := newFakeScheduler(t)
	d := newFakeDriver()
	runWithDriver(t, url, d)
	f.assign(agentapi.Assignment{
		TaskID: "nginx.1", AppID: "/nginx",
		Container: &marathon.Container{Docker: &marathon.Docker{Image: "nginx:1", Network: "HOST"}},
		Fetch:     []marathon.Fetch{{URI: base + "/greeting.txt"}},
	})
	f.waitState(t, "nginx.1", marathon.TaskRunning)
	d.mu.Lock()
	defer d.mu.Unlock()
	assert.Equal(t, []string{"greeting.txt"}, d.atStart["nginx.1"])
}
