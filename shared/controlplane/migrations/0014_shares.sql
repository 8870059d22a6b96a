-- Shared sandboxes (docs/api.md, "Identity and authorization"). A sandbox's owner lets another
-- principal act on it with a role: a viewer reads it, a developer also connects, extends, maps
-- guilds and rewinds its stream. Only the owner and admins share, unshare and destroy. The
-- principal is the canonical owner key the API compares every caller on (API_OWNER_KEY), so a
-- share matches exactly the callers an owner of that name would be. A share is no ownership:
-- it counts in no quota, and it never reaches the owner's other sandboxes.
CREATE TABLE sandbox_control.sandbox_shares (
    sandbox_id text        NOT NULL REFERENCES sandbox_control.sandboxes (id),
    principal  text        NOT NULL CHECK (length(principal) BETWEEN 1 AND 512),
    role       text        NOT NULL CHECK (role IN ('viewer', 'developer')),
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sandbox_id, principal)
);
-- The sandboxes shared with a caller (list).
CREATE INDEX sandbox_shares_principal ON sandbox_control.sandbox_shares (principal);
