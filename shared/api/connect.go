package api

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/botplatform/discord-sandboxes/shared/apiwire"
	"github.com/botplatform/discord-sandboxes/shared/controlplane"
	"github.com/botplatform/discord-sandboxes/shared/keys"
	"github.com/botplatform/discord-sandboxes/shared/provision"
	"github.com/botplatform/discord-sandboxes/shared/sandbox"
)

// connectTarget is where workers reach the stores: the API's own database connection, or the
// public overrides.
type connectTarget struct {
	dbHost       string
	dbPort       int
	database     string
	sslMode      string
	redisAddr    string
	redisTLS     bool
	redisCluster bool
}

// connectTargetOf derives the target from the pool's configuration and the overrides.
func connectTargetOf(cfg Config, pool *pgxpool.Pool) (connectTarget, error) {
	cc := pool.Config().ConnConfig
	t := connectTarget{
		dbHost:       cc.Host,
		dbPort:       int(cc.Port),
		database:     cc.Database,
		sslMode:      sslModeOf(cc.TLSConfig != nil, cc.Fallbacks),
		redisAddr:    cfg.RedisAddr,
		redisTLS:     cfg.RedisTLS,
		redisCluster: cfg.RedisCluster,
	}
	if cfg.WorkerRedisApart() {
		t.redisAddr, t.redisCluster = cfg.WorkerRedisAddr, cfg.WorkerRedisCluster
	}
	if cfg.PublicDatabaseHost != "" {
		host, port, err := splitHostPort(cfg.PublicDatabaseHost, t.dbPort)
		if err != nil {
			return t, err
		}
		t.dbHost, t.dbPort = host, port
	}
	if cfg.PublicRedisAddr != "" {
		t.redisAddr = cfg.PublicRedisAddr
	}
	return t, nil
}

// sslModeOf names the libpq sslmode that matches the API's own connection: no TLS is
// disable, TLS with a plain fallback is prefer, TLS without one is require.
func sslModeOf(tls bool, fallbacks []*pgconn.FallbackConfig) string {
	if !tls {
		return "disable"
	}
	for _, f := range fallbacks {
		if f.TLSConfig == nil {
			return "prefer"
		}
	}
	return "require"
}

func (h *Handler) connectSandbox(w http.ResponseWriter, r *http.Request, c caller) error {
	var req apiwire.ConnectRequest
	sb, err := h.addressed(r, c, &req, nil)
	if err != nil {
		return err
	}
	if err := sb.CheckRunning(h.now(), "connect"); err != nil {
		return err
	}
	// The Redis user is set while the sandbox is held running: a teardown begun since the
	// check above is either held back until the user is set, and then deletes it, or refuses
	// the rotation.
	creds, err := h.deps.Resources.RotateCredentials(r.Context(), sb.ID, sb.ExpiresAt, h.whileRunning(sb.ID, "connect"))
	if err != nil {
		return err
	}
	resp := h.connection(sb, creds)
	details := map[string]any{
		"rotated": creds.Rotated(), "redis_access": h.deps.Resources.RedisAccess(),
		"valid_until": sb.ExpiresAt.UTC(), "role": c.roleOn(sb),
	}
	if req.EndSessions {
		ended, err := h.deps.Resources.EndSessions(r.Context(), sb.ID)
		if err != nil {
			return err
		}
		resp.SessionsEnded = sessionsEndedView(ended)
		details["sessions_ended"] = resp.SessionsEnded
	}
	// The previous credentials are void already; without an audit entry the new ones are not
	// handed out either (a retry rotates again). The owner and its developers share the one
	// set of credentials, so the entry says who connected and as what.
	if err := h.deps.Sandboxes.Audit(r.Context(), c.principal, controlplane.ActionConnect, sb.ID, details); err != nil {
		return err
	}
	// A collaborator's developer share may have ended while its credentials were rotated.
	// The revocation that follows an unshare reads the audit entry above when the share was
	// still there now, and voids these credentials; otherwise nothing is handed out.
	if _, shared := c.grants[sb.ID]; shared {
		if err := h.authorize(r.Context(), c, sb); err != nil {
			return err
		}
	}
	writeUncached(w, http.StatusOK, resp)
	return nil
}

// whileRunning is the provision.Hold of a rotation: the control plane holds sandbox id
// running (controlplane.Manager.WhileRunning) while the Redis user is set; what names the
// operation in the answer when the sandbox is no longer running.
func (h *Handler) whileRunning(id, what string) provision.Hold {
	return func(ctx context.Context, set func() error) error {
		return h.deps.Sandboxes.WhileRunning(ctx, id, what, set)
	}
}

// sessionsEndedView is what provision.EndSessions ended, as the API answers it.
func sessionsEndedView(e provision.SessionsEnded) *apiwire.SessionsEnded {
	return &apiwire.SessionsEnded{DatabaseSessions: e.Database, RedisConnections: e.Redis}
}

// connection assembles what a worker needs, as JSON and as environment variables.
func (h *Handler) connection(sb *sandbox.Sandbox, creds provision.Credentials) apiwire.ConnectResponse {
	password := creds.DatabasePassword
	t := h.connect
	options := "-c search_path=" + sb.SchemaName
	dbURL := url.URL{
		Scheme: "postgres",
		User:   url.UserPassword(sb.DBRole, password),
		Host:   net.JoinHostPort(t.dbHost, strconv.Itoa(t.dbPort)),
		Path:   "/" + t.database,
		// libpq does not decode '+' as a space in URIs: escape spaces as %20.
		RawQuery: "options=" + strings.ReplaceAll(url.QueryEscape(options), "+", "%20") + "&sslmode=" + t.sslMode,
	}
	guilds := sb.Guilds
	if guilds == nil {
		guilds = []string{}
	}
	expires := sb.ExpiresAt.UTC()
	resp := apiwire.ConnectResponse{
		SandboxID: sb.ID,
		Name:      sb.Name,
		ExpiresAt: expires,
		GuildIDs:  guilds,
		Database: apiwire.ConnectDatabase{
			Host: t.dbHost, Port: t.dbPort, Database: t.database,
			Schema: sb.SchemaName, Role: sb.DBRole, Password: password, PasswordExpiresAt: expires,
			SSLMode: t.sslMode, URL: dbURL.String(),
		},
		Redis: apiwire.ConnectRedis{
			Addr: t.redisAddr, TLS: t.redisTLS, Cluster: t.redisCluster, Access: string(h.deps.Resources.RedisAccess()),
			Username: creds.RedisUser, Password: creds.RedisPassword,
			Namespace: keys.Namespace(sb.ID), Stream: keys.EventStream(sb.ID), ConsumerGroup: keys.EventsGroup,
		},
	}
	if creds.RedisUser == "" {
		resp.Redis.Warning = sandbox.SharedRedisWarning
	}
	resp.Env = map[string]string{
		"SANDBOX_ID":             sb.ID,
		"SANDBOX_NAME":           sb.Name,
		"SANDBOX_EXPIRES_AT":     expires.Format(time.RFC3339),
		"SANDBOX_DATABASE_URL":   resp.Database.URL,
		"SANDBOX_SCHEMA":         sb.SchemaName,
		"PGHOST":                 t.dbHost,
		"PGPORT":                 strconv.Itoa(t.dbPort),
		"PGDATABASE":             t.database,
		"PGUSER":                 sb.DBRole,
		"PGPASSWORD":             password,
		"PGOPTIONS":              options,
		"PGSSLMODE":              t.sslMode,
		"SANDBOX_REDIS_ADDR":     t.redisAddr,
		"SANDBOX_REDIS_TLS":      strconv.FormatBool(t.redisTLS),
		"SANDBOX_REDIS_CLUSTER":  strconv.FormatBool(t.redisCluster),
		"SANDBOX_REDIS_ACCESS":   resp.Redis.Access,
		"SANDBOX_NAMESPACE":      resp.Redis.Namespace,
		"SANDBOX_STREAM":         resp.Redis.Stream,
		"SANDBOX_CONSUMER_GROUP": keys.EventsGroup,
		"SANDBOX_GUILD_IDS":      strings.Join(guilds, ","),
	}
	// A worker sizes its pools by the MAX_CONNECTIONS, and its data by the MAX_BYTES and
	// MAX_MEMORY: its role refuses more sessions, and cleanup switches off a role whose schema
	// takes more disk, and a Redis user that holds more connections on one node, or whose keys
	// hold more memory.
	resp.Env["SANDBOX_DATABASE_MAX_CONNECTIONS"] = strconv.Itoa(sandbox.RoleConnectionLimit)
	resp.Env["SANDBOX_DATABASE_MAX_BYTES"] = strconv.Itoa(sandbox.SchemaSizeLimit)
	if creds.RedisUser != "" {
		resp.Env["SANDBOX_REDIS_USERNAME"] = creds.RedisUser
		resp.Env["SANDBOX_REDIS_PASSWORD"] = creds.RedisPassword
		resp.Env["SANDBOX_REDIS_MAX_CONNECTIONS"] = strconv.Itoa(sandbox.RedisConnectionLimit)
		resp.Env["SANDBOX_REDIS_MAX_MEMORY"] = strconv.Itoa(sandbox.RedisMemoryLimit)
	}
	return resp
}
