package api

import (
	"fmt"
	"regexp"
	"strings"
)

// OwnerKey says which part of an assumed-role caller's ARN is its owner identity
// (API_OWNER_KEY). IAM users, federated users, the root user and anything that is not a
// well-formed assumed-role ARN are keyed on their ARN as it is, whatever the setting.
type OwnerKey string

const (
	// OwnerKeySession keys an assumed-role caller on role and session: the session ARN
	// arn:PARTITION:sts::ACCOUNT:assumed-role/ROLE/SESSION, unchanged. The default.
	OwnerKeySession OwnerKey = "session"
	// OwnerKeyRole keys an assumed-role caller on the role alone,
	// arn:PARTITION:iam::ACCOUNT:role/ROLE: everyone who can assume the role shares its
	// sandboxes (shared team roles).
	OwnerKeyRole OwnerKey = "role"
)

// ParseOwnerKey parses an API_OWNER_KEY value: "session" or "role", exactly.
func ParseOwnerKey(s string) (OwnerKey, error) {
	switch k := OwnerKey(s); k {
	case OwnerKeySession, OwnerKeyRole:
		return k, nil
	}
	return "", fmt.Errorf("%q is neither %q (owners are role sessions) nor %q (owners are roles)", s, OwnerKeySession, OwnerKeyRole)
}

// CanonicalPrincipal returns the owner identity of an IAM caller ARN (the userArn the
// AWS_IAM authorizer verified). An assumed-role session
// arn:PARTITION:sts::ACCOUNT:assumed-role/ROLE/SESSION stays as it is under OwnerKeySession
// and becomes arn:PARTITION:iam::ACCOUNT:role/ROLE under OwnerKeyRole (without the role's
// path, which the session ARN does not carry). Everything else, IAM users included, is
// returned unchanged: the function never merges two callers it cannot parse. It is pure;
// the Lambda adapter applies it to every request, the local adapter does not.
func CanonicalPrincipal(arn string, key OwnerKey) string {
	if key != OwnerKeyRole {
		return arn
	}
	if role, _, ok := parseAssumedRole(arn); ok {
		return role.arn()
	}
	return arn
}

// roleRef names an IAM role: role names are unique within an account whatever their path.
type roleRef struct {
	partition, account, name string
}

// arn is the role's ARN without its path, the form OwnerKeyRole gives owners.
func (r roleRef) arn() string {
	return "arn:" + r.partition + ":iam::" + r.account + ":role/" + r.name
}

var (
	// partitionRE: aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b, ...
	partitionRE = regexp.MustCompile(`^aws(-[a-z]+)*$`)
	accountRE   = regexp.MustCompile(`^[0-9]{12}$`)
	// roleNameRE and sessionNameRE are IAM's rules for role and role session names.
	roleNameRE    = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)
	sessionNameRE = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)
	// rolePathSegmentRE is one segment of a role path (printable ASCII, no slash).
	rolePathSegmentRE = regexp.MustCompile(`^[\x21-\x2e\x30-\x7e]+$`)
)

// splitARN splits arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE for a global service (empty
// region), checking the partition and the account.
func splitARN(arn, service string) (partition, account, resource string, ok bool) {
	f := strings.SplitN(arn, ":", 6)
	if len(f) != 6 || f[0] != "arn" || f[2] != service || f[3] != "" ||
		!partitionRE.MatchString(f[1]) || !accountRE.MatchString(f[4]) {
		return "", "", "", false
	}
	return f[1], f[4], f[5], true
}

// parseAssumedRole parses arn:PARTITION:sts::ACCOUNT:assumed-role/ROLE/SESSION.
func parseAssumedRole(arn string) (roleRef, string, bool) {
	partition, account, resource, ok := splitARN(arn, "sts")
	if !ok {
		return roleRef{}, "", false
	}
	seg := strings.Split(resource, "/")
	if len(seg) != 3 || seg[0] != "assumed-role" || !roleNameRE.MatchString(seg[1]) || !sessionNameRE.MatchString(seg[2]) {
		return roleRef{}, "", false
	}
	return roleRef{partition: partition, account: account, name: seg[1]}, seg[2], true
}

// parseRoleARN parses arn:PARTITION:iam::ACCOUNT:role/[PATH/]ROLE; the path is dropped.
func parseRoleARN(arn string) (roleRef, bool) {
	partition, account, resource, ok := splitARN(arn, "iam")
	if !ok {
		return roleRef{}, false
	}
	seg := strings.Split(resource, "/")
	if len(seg) < 2 || seg[0] != "role" || !roleNameRE.MatchString(seg[len(seg)-1]) {
		return roleRef{}, false
	}
	for _, p := range seg[1 : len(seg)-1] {
		if !rolePathSegmentRE.MatchString(p) {
			return roleRef{}, false
		}
	}
	return roleRef{partition: partition, account: account, name: seg[len(seg)-1]}, true
}

// roleOfCaller returns the role a caller acts as: the role of an assumed-role session, or
// the role itself when the caller is already keyed on it (OwnerKeyRole).
func roleOfCaller(principal string) (roleRef, bool) {
	if r, _, ok := parseAssumedRole(principal); ok {
		return r, true
	}
	return parseRoleARN(principal)
}

// principals is how the handler treats callers: the owner key of the Lambda adapter and
// the admin set of API_ADMIN_PRINCIPALS.
type principals struct {
	key OwnerKey
	// exact are the admin entries as listed; roles are the roles listed as
	// arn:PARTITION:iam::ACCOUNT:role/[PATH/]ROLE, every session of which is an admin.
	exact map[string]bool
	roles map[roleRef]bool
}

func newPrincipals(cfg Config) principals {
	p := principals{key: cfg.OwnerKey, exact: map[string]bool{}, roles: map[roleRef]bool{}}
	if p.key == "" {
		p.key = OwnerKeySession
	}
	for _, a := range cfg.AdminPrincipals {
		if r, ok := parseRoleARN(a); ok {
			p.roles[r] = true
			continue
		}
		// Anything else matches only itself. An assumed-role session listed here is never
		// widened to its role (LoadConfig refuses one under OwnerKeyRole, where no canonical
		// caller can equal it).
		p.exact[a] = true
	}
	return p
}

// canonical is CanonicalPrincipal under the configured owner key.
func (p principals) canonical(arn string) string { return CanonicalPrincipal(arn, p.key) }

// admin reports whether a caller (as the adapter put it in the context) is an admin: it is
// listed as it is, or it acts as a listed role. The session name never takes part in a
// role match, so no choice of session name makes a caller an admin of a role it does not
// assume.
func (p principals) admin(principal string) bool {
	if principal == "" {
		return false
	}
	if p.exact[principal] {
		return true
	}
	r, ok := roleOfCaller(principal)
	return ok && p.roles[r]
}

// checkAdminPrincipal returns why an API_ADMIN_PRINCIPALS entry cannot work under key, or
// nil.
func checkAdminPrincipal(entry string, key OwnerKey) error {
	if key != OwnerKeyRole {
		return nil
	}
	if r, _, ok := parseAssumedRole(entry); ok {
		return fmt.Errorf("%q is a role session, but API_OWNER_KEY=role keys callers on their role alone; "+
			"list the role %s to make everyone who assumes it an admin", entry, r.arn())
	}
	return nil
}
