package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/haproxy/haproxytest"
	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/marathon/marathontest"
)

// Issue 7, "Nothing may freeze an LB": whatever one app does, the other
// apps' changes keep reaching traffic.

const (
	otherBody = "OTHER APP"
	otherPort = 10240
)

// otherApp is the app that keeps changing while another one misbehaves.
type otherApp struct {
	t     *testing.T
	fake  *marathontest.Server
	tasks []*backend
	round int
}

func newOtherApp(t *testing.T, fake *marathontest.Server) *otherApp {
	o := &otherApp{t: t, fake: fake, tasks: []*backend{newBackend(t, otherBody)}}
	fake.UpsertApp(o.app())
	return o
}

func (o *otherApp) vhost() string { return fmt.Sprintf("other-%d.example.com", o.round) }

func (o *otherApp) app() marathon.App {
	opts := []marathontest.AppOption{
		marathontest.WithLabels(map[string]string{"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": o.vhost()}),
		marathontest.WithServicePorts(otherPort),
	}
	for _, b := range o.tasks {
		opts = append(opts, marathontest.WithTask("127.0.0.1", b.port))
	}
	return marathontest.App("/other", opts...)
}

// keepsUpdating changes the other app twice and waits for each change to
// reach traffic: a task replaced (servers only) and a new vhost (a
// reload).
func (o *otherApp) keepsUpdating(what string) {
	t := o.t
	t.Helper()
	nb := newBackend(t, otherBody)
	old := o.tasks[0]
	o.tasks = append(o.tasks[1:], nb)
	o.fake.UpsertApp(o.app())
	// As Marathon: the new task running, the old one killed.
	for _, ev := range []struct {
		b      *backend
		status string
	}{{nb, marathon.TaskRunning}, {old, marathon.TaskKilled}} {
		task := marathontest.Task("/other", "127.0.0.1", ev.b.port)
		o.fake.Publish(marathon.EventStatusUpdate, marathon.StatusUpdateEvent{
			AppID: "/other", TaskID: task.ID, TaskStatus: ev.status, Host: task.Host, Ports: task.Ports,
		})
	}
	eventually(t, 20*time.Second, what+": the other app's new task gets traffic", func() bool {
		return reaches(otherPort, nb)
	})
	eventually(t, 20*time.Second, what+": the other app's old task gets none", func() bool {
		for range 4 {
			if r, err := get(otherPort, "/", ""); err != nil || r.port == strconv.Itoa(old.port) {
				return false
			}
		}
		return true
	})
	old.close()

	o.round++
	a := o.app()
	o.fake.UpsertApp(a)
	o.fake.Publish(marathon.EventAPIPost, marathon.APIPostEvent{URI: "/v2/apps/other", AppDefinition: a})
	eventually(t, 20*time.Second, what+": the other app's new vhost gets traffic", func() bool {
		r, err := get(80, "/", o.vhost())
		return err == nil && r.status == http.StatusOK && r.body == otherBody
	})
}

// skippedList reads /_switchyard/skipped through the stats port.
func skippedList(t *testing.T) (reasons map[string]string, configError string) {
	t.Helper()
	r, err := get(9090, "/_switchyard/skipped", "")
	require.NoError(t, err)
	var body struct {
		Skipped []struct {
			AppID  string `json:"appId"`
			Reason string `json:"reason"`
		} `json:"skipped"`
		ConfigError string `json:"configError"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.body), &body), r.body)
	reasons = map[string]string{}
	for _, s := range body.Skipped {
		reasons[s.AppID] = s.Reason
	}
	return reasons, body.ConfigError
}

// holdPort binds port on every IPv4 address, as another process would.
func holdPort(t *testing.T, port int) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp4", "0.0.0.0:"+strconv.Itoa(port))
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

func simpleApp(id string, servicePort int, tasks ...marathontest.AppOption) marathon.App {
	opts := append([]marathontest.AppOption{marathontest.WithLabel("HAPROXY_GROUP", "external"),
		marathontest.WithServicePorts(servicePort)}, tasks...)
	return marathontest.App(id, opts...)
}

func TestE2ENothingFreezes(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: real HAProxy in a network namespace; skipped with -short")
	}
	if haproxytest.InNetns(t) {
		return
	}
	haproxyBin := haproxytest.Binary(t)
	fake := marathontest.New(t)
	other := newOtherApp(t, fake)

	// A service port another process holds from the start.
	busyAtStart := holdPort(t, 10301)
	busy1 := newBackend(t, "BUSY AT START")
	fake.UpsertApp(simpleApp("/busy-at-start", 10301, marathontest.WithTask("127.0.0.1", busy1.port)))

	lbp := startLB(t, haproxyBin, "sse", "--marathon", fake.URL, "--group", "external",
		"--haproxy-config", filepath.Join(t.TempDir(), "haproxy.cfg"))
	waitReady(t)
	eventually(t, 10*time.Second, "the other app routed", func() bool {
		r, err := get(otherPort, "/", "")
		return err == nil && r.body == otherBody
	})

	t.Run("busy service port", func(t *testing.T) {
		// At start: the port is blamed, the rest started.
		reasons, _ := skippedList(t)
		assert.Contains(t, reasons["/busy-at-start"], "cannot bind socket", "HAProxy's message on /_switchyard/skipped")
		other.keepsUpdating("busy port at start")

		// Later: a new app on a busy port.
		holdPort(t, 10302)
		busy2 := newBackend(t, "BUSY LATER")
		a := simpleApp("/busy-later", 10302, marathontest.WithTask("127.0.0.1", busy2.port))
		fake.UpsertApp(a)
		fake.Publish(marathon.EventAPIPost, marathon.APIPostEvent{URI: "/v2/apps/busy-later", AppDefinition: a})
		eventually(t, 20*time.Second, "the busy port is blamed", func() bool {
			reasons, _ := skippedList(t)
			return reasons["/busy-later"] != ""
		})
		reasons, _ = skippedList(t)
		assert.Contains(t, reasons["/busy-later"], "Address already in use")
		other.keepsUpdating("busy port added")
		assert.GreaterOrEqual(t, metricValue(t, "switchyard_lb_invalid_apps"), 2.0)

		// The first port frees: its app is routed once its retry is due,
		// with no change needed.
		require.NoError(t, busyAtStart.Close())
		eventually(t, 60*time.Second, "the freed port routed", func() bool {
			r, err := get(10301, "/", "")
			return err == nil && r.body == "BUSY AT START"
		})
		other.keepsUpdating("busy port freed")
	})

	// The app that already serves a port keeps it, even against a newcomer
	// whose id sorts first (marathon-lb would hand it over).
	t.Run("duplicate service port", func(t *testing.T) {
		holder := newBackend(t, "HOLDER")
		a := simpleApp("/dup-a-holder", 10310, marathontest.WithTask("127.0.0.1", holder.port))
		fake.UpsertApp(a)
		fake.Publish(marathon.EventAPIPost, marathon.APIPostEvent{URI: "/v2/apps/dup-a-holder", AppDefinition: a})
		eventually(t, 20*time.Second, "the holder routed", func() bool {
			r, err := get(10310, "/", "")
			return err == nil && r.body == "HOLDER"
		})
		newcomer := newBackend(t, "NEWCOMER")
		b := simpleApp("/aaa-dup-newcomer", 10310, marathontest.WithTask("127.0.0.1", newcomer.port))
		fake.UpsertApp(b)
		fake.Publish(marathon.EventAPIPost, marathon.APIPostEvent{URI: "/v2/apps/aaa-dup-newcomer", AppDefinition: b})
		other.keepsUpdating("duplicate service port")
		reasons, _ := skippedList(t)
		assert.Contains(t, reasons, "/aaa-dup-newcomer", "the newcomer on the port is listed: %v", reasons)
		for range 4 {
			r, err := get(10310, "/", "")
			require.NoError(t, err)
			assert.Equal(t, "HOLDER", r.body, "the holder keeps its port")
		}
	})

	// A host name that does not resolve: the task is routed by its
	// ipAddresses, and the other app keeps updating.
	t.Run("unresolvable agent host", func(t *testing.T) {
		task := marathontest.Task("/unresolvable", "agent-1.unresolvable.invalid", newBackend(t, "UNRESOLVABLE").port)
		task.IPAddresses = []marathon.TaskIPAddress{{IPAddress: "127.0.0.1", Protocol: "IPv4"}}
		a := simpleApp("/unresolvable", 10320, marathontest.WithTasks(task))
		fake.UpsertApp(a)
		fake.Publish(marathon.EventAPIPost, marathon.APIPostEvent{URI: "/v2/apps/unresolvable", AppDefinition: a})
		other.keepsUpdating("unresolvable agent host")
		eventually(t, 20*time.Second, "the task on an unresolvable host routed by its ipAddresses", func() bool {
			r, err := get(10320, "/", "")
			return err == nil && r.body == "UNRESOLVABLE"
		})
		other.keepsUpdating("unresolvable agent host, again")
	})

	require.True(t, lbp.alive(), "lb still running")
	r, err := get(9090, "/_haproxy_health_check", "")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, r.status)
}

// TestE2EFirstConfigFails: the first configuration fails and no app can be
// blamed (its only app is rejected). lb keeps running with no apps
// (stats and health endpoints), reports why, and the next change applies.
func TestE2EFirstConfigFails(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: real HAProxy in a network namespace; skipped with -short")
	}
	if haproxytest.InNetns(t) {
		return
	}
	haproxyBin := haproxytest.Binary(t)
	fake := marathontest.New(t)
	bad := simpleApp("/bad", 10330, marathontest.WithLabel("HAPROXY_0_BIND_OPTIONS", "foo"),
		marathontest.WithTask("127.0.0.1", newBackend(t, "BAD").port))
	fake.UpsertApp(bad)

	lbp := startLB(t, haproxyBin, "sse", "--marathon", fake.URL, "--group", "external",
		"--haproxy-config", filepath.Join(t.TempDir(), "haproxy.cfg"))
	waitReady(t)
	eventually(t, 10*time.Second, "the failure reported", func() bool {
		return metricValue(t, "switchyard_lb_config_failing") == 1
	})
	_, cerr := skippedList(t)
	assert.Contains(t, cerr, "unknown keyword 'foo'", "HAProxy's message on /_switchyard/skipped")
	r, err := get(9090, "/_haproxy_health_check", "")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, r.status, "health endpoint")
	r, err = get(9090, "/haproxy?stats", "")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, r.status, "stats endpoint")
	assert.False(t, listening(10330))

	// The next change: another app; the bad one is blamed and left out.
	other := newOtherApp(t, fake)
	fake.Publish(marathon.EventAPIPost, marathon.APIPostEvent{URI: "/v2/apps/other", AppDefinition: other.app()})
	eventually(t, 20*time.Second, "the other app routed", func() bool {
		r, err := get(otherPort, "/", "")
		return err == nil && r.body == otherBody
	})
	other.keepsUpdating("after a failed first configuration")
	eventually(t, 10*time.Second, "failure cleared", func() bool {
		return metricValue(t, "switchyard_lb_config_failing") == 0
	})
	reasons, cerr := skippedList(t)
	assert.Contains(t, reasons["/bad"], "unknown keyword 'foo'")
	assert.Empty(t, cerr)
	assert.False(t, listening(10330))
	require.True(t, lbp.alive(), "lb still running")
}
