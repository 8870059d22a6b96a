package gateway

import "math"

const (
	minSnowflakeLen = 17 // the oldest Discord ids (2015) have 17 digits
	maxSnowflakeLen = 20 // math.MaxUint64 has 20 digits
)

// ValidSnowflake reports whether s is a Discord snowflake in canonical form: 17 to 20 decimal
// digits without a leading zero, fitting in a uint64. Canonical form matters because guild
// ids are compared as strings: "0123…" and "123…" must not name two different guilds.
func ValidSnowflake(s string) bool { return validSnowflake(s) }

func validSnowflake[T string | []byte](s T) bool {
	if len(s) < minSnowflakeLen || len(s) > maxSnowflakeLen || s[0] == '0' {
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
