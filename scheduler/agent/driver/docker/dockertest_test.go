package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/stretchr/testify/require"
)

// dockerEnv is what an integration test needs: a raw engine client, a
// freshly built test image, and a unique owner whose containers are all
// removed when the test ends.
type dockerEnv struct {
	api   *client.Client
	image string
	owner string
}

// newDockerEnv fails the test if no Docker engine answers, unless
// SKIP_DOCKER=1 asks to leave Docker tests out; it skips under -short.
func newDockerEnv(t *testing.T) *dockerEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("docker integration test skipped in -short mode")
	}
	api, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	require.NoError(t, err)
	t.Cleanup(func() { _ = api.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := api.Ping(ctx); err != nil {
		if os.Getenv("SKIP_DOCKER") == "1" {
			t.Skipf("SKIP_DOCKER=1: Docker tests left out on request (%v)", err)
		}
		t.Fatalf("prerequisite missing: no Docker engine answers (%v); SKIP_DOCKER=1 leaves the Docker tests out", err)
	}
	env := &dockerEnv{api: api, image: buildTestImage(t, api), owner: "drivertest-" + randHex(t, 4)}
	t.Cleanup(func() { env.removeOwned(t) })
	return env
}

// newDriver returns a driver owned by env.owner that logs into buf.
func (e *dockerEnv) newDriver(t *testing.T, logs io.Writer) *Driver {
	t.Helper()
	if logs == nil {
		logs = io.Discard
	}
	d, err := New(Config{Owner: e.owner, Logger: slog.New(slog.NewTextHandler(logs, nil)), PullTimeout: 20 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	return d
}

func (e *dockerEnv) removeOwned(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	list, err := e.api.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", LabelOwner+"="+e.owner))})
	if err != nil {
		t.Logf("cleanup: list containers: %v", err)
		return
	}
	for _, c := range list {
		if err := e.api.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !errdefs.IsNotFound(err) {
			t.Logf("cleanup: remove %s: %v", c.ID, err)
		}
	}
}

// buildTestImage builds cmd/testweb and testdata/minish statically and
// wraps them in a FROM scratch image (testweb as the entrypoint, minish
// as /bin/sh) tagged by the binaries' hash, so reruns reuse it.
func buildTestImage(t *testing.T, api *client.Client) string {
	t.Helper()
	dir := t.TempDir()
	goBuild := func(name, pkg string) []byte {
		bin := filepath.Join(dir, name)
		cmd := exec.Command("go", "build", "-trimpath", "-o", bin, pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "go build %s: %s", pkg, out)
		data, err := os.ReadFile(bin)
		require.NoError(t, err)
		return data
	}
	data := goBuild("testweb", "github.com/switchyard/switchyard/cmd/testweb")
	sh := goBuild("minish", "./testdata/minish")
	h := sha256.New()
	h.Write(data)
	h.Write(sh)
	sum := h.Sum(nil)
	tag := "switchyard/testweb:drivertest-" + hex.EncodeToString(sum[:6])
	ctx := t.Context()
	if _, err := api.ImageInspect(ctx, tag); err == nil {
		return tag
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	files := []struct {
		name string
		mode int64
		data []byte
	}{
		{"Dockerfile", 0o644, []byte("FROM scratch\nCOPY testweb /testweb\nCOPY minish /bin/sh\nENTRYPOINT [\"/testweb\"]\n")},
		{"testweb", 0o755, data},
		{"minish", 0o755, sh},
	}
	for _, f := range files {
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data))}))
		_, err := tw.Write(f.data)
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	resp, err := api.ImageBuild(ctx, &buf, build.ImageBuildOptions{Tags: []string{tag}, Remove: true, ForceRemove: true})
	require.NoError(t, err)
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var msg struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&msg); errors.Is(err, io.EOF) {
			break
		} else {
			require.NoError(t, err)
		}
		require.Empty(t, msg.Error, "docker build")
	}
	return tag
}

func randHex(t *testing.T, n int) string {
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

// freePort returns a TCP port that is free on the host right now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func itoa(n int) string { return strconv.Itoa(n) }
