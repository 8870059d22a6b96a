package sandbox

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

var (
	nameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{2,31}$`)
	idRE   = regexp.MustCompile(`^[a-z0-9]{12,20}$`)
)

// NamePattern is the rule a sandbox name follows, for messages and docs.
const NamePattern = `^[a-z][a-z0-9-]{2,31}$`

// ValidateName checks a user-facing sandbox name.
func ValidateName(name string) error {
	if !nameRE.MatchString(name) {
		return InvalidField("name", "name %q must match %s (3-32 characters: lowercase letters, digits and '-', starting with a letter)", truncate(name, 40), NamePattern)
	}
	return nil
}

// ValidID reports whether id is a well-formed sandbox id. Only valid ids ever reach SQL
// identifiers or Redis patterns.
func ValidID(id string) bool { return idRE.MatchString(id) }

// ValidGuildID reports whether s is a Discord snowflake in canonical form (ValidSnowflake).
func ValidGuildID(s string) bool { return ValidSnowflake(s) }

// ValidateGuildID checks one guild id.
func ValidateGuildID(id string) error {
	if !ValidGuildID(id) {
		return InvalidField("guild_id", "guild id %q is not a Discord id (%s)", truncate(id, 40), SnowflakeRule)
	}
	return nil
}

// GuildNoteMax bounds the text an admin keeps with a guild: a registered test guild's note,
// a protected guild's reason.
const GuildNoteMax = 200

// ValidateGuildNote checks the note or reason an admin keeps with a guild: at most
// GuildNoteMax printable characters.
func ValidateGuildNote(field, note string) error {
	if len([]rune(note)) > GuildNoteMax || !printable(note) {
		return InvalidField(field, "%s must be at most %d printable characters", field, GuildNoteMax)
	}
	return nil
}

// NormalizeGuilds validates, de-duplicates and sorts guild ids, enforcing MaxGuilds.
func (l Limits) NormalizeGuilds(ids []string) ([]string, error) {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if !ValidGuildID(id) {
			return nil, InvalidField("guilds", "guild id %q is not a Discord id (%s)", truncate(id, 40), SnowflakeRule)
		}
		out = append(out, id)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > l.MaxGuilds {
		return nil, InvalidField("guilds", "a sandbox may have at most %d guilds, got %d", l.MaxGuilds, len(out))
	}
	return out, nil
}

// ValidateOwner checks an owner (an IAM principal ARN or a local principal name).
func ValidateOwner(owner string) error {
	if owner == "" || len(owner) > 512 || !utf8.ValidString(owner) {
		return InvalidField("owner", "owner must be 1-512 characters of valid UTF-8")
	}
	if !printable(owner) {
		return InvalidField("owner", "owner must not contain control characters")
	}
	return nil
}

// ResolveTTL returns the TTL to use on create: DefaultTTL when ttl is zero, and an error
// when it is outside [MinTTL, MaxLifetime].
func (l Limits) ResolveTTL(ttl time.Duration) (time.Duration, error) {
	if ttl == 0 {
		ttl = l.DefaultTTL
	}
	if ttl < l.MinTTL {
		return 0, InvalidField("ttl", "ttl %s is shorter than the minimum %s", FormatDuration(ttl), FormatDuration(l.MinTTL))
	}
	if ttl > l.MaxLifetime {
		return 0, InvalidField("ttl", "ttl %s exceeds the maximum lifetime %s", FormatDuration(ttl), FormatDuration(l.MaxLifetime))
	}
	return ttl, nil
}

// ExtendedExpiry computes the expiry after extending by `by`: the current expiry plus by,
// capped at createdAt + MaxLifetime (however long `by` is: the cap is the answer to a long
// extension, not a refusal). It reports whether the cap applied, and refuses an extension
// shorter than MinTTL (invalid_input, field by) and one of a sandbox that already expires at
// the cap (invalid_transition: no `by` could move it).
func (l Limits) ExtendedExpiry(createdAt, expiresAt time.Time, by time.Duration) (time.Time, bool, error) {
	if by < l.MinTTL {
		return time.Time{}, false, InvalidField("by", "extension %s is shorter than the minimum %s", FormatDuration(by), FormatDuration(l.MinTTL))
	}
	limit := createdAt.Add(l.MaxLifetime)
	if !limit.After(expiresAt) {
		return time.Time{}, false, Errorf(CodeInvalidTransition,
			"the sandbox already expires at its maximum lifetime (%s after creation, at %s) and cannot be extended further; create a new sandbox",
			FormatDuration(l.MaxLifetime), limit.UTC().Format(time.RFC3339))
	}
	// Compared as a remaining time rather than as expiresAt.Add(by), which could overflow.
	if by <= limit.Sub(expiresAt) {
		return expiresAt.Add(by), false, nil
	}
	return limit, true, nil
}

// ValidateMetadata checks metadata: at most MetadataMaxKeys entries, keys of 1-64 printable
// characters, values of at most 256 characters, and at most MetadataMaxBytes as JSON.
func (l Limits) ValidateMetadata(md map[string]string) error {
	if len(md) > l.MetadataMaxKeys {
		return InvalidField("metadata", "metadata may have at most %d entries, got %d", l.MetadataMaxKeys, len(md))
	}
	for k, v := range md {
		if k == "" || len(k) > 64 || !printable(k) {
			return InvalidField("metadata", "metadata key %q must be 1-64 printable characters", truncate(k, 70))
		}
		// No control character: everyone the sandbox is shared with reads the metadata, and
		// an escape sequence would drive their terminal (NUL is one too, which PostgreSQL's
		// jsonb cannot hold, SQLSTATE 22P05).
		if len(v) > 256 || !printable(v) {
			return InvalidField("metadata", "metadata value of %q must be at most 256 characters of valid UTF-8, without control characters", truncate(k, 70))
		}
	}
	b, err := json.Marshal(md)
	if err != nil {
		return InvalidField("metadata", "metadata is not encodable")
	}
	if len(b) > l.MetadataMaxBytes {
		return InvalidField("metadata", "metadata is %d bytes as JSON, more than the limit of %d", len(b), l.MetadataMaxBytes)
	}
	return nil
}

// printable reports whether s is valid UTF-8 without control characters: C0, DEL and C1
// (U+0080-U+009F, of which U+009B is a terminal's CSI), the characters that start or carry
// a terminal's escape sequences.
func printable(s string) bool {
	return utf8.ValidString(s) && strings.IndexFunc(s, unicode.IsControl) < 0
}

// truncate keeps error messages bounded when echoing user input.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
