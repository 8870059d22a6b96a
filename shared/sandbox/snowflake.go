package sandbox

import "math"

// The rule of a Discord id (a snowflake): its one home. The domain applies it to every guild
// id a user types (ValidGuildID), and the gateway parser on the router's hot path to every
// guild id of an event, on the payload's bytes before it allocates the id's string.
const (
	// snowflakeMinLen is the length of the shortest snowflake: the oldest Discord ids (2015)
	// have 17 digits.
	snowflakeMinLen = 17
	// SnowflakeMaxLen is the length of the longest: math.MaxUint64 has 20 digits.
	SnowflakeMaxLen = 20
)

// SnowflakeRule says ValidSnowflake's rule in words, for messages and docs: every id it
// refuses breaks one of its clauses (a 20-digit id above math.MaxUint64 is still 20 digits).
const SnowflakeRule = "17 to 20 digits, no leading zero, at most 18446744073709551615"

// ValidSnowflake reports whether s is a Discord snowflake in canonical form: 17 to 20 decimal
// digits without a leading zero, fitting in a uint64. Canonical form matters because guild
// ids are compared as strings: "0123…" and "123…" must not name two different guilds.
func ValidSnowflake[T string | []byte](s T) bool {
	if len(s) < snowflakeMinLen || len(s) > SnowflakeMaxLen || s[0] == '0' {
		return false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return false
		}
		digit := uint64(c - '0')
		if n > (math.MaxUint64-digit)/10 {
			return false
		}
		n = n*10 + digit
	}
	return true
}
