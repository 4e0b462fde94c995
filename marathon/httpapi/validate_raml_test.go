package httpapi

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestMarathonValidations: the validations Marathon 1.10 applies, with its
// status, message, paths and error texts (AppValidation,
// SchedulingValidation, the RAML types' enums and patterns).
func TestMarathonValidations(t *testing.T) {
	srv := newTestServer(t, &fakeBackend{})
	invalid := func(path, msg string) string {
		return `{"message":"Object is not valid","details":[{"path":"` + path + `","errors":["` + msg + `"]}]}` + "\n"
	}
	raml := func(path, key string) string {
		return `{"message":"Invalid JSON","details":[{"path":"` + path + `","errors":["` + key + `"]}]}` + "\n"
	}
	tests := []struct {
		name string
		body string
		code int
		want string
	}{
		{"UNIQUE with a value", `{"id":"a","cmd":"x","constraints":[["hostname","UNIQUE","x"]]}`, 422,
			invalid("/constraints(0)", "UNIQUE does not accept a value")},
		{"UNIQUE without a value", `{"id":"a","cmd":"x","constraints":[["hostname","UNIQUE"]]}`, 201, ""},
		{"MAX_PER not an integer", `{"id":"a","cmd":"x","constraints":[["rack","MAX_PER","two"]]}`, 422,
			invalid("/constraints(0)", "MAX_PER requires an integer value")},
		{"GROUP_BY not an integer", `{"id":"a","cmd":"x","constraints":[["rack","GROUP_BY","x"]]}`, 422,
			invalid("/constraints(0)", "GROUP BY must define an integer value or else no value at all")},
		{"LIKE without a value", `{"id":"a","cmd":"x","constraints":[["rack","LIKE"]]}`, 422,
			invalid("/constraints(0)", "LIKE and UNLIKE require a non-empty, regular expression value")},
		{"empty field", `{"id":"a","cmd":"x","constraints":[["","CLUSTER","x"]]}`, 422,
			invalid("/constraints(0)", "missing field for constraint declaration")},
		{"IS with a range", `{"id":"a","cmd":"x","constraints":[["cpus","IS","[1-2]"]]}`, 422,
			invalid("/constraints(0)", "IS only supports Mesos text and float values (see http://mesos.apache.org/documentation/latest/attributes-resources/)")},
		{"port protocol", `{"id":"a","cmd":"x","portDefinitions":[{"port":0,"protocol":"sctp"}]}`, 422,
			raml("/portDefinitions(0)/protocol", "error.unknown.enum.literal")},
		{"port protocol udp,tcp", `{"id":"a","cmd":"x","portDefinitions":[{"port":0,"protocol":"udp,tcp"}]}`, 201, ""},
		{"mapping protocol", `{"id":"a","container":{"type":"DOCKER","docker":{"image":"i"},"portMappings":[{"containerPort":80,"protocol":"http"}]},"networks":[{"mode":"container/bridge"}]}`, 422,
			raml("/container/portMappings(0)/protocol", "error.unknown.enum.literal")},
		{"volume mode", `{"id":"a","cmd":"x","container":{"type":"MESOS","volumes":[{"containerPath":"/d","hostPath":"/d","mode":"RWX"}]}}`, 422,
			raml("/container/volumes(0)/mode", "error.unknown.enum.literal")},
		{"network name", `{"id":"a","cmd":"x","networks":[{"mode":"container","name":"Bad Net"}]}`, 422,
			raml("/networks(0)/name", "error.pattern")},
		{"dependency id", `{"id":"a","cmd":"x","dependencies":["/Bad_Dep"]}`, 422,
			invalid("/dependencies(0)", "must fully match regular expression '"+jsonEscape(idPatternText)+"'")},
		{"ports and portDefinitions", `{"id":"a","cmd":"x","ports":[10001],"portDefinitions":[{"port":10002}]}`, 422,
			invalid("/", "cannot specify both ports and port definitions")},
		{"ports equal to portDefinitions", `{"id":"a","cmd":"x","ports":[10001],"portDefinitions":[{"port":10001}]}`, 201, ""},
		{"empty httpStatusCodesForReady", `{"id":"a","cmd":"x","portDefinitions":[{"port":0,"name":"http-api"}],"readinessChecks":[{"httpStatusCodesForReady":[]}]}`, 422,
			invalid("/readinessChecks(0)/httpStatusCodesForReady", "must not be empty")},
		{"duplicate port names", `{"id":"a","cmd":"x","portDefinitions":[{"port":0,"name":"p"},{"port":0,"name":"p"}]}`, 422,
			invalid("/portDefinitions", "Port names must be unique.")},
		{"resident task with an unreachable strategy", `{"id":"a","cmd":"x","container":{"type":"MESOS","volumes":[{"containerPath":"data","mode":"RW","persistent":{"size":10}}]},"unreachableStrategy":{"inactiveAfterSeconds":1,"expungeAfterSeconds":2}}`, 422,
			invalid("/", "unreachableStrategy must be disabled for resident tasks")},
		{"secret volume without the secret", `{"id":"a","cmd":"x","container":{"type":"MESOS","volumes":[{"containerPath":"/s","secret":"db"}]}}`, 422,
			invalid("/container/volumes(0)", "volume.secret must refer to an existing secret")},
		{"malformed JSON", `{"id": `, 400, `{"message":"Invalid JSON","details":"unexpected end of JSON input"}` + "\n"},
		{"no body", ``, 400, `{"message":"Please specify data in JSON format","details":"No content to map due to end-of-input"}` + "\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := call(t, srv, "POST", "/v2/apps", tc.body)
			assert.Equal(t, tc.code, code, body)
			if tc.want != "" {
				assert.Equal(t, tc.want, body)
			}
		})
	}
}
