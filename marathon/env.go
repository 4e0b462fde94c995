package marathon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// EnvVars is an app's environment. A value is either a plain string or,
// with Marathon's secrets feature, a reference to one of the app's secrets,
// written {"secret": "name"} on the wire (EnvVarSecret in Marathon's RAML).
//
// Plain values are the map's values, so code that only wants those can use
// it as a map[string]string. A secret reference is kept in the same map
// under a value no real environment value can have (it starts with a NUL
// byte, which execve cannot pass), so a definition round-trips through
// storage and the API unchanged; Plain and SecretRefs tell them apart.
type EnvVars map[string]string

// secretRefPrefix marks a secret reference inside EnvVars.
const secretRefPrefix = "\x00secret:"

// SetSecret makes name a reference to the app secret ref.
func (e EnvVars) SetSecret(name, ref string) { e[name] = secretRefPrefix + ref }

// SecretRefs returns the variables that reference secrets: name -> secret.
func (e EnvVars) SecretRefs() map[string]string {
	var out map[string]string
	for k, v := range e {
		if ref, ok := strings.CutPrefix(v, secretRefPrefix); ok {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = ref
		}
	}
	return out
}

// Plain returns the variables with plain values (no secret references).
func (e EnvVars) Plain() map[string]string {
	if e == nil {
		return nil
	}
	out := make(map[string]string, len(e))
	for k, v := range e {
		if !strings.HasPrefix(v, secretRefPrefix) {
			out[k] = v
		}
	}
	return out
}

// MarshalJSON writes plain values as strings and references as
// {"secret": "name"}, keys sorted as encoding/json sorts map keys.
func (e EnvVars) MarshalJSON() ([]byte, error) {
	if e == nil {
		return []byte("null"), nil
	}
	keys := make([]string, 0, len(e))
	for k := range e {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		b.Write(kb)
		b.WriteByte(':')
		v := e[k]
		var vb []byte
		if ref, ok := strings.CutPrefix(v, secretRefPrefix); ok {
			vb, err = json.Marshal(struct {
				Secret string `json:"secret"`
			}{ref})
		} else {
			vb, err = json.Marshal(v)
		}
		if err != nil {
			return nil, err
		}
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON reads an env object whose values are strings or
// {"secret": "name"}; anything else is a type error naming the variable.
func (e *EnvVars) UnmarshalJSON(b []byte) error {
	if string(bytes.TrimSpace(b)) == "null" {
		*e = nil
		return nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	out := make(EnvVars, len(raw))
	for k, v := range raw {
		v = bytes.TrimSpace(v)
		switch {
		case len(v) > 0 && v[0] == '"':
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return err
			}
			if strings.HasPrefix(s, "\x00") {
				return fmt.Errorf("env %q: a value cannot start with a NUL byte", k)
			}
			out[k] = s
		case len(v) > 0 && v[0] == '{':
			var ref struct {
				Secret *string `json:"secret"`
			}
			if err := json.Unmarshal(v, &ref); err != nil || ref.Secret == nil {
				return &json.UnmarshalTypeError{Value: "object", Type: reflect.TypeFor[string](), Field: k}
			}
			out.SetSecret(k, *ref.Secret)
		case string(v) == "null":
			// Marathon reads a null value as absent.
		default:
			return &json.UnmarshalTypeError{Value: jsonKindOf(v), Type: reflect.TypeFor[string](), Field: k}
		}
	}
	*e = out
	return nil
}

// jsonKindOf names the kind of a JSON value as UnmarshalTypeError does.
func jsonKindOf(v []byte) string {
	if len(v) == 0 {
		return ""
	}
	switch v[0] {
	case '[':
		return "array"
	case 't', 'f':
		return "bool"
	}
	return "number"
}

// SecretSources maps each env variable of a that references a secret to
// that secret's source (what an agent reads); references to undefined
// secrets are left out (the API refuses them).
func (a *App) SecretSources() map[string]string {
	refs := a.Env.SecretRefs()
	if len(refs) == 0 || len(a.Secrets) == 0 {
		return nil
	}
	var secrets map[string]struct {
		Source string `json:"source"`
	}
	if err := json.Unmarshal(a.Secrets, &secrets); err != nil {
		return nil
	}
	out := make(map[string]string, len(refs))
	for name, ref := range refs {
		if s, ok := secrets[ref]; ok && s.Source != "" {
			out[name] = s.Source
		}
	}
	return out
}
