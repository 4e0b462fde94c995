package httpapi

import (
	"encoding/json"
	"sort"
	"strings"

	"github.com/switchyard/switchyard/marathon"
)

// validateSecrets checks an app's secrets as Marathon does with its
// secrets feature enabled: every secret has a non-empty name and source,
// and every env reference ({"secret": "name"}) names a defined secret.
// Agents resolve a secret's source to a file (agent --secrets-dir).
func validateSecrets(app *marathon.App, verr *ValidationError) {
	defs := map[string]bool{}
	if len(app.Secrets) > 0 {
		var secrets map[string]json.RawMessage
		if err := json.Unmarshal(app.Secrets, &secrets); err != nil {
			verr.add("/secrets", "error.expected.jsobject")
		}
		names := make([]string, 0, len(secrets))
		for n := range secrets {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			if strings.TrimSpace(n) == "" {
				verr.add("/secrets", "secret names must not be empty")
				continue
			}
			var def struct {
				Source *string `json:"source"`
			}
			if err := json.Unmarshal(secrets[n], &def); err != nil {
				verr.add("/secrets/"+n, "error.expected.jsobject")
				continue
			}
			if def.Source == nil || strings.TrimSpace(*def.Source) == "" {
				verr.add("/secrets/"+n+"/source", "must not be empty")
				continue
			}
			defs[n] = true
		}
	}
	refs := app.Env.SecretRefs()
	names := make([]string, 0, len(refs))
	for n := range refs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if !defs[refs[n]] {
			verr.add("/env/"+n+"/secret", "references an undefined secret")
		}
	}
}
