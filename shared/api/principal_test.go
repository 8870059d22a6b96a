package api

import (
	"strings"
	"testing"
)

func TestCanonicalPrincipal(t *testing.T) {
	const (
		user        = "arn:aws:iam::123456789012:user/alice"
		userPath    = "arn:aws:iam::123456789012:user/eng/team/alice"
		session     = "arn:aws:sts::123456789012:assumed-role/Developer/alice"
		role        = "arn:aws:iam::123456789012:role/Developer"
		federated   = "arn:aws:sts::123456789012:federated-user/alice"
		root        = "arn:aws:iam::123456789012:root"
		ssoSession  = "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Dev_0123456789abcdef/alice@example.com"
		ssoRole     = "arn:aws:iam::123456789012:role/AWSReservedSSO_Dev_0123456789abcdef"
		cnSession   = "arn:aws-cn:sts::123456789012:assumed-role/Developer/alice"
		cnRole      = "arn:aws-cn:iam::123456789012:role/Developer"
		govSession  = "arn:aws-us-gov:sts::123456789012:assumed-role/Developer/alice"
		govRole     = "arn:aws-us-gov:iam::123456789012:role/Developer"
		isobSession = "arn:aws-iso-b:sts::123456789012:assumed-role/Developer/bob"
		isobRole    = "arn:aws-iso-b:iam::123456789012:role/Developer"
	)
	for _, c := range []struct {
		name, in         string
		session, roleKey string // the canonical form under each owner key
	}{
		{"IAM user", user, user, user},
		{"IAM user with a path", userPath, userPath, userPath},
		{"assumed role", session, session, role},
		{"assumed role, other session", "arn:aws:sts::123456789012:assumed-role/Developer/bob", "arn:aws:sts::123456789012:assumed-role/Developer/bob", role},
		{"session name with IAM's punctuation", "arn:aws:sts::123456789012:assumed-role/Dev+Ops=1,x.y@z-w/a_b+c=d,e.f@g-h", "arn:aws:sts::123456789012:assumed-role/Dev+Ops=1,x.y@z-w/a_b+c=d,e.f@g-h", "arn:aws:iam::123456789012:role/Dev+Ops=1,x.y@z-w"},
		{"Identity Center role", ssoSession, ssoSession, ssoRole},
		{"aws-cn", cnSession, cnSession, cnRole},
		{"aws-us-gov", govSession, govSession, govRole},
		{"aws-iso-b", isobSession, isobSession, isobRole},
		{"role ARN stays", role, role, role},
		{"federated user stays", federated, federated, federated},
		{"root stays", root, root, root},
		{"local principal stays", "alice", "alice", "alice"},
		{"empty stays", "", "", ""},

		// Malformed assumed-role ARNs are kept as they are: never merged with anything.
		{"no session", "arn:aws:sts::123456789012:assumed-role/Developer", "arn:aws:sts::123456789012:assumed-role/Developer", "arn:aws:sts::123456789012:assumed-role/Developer"},
		{"empty session", "arn:aws:sts::123456789012:assumed-role/Developer/", "arn:aws:sts::123456789012:assumed-role/Developer/", "arn:aws:sts::123456789012:assumed-role/Developer/"},
		{"one-character session", "arn:aws:sts::123456789012:assumed-role/Developer/a", "arn:aws:sts::123456789012:assumed-role/Developer/a", "arn:aws:sts::123456789012:assumed-role/Developer/a"},
		{"extra segment", "arn:aws:sts::123456789012:assumed-role/Developer/alice/x", "arn:aws:sts::123456789012:assumed-role/Developer/alice/x", "arn:aws:sts::123456789012:assumed-role/Developer/alice/x"},
		{"empty role", "arn:aws:sts::123456789012:assumed-role//alice", "arn:aws:sts::123456789012:assumed-role//alice", "arn:aws:sts::123456789012:assumed-role//alice"},
		{"short account", "arn:aws:sts::1234567890:assumed-role/Developer/alice", "arn:aws:sts::1234567890:assumed-role/Developer/alice", "arn:aws:sts::1234567890:assumed-role/Developer/alice"},
		{"region set", "arn:aws:sts:us-east-1:123456789012:assumed-role/Developer/alice", "arn:aws:sts:us-east-1:123456789012:assumed-role/Developer/alice", "arn:aws:sts:us-east-1:123456789012:assumed-role/Developer/alice"},
		{"unknown partition", "arn:gcp:sts::123456789012:assumed-role/Developer/alice", "arn:gcp:sts::123456789012:assumed-role/Developer/alice", "arn:gcp:sts::123456789012:assumed-role/Developer/alice"},
		{"upper-case partition", "arn:AWS:sts::123456789012:assumed-role/Developer/alice", "arn:AWS:sts::123456789012:assumed-role/Developer/alice", "arn:AWS:sts::123456789012:assumed-role/Developer/alice"},
		{"iam service", "arn:aws:iam::123456789012:assumed-role/Developer/alice", "arn:aws:iam::123456789012:assumed-role/Developer/alice", "arn:aws:iam::123456789012:assumed-role/Developer/alice"},
		{"space in session", "arn:aws:sts::123456789012:assumed-role/Developer/al ice", "arn:aws:sts::123456789012:assumed-role/Developer/al ice", "arn:aws:sts::123456789012:assumed-role/Developer/al ice"},
		{"colon in session", "arn:aws:sts::123456789012:assumed-role/Developer/al:ice", "arn:aws:sts::123456789012:assumed-role/Developer/al:ice", "arn:aws:sts::123456789012:assumed-role/Developer/al:ice"},
		{"too few fields", "arn:aws:sts::assumed-role/Developer/alice", "arn:aws:sts::assumed-role/Developer/alice", "arn:aws:sts::assumed-role/Developer/alice"},
		{"not an ARN", "urn:aws:sts::123456789012:assumed-role/Developer/alice", "urn:aws:sts::123456789012:assumed-role/Developer/alice", "urn:aws:sts::123456789012:assumed-role/Developer/alice"},
		{"role name too long", "arn:aws:sts::123456789012:assumed-role/" + strings.Repeat("r", 65) + "/alice", "arn:aws:sts::123456789012:assumed-role/" + strings.Repeat("r", 65) + "/alice", "arn:aws:sts::123456789012:assumed-role/" + strings.Repeat("r", 65) + "/alice"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := CanonicalPrincipal(c.in, OwnerKeySession); got != c.session {
				t.Errorf("session mode: CanonicalPrincipal(%q) = %q, want %q", c.in, got, c.session)
			}
			if got := CanonicalPrincipal(c.in, OwnerKeyRole); got != c.roleKey {
				t.Errorf("role mode: CanonicalPrincipal(%q) = %q, want %q", c.in, got, c.roleKey)
			}
			// Canonical forms are fixed points: applying it twice changes nothing.
			for _, k := range []OwnerKey{OwnerKeySession, OwnerKeyRole} {
				once := CanonicalPrincipal(c.in, k)
				if twice := CanonicalPrincipal(once, k); twice != once {
					t.Errorf("%s mode: not idempotent: %q -> %q -> %q", k, c.in, once, twice)
				}
			}
		})
	}
}

func TestParseOwnerKey(t *testing.T) {
	for in, want := range map[string]OwnerKey{"session": OwnerKeySession, "role": OwnerKeyRole} {
		if got, err := ParseOwnerKey(in); err != nil || got != want {
			t.Errorf("ParseOwnerKey(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "Session", "ROLE", "user", "role ", "session,role"} {
		if _, err := ParseOwnerKey(in); err == nil || !strings.Contains(err.Error(), `"session"`) || !strings.Contains(err.Error(), `"role"`) {
			t.Errorf("ParseOwnerKey(%q) error %v, want one naming both values", in, err)
		}
	}
}

func TestAdminMatch(t *testing.T) {
	admins := []string{
		"arn:aws:iam::123456789012:role/PlatformAdmin",          // a role: all its sessions
		"arn:aws:iam::123456789012:role/teams/infra/InfraAdmin", // a role with a path
		"arn:aws-cn:iam::123456789012:role/CnAdmin",
		"arn:aws:sts::123456789012:assumed-role/Developer/carol", // one session only
		"arn:aws:iam::123456789012:user/ops",
		"localadmin",
	}
	for _, c := range []struct {
		caller        string // as the Lambda adapter receives it
		session, role bool   // admin under each owner key
		why           string
	}{
		{caller: "arn:aws:sts::123456789012:assumed-role/PlatformAdmin/carol", session: true, role: true, why: "a session of a listed role"},
		{caller: "arn:aws:sts::123456789012:assumed-role/PlatformAdmin/anyone-else", session: true, role: true, why: "any session of a listed role"},
		{caller: "arn:aws:sts::123456789012:assumed-role/InfraAdmin/dave", session: true, role: true, why: "the path of a listed role is not in the session ARN"},
		{caller: "arn:aws-cn:sts::123456789012:assumed-role/CnAdmin/erin", session: true, role: true, why: "aws-cn"},
		{caller: "arn:aws:sts::123456789012:assumed-role/CnAdmin/erin", why: "same role name, other partition"},
		{caller: "arn:aws:sts::210987654321:assumed-role/PlatformAdmin/carol", why: "same role name, other account"},
		{caller: "arn:aws:sts::123456789012:assumed-role/platformadmin/carol", why: "role names are matched exactly"},
		{caller: "arn:aws:sts::123456789012:assumed-role/Developer/carol", session: true, why: "the listed session, in session mode"},
		{caller: "arn:aws:sts::123456789012:assumed-role/Developer/mallory", why: "another session of a role listed only by one session"},
		{caller: "arn:aws:sts::123456789012:assumed-role/Developer/PlatformAdmin", why: "a session named after an admin role"},
		{caller: "arn:aws:sts::123456789012:assumed-role/Developer/ops", why: "a session named after an admin user"},
		{caller: "arn:aws:sts::123456789012:assumed-role/PlatformAdmin/carol/x", why: "malformed: no role match"},
		{caller: "arn:aws:sts::123456789012:assumed-role/PlatformAdmin", why: "malformed: no session"},
		{caller: "arn:aws:iam::123456789012:user/ops", session: true, role: true, why: "a listed user"},
		{caller: "arn:aws:iam::123456789012:user/PlatformAdmin", why: "a user named like an admin role"},
		{caller: "arn:aws:sts::123456789012:federated-user/PlatformAdmin", why: "a federated user named like an admin role"},
		{caller: "arn:aws:iam::123456789012:root", why: "root is not listed"},
		{caller: "", why: "no caller"},
	} {
		for _, k := range []OwnerKey{OwnerKeySession, OwnerKeyRole} {
			// Under role keys LoadConfig refuses the listed session; given it anyway, the
			// handler must not widen it to its role.
			p := newPrincipals(Config{AdminPrincipals: admins, OwnerKey: k})
			want := c.session
			if k == OwnerKeyRole {
				want = c.role
			}
			if got := p.admin(p.canonical(c.caller)); got != want {
				t.Errorf("%s mode: %q (%s): admin = %v, want %v", k, c.caller, c.why, got, want)
			}
		}
	}

	// The local adapter's principals are compared as they are.
	p := newPrincipals(Config{AdminPrincipals: admins})
	if !p.admin("localadmin") || p.admin("localadmin2") || p.admin("LocalAdmin") {
		t.Error("local principals are not compared exactly")
	}
	// A zero Config keys on sessions.
	if p.key != OwnerKeySession {
		t.Errorf("default owner key %q", p.key)
	}
}

func TestCheckAdminPrincipal(t *testing.T) {
	const session = "arn:aws:sts::123456789012:assumed-role/Developer/carol"
	for _, ok := range []string{"arn:aws:iam::123456789012:role/Developer", "arn:aws:iam::123456789012:user/ops", "localadmin",
		"arn:aws:sts::123456789012:federated-user/ops"} {
		for _, k := range []OwnerKey{OwnerKeySession, OwnerKeyRole} {
			if err := checkAdminPrincipal(ok, k); err != nil {
				t.Errorf("%s mode: %q refused: %v", k, ok, err)
			}
		}
	}
	if err := checkAdminPrincipal(session, OwnerKeySession); err != nil {
		t.Errorf("session mode refuses a listed session: %v", err)
	}
	err := checkAdminPrincipal(session, OwnerKeyRole)
	if err == nil || !strings.Contains(err.Error(), "arn:aws:iam::123456789012:role/Developer") {
		t.Errorf("role mode: a listed session gives %v, want an error naming the role to list", err)
	}
}
