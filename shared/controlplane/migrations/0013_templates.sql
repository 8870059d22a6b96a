-- Named templates (docs/architecture.md, "Templates"): admins register the schemas sandboxes
-- may be cloned from, each with whether its rows (the seed rows) are copied and the TTL of a
-- sandbox created from it without one. The configured SANDBOX_TEMPLATE_SCHEMA stays the
-- template "default", which is not registered here: the name is reserved. A retired template
-- keeps its row (the sandboxes made from it name it) and takes no new sandbox; its name is
-- never reused. Every change is audited (template.add, template.update, template.retire).
CREATE TABLE sandbox_control.templates (
    name                text        PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9-]{2,31}$' AND name <> 'default'),
    description         text        NOT NULL DEFAULT '' CHECK (char_length(description) <= 256),
    -- The same rule as sandbox.ValidateTemplateSchema: never a sandbox's schema, never the
    -- control plane's or PostgreSQL's own.
    source_schema       text        NOT NULL CHECK (source_schema ~ '^[a-z][a-z0-9_]{0,62}$'
                                        AND source_schema NOT LIKE 'sb\_%' AND source_schema NOT LIKE 'pg\_%'
                                        AND source_schema NOT IN ('sandbox_control', 'information_schema')),
    copy_rows           boolean     NOT NULL DEFAULT false,
    -- NULL: the deployment's SANDBOX_DEFAULT_TTL.
    default_ttl_seconds bigint      CHECK (default_ttl_seconds > 0),
    created_at          timestamptz NOT NULL DEFAULT now(),
    created_by          text        NOT NULL,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    updated_by          text        NOT NULL,
    retired_at          timestamptz,
    retired_by          text,
    CHECK ((retired_at IS NULL) = (retired_by IS NULL))
);

-- Which template each sandbox came from; the sandboxes created before templates existed came
-- from the configured schema, the template "default".
ALTER TABLE sandbox_control.sandboxes ADD COLUMN template text NOT NULL DEFAULT 'default';
