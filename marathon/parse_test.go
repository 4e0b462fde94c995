package marathon_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
	"github.com/switchyard/switchyard/marathon/marathontest"
)

// eventSeeds returns testdata/events/*.json keyed by event type (the file
// name).
func eventSeeds(tb testing.TB) map[string][]byte {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "events", "*.json"))
	require.NoError(tb, err)
	require.NotEmpty(tb, files, "no event seeds in testdata/events")
	seeds := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(tb, err)
		seeds[strings.TrimSuffix(filepath.Base(f), ".json")] = bytes.TrimSpace(b)
	}
	return seeds
}

func TestParseEventSeeds(t *testing.T) {
	t.Parallel()
	for name, data := range eventSeeds(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for _, sseName := range []string{name, ""} {
				ev, err := marathon.ParseEvent(sseName, data)
				require.NoError(t, err, "event name %q", sseName)
				var head marathon.EventHeader
				require.NoError(t, json.Unmarshal(data, &head))
				assert.Equal(t, marathon.Event{Type: name, Timestamp: head.Timestamp, Data: data}, ev, "event name %q", sseName)
			}
		})
	}
}

func TestParseEvent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		sseName string
		data    string
		want    marathon.Event
		wantErr error
	}{
		{
			name: "name and eventType agree", sseName: "app_terminated_event",
			data: `{"appId":"/a","eventType":"app_terminated_event","timestamp":"2026-01-01T00:00:00.000Z"}`,
			want: marathon.Event{Type: "app_terminated_event", Timestamp: "2026-01-01T00:00:00.000Z",
				Data: json.RawMessage(`{"appId":"/a","eventType":"app_terminated_event","timestamp":"2026-01-01T00:00:00.000Z"}`)},
		},
		{
			name: "no event line, type from JSON", data: ` {"eventType":"deployment_success"} `,
			want: marathon.Event{Type: "deployment_success", Data: json.RawMessage(`{"eventType":"deployment_success"}`)},
		},
		{
			name: "unknown type passes", sseName: "pod_created_event", data: `{"eventType":"pod_created_event","timestamp":"t"}`,
			want: marathon.Event{Type: "pod_created_event", Timestamp: "t", Data: json.RawMessage(`{"eventType":"pod_created_event","timestamp":"t"}`)},
		},
		{
			name: "numeric timestamp ignored", data: `{"eventType":"x","timestamp":12}`,
			want: marathon.Event{Type: "x", Data: json.RawMessage(`{"eventType":"x","timestamp":12}`)},
		},
		{name: "empty data", sseName: "status_update_event", data: ``, wantErr: marathon.ErrInvalidJSON},
		{name: "truncated JSON", sseName: "status_update_event", data: `{"eventType":"status_update_event"`, wantErr: marathon.ErrInvalidJSON},
		{name: "trailing garbage", data: `{"eventType":"x"} {}`, wantErr: marathon.ErrInvalidJSON},
		{name: "array", data: `[{"eventType":"x"}]`, wantErr: marathon.ErrInvalidJSON},
		{name: "null", data: `null`, wantErr: marathon.ErrInvalidJSON},
		{name: "string", data: `"status_update_event"`, wantErr: marathon.ErrInvalidJSON},
		{name: "missing eventType", sseName: "status_update_event", data: `{"taskId":"a"}`, wantErr: marathon.ErrMissingEventType},
		{name: "empty eventType", data: `{"eventType":""}`, wantErr: marathon.ErrMissingEventType},
		{name: "eventType not a string", data: `{"eventType":3}`, wantErr: marathon.ErrMissingEventType},
		{name: "eventType with spaces", data: `{"eventType":"a b"}`, wantErr: marathon.ErrMissingEventType},
		{name: "eventType too long", data: `{"eventType":"` + strings.Repeat("a", 200) + `"}`, wantErr: marathon.ErrMissingEventType},
		{name: "name disagrees", sseName: "api_post_event", data: `{"eventType":"status_update_event"}`, wantErr: marathon.ErrEventTypeMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := marathon.ParseEvent(tt.sseName, []byte(tt.data))
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr, "data %q", tt.data)
				assert.Zero(t, got, "data %q", tt.data)
				return
			}
			require.NoError(t, err, "data %q", tt.data)
			assert.Equal(t, tt.want, got, "data %q", tt.data)
		})
	}
}

func TestParseEventCopiesData(t *testing.T) {
	t.Parallel()
	buf := []byte(`{"eventType":"x"}`)
	ev, err := marathon.ParseEvent("x", buf)
	require.NoError(t, err)
	copy(buf, "XXXXXXXXXXXXXXXXX")
	assert.JSONEq(t, `{"eventType":"x"}`, string(ev.Data), "Data must not alias the input buffer")
}

func FuzzParseEvent(f *testing.F) {
	for name, data := range eventSeeds(f) {
		f.Add(name, data)
		f.Add("", data)
		f.Add("other_event", data)
	}
	f.Add("x", []byte(`{"eventType":"x","timestamp":{}}`))
	f.Add("", []byte("{\"eventType\":\"x\"}\r\ndata: {}"))
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		ev, err := marathon.ParseEvent(name, data)
		if err != nil {
			if ev.Type != "" || ev.Data != nil {
				t.Fatalf("error %v with non-zero event %+v", err, ev)
			}
			return
		}
		if ev.Type == "" || strings.ContainsAny(ev.Type, " \r\n:") {
			t.Fatalf("bad type %q", ev.Type)
		}
		if name != "" && ev.Type != name {
			t.Fatalf("type %q, name %q", ev.Type, name)
		}
		if !json.Valid(ev.Data) {
			t.Fatalf("invalid Data %q", ev.Data)
		}
	})
}

func TestDecodeAppsFixture(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join("testdata", "apps", "marathon-1.5.json"))
	require.NoError(t, err)
	apps, err := marathon.DecodeApps(data)
	require.NoError(t, err)
	require.Len(t, apps, 3)

	bridge := apps[0]
	assert.Equal(t, "/nginx-bridge", bridge.ID)
	require.NotNil(t, bridge.Container)
	require.Len(t, bridge.Container.PortMappings, 1)
	require.NotNil(t, bridge.Container.PortMappings[0].HostPort, "hostPort 0 must stay distinguishable from absent")
	assert.Equal(t, 0, *bridge.Container.PortMappings[0].HostPort)
	assert.Equal(t, []marathon.Network{{Mode: "container/bridge"}}, bridge.Networks)
	require.Len(t, bridge.Tasks, 2)
	assert.Equal(t, marathon.Task{
		ID: "nginx-bridge.9a3c8c5c-919d-11e7-8f83-0242ac110002", AppID: "/nginx-bridge", Host: "10.0.1.12",
		SlaveID: "c37fb7a0-1ea4-4d0c-b8f5-a2ce5e4d8c2a-S0", State: marathon.TaskRunning,
		StagedAt: "2017-09-04T18:50:09.297Z", StartedAt: "2017-09-04T18:50:10.467Z", Version: "2017-09-04T18:50:08.155Z",
		Ports: []int{31877}, ServicePorts: []int{10000},
		IPAddresses: []marathon.TaskIPAddress{{IPAddress: "172.17.0.2", Protocol: "IPv4"}},
		HealthCheckResults: []marathon.HealthCheckResult{{
			Alive: true, FirstSuccess: ptr("2017-09-04T18:50:25.553Z"), LastSuccess: ptr("2017-09-04T18:51:01.623Z"),
			InstanceID: "nginx-bridge.marathon-9a3c8c5c-919d-11e7-8f83-0242ac110002",
		}},
	}, bridge.Tasks[0])

	web := apps[1]
	assert.Equal(t, []marathon.PortDefinition{{Port: 10001, Protocol: "tcp", Name: "default", Labels: map[string]string{}}}, web.PortDefinitions)
	assert.Equal(t, []marathon.DeploymentRef{{ID: "97c136bf-5a28-4821-9d94-480d9fbb01c8"}}, web.Deployments)
	assert.Equal(t, map[string]string{"HAPROXY_GROUP": "internal"}, web.Labels)
	assert.Nil(t, web.Container)

	ipt := apps[2]
	require.NotNil(t, ipt.IPAddress)
	require.NotNil(t, ipt.IPAddress.Discovery)
	assert.Equal(t, []marathon.DiscoveryPort{{Number: 80, Name: "http", Protocol: "tcp"}}, ipt.IPAddress.Discovery.Ports)
	assert.Empty(t, ipt.Tasks)
}

func ptr[T any](v T) *T { return &v }

func TestDecodeApps(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		body    string
		want    []marathon.App
		wantErr bool
	}{
		{name: "empty list", body: `{"apps":[]}`, want: []marathon.App{}},
		{name: "unknown fields ignored", body: `{"apps":[{"id":"/a","residency":null,"x":{"y":[1]}}],"extra":1}`, want: []marathon.App{{ID: "/a"}}},
		{name: "nulls are absent", body: `{"apps":[{"id":"/a","labels":null,"tasks":null,"container":null}]}`, want: []marathon.App{{ID: "/a"}}},
		{name: "not JSON", body: `<html>502 Bad Gateway</html>`, wantErr: true},
		{name: "empty body", body: ``, wantErr: true},
		{name: "truncated", body: `{"apps":[{"id":"/a"},{"id":"/b"`, wantErr: true},
		{name: "trailing data", body: `{"apps":[]}{"apps":[]}`, wantErr: true},
		{name: "no apps key", body: `{"app":{"id":"/a"}}`, wantErr: true},
		{name: "apps null", body: `{"apps":null}`, wantErr: true},
		{name: "top-level array", body: `[{"id":"/a"}]`, wantErr: true},
		{name: "null entry", body: `{"apps":[{"id":"/a"},null]}`, wantErr: true},
		{name: "missing id", body: `{"apps":[{"id":"/a"},{"cmd":"x"}]}`, wantErr: true},
		{name: "wrong type in one app", body: `{"apps":[{"id":"/a"},{"id":"/b","instances":"3"}]}`, wantErr: true},
		{name: "float where int expected", body: `{"apps":[{"id":"/a","tasks":[{"id":"t","ports":[1.5]}]}]}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := marathon.DecodeApps([]byte(tt.body))
			if tt.wantErr {
				require.ErrorIs(t, err, marathon.ErrInvalidJSON, "body %q", tt.body)
				assert.Nil(t, got, "no partial list for body %q", tt.body)
				return
			}
			require.NoError(t, err, "body %q", tt.body)
			assert.Equal(t, tt.want, got, "body %q", tt.body)
		})
	}
}

func FuzzDecodeApps(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "apps", "*.json"))
	require.NoError(f, err)
	for _, file := range files {
		b, err := os.ReadFile(file)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add([]byte(`{"apps":[{"id":"/a","tasks":[{"id":"t","ports":[1]}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		apps, err := marathon.DecodeApps(data)
		if err != nil {
			if apps != nil {
				t.Fatalf("error %v with a partial list", err)
			}
			return
		}
		for i, a := range apps {
			if a.ID == "" {
				t.Fatalf("app %d without id accepted", i)
			}
		}
		// Encoding is stable after one round trip: what we decoded can be
		// served again and decodes to the same thing.
		enc1, err := json.Marshal(marathon.AppsResponse{Apps: apps})
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		again, err := marathon.DecodeApps(enc1)
		if err != nil {
			t.Fatalf("decode re-encoded: %v", err)
		}
		enc2, err := json.Marshal(marathon.AppsResponse{Apps: again})
		if err != nil {
			t.Fatalf("re-encode twice: %v", err)
		}
		if !bytes.Equal(enc1, enc2) {
			t.Fatalf("unstable round trip:\n%s\n%s", enc1, enc2)
		}
	})
}

// BenchmarkDecodeApps decodes a /v2/apps body of 1,000 apps with 3 tasks
// each (host networking, one service port, labels, an HTTP health check).
func BenchmarkDecodeApps(b *testing.B) {
	apps := make([]marathon.App, 1000)
	for i := range apps {
		apps[i] = marathontest.App(
			"/bench/app-"+strconv.Itoa(i),
			marathontest.WithLabels(map[string]string{"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "app-" + strconv.Itoa(i) + ".example.com"}),
			marathontest.WithServicePorts(10000+i),
			marathontest.WithHTTPHealthCheck("/health"),
			marathontest.WithHealthyTask("10.0.1.1", 31000+i),
			marathontest.WithHealthyTask("10.0.1.2", 31000+i),
			marathontest.WithHealthyTask("10.0.1.3", 31000+i),
		)
	}
	body, err := json.Marshal(marathon.AppsResponse{Apps: apps})
	require.NoError(b, err)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		got, err := marathon.DecodeApps(body)
		if err != nil || len(got) != len(apps) {
			b.Fatalf("decode: %d apps, %v", len(got), err)
		}
	}
}
