package config

import "regexp"

// identRE is what a configured schema name may be: it reaches SQL quoted, but a plain name
// keeps logs and docs unambiguous and excludes the sandbox prefix.
var identRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
