-- The control plane (DESIGN §3.1). Sandbox roles get no access to this schema.
CREATE SCHEMA IF NOT EXISTS sandbox_control;
REVOKE ALL ON SCHEMA sandbox_control FROM PUBLIC;

CREATE TABLE sandbox_control.sandboxes (
    id               text        PRIMARY KEY CHECK (id ~ '^[a-z0-9]{12,20}$'),
    name             text        NOT NULL CHECK (name ~ '^[a-z][a-z0-9-]{2,31}$'),
    owner            text        NOT NULL CHECK (length(owner) BETWEEN 1 AND 512),
    status           text        NOT NULL CHECK (status IN ('creating', 'running', 'failed', 'destroying', 'destroyed')),
    schema_name      text        NOT NULL,
    db_role          text        NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    destroyed_at     timestamptz,
    metadata         jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    teardown         jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(teardown) = 'object'),
    cleanup_attempts integer     NOT NULL DEFAULT 0,
    last_error       text,
    expiry_warned_at timestamptz,
    CHECK ((status = 'destroyed') = (destroyed_at IS NOT NULL)),
    CHECK (expires_at > created_at)
);

-- A name is unique among sandboxes that are not destroyed, so it can be reused afterwards.
CREATE UNIQUE INDEX sandboxes_live_name ON sandbox_control.sandboxes (name) WHERE status <> 'destroyed';
CREATE INDEX sandboxes_live_owner ON sandbox_control.sandboxes (owner) WHERE status <> 'destroyed';
CREATE INDEX sandboxes_status_expires ON sandbox_control.sandboxes (status, expires_at);
CREATE INDEX sandboxes_created ON sandbox_control.sandboxes (created_at DESC, id DESC);

-- guild_id is the primary key: a guild belongs to at most one sandbox, enforced here.
CREATE TABLE sandbox_control.guild_mappings (
    guild_id   text        PRIMARY KEY CHECK (guild_id ~ '^[1-9][0-9]{16,19}$'),
    sandbox_id text        NOT NULL REFERENCES sandbox_control.sandboxes (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text        NOT NULL
);
CREATE INDEX guild_mappings_sandbox ON sandbox_control.guild_mappings (sandbox_id);

-- Guilds that may never be mapped (production guilds).
CREATE TABLE sandbox_control.protected_guilds (
    guild_id   text        PRIMARY KEY CHECK (guild_id ~ '^[1-9][0-9]{16,19}$'),
    reason     text        NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text        NOT NULL DEFAULT current_user
);

-- Append-only record of every state change.
CREATE TABLE sandbox_control.audit_log (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor      text        NOT NULL,
    action     text        NOT NULL,
    sandbox_id text,
    details    jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_sandbox ON sandbox_control.audit_log (sandbox_id, id);

CREATE FUNCTION sandbox_control.audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'sandbox_control.audit_log is append-only (% refused)', TG_OP;
END;
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON sandbox_control.audit_log
    FOR EACH ROW EXECUTE FUNCTION sandbox_control.audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON sandbox_control.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION sandbox_control.audit_log_append_only();
