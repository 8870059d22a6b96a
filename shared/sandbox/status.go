package sandbox

import "time"

// Status is the stored lifecycle state of a sandbox (docs/architecture.md, "Status machine").
type Status string

// Stored statuses. "expired" is never stored: see DisplayStatus.
const (
	StatusCreating   Status = "creating"
	StatusRunning    Status = "running"
	StatusFailed     Status = "failed"
	StatusDestroying Status = "destroying"
	StatusDestroyed  Status = "destroyed"
)

// DisplayExpired is the status shown for a running sandbox past its expiry.
const DisplayExpired = "expired"

// transitions is the status machine: the only legal moves. The store enforces them with
// conditional updates built from Sources, never by reading then writing.
var transitions = map[Status][]Status{
	StatusCreating:   {StatusRunning, StatusFailed, StatusDestroying},
	StatusRunning:    {StatusDestroying},
	StatusFailed:     {StatusDestroying},
	StatusDestroying: {StatusDestroyed},
}

// Statuses lists every stored status in lifecycle order.
func Statuses() []Status {
	return []Status{StatusCreating, StatusRunning, StatusFailed, StatusDestroying, StatusDestroyed}
}

// Valid reports whether s is a stored status.
func (s Status) Valid() bool {
	for _, v := range Statuses() {
		if s == v {
			return true
		}
	}
	return false
}

// CanTransition reports whether from -> to is legal.
func CanTransition(from, to Status) bool {
	for _, t := range transitions[from] {
		if t == to {
			return true
		}
	}
	return false
}

// Sources lists the statuses from which a move to `to` is legal, in lifecycle order.
func Sources(to Status) []Status {
	var out []Status
	for _, from := range Statuses() {
		if CanTransition(from, to) {
			out = append(out, from)
		}
	}
	return out
}

// Live reports whether a sandbox in this status still counts against quotas and names.
func (s Status) Live() bool { return s != StatusDestroyed }

// DisplayStatus is the status shown to people: "expired" for a running sandbox whose expiry
// has passed, the stored status otherwise.
func DisplayStatus(s Status, expiresAt, now time.Time) string {
	if s == StatusRunning && !now.Before(expiresAt) {
		return DisplayExpired
	}
	return string(s)
}
