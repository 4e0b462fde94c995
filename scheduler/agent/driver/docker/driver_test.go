package docker

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/scheduler/agent/driver"
)

// httpGet polls url until it answers 200 or the deadline passes.
func httpGet(t *testing.T, url string) string {
	t.Helper()
	var body string
	var lastErr error
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				body = string(b)
				return body
			}
			lastErr = nil
		} else {
			lastErr = err
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("GET %s never answered 200: %v", url, lastErr)
	return ""
}

func waitResult(t *testing.T, d *Driver, taskID string, within time.Duration) driver.ExitResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), within)
	defer cancel()
	ch, err := d.WaitTask(ctx, taskID)
	require.NoError(t, err)
	r, ok := <-ch
	require.True(t, ok, "task %s did not exit within %s", taskID, within)
	return r
}

func TestDockerBridgeTask(t *testing.T) {
	env := newDockerEnv(t)
	d := env.newDriver(t, nil)
	ctx := t.Context()

	web := t.TempDir()
	require.NoError(t, os.Chmod(web, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(web, "index.html"), []byte("HELLO MESOS WORLD\n"), 0o644))
	dirPort, textPort := freePort(t), freePort(t)

	// Volume + args: serve the mounted directory on :80.
	h, err := d.StartTask(ctx, driver.TaskSpec{
		TaskID: "apache-nfs-lb-01." + randHex(t, 4), AppID: "/apache-nfs-lb-01",
		Image: env.image, Network: "BRIDGE",
		Args:         []string{"--dir", "/usr/local/apache2/htdocs"},
		PortBindings: []driver.PortBinding{{HostPort: dirPort, ContainerPort: 80, Protocol: "tcp"}},
		Volumes:      []driver.Volume{{HostPath: web, ContainerPath: "/usr/local/apache2/htdocs", ReadOnly: true}},
		Labels:       map[string]string{"HAPROXY_GROUP": "webapps01"},
		Parameters:   [][2]string{{"label", "extra=yes"}},
	})
	require.NoError(t, err)
	assert.Equal(t, "docker", h.Driver)
	assert.Equal(t, "HELLO MESOS WORLD\n", httpGet(t, "http://127.0.0.1:"+itoa(dirPort)+"/"))

	// Env: the text comes from the task environment.
	textID := "text." + randHex(t, 4)
	_, err = d.StartTask(ctx, driver.TaskSpec{
		TaskID: textID, AppID: "/text", Image: env.image,
		Env:          map[string]string{"TESTWEB_TEXT": "HELLO WORLD OF MARATHON-LB"},
		PortBindings: []driver.PortBinding{{HostPort: textPort, ContainerPort: 80}},
	})
	require.NoError(t, err)
	assert.Equal(t, "HELLO WORLD OF MARATHON-LB\n", httpGet(t, "http://127.0.0.1:"+itoa(textPort)+"/"))

	info, err := d.InspectTask(ctx, h.TaskID)
	require.NoError(t, err)
	assert.True(t, info.Running)
	assert.NotEmpty(t, info.IPAddress, "bridge task has a container IP")
	assert.WithinDuration(t, time.Now(), info.StartedAt, time.Minute)
	// The container IP answers on the container port.
	assert.Equal(t, "HELLO MESOS WORLD\n", httpGet(t, "http://"+info.IPAddress+":80/"))

	var st handleState
	require.NoError(t, json.Unmarshal(h.State, &st))
	raw, err := env.api.ContainerInspect(ctx, st.ContainerID)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{
		LabelTaskID: h.TaskID, LabelMesosTaskID: h.TaskID, LabelAppID: "/apache-nfs-lb-01",
		LabelOwner: env.owner, "HAPROXY_GROUP": "webapps01", "extra": "yes",
	}, raw.Config.Labels)
	assert.Equal(t, "/"+containerName("switchyard-", h.TaskID), raw.Name)

	// Both tasks are listed for this owner, and only for this owner.
	list, err := d.ListTasks(ctx)
	require.NoError(t, err)
	ids := []string{}
	for _, l := range list {
		ids = append(ids, l.TaskID)
	}
	assert.ElementsMatch(t, []string{h.TaskID, textID}, ids)
	other, err := New(Config{Owner: env.owner + "-other"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = other.Close() })
	otherList, err := other.ListTasks(ctx)
	require.NoError(t, err)
	assert.Empty(t, otherList)

	// Graceful stop: testweb exits 0 on SIGTERM.
	start := time.Now()
	require.NoError(t, d.StopTask(ctx, h.TaskID, 10*time.Second))
	assert.Less(t, time.Since(start), 5*time.Second, "SIGTERM is honoured before the grace period")
	r := waitResult(t, d, h.TaskID, 10*time.Second)
	assert.Equal(t, driver.ExitResult{ExitCode: 0, Killed: true}, r)

	// Not running any more: destroy without force works, then it is gone.
	require.NoError(t, d.DestroyTask(ctx, h.TaskID, false))
	_, err = d.InspectTask(ctx, h.TaskID)
	assert.ErrorIs(t, err, driver.ErrTaskNotFound)
	assert.ErrorIs(t, d.DestroyTask(ctx, h.TaskID, true), driver.ErrTaskNotFound)

	// A running task needs force.
	require.ErrorContains(t, d.DestroyTask(ctx, textID, false), "still running")
	require.NoError(t, d.DestroyTask(ctx, textID, true))
	_, err = env.api.ContainerInspect(ctx, containerName("switchyard-", textID))
	assert.Error(t, err, "container removed")
}

func TestDockerHostNetwork(t *testing.T) {
	env := newDockerEnv(t)
	d := env.newDriver(t, nil)
	port := freePort(t)
	id := "host." + randHex(t, 4)
	_, err := d.StartTask(t.Context(), driver.TaskSpec{
		TaskID: id, Image: env.image, Network: "HOST",
		Args: []string{"--listen", "127.0.0.1:" + itoa(port), "--text", "on the host"},
	})
	require.NoError(t, err)
	assert.Equal(t, "on the host\n", httpGet(t, "http://127.0.0.1:"+itoa(port)+"/"))
	info, err := d.InspectTask(t.Context(), id)
	require.NoError(t, err)
	assert.True(t, info.Running)
	assert.Empty(t, info.IPAddress, "host-network tasks have no own IP")
}

func TestDockerStopGraceThenKill(t *testing.T) {
	env := newDockerEnv(t)
	d := env.newDriver(t, nil)
	id := "stubborn." + randHex(t, 4)
	// SIGWINCH is ignored, so only the kill after the grace period ends it.
	_, err := d.StartTask(t.Context(), driver.TaskSpec{TaskID: id, Image: env.image, Parameters: [][2]string{{"stop-signal", "SIGWINCH"}}})
	require.NoError(t, err)
	start := time.Now()
	require.NoError(t, d.StopTask(t.Context(), id, time.Second))
	elapsed := time.Since(start)
	assert.GreaterOrEqual(t, elapsed, time.Second, "waited for the grace period")
	assert.Less(t, elapsed, 8*time.Second)
	assert.Equal(t, driver.ExitResult{ExitCode: 137, Killed: true}, waitResult(t, d, id, 10*time.Second))
}

func TestDockerExitAndExternalKill(t *testing.T) {
	env := newDockerEnv(t)
	d := env.newDriver(t, nil)
	ctx := t.Context()

	failing := "failing." + randHex(t, 4)
	_, err := d.StartTask(ctx, driver.TaskSpec{TaskID: failing, Image: env.image, Args: []string{"--dir", "/does/not/exist"}})
	require.NoError(t, err)
	assert.Equal(t, driver.ExitResult{ExitCode: 1}, waitResult(t, d, failing, 15*time.Second))

	killed := "killed." + randHex(t, 4)
	_, err = d.StartTask(ctx, driver.TaskSpec{TaskID: killed, Image: env.image})
	require.NoError(t, err)
	require.NoError(t, env.api.ContainerKill(ctx, containerName("switchyard-", killed), "KILL"))
	assert.Equal(t, driver.ExitResult{ExitCode: 137}, waitResult(t, d, killed, 15*time.Second), "not Killed: the agent did not ask")
}

func TestDockerImages(t *testing.T) {
	env := newDockerEnv(t)
	var logs syncBuffer
	d := env.newDriver(t, &logs)
	ctx := t.Context()

	// forcePullImage with no registry: the local image runs, and the log says why.
	id := "forcepull." + randHex(t, 4)
	_, err := d.StartTask(ctx, driver.TaskSpec{TaskID: id, Image: env.image, ForcePullImage: true})
	require.NoError(t, err)
	assert.Contains(t, logs.String(), "forcePullImage: pull failed, starting the local image instead")
	info, err := d.InspectTask(ctx, id)
	require.NoError(t, err)
	assert.True(t, info.Running)

	// A missing image that cannot be pulled fails the task clearly.
	_, err = d.StartTask(ctx, driver.TaskSpec{TaskID: "missing." + randHex(t, 4), Image: "switchyard/no-such-image:nope"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "image switchyard/no-such-image:nope is not present on this agent and could not be pulled")

	// A bad parameter fails before anything is created.
	bad := "badparam." + randHex(t, 4)
	_, err = d.StartTask(ctx, driver.TaskSpec{TaskID: bad, Image: env.image, Parameters: [][2]string{{"frobnicate", "1"}}})
	require.ErrorIs(t, err, ErrUnsupportedParameter)
	_, err = env.api.ContainerInspect(ctx, containerName("switchyard-", bad))
	assert.Error(t, err, "no container for a rejected task")
}

func TestDockerRecoverAfterAgentRestart(t *testing.T) {
	env := newDockerEnv(t)
	ctx := t.Context()
	port := freePort(t)
	first := env.newDriver(t, nil)
	id := "recover." + randHex(t, 4)
	h, err := first.StartTask(ctx, driver.TaskSpec{TaskID: id, Image: env.image, PortBindings: []driver.PortBinding{{HostPort: port, ContainerPort: 80}}})
	require.NoError(t, err)
	exited := "exited." + randHex(t, 4)
	_, err = first.StartTask(ctx, driver.TaskSpec{TaskID: exited, Image: env.image, Args: []string{"--dir", "/nope"}})
	require.NoError(t, err)
	require.Equal(t, 1, waitResult(t, first, exited, 15*time.Second).ExitCode)

	// The agent goes away; its containers stay.
	require.NoError(t, first.Close())
	httpGet(t, "http://127.0.0.1:"+itoa(port)+"/")

	second := env.newDriver(t, nil)
	handles, err := second.ListTasks(ctx)
	require.NoError(t, err)
	require.Len(t, handles, 2)
	byID := map[string]driver.TaskHandle{}
	for _, h := range handles {
		byID[h.TaskID] = h
	}
	require.Contains(t, byID, id)
	require.Contains(t, byID, exited)

	// Recover from the persisted handle and from the listed one.
	require.NoError(t, second.RecoverTask(ctx, h))
	lh := byID[exited]
	require.NoError(t, second.RecoverTask(ctx, &lh))
	assert.Equal(t, driver.ExitResult{ExitCode: 1}, waitResult(t, second, exited, 10*time.Second), "an exit during the outage is reported")

	info, err := second.InspectTask(ctx, id)
	require.NoError(t, err)
	assert.True(t, info.Running)
	require.NoError(t, second.StopTask(ctx, id, 5*time.Second))
	assert.Equal(t, driver.ExitResult{ExitCode: 0, Killed: true}, waitResult(t, second, id, 10*time.Second))

	// Gone containers and foreign handles are reported as not found.
	require.NoError(t, second.DestroyTask(ctx, id, true))
	assert.ErrorIs(t, second.RecoverTask(ctx, h), driver.ErrTaskNotFound)
	assert.ErrorContains(t, second.RecoverTask(ctx, &driver.TaskHandle{TaskID: "x", Driver: "process"}), "driver \"process\"")
	_, err = second.WaitTask(ctx, "never-started")
	assert.ErrorIs(t, err, driver.ErrTaskNotFound)
	assert.ErrorIs(t, second.StopTask(ctx, "never-started", time.Second), driver.ErrTaskNotFound)
}

func TestDockerRestartReplacesStaleContainer(t *testing.T) {
	env := newDockerEnv(t)
	d := env.newDriver(t, nil)
	ctx := t.Context()
	id := "stale." + randHex(t, 4)
	_, err := d.StartTask(ctx, driver.TaskSpec{TaskID: id, Image: env.image})
	require.NoError(t, err)
	// Same task id again (a retried launch): the old container is replaced.
	h2, err := d.StartTask(ctx, driver.TaskSpec{TaskID: id, Image: env.image})
	require.NoError(t, err)
	var st handleState
	require.NoError(t, json.Unmarshal(h2.State, &st))
	list, err := env.api.ContainerList(ctx, container.ListOptions{All: true})
	require.NoError(t, err)
	n := 0
	for _, c := range list {
		if c.Labels[LabelTaskID] == id {
			n++
			assert.Equal(t, st.ContainerID, c.ID)
		}
	}
	assert.Equal(t, 1, n)
	assert.True(t, strings.HasPrefix(st.Name, "switchyard-stale."))
}
