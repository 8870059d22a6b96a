package cleanup

import (
	"encoding/json"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/provision"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// Step names one teardown step (docs/architecture.md, "Cleanup"). The names are also the keys
// of the record's JSON, and the step of a failure in a run's report (apiwire).
type Step = apiwire.TeardownStep

// The teardown steps, in the order they run.
const (
	StepMarkDestroying  Step = "mark_destroying"
	StepRemoveMappings  Step = "remove_mappings"
	StepInvalidateCache Step = "invalidate_cache"
	// StepDeleteRedisUser comes before the keys: once the user is gone, the sandbox's code can
	// write no key that the next step would miss.
	StepDeleteRedisUser Step = "delete_redis_user"
	StepDeleteKeys      Step = "delete_keys"
	StepDropDatabase    Step = "drop_schema_and_role"
	StepMarkDestroyed   Step = "mark_destroyed"
)

// Steps lists the teardown steps in the order they run.
func Steps() []Step {
	return []Step{StepMarkDestroying, StepRemoveMappings, StepInvalidateCache, StepDeleteRedisUser, StepDeleteKeys, StepDropDatabase, StepMarkDestroyed}
}

// Record is the teardown record of one sandbox, stored as JSON in its teardown column and
// shown by the API as it is. This type is the one home of the record's shape. A step's entry
// is present once the step completed; the next run resumes at the first step without one.
type Record struct {
	StartedAt       *time.Time     `json:"started_at,omitempty"`
	MarkDestroying  *MarkStep      `json:"mark_destroying,omitempty"`
	RemoveMappings  *MappingsStep  `json:"remove_mappings,omitempty"`
	InvalidateCache *CacheStep     `json:"invalidate_cache,omitempty"`
	DeleteKeys      *KeysStep      `json:"delete_keys,omitempty"`
	DeleteRedisUser *RedisUserStep `json:"delete_redis_user,omitempty"`
	DropDatabase    *DatabaseStep  `json:"drop_schema_and_role,omitempty"`
	MarkDestroyed   *MarkStep      `json:"mark_destroyed,omitempty"`
	// LastFailure is the most recent failed attempt; the sandbox's cleanup_attempts counts them.
	LastFailure *Failure `json:"last_failure,omitempty"`
}

// MarkStep records a status change of the teardown.
type MarkStep struct {
	At    time.Time      `json:"at"`
	Actor string         `json:"actor"`
	From  sandbox.Status `json:"from"`
	// Reason says why the sandbox is torn down (controlplane.TeardownReason).
	Reason string `json:"reason,omitempty"`
}

// MappingsStep records the guild mappings removed; Guilds is what the cache step invalidates.
type MappingsStep struct {
	At      time.Time `json:"at"`
	Removed int       `json:"mappings_removed"`
	Guilds  []string  `json:"guilds"`
}

// CacheStep records the route cache entries deleted for the removed guilds.
type CacheStep struct {
	At          time.Time `json:"at"`
	Invalidated int       `json:"entries_invalidated"`
}

// KeysStep records the Redis keys of the sandbox's namespace that were unlinked, and whether
// its usage hash (outside the namespace, keys.Usage) existed and was unlinked too.
type KeysStep struct {
	At            time.Time `json:"at"`
	Unlinked      int64     `json:"keys_unlinked"`
	Primaries     int       `json:"primaries_scanned"`
	UsageUnlinked bool      `json:"usage_unlinked,omitempty"`
}

// RedisUserStep records the deletion of the sandbox's Redis ACL user, which also closed the
// connections authenticated as it.
type RedisUserStep struct {
	At time.Time `json:"at"`
	provision.RedisUserResult
}

// DatabaseStep records what dropping the schema and the role found.
type DatabaseStep struct {
	At                 time.Time `json:"at"`
	SessionsTerminated int       `json:"sessions_terminated"`
	SchemaExisted      bool      `json:"schema_existed"`
	RoleExisted        bool      `json:"role_existed"`
}

// Failure is a failed attempt at a step.
type Failure struct {
	At    time.Time `json:"at"`
	Step  Step      `json:"step"`
	Error string    `json:"error"`
}

// ParseRecord decodes a stored record; an empty document is an empty record.
func ParseRecord(raw json.RawMessage) (Record, error) {
	var r Record
	if len(raw) == 0 {
		return r, nil
	}
	err := json.Unmarshal(raw, &r)
	return r, err
}

// Completed reports whether step has completed for a sandbox in status. The status decides
// for the last step: its entry is written just before the status changes, so that a crash
// between the two leaves the step to be done again rather than a destroyed sandbox whose
// record lacks its end.
func (r Record) Completed(step Step, status sandbox.Status) bool {
	switch step {
	case StepMarkDestroying:
		return r.MarkDestroying != nil && (status == sandbox.StatusDestroying || status == sandbox.StatusDestroyed)
	case StepRemoveMappings:
		return r.RemoveMappings != nil
	case StepInvalidateCache:
		return r.InvalidateCache != nil
	case StepDeleteKeys:
		return r.DeleteKeys != nil
	case StepDeleteRedisUser:
		return r.DeleteRedisUser != nil
	case StepDropDatabase:
		return r.DropDatabase != nil
	case StepMarkDestroyed:
		return status == sandbox.StatusDestroyed
	}
	return false
}

// Next returns the first step not completed, or "" when the teardown is complete.
func (r Record) Next(status sandbox.Status) Step {
	for _, s := range Steps() {
		if !r.Completed(s, status) {
			return s
		}
	}
	return ""
}
