package marathon

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Errors returned by ParseEvent and DecodeApps; match them with errors.Is.
var (
	// ErrInvalidJSON means a body or an event's data is not one valid JSON
	// value of the expected shape.
	ErrInvalidJSON = errors.New("invalid JSON")
	// ErrMissingEventType means an event's JSON has no usable eventType.
	ErrMissingEventType = errors.New("missing eventType")
	// ErrEventTypeMismatch means the SSE event name and the JSON eventType
	// disagree.
	ErrEventTypeMismatch = errors.New("event name and eventType disagree")
)

// maxEventTypeLen bounds the length of an event type name. Marathon's
// longest is well under 40 bytes; anything much longer is garbage.
const maxEventTypeLen = 128

// ParseEvent decodes one SSE frame (its "event:" name and its joined
// "data:" lines) into an Event. The JSON must be one object carrying a
// string eventType made of letters, digits, '_', '-' or '.'. The name may be
// empty (a frame without an "event:" line); when it is not, it must equal
// eventType, as Marathon always writes both. A timestamp that is not a JSON
// string is ignored rather than rejected. Data is a copy of the trimmed
// input, so the caller may reuse its buffer. ParseEvent never panics on any
// input; it returns an error wrapping ErrInvalidJSON, ErrMissingEventType or
// ErrEventTypeMismatch.
func ParseEvent(name string, data []byte) (Event, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' || !json.Valid(data) {
		return Event{}, fmt.Errorf("parse event %.64q: %w", name, ErrInvalidJSON)
	}
	var head struct {
		EventType json.RawMessage `json:"eventType"`
		Timestamp json.RawMessage `json:"timestamp"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return Event{}, fmt.Errorf("parse event %.64q: %w: %v", name, ErrInvalidJSON, err)
	}
	var eventType string
	if len(head.EventType) == 0 || json.Unmarshal(head.EventType, &eventType) != nil || !validEventType(eventType) {
		return Event{}, fmt.Errorf("parse event %.64q: %w", name, ErrMissingEventType)
	}
	if name != "" && name != eventType {
		return Event{}, fmt.Errorf("parse event %.64q: eventType %q: %w", name, eventType, ErrEventTypeMismatch)
	}
	var ts string
	if len(head.Timestamp) > 0 {
		// Only a JSON string counts; any other type leaves ts empty.
		_ = json.Unmarshal(head.Timestamp, &ts)
	}
	return Event{Type: eventType, Timestamp: ts, Data: bytes.Clone(data)}, nil
}

// validEventType reports whether s looks like an event type name.
func validEventType(s string) bool {
	if s == "" || len(s) > maxEventTypeLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-', c == '.':
		default:
			return false
		}
	}
	return true
}

// DecodeApps strictly decodes the body of GET /v2/apps: one JSON object
// whose "apps" member is an array of app objects, each with a non-empty id.
// Unknown fields are ignored (Marathon versions add fields freely), but a
// syntax error, a field of the wrong JSON type, trailing data, a missing or
// null "apps", a null entry or an app without id fails the whole body: the
// caller never gets a partial list it could mistake for the cluster's state.
// Errors wrap ErrInvalidJSON.
func DecodeApps(data []byte) ([]App, error) {
	return DecodeAppsFrom(bytes.NewReader(data))
}

// DecodeAppsFrom is DecodeApps reading the body from r as a stream: apps
// are decoded one by one, so the whole body (tens of MB for thousands of
// apps) is never held in memory. The rules and errors are DecodeApps'.
func DecodeAppsFrom(r io.Reader) ([]App, error) {
	dec := json.NewDecoder(r)
	fail := func(format string, args ...any) ([]App, error) {
		return nil, fmt.Errorf("decode apps: %w: "+format, append([]any{ErrInvalidJSON}, args...)...)
	}
	if tok, err := dec.Token(); err != nil {
		return fail("%v", err)
	} else if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fail("body is not a JSON object")
	}
	var apps []App
	seen := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fail("%v", err)
		}
		key, _ := tok.(string)
		if key != "apps" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return fail("member %q: %v", key, err)
			}
			continue
		}
		// A repeated "apps" member replaces the earlier one, as in
		// json.Unmarshal.
		list, err := decodeAppArray(dec)
		if err != nil {
			return fail("%v", err)
		}
		apps, seen = list, list != nil
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return fail("%v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fail("trailing data after the body")
	}
	if !seen {
		return fail("no \"apps\" array")
	}
	for i := range apps {
		// A null entry decodes to a zero App and is caught here too.
		if apps[i].ID == "" {
			return nil, fmt.Errorf("decode apps: app %d: %w: missing id", i, ErrInvalidJSON)
		}
	}
	return apps, nil
}

// decodeAppArray reads the value of "apps": an array of apps (nil for
// null, which DecodeAppsFrom rejects).
func decodeAppArray(dec *json.Decoder) ([]App, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if tok == nil {
		return nil, nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, fmt.Errorf("\"apps\" is not an array")
	}
	apps := []App{}
	for dec.More() {
		var a App
		if err := dec.Decode(&a); err != nil {
			return nil, fmt.Errorf("app %d: %w", len(apps), err)
		}
		apps = append(apps, a)
	}
	if _, err := dec.Token(); err != nil { // the closing ']'
		return nil, err
	}
	return apps, nil
}
