package sandbox

// ShareRole is what a sandbox's owner lets another principal do on it (docs/api.md,
// "Identity and authorization"). The roles are ordered: a developer may do everything a
// viewer may, and the owner everything a developer may.
type ShareRole string

const (
	// ShareViewer reads the sandbox: status, health, events.
	ShareViewer ShareRole = "viewer"
	// ShareDeveloper also acts on it as a worker's developer does: connect (which rotates the
	// one set of worker credentials), extend, map and unmap guilds, rewind its stream.
	ShareDeveloper ShareRole = "developer"
)

// ShareRoles lists the roles, least first.
func ShareRoles() []ShareRole { return []ShareRole{ShareViewer, ShareDeveloper} }

// Valid reports whether r is one of the roles.
func (r ShareRole) Valid() bool { return r == ShareViewer || r == ShareDeveloper }

// ParseShareRole reads a role as a caller typed it: "viewer" or "developer", exactly.
func ParseShareRole(s string) (ShareRole, error) {
	if r := ShareRole(s); r.Valid() {
		return r, nil
	}
	return "", InvalidField("role", "role %q is neither %q nor %q", truncate(s, 40), ShareViewer, ShareDeveloper)
}
