package httpapi

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
)

func running(id, app, host string, ports ...int) marathon.Task {
	return marathon.Task{ID: id, AppID: app, Host: host, State: marathon.TaskRunning, Ports: ports}
}

func TestWriteTasksText(t *testing.T) {
	hostApp := marathon.App{ID: "/prod/web", Ports: []int{10000, 10001}}
	noPorts := marathon.App{ID: "/worker", Ports: []int{}}
	idle := marathon.App{ID: "/idle", Ports: []int{10005}}
	zero := 0
	userNet := marathon.App{
		ID: "/db", Ports: []int{10010, 10011}, Networks: []marathon.Network{{Mode: ModeContainer, Name: "n"}},
		Container: &marathon.Container{PortMappings: []marathon.PortMapping{
			{ContainerPort: 5432, ServicePort: 10010},
			{ContainerPort: 8080, HostPort: &zero, ServicePort: 10011},
		}},
	}
	withIP := func(tk marathon.Task, ip string) marathon.Task {
		tk.IPAddresses = []marathon.TaskIPAddress{{IPAddress: ip, Protocol: "IPv4"}}
		return tk
	}
	staging := running("prod_web.3", "/prod/web", "c", 9, 9)
	staging.State = marathon.TaskStaging
	tests := []struct {
		name  string
		apps  []marathon.App
		tasks []marathon.Task
		want  string
	}{
		{"one line per service port, running tasks only, sorted",
			[]marathon.App{hostApp},
			[]marathon.Task{running("prod_web.2", "/prod/web", "b", 31002, 31003), running("prod_web.1", "/prod/web", "a", 31000, 31001), staging},
			"prod_web\t10000\ta:31000\tb:31002\nprod_web\t10001\ta:31001\tb:31003\n"},
		{"missing host port prints 0",
			[]marathon.App{hostApp},
			[]marathon.Task{running("prod_web.1", "/prod/web", "a", 31000)},
			"prod_web\t10000\ta:31000\nprod_web\t10001\ta:0\n"},
		{"app without ports lists hosts",
			[]marathon.App{noPorts},
			[]marathon.Task{running("worker.2", "/worker", "h2"), running("worker.1", "/worker", "h1")},
			"worker\t \th1\th2\n"},
		{"app without tasks still listed, apps sorted",
			[]marathon.App{idle, noPorts},
			nil,
			"idle\t10005\nworker\t \n"},
		{"container network: IP and container port, host port index skips",
			[]marathon.App{userNet},
			[]marathon.Task{withIP(running("db.1", "/db", "h", 31500), "10.0.0.5"), running("db.2", "/db", "g", 31600)},
			"db\t10010\t10.0.0.5:5432\ndb\t10011\tg:31600\th:31500\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			writeTasksText(rec, tc.apps, tc.tasks)
			assert.Equal(t, tc.want, rec.Body.String())
			assert.Equal(t, "text/plain; charset=utf-8", rec.Header().Get("Content-Type"))
		})
	}
}

func TestTasksTextEndpoints(t *testing.T) {
	f := &fakeBackend{
		apps:  []marathon.App{{ID: "/worker", Ports: []int{}}},
		tasks: []marathon.Task{running("worker.1", "/worker", "h1")},
	}
	srv := newTestServer(t, f)
	tests := []struct {
		name, path, accept string
		want               string
	}{
		{"all tasks as text", "/v2/tasks", "text/plain", "worker\t \th1\n"},
		{"app tasks as text", "/v2/apps/worker/tasks", "text/plain", "worker\t \th1\n"},
		{"status filter ignored by text", "/v2/tasks?status=staging", "text/plain", "worker\t \th1\n"},
		{"json wins for */*", "/v2/tasks", "*/*", `{"tasks":[{"id":"worker.1","appId":"/worker","host":"h1","state":"TASK_RUNNING","ports":null,"servicePorts":null}]}` + "\n"},
		{"json wins a tie", "/v2/tasks", "text/plain, application/json", `{"tasks":[{"id":"worker.1","appId":"/worker","host":"h1","state":"TASK_RUNNING","ports":null,"servicePorts":null}]}` + "\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := call(t, srv, "GET", tc.path, "", "Accept", tc.accept)
			require.Equal(t, http.StatusOK, code)
			assert.Equal(t, tc.want, body)
		})
	}
}
