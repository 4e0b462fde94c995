package httpapi

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/switchyard/switchyard/marathon"
)

// Marathon 1.10 reads an app through its RAML types before it validates
// it: a value outside an enum or a string that misses its pattern fails
// that reading, and Marathon answers 422 with the message "Invalid JSON"
// and play-json's error keys (error.unknown.enum.literal, error.pattern,
// error.maxLength). ramlErrors does that reading's checks on the raw
// members, before normalization fills defaults.

// msgInvalidJSON is the message of the RAML-reading 422 (and of the 400
// for a body that is not JSON).
const msgInvalidJSON = "Invalid JSON"

// networkName is Marathon's strings.NetworkName.
var networkName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9_]*[a-z0-9])?$`)

var (
	networkProtocols = []string{"tcp", "udp", "udp,tcp"}
	readModes        = []string{"RO", "RW"}
)

// ramlErrors returns the RAML-reading failures of an app's raw members,
// or nil.
func ramlErrors(raw map[string]json.RawMessage) *ValidationError {
	ve := &ValidationError{Message: msgInvalidJSON}
	enum := func(path string, v json.RawMessage, allowed []string) {
		var s string
		if json.Unmarshal(v, &s) != nil {
			return // a type error; decoding reports it
		}
		for _, a := range allowed {
			if s == a {
				return
			}
		}
		ve.add(path, "error.unknown.enum.literal")
	}
	for i, pd := range rawArray(raw["portDefinitions"]) {
		if p, ok := members(pd)["protocol"]; ok {
			enum(fmt.Sprintf("/portDefinitions(%d)/protocol", i), p, networkProtocols)
		}
	}
	container := members(raw["container"])
	docker := members(container["docker"])
	for _, list := range []struct {
		path string
		v    json.RawMessage
	}{{"/container/portMappings", container["portMappings"]}, {"/container/docker/portMappings", docker["portMappings"]}} {
		for i, pm := range rawArray(list.v) {
			if p, ok := members(pm)["protocol"]; ok {
				enum(fmt.Sprintf("%s(%d)/protocol", list.path, i), p, networkProtocols)
			}
		}
	}
	for i, v := range rawArray(container["volumes"]) {
		if m, ok := members(v)["mode"]; ok {
			enum(fmt.Sprintf("/container/volumes(%d)/mode", i), m, readModes)
		}
	}
	for i, n := range rawArray(raw["networks"]) {
		var name string
		if v, ok := members(n)["name"]; ok && json.Unmarshal(v, &name) == nil {
			path := fmt.Sprintf("/networks(%d)/name", i)
			switch {
			case len(name) > 63:
				ve.add(path, "error.maxLength")
			case !networkName.MatchString(name):
				ve.add(path, "error.pattern")
			}
		}
	}
	if len(ve.Details) == 0 {
		return nil
	}
	return ve
}

// rawArray returns the elements of a JSON array (nil for anything else).
func rawArray(v json.RawMessage) []json.RawMessage {
	var a []json.RawMessage
	if json.Unmarshal(v, &a) != nil {
		return nil
	}
	return a
}

// validateRaw applies the validations of Marathon's AppValidation that
// need the members as sent (before defaults fill them) to app, the decoded
// but not yet normalized app.
func validateRaw(app *marathon.App, raw map[string]json.RawMessage, verr *ValidationError) {
	// Dependencies must be valid path ids.
	for i, d := range app.Dependencies {
		path := fmt.Sprintf("/dependencies(%d)", i)
		segs := strings.Split(strings.Trim(d, "/"), "/")
		for _, s := range segs {
			if !idSegment.MatchString(s) && s != "." && s != ".." {
				verr.add(path, "must fully match regular expression '"+idPatternText+"'")
				break
			}
		}
		switch segs[len(segs)-1] {
		case "restart", "tasks", "versions", ".", "..":
			verr.add(path, msgReservedSuffix)
		}
	}
	// An empty httpStatusCodesForReady is refused; an absent one defaults
	// to [200] (normalize).
	for i, rc := range rawArray(raw["readinessChecks"]) {
		if codes, ok := members(rc)["httpStatusCodesForReady"]; ok {
			if a := rawArray(codes); a != nil && len(a) == 0 {
				verr.add(fmt.Sprintf("/readinessChecks(%d)/httpStatusCodesForReady", i), "must not be empty")
			}
		}
	}
	// Resident tasks (persistent volumes) are never replaced when their
	// agent is lost: an explicit unreachableStrategy must be "disabled",
	// and an absent one defaults to it.
	if hasPersistentVolume(app) {
		switch {
		case app.UnreachableStrategy == nil:
			d := marathon.DisabledUnreachableStrategy()
			app.UnreachableStrategy = &d
		case !app.UnreachableStrategy.Disabled:
			verr.add("/", "unreachableStrategy must be disabled for resident tasks")
		}
	}
	// Secret volumes must name one of the app's secrets.
	if app.Container != nil {
		var secrets map[string]json.RawMessage
		_ = json.Unmarshal(app.Secrets, &secrets)
		for i, v := range app.Container.Volumes {
			if v.Secret != "" {
				if _, ok := secrets[v.Secret]; !ok {
					verr.add(fmt.Sprintf("/container/volumes(%d)", i), "volume.secret must refer to an existing secret")
				}
			}
		}
	}
}

func hasPersistentVolume(app *marathon.App) bool {
	if app.Container == nil {
		return false
	}
	for _, v := range app.Container.Volumes {
		if len(v.Persistent) > 0 && string(v.Persistent) != "null" {
			return true
		}
	}
	return false
}
