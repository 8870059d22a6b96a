package controlplane

// Audit actions of the API's operations on a sandbox's event stream, recorded through Audit.
const (
	// ActionRewind records a rewind of the stream's consumer group: who, to where, from where,
	// and whether the stream's retention clamped it.
	ActionRewind = "sandbox.rewind"
)
