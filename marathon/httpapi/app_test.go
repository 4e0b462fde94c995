package httpapi

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/marathon"
)

func intp(v int) *int { return &v }

func TestDecodeAppDefaults(t *testing.T) {
	app, err := DecodeApp([]byte(`{"id":"web","cmd":"python3 -m http.server $PORT0","healthChecks":[{"maxConsecutiveFailures":0}]}`))
	require.NoError(t, err)
	want := marathon.App{
		ID: "/web", Cmd: "python3 -m http.server $PORT0", Instances: 1, CPUs: 1, Mem: 128,
		Constraints: [][]string{}, Ports: []int{0},
		PortDefinitions: []marathon.PortDefinition{{Port: 0, Protocol: "tcp", Name: "default"}},
		BackoffSeconds:  1, BackoffFactor: 1.15, MaxLaunchDelaySeconds: 300,
		HealthChecks: []marathon.HealthCheck{{Protocol: "HTTP", Path: "/", PortIndex: intp(0), GracePeriodSeconds: 300,
			IntervalSeconds: 60, TimeoutSeconds: 20, MaxConsecutiveFailures: 0, DelaySeconds: 15, IPProtocol: "IPv4"}},
		ReadinessChecks:     []marathon.ReadinessCheck{},
		Dependencies:        []string{},
		UpgradeStrategy:     &marathon.UpgradeStrategy{MinimumHealthCapacity: 1, MaximumOverCapacity: 1},
		UnreachableStrategy: &marathon.UnreachableStrategy{},
		KillSelection:       "YOUNGEST_FIRST",
		Labels:              map[string]string{},
		Networks:            []marathon.Network{{Mode: "host"}},
	}
	assert.Equal(t, want, app)
}

func TestDecodeAppNetworking(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		networks  []marathon.Network
		dockerNet string
		mappings  []marathon.PortMapping
		ports     []int
	}{
		{
			name:      "1.4 bridge form gets 1.5 fields",
			in:        `{"id":"/b","container":{"type":"DOCKER","docker":{"image":"nginx","network":"BRIDGE","portMappings":[{"containerPort":80,"servicePort":10001}]}}}`,
			networks:  []marathon.Network{{Mode: "container/bridge"}},
			dockerNet: "BRIDGE",
			mappings:  []marathon.PortMapping{{ContainerPort: 80, HostPort: intp(0), ServicePort: 10001, Protocol: "tcp"}},
			ports:     []int{10001},
		},
		{
			name:      "1.5 bridge form gets 1.4 mirrors",
			in:        `{"id":"/b","networks":[{"mode":"container/bridge"}],"container":{"docker":{"image":"nginx"},"portMappings":[{"containerPort":80,"hostPort":0,"name":"http"}]}}`,
			networks:  []marathon.Network{{Mode: "container/bridge"}},
			dockerNet: "BRIDGE",
			mappings:  []marathon.PortMapping{{ContainerPort: 80, HostPort: intp(0), Protocol: "tcp", Name: "http"}},
			ports:     []int{0},
		},
		{
			name:      "bridge without mappings gets a default one",
			in:        `{"id":"/b","container":{"docker":{"image":"nginx","network":"BRIDGE"}}}`,
			networks:  []marathon.Network{{Mode: "container/bridge"}},
			dockerNet: "BRIDGE",
			mappings:  []marathon.PortMapping{{HostPort: intp(0), Protocol: "tcp", Name: "default"}},
			ports:     []int{0},
		},
		{
			name:      "host docker",
			in:        `{"id":"/h","container":{"docker":{"image":"nginx","network":"HOST"}},"portDefinitions":[{"port":0},{"port":0}]}`,
			networks:  []marathon.Network{{Mode: "host"}},
			dockerNet: "HOST",
			ports:     []int{0, 0},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			app, err := DecodeApp([]byte(tc.in))
			require.NoError(t, err)
			assert.Equal(t, tc.networks, app.Networks)
			require.NotNil(t, app.Container)
			assert.Equal(t, "DOCKER", app.Container.Type)
			assert.Equal(t, tc.dockerNet, app.Container.Docker.Network)
			assert.Equal(t, tc.mappings, app.Container.PortMappings)
			assert.Equal(t, tc.mappings, app.Container.Docker.PortMappings)
			assert.Equal(t, tc.ports, app.Ports)
		})
	}
}

func TestDecodeAppErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		code int // 400 or 422
		path string
	}{
		{"empty", ``, 400, ""},
		{"array", `[]`, 400, "/"},
		{"wrong type", `{"id":"/a","cmd":"x","cpus":"lots"}`, 400, "/cpus"},
		{"wrong type in array", `{"id":"/a","cmd":"x","healthChecks":[{"protocol":"TCP"},{"portIndex":"0"}]}`, 400, "/healthChecks(1)/portIndex"},
		{"wrong element type", `{"id":"/a","args":["a",5]}`, 400, "/args(1)"},
		{"nested arrays", `{"id":"/a","container":{"docker":{"image":"i"},"portMappings":[{"containerPort":80},{"hostPort":"1"}]}}`, 400, "/container/portMappings(1)/hostPort"},
		{"float into int", `{"id":"/a","cmd":"x","healthChecks":[{"intervalSeconds":1.5}]}`, 400, "/healthChecks(0)/intervalSeconds"},
		{"map value", `{"id":"/a","cmd":"x","labels":{"a":"b","c":5}}`, 400, "/labels/c"},
		{"fetch entry", `{"id":"/a","cmd":"x","fetch":[{"uri":"u"},{"uri":5}]}`, 400, "/fetch(1)/uri"},
		{"array is not an array", `{"id":"/a","cmd":"x","healthChecks":"none"}`, 400, "/healthChecks"},
		{"case-insensitive member", `{"id":"/a","cmd":"x","HealthChecks":[{"PortIndex":true}]}`, 400, "/healthChecks(0)/portIndex"},
		{"missing id", `{"cmd":"x"}`, 422, "/id"},
		{"uppercase id", `{"id":"/A","cmd":"x"}`, 422, "/id"},
		{"nothing to run", `{"id":"/a"}`, 422, "/"},
		{"negative mem", `{"id":"/a","cmd":"x","mem":-1}`, 422, "/mem"},
		{"zero cpus", `{"id":"/a","cmd":"x","cpus":0}`, 422, "/cpus"},
		{"tiny cpus", `{"id":"/a","cmd":"x","cpus":0.0009}`, 422, "/cpus"},
		{"negative cpus", `{"id":"/a","cmd":"x","cpus":-1}`, 422, "/cpus"},
		{"gpus", `{"id":"/a","cmd":"x","gpus":1}`, 422, "/gpus"},
		{"fetch without uri", `{"id":"/a","cmd":"x","fetch":[{"uri":""}]}`, 422, "/fetch(0)/uri"},
		{"fetch destPath escapes", `{"id":"/a","cmd":"x","fetch":[{"uri":"u"},{"uri":"u","destPath":"a/../../b"}]}`, 422, "/fetch(1)/destPath"},
		{"fetch absolute destPath", `{"id":"/a","cmd":"x","fetch":[{"uri":"u","destPath":"/etc/x"}]}`, 422, "/fetch(0)/destPath"},
		{"negative gpus", `{"id":"/a","cmd":"x","gpus":-1}`, 422, "/gpus"},
		{"backoff factor", `{"id":"/a","cmd":"x","backoffFactor":0.5}`, 422, "/backoffFactor"},
		{"like without regex", `{"id":"/a","cmd":"x","constraints":[["rack","LIKE"]]}`, 422, "/constraints(0)"},
		{"bad regex", `{"id":"/a","cmd":"x","constraints":[["rack","LIKE","("]]}`, 422, "/constraints(0)"},
		{"max per not int", `{"id":"/a","cmd":"x","constraints":[["rack","MAX_PER","x"]]}`, 422, "/constraints(0)"},
		{"port names", `{"id":"/a","cmd":"x","portDefinitions":[{"port":0,"name":"a"},{"port":0,"name":"a"}]}`, 422, "/portDefinitions"},
		{"ports unique", `{"id":"/a","cmd":"x","portDefinitions":[{"port":10005},{"port":10005}]}`, 422, "/portDefinitions"},
		{"legacy ports unique", `{"id":"/a","cmd":"x","ports":[10005,10005]}`, 422, "/"},
		{"unreachable", `{"id":"/a","cmd":"x","unreachableStrategy":{"inactiveAfterSeconds":10,"expungeAfterSeconds":5}}`, 422, "/unreachableStrategy/inactiveAfterSeconds"},
		{"command check", `{"id":"/a","cmd":"x","healthChecks":[{"protocol":"COMMAND"}]}`, 422, "/healthChecks(0)/command"},
		{"no image", `{"id":"/a","container":{"docker":{"image":""}}}`, 422, "/container/docker/image"},
		{"kill selection", `{"id":"/a","cmd":"x","killSelection":"RANDOM"}`, 422, "/killSelection"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeApp([]byte(tc.in))
			require.Error(t, err)
			switch tc.code {
			case 400:
				var br *BadRequestError
				require.ErrorAs(t, err, &br)
				if tc.path != "" {
					require.NotEmpty(t, br.Details)
					assert.Equal(t, tc.path, br.Details[0].Path)
				}
			case 422:
				var ve *ValidationError
				require.ErrorAs(t, err, &ve)
				var paths []string
				for _, d := range ve.Details {
					paths = append(paths, d.Path)
				}
				assert.Contains(t, paths, tc.path)
			}
		})
	}
}

func TestMergeApp(t *testing.T) {
	cur, err := DecodeApp([]byte(`{"id":"/a","cmd":"sleep 1","instances":2,"labels":{"x":"y"},"portDefinitions":[{"port":10001}]}`))
	require.NoError(t, err)
	tests := []struct {
		name  string
		patch string
		check func(t *testing.T, got marathon.App)
	}{
		{"scale keeps everything else", `{"instances":5}`, func(t *testing.T, got marathon.App) {
			want := cur
			want.Instances = 5
			assert.Equal(t, want, got)
		}},
		{"null is absent", `{"instances":3,"ports":null,"dependencies":null}`, func(t *testing.T, got marathon.App) {
			assert.Equal(t, []int{10001}, got.Ports)
			assert.Equal(t, 3, got.Instances)
		}},
		{"read-only fields ignored", `{"tasksRunning":4,"version":"x","deployments":[{"id":"d"}],"cmd":"sleep 2"}`, func(t *testing.T, got marathon.App) {
			assert.Equal(t, "sleep 2", got.Cmd)
			assert.Empty(t, got.Version)
		}},
		{"new port definitions replace ports", `{"portDefinitions":[{"port":0},{"port":0}]}`, func(t *testing.T, got marathon.App) {
			assert.Equal(t, []int{0, 0}, got.Ports)
		}},
		{"switch to bridge", `{"container":{"docker":{"image":"nginx","network":"BRIDGE"}},"cmd":null}`, func(t *testing.T, got marathon.App) {
			assert.Equal(t, "container/bridge", got.Networks[0].Mode)
			assert.Empty(t, got.PortDefinitions)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := MergeApp("/a", &cur, []byte(tc.patch))
			require.NoError(t, err)
			tc.check(t, got)
		})
	}
	_, err = MergeApp("/a", &cur, []byte(`{"instances":-2}`))
	var ve *ValidationError
	assert.ErrorAs(t, err, &ve)
}

func TestParseSelector(t *testing.T) {
	labels := map[string]string{"HAPROXY_GROUP": "external", "env": "prod", "a.b": "x y", "odd,key": "(v)", "ü": "é"}
	tests := []struct {
		sel  string
		want bool
	}{
		{"", true},
		{`a.b==x\ y`, true},
		{`a.b==x`, false},
		{`a.b!=x\ y`, false},
		{`odd\,key`, true},
		{`odd\,key==\(v\)`, true},
		{`odd\,key in (\(v\), w)`, true},
		{`a.b notin (x\ y)`, false},
		{`\ü==\é`, true},
		{`env==prod,a.b==x\ y`, true},
		{" env == prod ", true},
		{"env in(prod)", true},
		{"env notin(dev), HAPROXY_GROUP", true},
		{"HAPROXY_GROUP", true},
		{"missing", false},
		{"HAPROXY_GROUP==external", true},
		{"HAPROXY_GROUP!=external", false},
		{"env in (prod,dev), HAPROXY_GROUP", true},
		{"env notin (prod,dev)", false},
		{"missing notin (a)", true},
	}
	for _, tc := range tests {
		t.Run(tc.sel, func(t *testing.T) {
			s, err := parseSelector(tc.sel)
			require.NoError(t, err)
			assert.Equal(t, tc.want, s.matches(labels))
		})
	}
	for _, bad := range []string{"a b c", "a.b==x y", `a\`, "env in (prod", "env in prod", "a,", ",a", "==x", "env in (a b)"} {
		_, err := parseSelector(bad)
		var br *BadRequestError
		assert.ErrorAs(t, err, &br, bad)
	}
}

// FuzzDecodeApp checks that no input crashes decoding, that every error is
// a 400 or 422, and that a decoded app survives a round trip unchanged
// (normalization is idempotent, as partial updates rely on).
func FuzzDecodeApp(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "apps", "*.json"))
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"id":"a","cmd":"x"}`))
	f.Add([]byte(`{"id":"/a/b","container":{"docker":{"image":"i","network":"USER"}},"ipAddress":{"networkName":"n"}}`))
	f.Add([]byte(`{"id":"a","cmd":"x","unreachableStrategy":"disabled","healthChecks":[{"protocol":"TCP","port":5}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		app, err := DecodeApp(data)
		if err != nil {
			var br *BadRequestError
			var ve *ValidationError
			if !errorsAs(err, &br) && !errorsAs(err, &ve) {
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
			return
		}
		b, err := json.Marshal(app)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		again, err := DecodeApp(b)
		if err != nil {
			t.Fatalf("re-decode of %s: %v", b, err)
		}
		b2, _ := json.Marshal(again)
		if string(b) != string(b2) {
			t.Fatalf("not idempotent:\n%s\n%s", b, b2)
		}
	})
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }

func TestUnreachableDisabledRoundTrip(t *testing.T) {
	app, err := DecodeApp([]byte(`{"id":"a","cmd":"x","unreachableStrategy":"disabled"}`))
	require.NoError(t, err)
	want := marathon.DisabledUnreachableStrategy()
	assert.Equal(t, &want, app.UnreachableStrategy)
	b, err := json.Marshal(app)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"unreachableStrategy":"disabled"`)

	tests := []struct {
		name  string
		patch string
		want  marathon.UnreachableStrategy
	}{
		{"scale keeps disabled", `{"instances":3}`, want},
		{"object replaces disabled", `{"unreachableStrategy":{"inactiveAfterSeconds":5,"expungeAfterSeconds":10}}`,
			marathon.UnreachableStrategy{InactiveAfterSeconds: 5, ExpungeAfterSeconds: 10}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := MergeApp("/a", &app, []byte(tc.patch))
			require.NoError(t, err)
			assert.Equal(t, &tc.want, got.UnreachableStrategy)
		})
	}
	_, err = DecodeApp([]byte(`{"id":"a","cmd":"x","unreachableStrategy":"sometimes"}`))
	var br *BadRequestError
	require.ErrorAs(t, err, &br)
	assert.Equal(t, []marathon.ErrorDetail{{Path: "/unreachableStrategy", Errors: []string{"error.expected.jsobject"}}}, br.Details)
}

func TestDecodeAppRejectsDotSegments(t *testing.T) {
	for _, bad := range []string{
		`{"id":"x/../rel","cmd":"c"}`, `{"id":"/a/./b/","cmd":"c"}`, `{"id":"../../x","cmd":"c"}`,
		`{"id":"a/..","cmd":"c"}`, `{"id":"a/.","cmd":"c"}`, `{"id":"..","cmd":"c"}`,
	} {
		_, err := DecodeApp([]byte(bad))
		var ve *ValidationError
		require.ErrorAs(t, err, &ve, bad)
		assert.Equal(t, []marathon.ErrorDetail{{Path: "/id", Errors: []string{msgDotSegment}}}, ve.Details, bad)
	}
	// Dependencies are references, resolved as in Marathon.
	app, err := DecodeApp([]byte(`{"id":"a/c","cmd":"c","dependencies":["a/./db","/q/../r"]}`))
	require.NoError(t, err)
	assert.Equal(t, "/a/c", app.ID)
	assert.Equal(t, []string{"/a/db", "/r"}, app.Dependencies)
}

func TestCanonicalAppID(t *testing.T) {
	for in, want := range map[string]string{
		"web": "/web", "/web/": "/web", "a/../b": "/a/../b", "": "/",
	} {
		assert.Equal(t, want, canonicalAppID(in), in)
	}
}
