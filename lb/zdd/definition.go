package zdd

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/switchyard/switchyard/marathon"
)

// Labels zdd reads and writes (marathon-lb's names).
const (
	LabelGroup           = "HAPROXY_DEPLOYMENT_GROUP"
	LabelAltPort         = "HAPROXY_DEPLOYMENT_ALT_PORT"
	LabelColour          = "HAPROXY_DEPLOYMENT_COLOUR"
	LabelStartedAt       = "HAPROXY_DEPLOYMENT_STARTED_AT"
	LabelTargetInstances = "HAPROXY_DEPLOYMENT_TARGET_INSTANCES"
	// LabelNewInstances is the hybrid split of a deployment (0: none).
	LabelNewInstances = "HAPROXY_DEPLOYMENT_NEW_INSTANCES"
	// LabelAppID keeps the id the definition had before the colour suffix.
	LabelAppID = "HAPROXY_APP_ID"
	// LabelPort0 makes both colours bind the same (main) service port in
	// the load balancer while their Marathon service ports differ.
	LabelPort0 = "HAPROXY_0_PORT"
)

// Colours of a blue/green pair.
const (
	Blue  = "blue"
	Green = "green"
)

// readOnlyFields are AppInfo fields a definition exported from GET
// /v2/apps/{id} may carry and POST /v2/apps must not get.
var readOnlyFields = []string{"version", "versionInfo", "tasks", "deployments", "tasksStaged",
	"tasksRunning", "tasksHealthy", "tasksUnhealthy", "lastTaskFailure", "readinessCheckResults"}

// Definition is an app JSON definition being prepared for deployment. It
// keeps every field of the file (also those marathon.App does not model)
// and edits only id, instances, labels and the first service port.
type Definition struct {
	raw map[string]any
}

// ParseDefinition decodes an app definition and checks what a blue/green
// deployment needs: an id, the HAPROXY_DEPLOYMENT_GROUP and
// HAPROXY_DEPLOYMENT_ALT_PORT labels (the latter a port number) and a
// non-zero first service port.
func ParseDefinition(b []byte) (*Definition, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var raw map[string]any
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("app definition: %w", err)
	}
	if raw == nil {
		return nil, errors.New("app definition: want a JSON object")
	}
	for _, f := range readOnlyFields {
		delete(raw, f)
	}
	d := &Definition{raw: raw}
	if strings.Trim(d.ID(), "/") == "" {
		return nil, errors.New("app definition: no id")
	}
	labels := d.Labels()
	if strings.TrimSpace(labels[LabelGroup]) == "" {
		return nil, fmt.Errorf("app definition %s: the %s label is required", d.ID(), LabelGroup)
	}
	alt := strings.TrimSpace(labels[LabelAltPort])
	if alt == "" {
		return nil, fmt.Errorf("app definition %s: the %s label is required", d.ID(), LabelAltPort)
	}
	if p, err := strconv.Atoi(alt); err != nil || p <= 0 || p > 65535 {
		return nil, fmt.Errorf("app definition %s: %s=%q is not a port number", d.ID(), LabelAltPort, alt)
	}
	if _, err := d.ServicePort(); err != nil {
		return nil, err
	}
	return d, nil
}

// ID returns the definition's id as written (canonical form: "/" prefix).
func (d *Definition) ID() string {
	s, _ := d.raw["id"].(string)
	return marathon.CanonicalID(s)
}

// Group returns the HAPROXY_DEPLOYMENT_GROUP label.
func (d *Definition) Group() string { return strings.TrimSpace(d.Labels()[LabelGroup]) }

// AltPort returns the HAPROXY_DEPLOYMENT_ALT_PORT label (checked by
// ParseDefinition).
func (d *Definition) AltPort() int {
	p, _ := strconv.Atoi(strings.TrimSpace(d.Labels()[LabelAltPort]))
	return p
}

// Labels returns a copy of the labels (non-string values are skipped).
func (d *Definition) Labels() map[string]string {
	out := map[string]string{}
	m, _ := d.raw["labels"].(map[string]any)
	for k, v := range m {
		if s, ok := v.(string); ok {
			out[k] = s
		}
	}
	return out
}

// SetLabel sets one label.
func (d *Definition) SetLabel(k, v string) {
	m, ok := d.raw["labels"].(map[string]any)
	if !ok {
		m = map[string]any{}
		d.raw["labels"] = m
	}
	m[k] = v
}

// Instances returns the definition's instances (Marathon's default 1 when
// absent or invalid).
func (d *Definition) Instances() int {
	if n, ok := d.raw["instances"].(json.Number); ok {
		if v, err := n.Int64(); err == nil && v >= 0 {
			return int(v)
		}
	}
	return 1
}

// SetInstances sets instances.
func (d *Definition) SetInstances(n int) { d.raw["instances"] = n }

// SetID sets the id.
func (d *Definition) SetID(id string) { d.raw["id"] = marathon.CanonicalID(id) }

// portSlot is where the first service port of a definition lives.
type portSlot struct {
	list []any // the list holding the first port entry
	key  string
}

// slots lists, in marathon-lb's order of precedence, the places a first
// service port may be: docker port mappings, container port mappings,
// portDefinitions, ports.
func (d *Definition) slots() []portSlot {
	var out []portSlot
	if c, ok := d.raw["container"].(map[string]any); ok {
		if dk, ok := c["docker"].(map[string]any); ok {
			if l, ok := dk["portMappings"].([]any); ok && len(l) > 0 {
				out = append(out, portSlot{l, "servicePort"})
			}
		}
		if l, ok := c["portMappings"].([]any); ok && len(l) > 0 {
			out = append(out, portSlot{l, "servicePort"})
		}
	}
	if l, ok := d.raw["portDefinitions"].([]any); ok && len(l) > 0 {
		out = append(out, portSlot{l, "port"})
	}
	if l, ok := d.raw["ports"].([]any); ok && len(l) > 0 {
		out = append(out, portSlot{l, ""})
	}
	return out
}

func (s portSlot) get() int {
	v := s.list[0]
	if s.key != "" {
		m, _ := v.(map[string]any)
		v = m[s.key]
	}
	n, _ := v.(json.Number)
	p, err := strconv.Atoi(n.String())
	if err != nil {
		return 0
	}
	return p
}

func (s portSlot) set(p int) {
	if s.key == "" {
		s.list[0] = json.Number(strconv.Itoa(p))
		return
	}
	if m, ok := s.list[0].(map[string]any); ok {
		m[s.key] = json.Number(strconv.Itoa(p))
	}
}

// ServicePort returns the first service port; zero or missing is an
// error, since a blue/green pair needs two fixed ports.
func (d *Definition) ServicePort() (int, error) {
	for _, s := range d.slots() {
		if p := s.get(); p > 0 {
			return p, nil
		}
	}
	return 0, fmt.Errorf("app definition %s: no service port (set container.portMappings[0].servicePort, portDefinitions[0].port or ports[0]; only the first port is switched)", d.ID())
}

// SetServicePort sets the first service port everywhere it is given.
func (d *Definition) SetServicePort(p int) {
	for _, s := range d.slots() {
		s.set(p)
	}
}

// MarshalJSON encodes the definition.
func (d *Definition) MarshalJSON() ([]byte, error) { return json.Marshal(d.raw) }

// clone returns a deep copy.
func (d *Definition) clone() *Definition {
	b, _ := json.Marshal(d.raw)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	c := &Definition{}
	_ = dec.Decode(&c.raw) // it was encoded from the same kind of value just above
	return c
}

// servicePortOf returns an app's first service port, looked up in the
// same order as Definition.ServicePort; 0 when it has none.
func servicePortOf(a marathon.App) int {
	if c := a.Container; c != nil {
		if c.Docker != nil && len(c.Docker.PortMappings) > 0 && c.Docker.PortMappings[0].ServicePort > 0 {
			return c.Docker.PortMappings[0].ServicePort
		}
		if len(c.PortMappings) > 0 && c.PortMappings[0].ServicePort > 0 {
			return c.PortMappings[0].ServicePort
		}
	}
	if len(a.PortDefinitions) > 0 && a.PortDefinitions[0].Port > 0 {
		return a.PortDefinitions[0].Port
	}
	if len(a.Ports) > 0 {
		return a.Ports[0]
	}
	return 0
}
