package api

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/botplatform/discord-sandboxes/shared/config"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// DefaultListenAddr is where local mode listens unless API_LISTEN_ADDR says otherwise.
const DefaultListenAddr = "127.0.0.1:8080"

// minTokenLength keeps local tokens from being guessable words.
const minTokenLength = 16

// Config is the api function's configuration: the shared settings and its own.
type Config struct {
	// Lifecycle holds the shared settings, the teardown settings (how the api tears sandboxes
	// down: destroy, the compensation of a failed creation, the admin runs) and the sandboxes'
	// database, read as the cleanup function reads them.
	config.Lifecycle

	// AdminPrincipals may manage every sandbox and use the admin routes (API_ADMIN_PRINCIPALS).
	// A role listed as arn:PARTITION:iam::ACCOUNT:role/[PATH/]ROLE covers every session of it.
	AdminPrincipals []string
	// OwnerKey says whether an assumed-role caller owns sandboxes as its session or as its
	// role (API_OWNER_KEY); see CanonicalPrincipal.
	OwnerKey OwnerKey
	// PublicDatabaseHost overrides the database host (and port, as host:port) handed out by
	// connect (API_PUBLIC_DATABASE_HOST); empty: the host the API itself connects to for the
	// sandboxes' database (Workers when set).
	PublicDatabaseHost string
	// PublicRedisAddr overrides the address connect answers hand out for the sandboxes' Redis
	// (WORKER_REDIS_ADDR, else REDIS_ADDR) (API_PUBLIC_REDIS_ADDR).
	PublicRedisAddr string
	// CursorKey signs list cursors (API_CURSOR_KEY, base64); empty: derived at start, see
	// CursorKey.
	CursorKey secretKey
	// IdleAfter is how long a running sandbox goes without an event before the API calls it
	// idle (SANDBOX_IDLE_AFTER; usage.go).
	IdleAfter time.Duration

	// ListenAddr is the loopback address of local mode (API_LISTEN_ADDR).
	ListenAddr string
	// LocalTokens maps bearer tokens to principals in local mode (API_LOCAL_TOKENS); local
	// mode refuses to start without any.
	LocalTokens map[string]string
}

// LoadConfig reads the configuration, reporting every problem at once.
func LoadConfig(l config.Lookup) (Config, error) {
	r := config.NewReader(l)
	c := Config{
		Lifecycle:          config.LoadLifecycle(r),
		AdminPrincipals:    r.List("API_ADMIN_PRINCIPALS"),
		PublicDatabaseHost: r.String("API_PUBLIC_DATABASE_HOST", ""),
		PublicRedisAddr:    r.String("API_PUBLIC_REDIS_ADDR", ""),
		ListenAddr:         r.String("API_LISTEN_ADDR", DefaultListenAddr),
		IdleAfter:          r.Duration("SANDBOX_IDLE_AFTER", DefaultIdleAfter),
	}
	r.Check(c.IdleAfter > 0, "SANDBOX_IDLE_AFTER", "must be positive")
	ownerKey, err := ParseOwnerKey(r.String("API_OWNER_KEY", string(OwnerKeySession)))
	r.Check(err == nil, "API_OWNER_KEY", "%v", err)
	if err == nil {
		c.OwnerKey = ownerKey
	}
	for _, p := range c.AdminPrincipals {
		r.Check(sandbox.ValidateOwner(p) == nil, "API_ADMIN_PRINCIPALS", "%q is not a valid principal", p)
		aerr := checkAdminPrincipal(p, c.OwnerKey)
		r.Check(aerr == nil, "API_ADMIN_PRINCIPALS", "%v", aerr)
	}
	if h := c.PublicDatabaseHost; h != "" {
		_, _, err := splitHostPort(h, 5432)
		r.Check(err == nil, "API_PUBLIC_DATABASE_HOST", "%q must be host or host:port", h)
	}
	if a := c.PublicRedisAddr; a != "" {
		_, _, err := net.SplitHostPort(a)
		r.Check(err == nil, "API_PUBLIC_REDIS_ADDR", "%q must be host:port", a)
	}
	if v := r.String("API_CURSOR_KEY", ""); v != "" {
		key, err := parseCursorKey(v)
		r.Check(err == nil, "API_CURSOR_KEY", "%v", err)
		c.CursorKey = key
	}
	tokens, err := ParseTokens(r.String("API_LOCAL_TOKENS", ""))
	r.Check(err == nil, "API_LOCAL_TOKENS", "%v", err)
	c.LocalTokens = tokens
	return c, r.Err()
}

// ParseTokens parses "token=principal,token2=principal2". Tokens are at least 16 characters
// and unique; principals follow the owner rules.
func ParseTokens(s string) (map[string]string, error) {
	out := map[string]string{}
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		token, principal, ok := strings.Cut(item, "=")
		token, principal = strings.TrimSpace(token), strings.TrimSpace(principal)
		switch {
		case !ok || token == "" || principal == "":
			return nil, fmt.Errorf("entry %d is not token=principal", len(out)+1)
		case len(token) < minTokenLength:
			return nil, fmt.Errorf("the token of %q is shorter than %d characters", principal, minTokenLength)
		case strings.ContainsAny(token, " \t"):
			return nil, fmt.Errorf("the token of %q contains whitespace", principal)
		case sandbox.ValidateOwner(principal) != nil:
			return nil, fmt.Errorf("principal %q is not valid", principal)
		}
		if _, dup := out[token]; dup {
			return nil, fmt.Errorf("a token appears twice (principal %q)", principal)
		}
		out[token] = principal
	}
	return out, nil
}

// splitHostPort accepts "host" or "host:port" (IPv6 in brackets with a port).
func splitHostPort(s string, defPort int) (string, int, error) {
	// A host alone: a name, an IPv4 address, or an IPv6 address in brackets.
	if !strings.Contains(s, ":") || (strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]")) {
		return strings.Trim(s, "[]"), defPort, nil
	}
	host, portStr, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 1 || port > 65535 || host == "" {
		return "", 0, fmt.Errorf("%q: bad host or port", s)
	}
	return host, port, nil
}
