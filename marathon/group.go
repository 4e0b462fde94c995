package marathon

// GroupMeta is a group stored on its own. Switchyard derives most groups
// from app ids (every prefix of an app id is a group); a group created
// explicitly (it may hold no app, like Marathon's /tools/log example) or
// given settings is also stored, with its version and enforceRole.
type GroupMeta struct {
	ID string `json:"id"`
	// EnforceRole makes new apps under this top-level group default to
	// (and be limited to) the group's role, its name.
	EnforceRole bool `json:"enforceRole,omitempty"`
	// Version is when the group last changed.
	Version string `json:"version,omitempty"`
}
