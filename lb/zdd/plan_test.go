package zdd

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
)

var now = time.Date(2026, 11, 24, 21, 30, 0, 0, time.UTC)

const webDef = `{
  "id": "/web",
  "cmd": "serve",
  "instances": 4,
  "cpus": 0.1,
  "portDefinitions": [{"port": 10000, "protocol": "tcp"}],
  "labels": {"HAPROXY_GROUP": "external", "HAPROXY_DEPLOYMENT_GROUP": "web", "HAPROXY_DEPLOYMENT_ALT_PORT": "10001"},
  "unknownField": {"kept": true}
}`

// deployed returns a running app of the web group.
func deployed(id, colour string, port, instances int, started string) marathon.App {
	return marathon.App{
		ID: id, Instances: instances,
		PortDefinitions: []marathon.PortDefinition{{Port: port}},
		Labels: map[string]string{LabelGroup: "web", LabelAltPort: "10001", LabelColour: colour,
			LabelStartedAt: started, LabelPort0: "10000", LabelTargetInstances: fmt.Sprint(instances)},
	}
}

func TestPrepare(t *testing.T) {
	other := marathon.App{ID: "/other", Instances: 9, Labels: map[string]string{LabelGroup: "not-web"}}
	tests := []struct {
		name        string
		def         string
		apps        []marathon.App
		initial     int
		newInst     int
		wantID      string
		wantColour  string
		wantPort    int
		wantTarget  int
		wantInitial int
		wantNewInst int
		wantOld     string
		wantErr     string
	}{
		{name: "first deployment is blue on the main port with all instances",
			def: webDef, apps: []marathon.App{other}, initial: 1,
			wantID: "/web-blue", wantColour: Blue, wantPort: 10000, wantTarget: 4, wantInitial: 4},
		{name: "blue on main port -> green on alt port",
			def: webDef, apps: []marathon.App{other, deployed("/web-blue", Blue, 10000, 3, "2026-11-01T00:00:00Z")}, initial: 1,
			wantID: "/web-green", wantColour: Green, wantPort: 10001, wantTarget: 3, wantInitial: 1, wantOld: "/web-blue"},
		{name: "green on alt port -> blue back on main port",
			def: webDef, apps: []marathon.App{deployed("/web-green", Green, 10001, 5, "2026-11-01T00:00:00Z")}, initial: 2,
			wantID: "/web-blue", wantColour: Blue, wantPort: 10000, wantTarget: 5, wantInitial: 2, wantOld: "/web-green"},
		{name: "app without colour label counts as green's predecessor (becomes blue)",
			def: webDef, apps: []marathon.App{{ID: "/legacy", Instances: 2, PortDefinitions: []marathon.PortDefinition{{Port: 10000}}, Labels: map[string]string{LabelGroup: "/web"}}}, initial: 1,
			wantID: "/web-blue", wantColour: Blue, wantPort: 10001, wantTarget: 2, wantInitial: 1, wantOld: "/legacy"},
		{name: "initial instances capped at the target",
			def: webDef, apps: []marathon.App{deployed("/web-blue", Blue, 10000, 2, "")}, initial: 7,
			wantID: "/web-green", wantColour: Green, wantPort: 10001, wantTarget: 2, wantInitial: 2, wantOld: "/web-blue"},
		{name: "old app scaled to zero: target from the definition",
			def: webDef, apps: []marathon.App{deployed("/web-blue", Blue, 10000, 0, "")}, initial: 1,
			wantID: "/web-green", wantColour: Green, wantPort: 10001, wantTarget: 4, wantInitial: 1, wantOld: "/web-blue"},
		{name: "definition exported from a colour keeps its base id",
			def:  `{"id":"/web-green","ports":[10000],"labels":{"HAPROXY_DEPLOYMENT_GROUP":"web","HAPROXY_DEPLOYMENT_ALT_PORT":"10001"}}`,
			apps: []marathon.App{deployed("/web-green", Green, 10001, 1, "")}, initial: 1,
			wantID: "/web-blue", wantColour: Blue, wantPort: 10000, wantTarget: 1, wantInitial: 1, wantOld: "/web-green"},
		{name: "hybrid: new instances cap the initial ones",
			def: webDef, apps: []marathon.App{deployed("/web-blue", Blue, 10000, 10, "")}, initial: 5, newInst: 2,
			wantID: "/web-green", wantColour: Green, wantPort: 10001, wantTarget: 10, wantInitial: 2, wantNewInst: 2, wantOld: "/web-blue"},
		{name: "hybrid: new instances at the target is a full switch",
			def: webDef, apps: []marathon.App{deployed("/web-blue", Blue, 10000, 3, "")}, initial: 1, newInst: 3,
			wantID: "/web-green", wantColour: Green, wantPort: 10001, wantTarget: 3, wantInitial: 1, wantOld: "/web-blue"},
		{name: "two apps in the group: interrupted deployment",
			def: webDef, apps: []marathon.App{deployed("/web-blue", Blue, 10000, 2, "2026-11-01T00:00:00Z"), deployed("/web-green", Green, 10001, 1, "2026-11-02T00:00:00Z")},
			wantErr: "--complete-cur"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			def, err := ParseDefinition([]byte(tc.def))
			require.NoError(t, err)
			p, err := Prepare(def, tc.apps, PrepareOptions{InitialInstances: tc.initial, NewInstances: tc.newInst}, now)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.wantColour, p.Colour)
			assert.Equal(t, tc.wantPort, p.ServicePort)
			assert.Equal(t, tc.wantTarget, p.Target)
			assert.Equal(t, tc.wantInitial, p.Initial)
			assert.Equal(t, tc.wantNewInst, p.NewInstances)
			if tc.wantOld == "" {
				assert.Nil(t, p.Old)
			} else {
				require.NotNil(t, p.Old)
				assert.Equal(t, tc.wantOld, p.Old.ID)
			}
			// The POSTed body carries the edits and keeps unknown fields.
			b, err := json.Marshal(p.New)
			require.NoError(t, err)
			var got marathon.App
			require.NoError(t, json.Unmarshal(b, &got))
			assert.Equal(t, tc.wantID, got.ID)
			assert.Equal(t, tc.wantInitial, got.Instances)
			port := servicePortOf(got)
			assert.Equal(t, tc.wantPort, port)
			assert.Equal(t, tc.wantColour, got.Labels[LabelColour])
			assert.Equal(t, fmt.Sprint(tc.wantTarget), got.Labels[LabelTargetInstances])
			assert.Equal(t, fmt.Sprint(tc.wantNewInst), got.Labels[LabelNewInstances])
			assert.Equal(t, now.Format(time.RFC3339Nano), got.Labels[LabelStartedAt])
			assert.Equal(t, "10000", got.Labels[LabelPort0], "both colours are served on the main port")
			assert.Equal(t, baseID(tc.wantID), got.Labels[LabelAppID])
			if tc.def == webDef {
				assert.Contains(t, string(b), `"unknownField":{"kept":true}`)
				assert.Contains(t, string(b), `"cpus":0.1`)
			}
			// The input definition is untouched.
			assert.Equal(t, "", def.Labels()[LabelColour])
		})
	}
}

func TestNextInstances(t *testing.T) {
	tests := []struct{ cur, old, target, want int }{
		{cur: 1, old: 10, target: 10, want: 2},
		{cur: 2, old: 9, target: 10, want: 3},
		{cur: 3, old: 8, target: 10, want: 5},
		{cur: 5, old: 6, target: 10, want: 10}, // 8 >= 6: jump to the target
		{cur: 1, old: 1, target: 2, want: 2},
		{cur: 0, old: 3, target: 3, want: 1},
		{cur: 4, old: 0, target: 4, want: 4},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%d_%d_%d", tc.cur, tc.old, tc.target), func(t *testing.T) {
			assert.Equal(t, tc.want, NextInstances(tc.cur, tc.old, tc.target))
		})
	}
}

func TestSchedule(t *testing.T) {
	tests := []struct {
		initial, old, target, newTarget int
		want                            [][2]int
	}{
		{1, 3, 3, 0, [][2]int{{3, 2}, {3, 0}}},
		{1, 10, 10, 0, [][2]int{{2, 9}, {3, 8}, {5, 7}, {10, 5}, {10, 0}}},
		{1, 1, 1, 0, [][2]int{{1, 0}}},
		{2, 4, 4, 0, [][2]int{{4, 2}, {4, 0}}},
		{1, 10, 10, 2, [][2]int{{2, 9}, {2, 8}}}, // hybrid 8:2
		{2, 10, 10, 2, [][2]int{{2, 8}}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%d_%d_%d_%d", tc.initial, tc.old, tc.target, tc.newTarget), func(t *testing.T) {
			got := Schedule(tc.initial, tc.old, tc.target, tc.newTarget)
			assert.Equal(t, tc.want, got)
			prevNew := tc.initial
			for _, s := range got {
				// Never below target capacity: the new instances counted
				// before the step plus the old ones left.
				assert.GreaterOrEqual(t, prevNew+s[1], tc.target, "capacity dropped at %v", s)
				prevNew = s[0]
			}
		})
	}
}

// app builds an app with n tasks named prefix.i, healthy or not.
func app(id string, instances int, tasks ...marathon.Task) marathon.App {
	return marathon.App{ID: id, Instances: instances, Tasks: tasks}
}

func task(id, state string) marathon.Task {
	return marathon.Task{ID: id, State: state, Host: "h", Ports: []int{1}}
}

func running(ids ...string) []marathon.Task {
	var out []marathon.Task
	for _, id := range ids {
		out = append(out, task(id, marathon.TaskRunning))
	}
	return out
}

func TestNext(t *testing.T) {
	checked := func(a marathon.App) marathon.App {
		a.HealthChecks = []marathon.HealthCheck{{Protocol: "HTTP"}}
		return a
	}
	aliveTask := func(id string, alive bool) marathon.Task {
		tk := task(id, marathon.TaskRunning)
		tk.HealthCheckResults = []marathon.HealthCheckResult{{Alive: alive}}
		return tk
	}
	tests := []struct {
		name string
		obs  Observation
		want Step
	}{
		{name: "new app deploying",
			obs:  Observation{New: marathon.App{ID: "/n", Instances: 1, Deployments: []marathon.DeploymentRef{{ID: "d"}}}, Old: app("/o", 3, running("o1", "o2", "o3")...), Target: 3},
			want: Step{Kind: StepWait, Reason: "deployment of /n in progress (0/1 tasks healthy)"}},
		{name: "old app deploying",
			obs:  Observation{New: app("/n", 1, running("n1")...), Old: marathon.App{ID: "/o", Instances: 2, Deployments: []marathon.DeploymentRef{{ID: "d"}}}, Target: 3},
			want: Step{Kind: StepWait, Reason: "deployment of /o in progress"}},
		{name: "new task still staging",
			obs:  Observation{New: app("/n", 1, task("n1", marathon.TaskStaging)), Old: app("/o", 3, running("o1", "o2", "o3")...), Target: 3},
			want: Step{Kind: StepWait, Reason: "0/1 tasks of /n healthy"}},
		{name: "new task failing its health check",
			obs:  Observation{New: checked(app("/n", 1, aliveTask("n1", false))), Old: app("/o", 3, running("o1", "o2", "o3")...), Target: 3},
			want: Step{Kind: StepWait, Reason: "0/1 tasks of /n healthy"}},
		{name: "new task without health result yet",
			obs:  Observation{New: checked(app("/n", 1, task("n1", marathon.TaskRunning))), Old: app("/o", 3, running("o1", "o2", "o3")...), Target: 3},
			want: Step{Kind: StepWait, Reason: "0/1 tasks of /n healthy"}},
		{name: "first step: kill lowest old task, grow new",
			obs:  Observation{New: checked(app("/n", 1, aliveTask("n1", true))), Old: app("/o", 3, running("o3", "o1", "o2")...), Target: 3},
			want: Step{Kind: StepAct, Kill: []string{"o1"}, ScaleNewTo: 3}},
		{name: "new at target: kill the rest",
			obs:  Observation{New: app("/n", 3, running("n1", "n2", "n3")...), Old: app("/o", 2, running("o2", "o3")...), Target: 3},
			want: Step{Kind: StepAct, Kill: []string{"o2", "o3"}}},
		{name: "terminal old tasks are not killed again",
			obs:  Observation{New: app("/n", 3, running("n1", "n2", "n3")...), Old: app("/o", 1, task("o1", marathon.TaskKilled), task("o2", marathon.TaskRunning)), Target: 3},
			want: Step{Kind: StepAct, Kill: []string{"o2"}}},
		{name: "old scaled to zero, tasks still stopping",
			obs:  Observation{New: app("/n", 3, running("n1", "n2", "n3")...), Old: app("/o", 0, task("o1", marathon.TaskKilling)), Target: 3},
			want: Step{Kind: StepWait, Reason: "1 tasks of /o stopping"}},
		{name: "done: delete old",
			obs:  Observation{New: app("/n", 3, running("n1", "n2", "n3")...), Old: app("/o", 0, task("o1", marathon.TaskKilled)), Target: 3},
			want: Step{Kind: StepDeleteOld, Reason: "/n has 3 instances, /o none"}},
		{name: "killed old task still stopping",
			obs:  Observation{New: app("/n", 2, running("n1", "n2")...), Old: app("/o", 1, task("o1", marathon.TaskKilling), task("o2", marathon.TaskRunning)), Target: 3},
			want: Step{Kind: StepWait, Reason: "1 tasks of /o stopping"}},
		{name: "hybrid: grow new only to its share",
			obs:  Observation{New: app("/n", 1, running("n1")...), Old: app("/o", 10, running("o1", "o2", "o3", "o4", "o5", "o6", "o7", "o8", "o9", "o10")...), Target: 10, NewTarget: 2},
			want: Step{Kind: StepAct, Kill: []string{"o1"}, ScaleNewTo: 2}},
		{name: "hybrid: split reached",
			obs:  Observation{New: app("/n", 2, running("n1", "n2")...), Old: app("/o", 8, running("o3", "o4", "o5", "o6", "o7", "o8", "o9", "o10")...), Target: 10, NewTarget: 2},
			want: Step{Kind: StepHybridDone, Reason: "/n has 2 instances, /o 8"}},
		{name: "LB: new server not UP yet",
			obs: Observation{New: app("/n", 1, running("n1")...), Old: app("/o", 3, running("o1", "o2", "o3")...), Target: 3,
				LB: &LBView{Up: map[string]bool{}}},
			want: Step{Kind: StepWait, Reason: "0/1 servers of /n UP on the load balancers"}},
		{name: "LB: old server not drained yet, new app still grows",
			obs: Observation{New: app("/n", 1, running("n1")...), Old: app("/o", 3, running("o1", "o2", "o3")...), Target: 3,
				LB: &LBView{Up: map[string]bool{"n1": true}, Draining: map[string]bool{"o1": true}}},
			want: Step{Kind: StepAct, WaitingForDrain: true, Reason: "waiting for 1 server(s) of /o to drain on the load balancers", ScaleNewTo: 2}},
		{name: "LB: old server not drained, new app at target: wait for drain",
			obs: Observation{New: app("/n", 3, running("n1", "n2", "n3")...), Old: app("/o", 1, running("o1")...), Target: 3,
				LB: &LBView{Up: map[string]bool{"n1": true, "n2": true, "n3": true}, Draining: map[string]bool{"o1": true}}},
			want: Step{Kind: StepWait, WaitingForDrain: true, Reason: "waiting for 1 server(s) of /o to drain on the load balancers"}},
		{name: "LB: drain timed out, draining server killed",
			obs: Observation{New: app("/n", 3, running("n1", "n2", "n3")...), Old: app("/o", 1, running("o1")...), Target: 3, DrainTimedOut: true,
				LB: &LBView{Up: map[string]bool{"n1": true, "n2": true, "n3": true}, Draining: map[string]bool{"o1": true}}},
			want: Step{Kind: StepAct, Kill: []string{"o1"}}},
		{name: "LB: whichever old server the LB drained is killed",
			obs: Observation{New: app("/n", 1, running("n1")...), Old: app("/o", 3, running("o1", "o2", "o3")...), Target: 3,
				LB: &LBView{Up: map[string]bool{"n1": true}, Drained: map[string]bool{"o2": true, "o3": true}}},
			want: Step{Kind: StepAct, Kill: []string{"o2"}, ScaleNewTo: 3}},
		{name: "LB: drained server killed",
			obs: Observation{New: app("/n", 1, running("n1")...), Old: app("/o", 3, running("o1", "o2", "o3")...), Target: 3,
				LB: &LBView{Up: map[string]bool{"n1": true}, Drained: map[string]bool{"o1": true}}},
			want: Step{Kind: StepAct, Kill: []string{"o1"}, ScaleNewTo: 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, Next(tc.obs))
		})
	}
}

func TestResume(t *testing.T) {
	blue := deployed("/web-blue", Blue, 10000, 3, "2026-11-01T00:00:00Z")
	green := deployed("/web-green", Green, 10001, 1, "2026-11-02T00:00:00")
	green.Labels[LabelTargetInstances] = "4"
	tests := []struct {
		name             string
		apps             []marathon.App
		prev             bool
		wantNew, wantOld string
		wantTarget       int
		wantErr          bool
	}{
		{name: "complete current", apps: []marathon.App{green, blue}, wantNew: "/web-green", wantOld: "/web-blue", wantTarget: 4},
		{name: "complete previous", apps: []marathon.App{blue, green}, prev: true, wantNew: "/web-blue", wantOld: "/web-green", wantTarget: 4},
		{name: "single app", apps: []marathon.App{blue}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, o, target, err := Resume(tc.apps, "web", tc.prev)
			if tc.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.wantNew, n.ID)
			assert.Equal(t, tc.wantOld, o.ID)
			assert.Equal(t, tc.wantTarget, target)
		})
	}
}

func TestParseDefinition(t *testing.T) {
	tests := []struct {
		name, def, wantErr string
		wantPort           int
	}{
		{name: "portDefinitions", def: webDef, wantPort: 10000},
		{name: "docker port mappings", def: `{"id":"a","container":{"docker":{"image":"x","portMappings":[{"containerPort":80,"servicePort":10500}]}},"labels":{"HAPROXY_DEPLOYMENT_GROUP":"a","HAPROXY_DEPLOYMENT_ALT_PORT":"10501"}}`, wantPort: 10500},
		{name: "container port mappings", def: `{"id":"a","container":{"portMappings":[{"containerPort":80,"servicePort":10600}]},"labels":{"HAPROXY_DEPLOYMENT_GROUP":"a","HAPROXY_DEPLOYMENT_ALT_PORT":"10601"}}`, wantPort: 10600},
		{name: "not an object", def: `[1]`, wantErr: "app definition"},
		{name: "null", def: `null`, wantErr: "JSON object"},
		{name: "no id", def: `{"labels":{}}`, wantErr: "no id"},
		{name: "no group", def: `{"id":"a","ports":[1],"labels":{"HAPROXY_DEPLOYMENT_ALT_PORT":"2"}}`, wantErr: "HAPROXY_DEPLOYMENT_GROUP label is required"},
		{name: "no alt port", def: `{"id":"a","ports":[1],"labels":{"HAPROXY_DEPLOYMENT_GROUP":"a"}}`, wantErr: "HAPROXY_DEPLOYMENT_ALT_PORT label is required"},
		{name: "bad alt port", def: `{"id":"a","ports":[1],"labels":{"HAPROXY_DEPLOYMENT_GROUP":"a","HAPROXY_DEPLOYMENT_ALT_PORT":"x"}}`, wantErr: "not a port number"},
		{name: "dynamic service port", def: `{"id":"a","ports":[0],"labels":{"HAPROXY_DEPLOYMENT_GROUP":"a","HAPROXY_DEPLOYMENT_ALT_PORT":"2"}}`, wantErr: "no service port"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := ParseDefinition([]byte(tc.def))
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			p, err := d.ServicePort()
			require.NoError(t, err)
			assert.Equal(t, tc.wantPort, p)
			d.SetServicePort(p + 7)
			p2, err := d.ServicePort()
			require.NoError(t, err)
			assert.Equal(t, p+7, p2)
		})
	}
}

func TestParseDefinitionDropsReadOnlyFields(t *testing.T) {
	d, err := ParseDefinition([]byte(`{"id":"a","ports":[5],"version":"v","tasks":[],"tasksRunning":3,"deployments":[],
		"labels":{"HAPROXY_DEPLOYMENT_GROUP":"a","HAPROXY_DEPLOYMENT_ALT_PORT":"6"}}`))
	require.NoError(t, err)
	b, err := json.Marshal(d)
	require.NoError(t, err)
	for _, f := range []string{"version", "tasks", "tasksRunning", "deployments"} {
		assert.NotContains(t, string(b), `"`+f+`"`)
	}
}
