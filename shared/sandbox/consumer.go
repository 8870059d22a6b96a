package sandbox

import "regexp"

// ConsumerNamePattern is the rule consumer group and consumer names follow when they come
// through the API (docs/api.md, "Consuming through the API"): 1 to 64 characters, letters,
// digits, '.', '_' and '-', starting with a letter or a digit. The rule keeps names printable
// and short: they are echoed in answers, logs and the forwarder's lines.
const ConsumerNamePattern = `^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`

var consumerNameRE = regexp.MustCompile(ConsumerNamePattern)

// ValidConsumerName reports whether s is a valid consumer group or consumer name.
func ValidConsumerName(s string) bool { return consumerNameRE.MatchString(s) }

// ValidateConsumerName checks a consumer group or consumer name given as field.
func ValidateConsumerName(field, s string) error {
	if !ValidConsumerName(s) {
		return InvalidField(field, "%s %q must match %s (1-64 characters: letters, digits, '.', '_' and '-', starting with a letter or a digit)",
			field, truncate(s, 40), ConsumerNamePattern)
	}
	return nil
}
