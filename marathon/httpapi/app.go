package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/switchyard/switchyard/marathon"
)

// Defaults applied on write (Marathon 1.8+ defaults, spec §2.2).
const (
	DefaultCPUs                  = 1.0
	DefaultMem                   = 128.0
	DefaultBackoffSeconds        = 1
	DefaultBackoffFactor         = 1.15
	DefaultMaxLaunchDelaySeconds = 300
	// MinCPUs is the smallest cpus an app may ask for (spec §2.2).
	MinCPUs = 0.001
)

// Network modes of the 1.5+ API.
const (
	ModeHost      = "host"
	ModeBridge    = "container/bridge"
	ModeContainer = "container"
)

var (
	idSegment     = regexp.MustCompile(`^(([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])\.)*([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])$`)
	portName      = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	idPatternText = `^(([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])\.)*([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])|(\.|\.\.)$`
)

// Marathon's validation messages users grep for (spec §0.1).
const (
	msgCmdArgs        = "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'."
	msgPortIndex      = "Health check port indices must address an element of the ports array or container port mappings."
	msgPortNames      = "Port names must be unique."
	msgPortsUnique    = "ports must be unique"
	msgReservedSuffix = "must not end with any of the following reserved keywords: restart, tasks, versions, ., .."
	msgNoGPUs         = "GPUs are not supported by this scheduler"
	msgDotSegment     = "must not contain '.' or '..' path segments"
)

// BadRequestError is a 400 answer: invalid JSON or JSON of the wrong types.
type BadRequestError struct {
	Message string
	Details []marathon.ErrorDetail
	// Text replaces Details with a string (the non-JSON body case).
	Text string
}

// Error implements error.
func (e *BadRequestError) Error() string {
	if len(e.Details) > 0 {
		return fmt.Sprintf("%s: %s %v", e.Message, e.Details[0].Path, e.Details[0].Errors)
	}
	return e.Message
}

// ValidationError is a 422 answer: the app is well-formed JSON but not a
// valid definition. Details hold one entry per offending path.
type ValidationError struct {
	// Message is the body's message; empty means "Object is not valid"
	// (Marathon says "Invalid JSON" for failures of its RAML reading).
	Message string
	Details []marathon.ErrorDetail
}

// Error implements error.
func (e *ValidationError) Error() string {
	parts := make([]string, 0, len(e.Details))
	for _, d := range e.Details {
		parts = append(parts, d.Path+": "+strings.Join(d.Errors, "; "))
	}
	return "object is not valid: " + strings.Join(parts, ", ")
}

func (e *ValidationError) add(path, msg string) {
	for i := range e.Details {
		if e.Details[i].Path == path {
			e.Details[i].Errors = append(e.Details[i].Errors, msg)
			return
		}
	}
	e.Details = append(e.Details, marathon.ErrorDetail{Path: path, Errors: []string{msg}})
}

// rawObject decodes a JSON object into its raw members, dropping explicit
// nulls (Marathon treats null like absent).
func rawObject(data []byte) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("not an object")
	}
	for k, v := range m {
		if bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			delete(m, k)
		}
	}
	return m, nil
}

// badJSON turns a decoding error into Marathon's 400 body.
func badJSON(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		path := "/" + strings.ReplaceAll(te.Field, ".", "/")
		if te.Field == "" {
			path = "/"
		}
		return &BadRequestError{Message: "Invalid JSON", Details: []marathon.ErrorDetail{{Path: path, Errors: []string{expected(te.Type)}}}}
	}
	// As Marathon: a body that does not parse is "Invalid JSON" (Jackson's
	// parse error), no body at all "Please specify data in JSON format".
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &BadRequestError{Message: msgInvalidJSON, Text: err.Error()}
	}
	if errors.Is(err, errEmptyBody) {
		return &BadRequestError{Message: "Please specify data in JSON format", Text: "No content to map due to end-of-input"}
	}
	return &BadRequestError{Message: "Invalid JSON", Details: []marathon.ErrorDetail{{Path: "/", Errors: []string{"error.expected.jsobject"}}}}
}

var errEmptyBody = errors.New("empty request body")

// badJSONIn is badJSON for an error from decoding data: the path of a
// type error names the array elements on the way, as Marathon's does
// (/healthChecks(1)/portIndex; encoding/json reports healthChecks.portIndex).
func badJSONIn(err error, data []byte) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return &BadRequestError{Message: "Invalid JSON", Details: []marathon.ErrorDetail{{Path: typeErrorPath(data, te), Errors: []string{expected(te.Type)}}}}
	}
	return badJSON(err)
}

// typeErrorPath finds where in data the value of te is: it follows the
// dotted te.Field, and at each array (and at a map that te.Field ends on)
// takes the first element under which a value of the JSON kind te
// reports is found. Without a match it falls back to te.Field alone.
func typeErrorPath(data []byte, te *json.UnmarshalTypeError) string {
	parts := strings.Split(te.Field, ".")
	kind, _, _ := strings.Cut(te.Value, " ") // "number 1.5" for a float into an int
	if p, ok := findTypePath(data, parts, kind); ok && p != "" {
		return p
	}
	return "/" + strings.Join(parts, "/")
}

// findTypePath returns the path, below raw, of the first value of JSON
// kind kind that the field names in parts lead to.
func findTypePath(raw []byte, parts []string, kind string) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", false
	}
	if len(parts) == 0 && jsonKind(raw) == kind {
		return "", true
	}
	switch raw[0] {
	case '[':
		var elems []json.RawMessage
		if json.Unmarshal(raw, &elems) != nil {
			return "", false
		}
		for i, e := range elems {
			if p, ok := findTypePath(e, parts, kind); ok {
				return fmt.Sprintf("(%d)%s", i, p), true
			}
		}
	case '{':
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) != nil {
			return "", false
		}
		if len(parts) == 0 {
			// A map member of the wrong type (labels, env).
			keys := slices.Sorted(maps.Keys(m))
			for _, k := range keys {
				if jsonKind(bytes.TrimSpace(m[k])) == kind {
					return "/" + k, true
				}
			}
			return "", false
		}
		v, ok := m[parts[0]]
		if !ok {
			// encoding/json matches member names case-insensitively.
			for k, mv := range m {
				if strings.EqualFold(k, parts[0]) {
					v, ok = mv, true
					break
				}
			}
		}
		if ok {
			if p, found := findTypePath(v, parts[1:], kind); found {
				return "/" + parts[0] + p, true
			}
		}
	}
	return "", false
}

// jsonKind names the kind of a JSON value as UnmarshalTypeError.Value
// does.
func jsonKind(raw []byte) string {
	if len(raw) == 0 {
		return ""
	}
	switch raw[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	return "number"
}

func expected(t reflect.Type) string {
	if t == nil {
		return "error.expected.jsvalue"
	}
	switch t.Kind() {
	case reflect.String:
		return "error.expected.jsstring"
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint64, reflect.Float64, reflect.Float32:
		return "error.expected.jsnumber"
	case reflect.Bool:
		return "error.expected.jsboolean"
	case reflect.Slice, reflect.Array:
		return "error.expected.jsarray"
	case reflect.Map, reflect.Struct, reflect.Pointer:
		return "error.expected.jsobject"
	}
	return "error.expected.jsvalue"
}

// DecodeApp parses an app definition as sent by a client, fills Marathon's
// defaults and validates it. The result is the stored form: canonical id,
// 1.5+ networking fields and the ≤1.4 mirrors (ports, docker.network,
// docker.portMappings). Service ports of 0 stay 0 (the scheduler assigns
// them). Errors are *BadRequestError (400) or *ValidationError (422).
func DecodeApp(data []byte) (marathon.App, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return marathon.App{}, badJSON(errEmptyBody)
	}
	raw, err := rawObject(data)
	if err != nil {
		return marathon.App{}, badJSON(err)
	}
	return decodeRaw(raw)
}

func decodeRaw(raw map[string]json.RawMessage) (marathon.App, error) {
	b, err := json.Marshal(raw)
	if err != nil {
		return marathon.App{}, badJSON(err)
	}
	var app marathon.App
	if err := json.Unmarshal(b, &app); err != nil {
		return marathon.App{}, badJSONIn(err, b)
	}
	if rerr := ramlErrors(raw); rerr != nil {
		return marathon.App{}, rerr
	}
	// Read-only AppInfo fields never come from clients.
	app.TasksStaged, app.TasksRunning, app.TasksHealthy, app.TasksUnhealthy = 0, 0, 0, 0
	app.Tasks, app.Deployments, app.LastTaskFailure, app.VersionInfo = nil, nil, nil, nil
	var verr ValidationError
	rawID := app.ID
	validateID(rawID, &verr)
	app.ID = canonicalAppID(rawID)
	validateRaw(&app, raw, &verr)
	normalize(&app, raw, &verr)
	validate(&app, raw, &verr)
	if len(verr.Details) > 0 {
		return marathon.App{}, &verr
	}
	return app, nil
}

func validateID(id string, verr *ValidationError) {
	trimmed := strings.Trim(id, "/")
	if trimmed == "" {
		verr.add("/id", "must not be empty")
		return
	}
	if hasDotSegment(trimmed) {
		verr.add("/id", msgDotSegment)
		return
	}
	segs := strings.Split(trimmed, "/")
	for _, s := range segs {
		if !idSegment.MatchString(s) {
			verr.add("/id", "must fully match regular expression '"+idPatternText+"'")
			return
		}
	}
	switch segs[len(segs)-1] {
	case "restart", "tasks", "versions":
		verr.add("/id", msgReservedSuffix)
	}
}

// hasDotSegment reports whether an id has a "." or ".." segment. Such ids
// are rejected rather than resolved (Marathon resolves them): "a/../b"
// naming "/b" lets a client that may only touch a/ reach b, and hides
// which app a request really changes.
func hasDotSegment(id string) bool {
	for _, seg := range strings.Split(id, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

// canonicalAppID returns the absolute form of an app id given to
// /v2/apps: relative to the root group, no leading or trailing slash
// doubled. "." and ".." segments are left in place for validateID to
// reject.
func canonicalAppID(id string) string {
	return marathon.CanonicalID(id)
}

func members(raw json.RawMessage) map[string]json.RawMessage {
	m, err := rawObject(raw)
	if err != nil {
		return map[string]json.RawMessage{}
	}
	return m
}

func has(raw map[string]json.RawMessage, key string) bool {
	_, ok := raw[key]
	return ok
}

// normalize fills defaults (using raw to tell absent from zero) and
// derives the networking mirrors.
func normalize(app *marathon.App, raw map[string]json.RawMessage, verr *ValidationError) {
	if !has(raw, "instances") {
		app.Instances = 1
	}
	if !has(raw, "cpus") {
		app.CPUs = DefaultCPUs
	}
	if !has(raw, "mem") {
		app.Mem = DefaultMem
	}
	if !has(raw, "backoffSeconds") {
		app.BackoffSeconds = DefaultBackoffSeconds
	}
	if !has(raw, "backoffFactor") {
		app.BackoffFactor = DefaultBackoffFactor
	}
	if !has(raw, "maxLaunchDelaySeconds") {
		app.MaxLaunchDelaySeconds = DefaultMaxLaunchDelaySeconds
	}
	if app.Labels == nil {
		app.Labels = map[string]string{}
	}
	if app.Constraints == nil {
		app.Constraints = [][]string{}
	}
	if app.Dependencies == nil {
		app.Dependencies = []string{}
	}
	for i, d := range app.Dependencies {
		app.Dependencies[i] = resolveID("/", d)
	}
	if app.ReadinessChecks == nil {
		app.ReadinessChecks = []marathon.ReadinessCheck{}
	}
	if app.KillSelection == "" {
		app.KillSelection = "YOUNGEST_FIRST"
	}
	if app.UpgradeStrategy == nil {
		app.UpgradeStrategy = &marathon.UpgradeStrategy{MinimumHealthCapacity: 1, MaximumOverCapacity: 1}
	} else {
		m := members(raw["upgradeStrategy"])
		if !has(m, "minimumHealthCapacity") {
			app.UpgradeStrategy.MinimumHealthCapacity = 1
		}
		if !has(m, "maximumOverCapacity") {
			app.UpgradeStrategy.MaximumOverCapacity = 1
		}
	}
	if app.UnreachableStrategy == nil {
		app.UnreachableStrategy = &marathon.UnreachableStrategy{}
	}
	normalizeNetworking(app, raw, verr)
	normalizeHealthChecks(app, raw)
	for i := range app.ReadinessChecks {
		rc := &app.ReadinessChecks[i]
		rc.Name = cmpOr(rc.Name, "readinessCheck")
		rc.Protocol = cmpOr(rc.Protocol, "HTTP")
		rc.Path = cmpOr(rc.Path, "/")
		rc.PortName = cmpOr(rc.PortName, "http-api")
		if rc.IntervalSeconds == 0 {
			rc.IntervalSeconds = 30
		}
		if rc.TimeoutSeconds == 0 {
			rc.TimeoutSeconds = 10
		}
		if len(rc.HTTPStatusCodesForReady) == 0 {
			rc.HTTPStatusCodesForReady = []int{200}
		}
	}
}

func cmpOr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func normalizeNetworking(app *marathon.App, raw map[string]json.RawMessage, verr *ValidationError) {
	c := app.Container
	if c != nil {
		if c.Type == "" {
			c.Type = "MESOS"
			if c.Docker != nil {
				c.Type = "DOCKER"
			}
		}
		c.Type = strings.ToUpper(c.Type)
	}
	// Networks: 1.5+ form wins; otherwise derive from docker.network or
	// ipAddress.
	if len(app.Networks) == 0 {
		mode := ModeHost
		name := ""
		if app.IPAddress != nil {
			mode, name = ModeContainer, app.IPAddress.NetworkName
		}
		if c != nil && c.Docker != nil {
			switch strings.ToUpper(c.Docker.Network) {
			case "BRIDGE":
				mode = ModeBridge
			case "USER":
				mode = ModeContainer
			case "HOST", "NONE", "":
				if app.IPAddress == nil {
					mode = ModeHost
				}
			default:
				verr.add("/container/docker/network", "must be one of HOST, BRIDGE, USER, NONE")
			}
		}
		app.Networks = []marathon.Network{{Mode: mode, Name: name}}
	}
	mode := app.Networks[len(app.Networks)-1].Mode
	for i, n := range app.Networks {
		switch n.Mode {
		case ModeHost, ModeBridge, ModeContainer:
		case "":
			app.Networks[i].Mode = ModeContainer
		default:
			verr.add(fmt.Sprintf("/networks(%d)/mode", i), "must be one of host, container/bridge, container")
		}
	}
	if mode != ModeHost && c == nil {
		c = &marathon.Container{Type: "MESOS"}
		app.Container = c
	}
	if c != nil && c.Docker != nil {
		switch mode {
		case ModeHost:
			c.Docker.Network = "HOST"
		case ModeBridge:
			c.Docker.Network = "BRIDGE"
		default:
			c.Docker.Network = "USER"
		}
	}
	if mode == ModeHost {
		// Host networking: portDefinitions (or the ≤1.4 ports).
		switch {
		case has(raw, "portDefinitions") && has(raw, "ports"):
			if !slices.Equal(servicePortsOf(app.PortDefinitions), app.Ports) {
				verr.add("/", "cannot specify both ports and port definitions")
			}
		case has(raw, "ports"):
			app.PortDefinitions = make([]marathon.PortDefinition, 0, len(app.Ports))
			for _, p := range app.Ports {
				app.PortDefinitions = append(app.PortDefinitions, marathon.PortDefinition{Port: p})
			}
		case !has(raw, "portDefinitions"):
			app.PortDefinitions = []marathon.PortDefinition{{Port: 0, Name: "default"}}
		}
		for i := range app.PortDefinitions {
			app.PortDefinitions[i].Protocol = cmpOr(app.PortDefinitions[i].Protocol, "tcp")
		}
		if c != nil {
			c.PortMappings = nil
			if c.Docker != nil {
				c.Docker.PortMappings = nil
			}
		}
		app.Ports = servicePortsOf(app.PortDefinitions)
		return
	}
	// Container networking: port mappings (container- or docker-level).
	// portDefinitions is emitted as [] (never null), as Marathon does.
	app.PortDefinitions = []marathon.PortDefinition{}
	var dockerPM []marathon.PortMapping
	if c.Docker != nil {
		dockerPM = c.Docker.PortMappings
	}
	switch {
	case len(c.PortMappings) > 0 && len(dockerPM) > 0:
		if !reflect.DeepEqual(c.PortMappings, dockerPM) {
			verr.add("/container/portMappings", "container.portMappings and container.docker.portMappings must agree")
		}
	case len(dockerPM) > 0:
		c.PortMappings = dockerPM
	case len(c.PortMappings) == 0:
		if !has(members(raw["container"]), "portMappings") && !has(members(members(raw["container"])["docker"]), "portMappings") {
			c.PortMappings = []marathon.PortMapping{{Name: "default"}}
		}
	}
	for i := range c.PortMappings {
		pm := &c.PortMappings[i]
		pm.Protocol = cmpOr(pm.Protocol, "tcp")
		if pm.HostPort == nil && mode == ModeBridge {
			zero := 0
			pm.HostPort = &zero
		}
	}
	if c.Docker != nil {
		c.Docker.PortMappings = c.PortMappings
	}
	sp := make([]int, 0, len(c.PortMappings))
	for _, pm := range c.PortMappings {
		sp = append(sp, pm.ServicePort)
	}
	app.Ports = sp
}

func servicePortsOf(defs []marathon.PortDefinition) []int {
	out := make([]int, 0, len(defs))
	for _, d := range defs {
		out = append(out, d.Port)
	}
	return out
}

func normalizeHealthChecks(app *marathon.App, raw map[string]json.RawMessage) {
	if app.HealthChecks == nil {
		app.HealthChecks = []marathon.HealthCheck{}
	}
	var rawChecks []json.RawMessage
	_ = json.Unmarshal(raw["healthChecks"], &rawChecks)
	for i := range app.HealthChecks {
		m := map[string]json.RawMessage{}
		if i < len(rawChecks) {
			m = members(rawChecks[i])
		}
		hc := &app.HealthChecks[i]
		hc.Protocol = strings.ToUpper(cmpOr(hc.Protocol, "HTTP"))
		switch hc.Protocol {
		case "HTTP", "HTTPS", "MESOS_HTTP", "MESOS_HTTPS":
			hc.Path = cmpOr(hc.Path, "/")
		}
		if hc.Port == nil && hc.PortIndex == nil && hc.Protocol != "COMMAND" {
			zero := 0
			hc.PortIndex = &zero
		}
		if !has(m, "gracePeriodSeconds") {
			hc.GracePeriodSeconds = 300
		}
		if !has(m, "intervalSeconds") {
			hc.IntervalSeconds = 60
		}
		if !has(m, "timeoutSeconds") {
			hc.TimeoutSeconds = 20
		}
		if !has(m, "maxConsecutiveFailures") {
			hc.MaxConsecutiveFailures = 3
		}
		if !has(m, "delaySeconds") {
			hc.DelaySeconds = 15
		}
		hc.IPProtocol = cmpOr(hc.IPProtocol, "IPv4")
	}
}

// Constraint operators we accept.
var operators = []string{"UNIQUE", "CLUSTER", "GROUP_BY", "LIKE", "UNLIKE", "MAX_PER", "IS"}

// Linux limits what execve accepts: one argument or environment string
// may hold MAX_ARG_STRLEN (32 pages) bytes with its NUL, and all of them
// together, with their pointers, must fit ARG_MAX (a quarter of the 8 MiB
// default stack). A task over either limit cannot start, ever: it would
// fail and be relaunched forever, so such an app is a 422 instead.
const (
	maxArgBytes = 32*4096 - 1
	// maxExecBytes leaves 64 KiB of ARG_MAX to the variables the agent
	// adds (PORT*, HOST, MESOS_*, MARATHON_APP_*).
	maxExecBytes = 2<<20 - 64<<10
	// labelEnvPrefix is how the agent exports labels to the task.
	labelEnvPrefix = "MARATHON_APP_LABEL_"
)

// validateArgSizes rejects a cmd, an argument, an environment variable or
// a total that execve would refuse (E2BIG).
func validateArgSizes(app *marathon.App, verr *ValidationError) {
	const ptr = 8
	total := 0
	one := func(path string, n int) {
		total += n + 1 + ptr
		if n > maxArgBytes {
			verr.add(path, fmt.Sprintf("is %d bytes long; the kernel accepts at most %d bytes in one argument or environment variable", n, maxArgBytes))
		}
	}
	if app.Cmd != "" {
		one("/cmd", len(app.Cmd))
	}
	for i, a := range app.Args {
		one(fmt.Sprintf("/args(%d)", i), len(a))
	}
	for _, k := range slices.Sorted(maps.Keys(app.Env)) {
		one("/env/"+k, len(k)+1+len(app.Env[k]))
	}
	names := 0
	for k, v := range app.Labels {
		// The agent skips labels this long (Marathon's limits).
		if len(k) < 493 && len(v) < 512 {
			total += len(labelEnvPrefix) + len(k) + 1 + len(v) + 1 + ptr
			names += len(k) + 1
		}
	}
	if names > maxArgBytes {
		verr.add("/labels", fmt.Sprintf("the label names exported as MARATHON_APP_LABELS are %d bytes long; the kernel accepts at most %d bytes in one environment variable", names, maxArgBytes))
	}
	total += names
	if total > maxExecBytes {
		verr.add("/", fmt.Sprintf("cmd or args, env and labels take %d bytes in the task's command line and environment; at most %d fit (the kernel's ARG_MAX less room for the variables the agent adds)", total, maxExecBytes))
	}
}

func validate(app *marathon.App, raw map[string]json.RawMessage, verr *ValidationError) {
	validateSecrets(app, verr)
	legacyPorts := has(raw, "ports") && !has(raw, "portDefinitions")
	hasCmd := app.Cmd != ""
	hasArgs := len(app.Args) > 0
	if (hasCmd && hasArgs) || (!hasCmd && !hasArgs && (app.Container == nil || app.Container.Docker == nil)) {
		verr.add("/", msgCmdArgs)
	}
	validateArgSizes(app, verr)
	if app.Instances < 0 {
		verr.add("/instances", fmt.Sprintf("got %d, expected 0 or more", app.Instances))
	}
	if app.CPUs < MinCPUs {
		verr.add("/cpus", fmt.Sprintf("got %v, expected %v or more", app.CPUs, MinCPUs))
	}
	if app.Mem < 0 {
		verr.add("/mem", fmt.Sprintf("got %v, expected 0.0 or more", app.Mem))
	}
	if app.Disk < 0 {
		verr.add("/disk", fmt.Sprintf("got %v, expected 0.0 or more", app.Disk))
	}
	switch {
	case app.GPUs < 0:
		verr.add("/gpus", fmt.Sprintf("got %d, expected 0 or more", app.GPUs))
	case app.GPUs > 0:
		// Agents offer no GPUs: such an app would wait forever.
		verr.add("/gpus", msgNoGPUs)
	}
	if app.BackoffSeconds < 0 {
		verr.add("/backoffSeconds", fmt.Sprintf("got %v, expected 0 or more", app.BackoffSeconds))
	}
	if app.BackoffFactor < 1 {
		verr.add("/backoffFactor", fmt.Sprintf("got %v, expected 1.0 or more", app.BackoffFactor))
	}
	if app.MaxLaunchDelaySeconds < 0 {
		verr.add("/maxLaunchDelaySeconds", fmt.Sprintf("got %v, expected 0 or more", app.MaxLaunchDelaySeconds))
	}
	if app.TaskKillGracePeriodSeconds != nil && *app.TaskKillGracePeriodSeconds < 0 {
		verr.add("/taskKillGracePeriodSeconds", "must be 0 or more")
	}
	for i, f := range app.Fetch {
		at := fmt.Sprintf("/fetch(%d)", i)
		if strings.TrimSpace(f.URI) == "" {
			verr.add(at+"/uri", "must not be empty")
		}
		if d := f.DestPath; d != "" && (path.IsAbs(d) || slices.Contains(strings.Split(path.Clean(d), "/"), "..")) {
			verr.add(at+"/destPath", "must be a path inside the sandbox")
		}
	}
	if v, ok := app.Labels[marathon.LabelShutdownDelay]; ok {
		if _, err := marathon.ParseShutdownDelay(v); err != nil {
			verr.add("/labels/"+marathon.LabelShutdownDelay, err.Error())
		}
	}
	us := app.UpgradeStrategy
	for _, f := range []struct {
		name string
		v    float64
	}{{"minimumHealthCapacity", us.MinimumHealthCapacity}, {"maximumOverCapacity", us.MaximumOverCapacity}} {
		switch {
		case f.v > 1:
			verr.add("/upgradeStrategy/"+f.name, "is greater than 1")
		case f.v < 0:
			verr.add("/upgradeStrategy/"+f.name, "is less than 0")
		}
	}
	ur := app.UnreachableStrategy
	if ur.InactiveAfterSeconds < 0 {
		verr.add("/unreachableStrategy/inactiveAfterSeconds", "must be 0 or more")
	}
	if ur.InactiveAfterSeconds > ur.ExpungeAfterSeconds {
		verr.add("/unreachableStrategy/inactiveAfterSeconds", fmt.Sprintf("inactiveAfterSeconds (%d) must be less or equal to expungeAfterSeconds, which is %d", ur.InactiveAfterSeconds, ur.ExpungeAfterSeconds))
	}
	switch app.KillSelection {
	case "YOUNGEST_FIRST", "OLDEST_FIRST":
	default:
		verr.add("/killSelection", "must be one of YOUNGEST_FIRST, OLDEST_FIRST")
	}
	for i, c := range app.Constraints {
		if msg := checkConstraint(c); msg != "" {
			verr.add(fmt.Sprintf("/constraints(%d)", i), msg)
		}
	}
	if app.Container != nil && app.Container.Docker != nil && strings.TrimSpace(app.Container.Docker.Image) == "" {
		verr.add("/container/docker/image", "must not be empty")
	}
	if app.Container != nil && app.Container.Type != "DOCKER" && app.Container.Type != "MESOS" {
		verr.add("/container/type", "must be one of DOCKER, MESOS")
	}
	// Ports: names unique and well-formed, service ports unique.
	names := map[string]bool{}
	nPorts := 0
	checkName := func(list, path, name string) {
		if name == "" {
			return
		}
		if !portName.MatchString(name) {
			verr.add(path, "must fully match regular expression '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'")
		}
		if names[name] {
			verr.add(list, msgPortNames)
		}
		names[name] = true
	}
	service := map[int]bool{}
	checkService := func(list, msg, path string, p int) {
		if p < 0 || p > 65535 {
			verr.add(path, "must be between 0 and 65535")
		}
		if p != 0 && service[p] {
			verr.add(list, msg)
		}
		service[p] = true
	}
	// Marathon reports duplicate portDefinitions at /portDefinitions, and
	// duplicates of the legacy ports (which became portDefinitions) at /.
	pdList, pdMsg := "/portDefinitions", "Ports must be unique."
	if legacyPorts {
		pdList, pdMsg = "/", msgPortsUnique
	}
	for i, d := range app.PortDefinitions {
		nPorts++
		checkName("/portDefinitions", fmt.Sprintf("/portDefinitions(%d)/name", i), d.Name)
		checkService(pdList, pdMsg, fmt.Sprintf("/portDefinitions(%d)/port", i), d.Port)
	}
	if app.Container != nil {
		for i, pm := range app.Container.PortMappings {
			nPorts++
			checkName("/container/portMappings", fmt.Sprintf("/container/portMappings(%d)/name", i), pm.Name)
			checkService("/", msgPortsUnique, fmt.Sprintf("/container/portMappings(%d)/servicePort", i), pm.ServicePort)
			if pm.ContainerPort < 0 || pm.ContainerPort > 65535 {
				verr.add(fmt.Sprintf("/container/portMappings(%d)/containerPort", i), "must be between 0 and 65535")
			}
			if pm.HostPort != nil && (*pm.HostPort < 0 || *pm.HostPort > 65535) {
				verr.add(fmt.Sprintf("/container/portMappings(%d)/hostPort", i), "must be between 0 and 65535")
			}
		}
	}
	for i, hc := range app.HealthChecks {
		path := fmt.Sprintf("/healthChecks(%d)", i)
		switch hc.Protocol {
		case "HTTP", "HTTPS", "TCP", "MESOS_HTTP", "MESOS_HTTPS", "MESOS_TCP":
			if hc.Port == nil && hc.PortIndex != nil && (*hc.PortIndex < 0 || *hc.PortIndex >= nPorts) {
				verr.add(path, msgPortIndex)
			}
		case "COMMAND":
			if hc.Command == nil || hc.Command.Value == "" {
				verr.add(path+"/command", "must not be empty")
			}
		default:
			verr.add(path+"/protocol", "must be one of HTTP, HTTPS, TCP, COMMAND, MESOS_HTTP, MESOS_HTTPS, MESOS_TCP")
		}
		if hc.Port != nil && (*hc.Port < 0 || *hc.Port > 65535) {
			verr.add(path+"/port", "must be between 0 and 65535")
		}
		if hc.IntervalSeconds < 0 || hc.TimeoutSeconds < 0 || hc.GracePeriodSeconds < 0 || hc.MaxConsecutiveFailures < 0 {
			verr.add(path, "durations and maxConsecutiveFailures must be 0 or more")
		}
	}
	validateReadiness(app, names, verr)
	for i, d := range app.Dependencies {
		if strings.Trim(d, "/") == "" {
			verr.add(fmt.Sprintf("/dependencies(%d)", i), "must not be empty")
		}
	}
}

// validateReadiness checks readiness checks (spec §2.5) against the app's
// port names (names).
func validateReadiness(app *marathon.App, names map[string]bool, verr *ValidationError) {
	if len(app.ReadinessChecks) > 1 {
		verr.add("/readinessChecks", "Only one readinessCheck is supported")
	}
	for i, rc := range app.ReadinessChecks {
		path := fmt.Sprintf("/readinessChecks(%d)", i)
		if rc.Protocol != "HTTP" && rc.Protocol != "HTTPS" {
			verr.add(path+"/protocol", "must be one of HTTP, HTTPS")
		}
		if !strings.HasPrefix(rc.Path, "/") {
			verr.add(path+"/path", "must start with /")
		}
		if !names[rc.PortName] {
			verr.add(path+"/portName", fmt.Sprintf("no port named '%s' is defined by the app", rc.PortName))
		}
		if rc.IntervalSeconds < 1 {
			verr.add(path+"/intervalSeconds", "must be 1 or more")
		}
		if rc.TimeoutSeconds < 1 {
			verr.add(path+"/timeoutSeconds", "must be 1 or more")
		}
		if rc.TimeoutSeconds >= rc.IntervalSeconds {
			verr.add(path+"/timeoutSeconds", "must be less than intervalSeconds")
		}
		for j, code := range rc.HTTPStatusCodesForReady {
			if code < 100 || code > 599 {
				verr.add(fmt.Sprintf("%s/httpStatusCodesForReady(%d)", path, j), "must be an HTTP status code (100-599)")
			}
		}
	}
}

// Marathon 1.10's constraint messages (SchedulingValidationMessages).
const (
	msgConstraintFields     = "Each constraint must have either 2 or 3 fields"
	msgConstraintField      = "missing field for constraint declaration"
	msgConstraintOperator   = "operator must be one of the following UNIQUE, CLUSTER, GROUP_BY, LIKE, MAX_PER, UNLIKE or IS"
	msgConstraintUnique     = "UNIQUE does not accept a value"
	msgConstraintGroupBy    = "GROUP BY must define an integer value or else no value at all"
	msgConstraintMaxPer     = "MAX_PER requires an integer value"
	msgConstraintLike       = "LIKE and UNLIKE require a non-empty, regular expression value"
	msgConstraintRegexp     = "is not a valid regular expression"
	msgConstraintIsOnlyText = "IS only supports Mesos text and float values (see http://mesos.apache.org/documentation/latest/attributes-resources/)"
)

// mesosTextOrFloat is the value an IS constraint accepts.
var mesosTextOrFloat = regexp.MustCompile(`^[a-zA-Z0-9_/.-]*$`)

// checkConstraint returns Marathon's message when c is malformed.
func checkConstraint(c []string) string {
	if len(c) < 2 || len(c) > 3 {
		return msgConstraintFields
	}
	if c[0] == "" {
		return msgConstraintField
	}
	op := strings.ToUpper(c[1])
	if !slices.Contains(operators, op) {
		return msgConstraintOperator
	}
	value, hasValue := "", len(c) == 3
	if hasValue {
		value = c[2]
	}
	switch op {
	case "UNIQUE":
		if hasValue {
			return msgConstraintUnique
		}
	case "LIKE", "UNLIKE":
		if value == "" {
			return msgConstraintLike
		}
		if _, err := regexp.Compile(value); err != nil {
			return msgConstraintRegexp
		}
	case "MAX_PER":
		if _, err := strconv.ParseInt(value, 10, 32); err != nil {
			return msgConstraintMaxPer
		}
	case "GROUP_BY":
		if hasValue {
			if _, err := strconv.ParseInt(value, 10, 32); err != nil {
				return msgConstraintGroupBy
			}
		}
	case "IS":
		if !mesosTextOrFloat.MatchString(value) {
			return msgConstraintIsOnlyText
		}
	}
	return ""
}

// readOnlyKeys are AppInfo members a client may echo back but never sets.
var readOnlyKeys = []string{"tasksStaged", "tasksRunning", "tasksHealthy", "tasksUnhealthy", "deployments", "tasks",
	"lastTaskFailure", "version", "versionInfo", "readinessCheckResults", "taskStats", "tasksStats"}

// MergeApp applies a partial update (the members present and non-null in
// patch) to the current definition and returns the decoded, normalized and
// validated result. The id always comes from id. With current nil the patch
// is a whole new definition.
func MergeApp(id string, current *marathon.App, patch []byte) (marathon.App, error) {
	if len(bytes.TrimSpace(patch)) == 0 {
		return marathon.App{}, badJSON(errEmptyBody)
	}
	p, err := rawObject(patch)
	if err != nil {
		return marathon.App{}, badJSON(err)
	}
	merged := map[string]json.RawMessage{}
	if current != nil {
		b, err := json.Marshal(current)
		if err != nil {
			return marathon.App{}, fmt.Errorf("encode current app: %w", err)
		}
		if merged, err = rawObject(b); err != nil {
			return marathon.App{}, fmt.Errorf("decode current app: %w", err)
		}
		if len(current.PortDefinitions) == 0 && !has(merged, "portDefinitions") {
			merged["portDefinitions"] = json.RawMessage("[]")
		}
		if current.Container != nil && len(current.Container.PortMappings) == 0 {
			if cm := members(merged["container"]); len(cm) > 0 && !has(cm, "portMappings") {
				cm["portMappings"] = json.RawMessage("[]")
				b, _ := json.Marshal(cm)
				merged["container"] = b
			}
		}
		for _, k := range readOnlyKeys {
			delete(merged, k)
		}
		// A patch that sets one form of a mirrored field replaces the other.
		if has(p, "portDefinitions") && !has(p, "ports") {
			delete(merged, "ports")
		}
		if has(p, "ports") && !has(p, "portDefinitions") {
			delete(merged, "portDefinitions")
		}
		if has(p, "networks") || has(p, "container") || has(p, "ipAddress") {
			if !has(p, "networks") {
				delete(merged, "networks")
			}
			if has(p, "networks") && !has(p, "ports") && !has(p, "portDefinitions") {
				delete(merged, "ports")
			}
		}
	}
	for k, v := range p {
		if slices.Contains(readOnlyKeys, k) {
			continue
		}
		merged[k] = v
	}
	idJSON, _ := json.Marshal(id)
	merged["id"] = idJSON
	return decodeRaw(merged)
}
