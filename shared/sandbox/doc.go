// Package sandbox is the domain of Discord server sandboxes: the Sandbox type, its status
// machine, the validation rules for everything a user can type, the limits that bound a
// sandbox, and the typed errors (with stable codes) that every layer above maps to its own
// representation (HTTP statuses, CLI exit codes).
//
// It is pure: no I/O, no clocks except those passed in, and no import of the project: every
// other package may build on it (docs/architecture.md, "Dependency rules").
package sandbox
